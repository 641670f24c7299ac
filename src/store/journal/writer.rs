//! The writer thread: commit rounds (one write and one `fdatasync` per file), roll back of a
//! failed round, compaction and the blocklist rewrite.

use super::error::{JournalError, io_error};
use super::faults::{FaultHook, Step, inject};
use super::files::{
    Segment, first_kept_day, remove_segments_before, sync_dir, sync_error, sync_file,
};
use super::format::{
    BLOCK_FRAME, BLOCKLIST_FILE, BLOCKLIST_TMP, HEADER_LEN, KIND_BLOCKLIST, KIND_GRANTS,
    encode_block, encode_block_entry, encode_grant, encode_revocation, header, segment_name,
};
use super::outbox::OutboxLog;
use super::{BlockChange, BlockNet, Command, Compaction, Counters, Done};
use crate::permit::clock::Calendar;
use std::collections::{BTreeMap, btree_map};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::mpsc;

/// A commit round slower than this is logged: every MO in it waited that long.
const SLOW_COMMIT: std::time::Duration = std::time::Duration::from_millis(50);
/// Segment files the writer keeps open; more than today and yesterday only when grants of
/// older days are appended, which the gateway does not do.
const MAX_OPEN_SEGMENTS: usize = 4;

/// The writer thread's state: it alone touches the files.
pub(super) struct Writer {
    pub(super) dir: PathBuf,
    pub(super) calendar: Calendar,
    pub(super) longest_validity_secs: Arc<AtomicU32>,
    pub(super) counters: Arc<Counters>,
    /// Open grant segments by day.
    pub(super) segments: BTreeMap<i32, Segment>,
    pub(super) blocklist: Segment,
    pub(super) revocations: Segment,
    pub(super) blocks: Segment,
    /// `outbox.log`: replies owed.
    pub(super) outbox: OutboxLog,
    /// Settlements were written to `outbox.log` and not yet synced.
    pub(super) outbox_unsynced: bool,
    /// Records in `blocklist.log`.
    pub(super) block_records: usize,
    pub(super) net: BlockNet,
    /// A name was created or renamed and the directory has not been synced since.
    pub(super) needs_dir_sync: bool,
    /// Set when a sync failed or a failed write could not be rolled back: every later
    /// append gets this error.
    pub(super) failed: Option<JournalError>,
    /// Held for the writer's lifetime: the directory's lock.
    pub(super) _lock: File,
    /// This round's grant bytes per day; the buffers are kept between rounds.
    pub(super) day_bufs: Vec<(i32, Vec<u8>)>,
    /// This round's blocklist bytes.
    pub(super) block_buf: Vec<u8>,
    /// This round's revocation bytes.
    pub(super) revoke_buf: Vec<u8>,
    /// This round's admin blocklist bytes.
    pub(super) entry_buf: Vec<u8>,
    /// This round's blocklist changes, applied to `net` once durable.
    pub(super) pending_blocks: Vec<BlockChange>,
    pub(super) waiters: Vec<Done>,
    /// Kept threads for the syncs of a round's other files.
    pub(super) syncers: super::syncers::Syncers,
    pub(super) rewrite_threshold: usize,
    /// Injected faults (tests only).
    pub(super) faults: Option<Arc<dyn FaultHook>>,
}

/// Which file a round touched.
#[derive(Clone, Copy)]
enum Target {
    Day(i32),
    Blocklist,
    Revocations,
    Blocks,
    Outbox,
}

impl Writer {
    /// Serves commit rounds until the queue closes or [`Command::Close`]; a round starts
    /// at least `round_every` after the one before started (see
    /// [`super::JournalOptions::round_every`]).
    pub(super) fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        batch_limit: usize,
        round_every: std::time::Duration,
    ) {
        let mut batch = Vec::with_capacity(batch_limit);
        while rx.blocking_recv_many(&mut batch, batch_limit) > 0 {
            let started = std::time::Instant::now();
            if !self.round(&mut batch) {
                return;
            }
            // What arrives meanwhile waits in the queue for one round together.
            if let Some(rest) = round_every.checked_sub(started.elapsed()) {
                std::thread::sleep(rest);
            }
        }
        self.finish();
    }

    /// At close: syncs settlements written and not yet synced.
    fn finish(&mut self) {
        if self.outbox_unsynced && self.failed.is_none() {
            if let Err(e) = sync_file(&self.outbox.seg.file, &self.outbox.seg.path) {
                tracing::warn!(error = %e, "journal: the last settlements could not be synced at close");
            }
            self.outbox_unsynced = false;
        }
    }

    /// One commit round over everything taken from the queue; `false` once asked to close.
    fn round(&mut self, batch: &mut Vec<Command>) -> bool {
        let mut compactions = Vec::new();
        let mut close = None;
        let mut grants = 0u64;
        self.outbox.take_settled();
        for command in batch.drain(..) {
            match command {
                Command::Grants {
                    grants: g,
                    replies,
                    done,
                } => {
                    for grant in &g {
                        let day = self.calendar.moment(grant.from).day;
                        encode_grant(day_buf(&mut self.day_bufs, day), grant);
                    }
                    if !replies.is_empty() {
                        self.outbox.owe(&replies);
                    }
                    grants += g.len() as u64;
                    self.waiters.push(done);
                }
                Command::Flush => {}
                Command::Block { change, done } => {
                    encode_block(&mut self.block_buf, &change);
                    self.pending_blocks.push(change);
                    self.waiters.push(done);
                }
                Command::Revoke { record, done } => {
                    encode_revocation(&mut self.revoke_buf, &record);
                    self.waiters.push(done);
                }
                Command::BlockEntry { record, done } => {
                    encode_block_entry(&mut self.entry_buf, &record);
                    self.waiters.push(done);
                }
                Command::Check { done } => {
                    let _ = done.send(self.check());
                }
                Command::Compact { now_unix, done } => compactions.push((now_unix, done)),
                Command::Close { done } => close = Some(done),
            }
        }

        if !self.waiters.is_empty() || !self.outbox.buf.is_empty() {
            let started = std::time::Instant::now();
            let sync = !self.waiters.is_empty();
            let result = match &self.failed {
                Some(e) => Err(e.clone()),
                None => self.commit(sync),
            };
            let took = started.elapsed();
            if took >= SLOW_COMMIT {
                // Every MO of the round waited this long for its acknowledgement.
                tracing::warn!(
                    ms = took.as_millis() as u64,
                    grants,
                    waiters = self.waiters.len(),
                    "journal: slow commit (write + fdatasync)"
                );
            }
            if result.is_ok() {
                let c = &self.counters;
                c.commits.fetch_add(1, Ordering::Relaxed);
                c.grants.fetch_add(grants, Ordering::Relaxed);
                c.block_changes
                    .fetch_add(self.pending_blocks.len() as u64, Ordering::Relaxed);
                let bytes = self.block_buf.len()
                    + self.outbox.buf.len()
                    + self.revoke_buf.len()
                    + self.entry_buf.len()
                    + self.day_bufs.iter().map(|(_, b)| b.len()).sum::<usize>();
                c.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            }
            // Counted before anyone is answered, so a caller reads the round's effect.
            self.outbox.end_round(result.is_ok());
            self.counters
                .owed
                .store(self.outbox.owed() as u64, Ordering::Relaxed);
            for done in self.waiters.drain(..) {
                let _ = done.send(result.clone());
            }
            if result.is_ok()
                && self.outbox.wants_rewrite()
                && let Err(e) = self.outbox.rewrite(&self.dir)
            {
                tracing::warn!(error = %e, "journal: outbox rewrite failed; the file stays as it is");
            }
            let blocks_changed = result.is_ok() && !self.pending_blocks.is_empty();
            if result.is_ok() {
                self.block_records += self.pending_blocks.len();
                for change in &self.pending_blocks {
                    self.net.apply(change);
                }
            }
            self.pending_blocks.clear();
            self.block_buf.clear();
            self.revoke_buf.clear();
            self.entry_buf.clear();
            for (_, buf) in &mut self.day_bufs {
                buf.clear();
            }
            // Close segments of days no longer written to; never mid-round, when a touched
            // segment still needs its sync.
            while self.segments.len() > MAX_OPEN_SEGMENTS {
                self.segments.pop_first();
            }
            if blocks_changed && let Err(e) = self.maybe_rewrite_blocklist() {
                tracing::warn!(error = %e, "journal: blocklist rewrite failed; the file stays as it is");
            }
        }

        for (now_unix, done) in compactions {
            let _ = done.send(self.compact(now_unix));
        }
        match close {
            Some(done) => {
                self.finish();
                let _ = done.send(());
                false
            }
            None => true,
        }
    }

    /// Writes this round's bytes (one write per file) and syncs them (one `fdatasync` per
    /// file, the files' syncs side by side, so a round waits for the slowest rather than
    /// their sum); on a failed write, cuts every touched file back to where the round
    /// started. A round no one waits for (settlements only) is written and not synced: a
    /// crash of the process keeps what the kernel holds, and the next round's sync takes
    /// it to the disk.
    fn commit(&mut self, sync: bool) -> Result<(), JournalError> {
        let day_bufs = std::mem::take(&mut self.day_bufs);
        let mut touched: Vec<(Target, u64)> = Vec::new();
        let written = self.write_round(&day_bufs, &mut touched);
        self.day_bufs = day_bufs;
        if let Err(e) = written {
            return Err(self.roll_back(&touched, e));
        }
        if !sync {
            self.outbox_unsynced |= touched.iter().any(|(t, _)| matches!(t, Target::Outbox));
            return Ok(());
        }
        let mut targets: Vec<Target> = touched.iter().map(|&(t, _)| t).collect();
        if self.outbox_unsynced && !targets.iter().any(|t| matches!(t, Target::Outbox)) {
            targets.push(Target::Outbox);
        }
        self.outbox_unsynced = false;
        // Every touched segment is still open: segments are closed only between rounds.
        let mut syncers = std::mem::take(&mut self.syncers);
        let segments: Vec<&Segment> = targets
            .iter()
            .filter_map(|&t| self.segment_ref(t))
            .collect();
        // A fault injected at a file's sync fails it before it is synced (tests only).
        let faults = self.faults.as_deref();
        let mut synced = Ok(());
        let mut syncing: Vec<&Segment> = Vec::with_capacity(segments.len());
        for seg in segments {
            match inject(faults, Step::Sync) {
                Ok(()) => syncing.push(seg),
                Err(e) => synced = synced.and(Err(sync_error(&seg.path, e))),
            }
        }
        if let [first, rest @ ..] = &syncing[..] {
            let others: Vec<Arc<File>> = rest.iter().map(|seg| seg.file.clone()).collect();
            let results = syncers.sync_all(&first.file, &others);
            for (seg, result) in syncing.iter().zip(results) {
                synced = synced.and(result.map_err(|e| sync_error(&seg.path, e)));
            }
        }
        self.syncers = syncers;
        if let Err(e) = synced {
            return Err(self.fail(e));
        }
        if self.needs_dir_sync {
            if let Err(e) = sync_dir(&self.dir) {
                return Err(self.fail(e));
            }
            self.needs_dir_sync = false;
        }
        Ok(())
    }

    /// The write half of [`Writer::commit`]; records each file it touches before writing.
    fn write_round(
        &mut self,
        day_bufs: &[(i32, Vec<u8>)],
        touched: &mut Vec<(Target, u64)>,
    ) -> Result<(), RoundError> {
        let faults = self.faults.clone();
        for (day, buf) in day_bufs {
            if buf.is_empty() {
                continue;
            }
            let seg = self.segment(*day).map_err(|(path, source)| RoundError {
                path,
                offset: 0,
                bytes: buf.len(),
                source,
            })?;
            touched.push((Target::Day(*day), seg.len));
            inject(faults.as_deref(), Step::Write).map_err(|source| RoundError {
                path: seg.path.clone(),
                offset: seg.len,
                bytes: buf.len(),
                source,
            })?;
            write_segment(seg, buf)?;
        }
        if !self.block_buf.is_empty() {
            touched.push((Target::Blocklist, self.blocklist.len));
            write_segment(&mut self.blocklist, &self.block_buf)?;
        }
        if !self.revoke_buf.is_empty() {
            touched.push((Target::Revocations, self.revocations.len));
            write_segment(&mut self.revocations, &self.revoke_buf)?;
        }
        if !self.entry_buf.is_empty() {
            touched.push((Target::Blocks, self.blocks.len));
            write_segment(&mut self.blocks, &self.entry_buf)?;
        }
        if !self.outbox.buf.is_empty() {
            touched.push((Target::Outbox, self.outbox.seg.len));
            inject(faults.as_deref(), Step::Write).map_err(|source| RoundError {
                path: self.outbox.seg.path.clone(),
                offset: self.outbox.seg.len,
                bytes: self.outbox.buf.len(),
                source,
            })?;
            write_segment(&mut self.outbox.seg, &self.outbox.buf)?;
        }
        Ok(())
    }

    /// Undoes a failed round's writes; the journal stops if that fails too.
    fn roll_back(&mut self, touched: &[(Target, u64)], failed: RoundError) -> JournalError {
        let RoundError {
            path,
            offset,
            bytes,
            source,
        } = failed;
        let mut rolled_back = true;
        for &(target, before) in touched {
            if let Some(seg) = self.segment_of(target) {
                if let Err(e) = seg.file.set_len(before) {
                    tracing::error!(file = %seg.path.display(), offset = before, error = %e,
                        "journal: could not cut a failed round back");
                    rolled_back = false;
                }
                seg.len = before;
            }
        }
        let error = JournalError::Write {
            path,
            offset,
            bytes,
            rolled_back,
            source: Arc::new(source),
        };
        tracing::error!(error = %error, "journal: commit round failed");
        if !rolled_back {
            self.failed = Some(error.clone());
        }
        error
    }

    /// Stops the journal after a failed sync.
    fn fail(&mut self, error: JournalError) -> JournalError {
        tracing::error!(error = %error, "journal: sync failed; refusing writes until reopened");
        self.failed = Some(error.clone());
        error
    }

    fn segment_of(&mut self, target: Target) -> Option<&mut Segment> {
        match target {
            Target::Day(day) => self.segments.get_mut(&day),
            Target::Blocklist => Some(&mut self.blocklist),
            Target::Revocations => Some(&mut self.revocations),
            Target::Blocks => Some(&mut self.blocks),
            Target::Outbox => Some(&mut self.outbox.seg),
        }
    }

    fn segment_ref(&self, target: Target) -> Option<&Segment> {
        match target {
            Target::Day(day) => self.segments.get(&day),
            Target::Blocklist => Some(&self.blocklist),
            Target::Revocations => Some(&self.revocations),
            Target::Blocks => Some(&self.blocks),
            Target::Outbox => Some(&self.outbox.seg),
        }
    }

    /// See [`Journal::check`](super::Journal::check).
    fn check(&self) -> Result<(), JournalError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let probe = self.dir.join("ready.probe");
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&probe)
            .and_then(|mut f| f.write_all(b"ok"))
            .map_err(io_error("writing a probe file in", &self.dir))?;
        fs::remove_file(&probe).map_err(io_error("removing", &probe))
    }

    /// The open segment of `day`, opening or creating it.
    fn segment(&mut self, day: i32) -> Result<&mut Segment, (PathBuf, io::Error)> {
        match self.segments.entry(day) {
            btree_map::Entry::Occupied(e) => Ok(e.into_mut()),
            btree_map::Entry::Vacant(v) => {
                let path = self.dir.join(segment_name(day));
                let (segment, created) = match Segment::open(path.clone(), KIND_GRANTS, day) {
                    Ok(opened) => opened,
                    Err(e) => return Err((path, e)),
                };
                self.needs_dir_sync |= created;
                Ok(v.insert(segment))
            }
        }
    }

    /// See [`Journal::compact`](super::Journal::compact).
    fn compact(&mut self, now_unix: i64) -> Result<Compaction, JournalError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let longest = self.longest_validity_secs.load(Ordering::Relaxed);
        let keep_from = first_kept_day(&self.calendar, now_unix, longest);
        self.segments.retain(|&day, _| day >= keep_from);
        let removed_segments = remove_segments_before(&self.dir, keep_from)?;
        let blocklist_rewritten = self.maybe_rewrite_blocklist()?;
        Ok(Compaction {
            removed_segments,
            blocklist_rewritten,
        })
    }

    /// Rewrites `blocklist.log` to its net state when it holds more than the threshold and
    /// the net state is at most half of it.
    fn maybe_rewrite_blocklist(&mut self) -> Result<bool, JournalError> {
        if self.block_records < self.rewrite_threshold.max(1) {
            return Ok(false);
        }
        let net = self.net.changes();
        if net.len() * 2 > self.block_records {
            return Ok(false);
        }
        self.rewrite_blocklist(&net)?;
        Ok(true)
    }

    /// Atomically replaces `blocklist.log` with `net`: write a temp file, fsync it, rename
    /// it over, fsync the directory.
    fn rewrite_blocklist(&mut self, net: &[BlockChange]) -> Result<(), JournalError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let tmp = self.dir.join(BLOCKLIST_TMP);
        let path = self.dir.join(BLOCKLIST_FILE);
        let mut buf = Vec::with_capacity(HEADER_LEN + net.len() * BLOCK_FRAME);
        buf.extend_from_slice(&header(KIND_BLOCKLIST, 0));
        for change in net {
            encode_block(&mut buf, change);
        }
        let built = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(&buf)?;
                f.sync_all()
            })
            .map_err(io_error("writing", &tmp));
        if let Err(e) = built {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_error("renaming over", &path)(e)
        })?;
        // From here appends must go to the new file, and the rename must be durable before
        // any of them is acknowledged.
        self.needs_dir_sync = true;
        match Segment::open(path.clone(), KIND_BLOCKLIST, 0) {
            Ok((segment, _)) => self.blocklist = segment,
            Err(e) => return Err(self.fail(io_error("reopening", &path)(e))),
        }
        if let Err(e) = sync_dir(&self.dir) {
            return Err(self.fail(e));
        }
        self.needs_dir_sync = false;
        tracing::info!(
            file = %self.blocklist.path.display(),
            records_before = self.block_records,
            records_after = net.len(),
            "journal: blocklist rewritten to its net state"
        );
        self.block_records = net.len();
        Ok(())
    }
}

/// The round buffer of `day`, added on first use.
fn day_buf(bufs: &mut Vec<(i32, Vec<u8>)>, day: i32) -> &mut Vec<u8> {
    let i = match bufs.iter().position(|(d, _)| *d == day) {
        Some(i) => i,
        None => {
            bufs.push((day, Vec::new()));
            bufs.len() - 1
        }
    };
    &mut bufs[i].1
}

/// A failed write of a commit round.
struct RoundError {
    path: PathBuf,
    offset: u64,
    bytes: usize,
    source: io::Error,
}

/// One `write` of a round's bytes at the end of a segment.
fn write_segment(seg: &mut Segment, buf: &[u8]) -> Result<(), RoundError> {
    seg.file.write_all(buf).map_err(|source| RoundError {
        path: seg.path.clone(),
        offset: seg.len,
        bytes: buf.len(),
        source,
    })?;
    seg.len += buf.len() as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::format::{BLOCKLIST_TMP, GRANT_FRAME, decode_grant};
    use super::super::replay::scan;
    use super::super::tests::{BAKU, THREE_HOURS, change, doc, grant, model, morning, open, unix};
    use super::super::{BlockChange, FaultHook, Journal, JournalOptions, Step};
    use std::fs;
    use std::io;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A disk that fails writes while `fail` is set, and whose syncs take `sync_ms`.
    #[derive(Debug, Default)]
    struct Flaky {
        fail: std::sync::atomic::AtomicBool,
        sync_ms: AtomicU32,
    }

    impl FaultHook for Flaky {
        fn before(&self, step: Step) -> io::Result<()> {
            match step {
                Step::Write if self.fail.load(Ordering::SeqCst) => Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "injected: no space left",
                )),
                Step::Sync => {
                    let ms = self.sync_ms.load(Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(u64::from(ms)));
                    Ok(())
                }
                Step::Write => Ok(()),
            }
        }
    }

    #[tokio::test]
    async fn a_failed_write_is_rolled_back_and_a_later_append_survives_replay() {
        let dir = tempfile::tempdir().unwrap();
        let flaky = Arc::new(Flaky::default());
        let options = JournalOptions {
            faults: Some(flaky.clone()),
            ..JournalOptions::default()
        };
        {
            let (journal, _) =
                Journal::open_with(dir.path(), BAKU, morning(), THREE_HOURS, options).unwrap();
            journal.append(&[grant(1, morning())]).await.unwrap();
            flaky.fail.store(true, Ordering::SeqCst);
            let err = journal.append(&[grant(2, morning())]).await.unwrap_err();
            assert!(
                err.is_retryable(),
                "a rolled-back write can be retried: {err}"
            );
            flaky.fail.store(false, Ordering::SeqCst);
            journal.append(&[grant(3, morning())]).await.unwrap();
            // A slow disk: the append is not answered before its sync is done.
            flaky.sync_ms.store(300, Ordering::SeqCst);
            let started = std::time::Instant::now();
            journal.append(&[grant(4, morning())]).await.unwrap();
            assert!(started.elapsed() >= std::time::Duration::from_millis(300));
        }
        let (_, replayed) = open(dir.path(), morning());
        assert_eq!(
            replayed.grants,
            vec![
                grant(1, morning()),
                grant(3, morning()),
                grant(4, morning())
            ],
            "the failed grant is gone, the ones around it are whole"
        );
    }

    #[tokio::test]
    async fn grant_at_2230_baku_lands_in_its_day() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = open(dir.path(), morning());
        // 22:30 in Baku, valid until 01:30 the next day: the 6th's segment.
        let late = grant(1, unix("2020-04-06T22:30:00+04:00"));
        // 01:00 in Baku on the 7th is still the 6th in UTC: the 7th's segment.
        let early = grant(2, unix("2020-04-07T01:00:00+04:00"));
        journal.append(&[late, early]).await.unwrap();
        drop(journal);

        let read = |name: &str| {
            let data = fs::read(dir.path().join(name)).unwrap();
            scan(&data, GRANT_FRAME, decode_grant).records
        };
        assert_eq!(read("grants-2020-04-06.log"), vec![late]);
        assert_eq!(read("grants-2020-04-07.log"), vec![early]);
        let (_journal, replayed) = open(dir.path(), unix("2020-04-07T01:10:00+04:00"));
        assert_eq!(replayed.grants, vec![late, early]);
    }

    #[tokio::test]
    async fn old_day_segments_are_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let day = |d: u32| unix(&format!("2020-04-{d:02}T12:00:00+04:00"));
        let (journal, _) = open(dir.path(), day(1));
        for d in [1, 3, 4, 5, 6] {
            journal
                .append(&[grant(u64::from(d), day(d))])
                .await
                .unwrap();
        }
        // 00:30 on the 6th with 3 h permits: the 5th still has active ones.
        let compaction = journal
            .compact(unix("2020-04-06T00:30:00+04:00"))
            .await
            .unwrap();
        let names = |paths: &[PathBuf]| -> Vec<String> {
            paths
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names(&compaction.removed_segments),
            [
                "grants-2020-04-01.log",
                "grants-2020-04-03.log",
                "grants-2020-04-04.log"
            ]
        );
        assert!(!compaction.blocklist_rewritten);
        // Appending to a day whose handle was closed by compaction reopens its file.
        journal.append(&[grant(55, day(5))]).await.unwrap();
        drop(journal);

        // Reopening late on the 7th: the 5th goes, yesterday (the 6th) and today stay.
        fs::write(dir.path().join("notes.txt"), b"kept").unwrap();
        let (journal, replayed) = open(dir.path(), unix("2020-04-07T20:00:00+04:00"));
        assert_eq!(names(&replayed.removed_segments), ["grants-2020-04-05.log"]);
        assert_eq!(replayed.grants, vec![grant(6, day(6))]);
        journal.append(&[grant(7, day(7))]).await.unwrap();
        let compaction = journal
            .compact(unix("2020-04-07T23:00:00+04:00"))
            .await
            .unwrap();
        assert!(compaction.removed_segments.is_empty());
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "LOCK",
                "blocklist.log",
                "blocks.log",
                "grants-2020-04-06.log",
                "grants-2020-04-07.log",
                "notes.txt",
                "outbox.log",
                "revocations.log"
            ]
        );

        // A longer validity keeps more days.
        journal.set_longest_validity_secs(3 * 86_400);
        journal.append(&[grant(8, day(8))]).await.unwrap();
        let compaction = journal.compact(day(9)).await.unwrap();
        assert!(compaction.removed_segments.is_empty());
    }

    #[tokio::test]
    async fn blocklist_changes_replay_with_their_net_state() {
        let dir = tempfile::tempdir().unwrap();
        let options = JournalOptions {
            blocklist_rewrite_records: 20,
            ..JournalOptions::default()
        };
        let open =
            |now| Journal::open_with(dir.path(), BAKU, now, THREE_HOURS, options.clone()).unwrap();
        let mut changes = vec![
            change(1, &[], true, 100),
            change(2, &[3], true, 101),
            change(1, &[3], false, 102),
            // Lifting a block the rules file made must survive a rewrite too.
            change(3, &[1], false, 103),
            change(2, &[1, 200], true, 104),
        ];
        {
            let (journal, _) = open(morning());
            for c in &changes {
                journal.append_block_change(*c).await.unwrap();
            }
        }
        let (journal, replayed) = open(morning());
        assert_eq!(replayed.block_changes, changes);

        // Churn on one document grows the file past the threshold; it is rewritten to the net
        // state after the round that crosses it.
        for i in 0..30 {
            let c = change(4, &[2], i % 2 == 0, 200 + i);
            journal.append_block_change(c).await.unwrap();
            changes.push(c);
        }
        let stats = journal.stats();
        assert_eq!(stats.block_changes, 30);
        drop(journal);
        let (journal, replayed) = open(morning());
        assert!(
            replayed.block_changes.len() < 20,
            "{}",
            replayed.block_changes.len()
        );
        assert_eq!(replayed.block_changes, BlockChange::net(&changes));
        assert_eq!(model(&replayed.block_changes), model(&changes));
        assert!(!dir.path().join(BLOCKLIST_TMP).exists());
        assert_eq!(
            replayed
                .block_changes
                .iter()
                .find(|c| c.document == doc(4))
                .map(|c| c.at),
            Some(229)
        );

        // Appends after a rewrite go to the new file.
        let last = change(5, &[2], true, 300);
        journal.append_block_change(last).await.unwrap();
        changes.push(last);
        drop(journal);
        let (_journal, replayed) = open(morning());
        assert_eq!(model(&replayed.block_changes), model(&changes));
    }
}
