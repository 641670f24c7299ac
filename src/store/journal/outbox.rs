//! `outbox.log`: the replies owed, written in the same commit round as the grants of their
//! MOs (so an acknowledged MO's reply is as durable as its permit), settled after delivery,
//! and rewritten to the replies still owed when settled ones make up most of it.

use super::Damage;
use super::error::{JournalError, io_error};
use super::files::{Segment, sync_dir, sync_file};
use super::format::{
    HEADER_LEN, KIND_OUTBOX, MIN_OUTBOX_FRAME, OUTBOX_FILE, OutboxEntry, decode_outbox,
    encode_owed, encode_settled, header,
};
use super::replay::load_frames;
use crate::store::outbox::OwedReply;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// `outbox.log` is rewritten once it is larger than this and than four times the records
/// still owed.
const REWRITE_BYTES: u64 = 8 << 20;

/// Ids of replies settled since the writer last looked, shared between the journal's
/// handles and its writer.
pub(super) type Settled = Arc<Mutex<Vec<u64>>>;

/// Replies framed for `outbox.log` by the caller (so the writer thread only copies bytes):
/// the frames back to back, and each reply's id and frame length in order.
#[derive(Debug, Default)]
pub(super) struct OwedFrames {
    pub(super) bytes: Vec<u8>,
    pub(super) records: Vec<(u64, u32)>,
}

impl OwedFrames {
    /// Frames `replies`.
    pub(super) fn of<'a>(replies: impl IntoIterator<Item = &'a OwedReply>) -> OwedFrames {
        let mut f = OwedFrames::default();
        for r in replies {
            let start = f.bytes.len();
            encode_owed(&mut f.bytes, r);
            f.records.push((r.id, (f.bytes.len() - start) as u32));
        }
        f
    }

    pub(super) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// The writer's side of `outbox.log`.
pub(super) struct OutboxLog {
    pub(super) seg: Segment,
    /// This round's bytes.
    pub(super) buf: Vec<u8>,
    /// Where each reply still owed is in the file: offset and frame length (what a
    /// rewrite copies).
    live: HashMap<u64, (u64, u32), foldhash::fast::RandomState>,
    live_bytes: u64,
    /// Replies owed in this round: forgotten again if the round fails.
    added: Vec<u64>,
    settled: Settled,
    /// Settled ids taken this round (kept between rounds for its capacity).
    taken: Vec<u64>,
    /// Replies settled in this round, with where they were: owed again if it fails.
    settling: Vec<(u64, (u64, u32))>,
}

impl OutboxLog {
    /// Reads `outbox.log` in `dir` and returns the writer's side and the replies still
    /// owed, oldest first. The file is rewritten to just those (so settled records and
    /// repaired damage do not carry over), or created if missing.
    pub(super) fn open(
        dir: &Path,
        settled: Settled,
        damage: &mut Vec<Damage>,
    ) -> Result<(OutboxLog, Vec<OwedReply>), JournalError> {
        let path = dir.join(OUTBOX_FILE);
        let tmp = tmp_path(&path);
        if tmp.exists() {
            // A rewrite that crashed before its rename: outbox.log is still whole.
            fs::remove_file(&tmp).map_err(io_error("removing", &tmp))?;
        }
        let mut owed: Vec<OwedReply> = Vec::new();
        let mut records = 0usize;
        if path.exists() {
            let mut by_id: HashMap<u64, OwedReply> = HashMap::new();
            for entry in load_frames(
                &path,
                KIND_OUTBOX,
                0,
                MIN_OUTBOX_FRAME,
                decode_outbox,
                damage,
            )? {
                records += 1;
                match entry {
                    OutboxEntry::Owed(r) => {
                        by_id.insert(r.id, r);
                    }
                    OutboxEntry::Settled(id) => {
                        by_id.remove(&id);
                    }
                }
            }
            owed = by_id.into_values().collect();
            owed.sort_unstable_by_key(|r| r.id);
        }
        let frames = OwedFrames::of(&owed);
        if records > 0 || !path.exists() {
            write_whole(dir, &path, &frames.bytes)?;
        }
        let mut log = OutboxLog {
            seg: open_segment(&path, dir)?,
            buf: Vec::new(),
            live: HashMap::with_capacity_and_hasher(owed.len(), Default::default()),
            live_bytes: 0,
            added: Vec::new(),
            settled,
            taken: Vec::new(),
            settling: Vec::new(),
        };
        log.place(&frames.records, HEADER_LEN as u64);
        Ok((log, owed))
    }

    /// Records where `records` (back to back from `offset`) are in the file.
    fn place(&mut self, records: &[(u64, u32)], mut offset: u64) {
        for &(id, len) in records {
            if let Some((_, old)) = self.live.insert(id, (offset, len)) {
                self.live_bytes -= u64::from(old);
            }
            self.live_bytes += u64::from(len);
            offset += u64::from(len);
        }
    }

    /// Adds `frames` to this round.
    pub(super) fn owe(&mut self, frames: &OwedFrames) {
        let offset = self.seg.len + self.buf.len() as u64;
        self.buf.extend_from_slice(&frames.bytes);
        self.place(&frames.records, offset);
        self.added.extend(frames.records.iter().map(|&(id, _)| id));
    }

    /// Adds to this round the settlement of every reply settled since the last round.
    pub(super) fn take_settled(&mut self) {
        {
            let mut settled = self
                .settled
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::swap(&mut *settled, &mut self.taken);
        }
        for id in self.taken.drain(..) {
            if let Some(at) = self.live.remove(&id) {
                self.live_bytes -= u64::from(at.1);
                encode_settled(&mut self.buf, id);
                self.settling.push((id, at));
            }
        }
    }

    /// Replies still owed.
    pub(super) fn owed(&self) -> usize {
        self.live.len()
    }

    /// Ends the round: on failure the replies owed in it are forgotten (their MOs are
    /// refused, so nothing is owed for them), and those settled in it are owed again and
    /// settled anew with the next round (a full disk that gets space back then records
    /// them, so they are not delivered twice after a restart).
    pub(super) fn end_round(&mut self, ok: bool) {
        if !ok {
            for id in &self.added {
                if let Some((_, len)) = self.live.remove(id) {
                    self.live_bytes -= u64::from(len);
                }
            }
            if !self.settling.is_empty() {
                let mut settled = self
                    .settled
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for &(id, at) in &self.settling {
                    self.live.insert(id, at);
                    self.live_bytes += u64::from(at.1);
                    settled.push(id);
                }
            }
        }
        self.added.clear();
        self.settling.clear();
        self.buf.clear();
    }

    /// Whether the file has grown enough past what is still owed to be rewritten.
    pub(super) fn wants_rewrite(&self) -> bool {
        self.seg.len > REWRITE_BYTES && self.seg.len > 4 * self.live_bytes
    }

    /// Replaces `outbox.log` with the replies still owed, oldest first, copied from the
    /// file itself: a temp file beside it, synced, renamed over it, the directory synced.
    /// A crash leaves the old file or the new one.
    pub(super) fn rewrite(&mut self, dir: &Path) -> Result<(), JournalError> {
        use std::os::unix::fs::FileExt;
        let path = self.seg.path.clone();
        let mut ids: Vec<(u64, (u64, u32))> = self.live.iter().map(|(&id, &at)| (id, at)).collect();
        ids.sort_unstable_by_key(|&(id, _)| id);
        let reader = fs::File::open(&path).map_err(io_error("reading", &path))?;
        let mut bytes = Vec::with_capacity(self.live_bytes as usize);
        let mut records = Vec::with_capacity(ids.len());
        // Replies owed one after another in the file are read in one go: one read per run
        // of neighbours, not per reply.
        let mut run: Option<(u64, u64)> = None;
        let read = |run: (u64, u64), bytes: &mut Vec<u8>| {
            let start = bytes.len();
            bytes.resize(start + (run.1 - run.0) as usize, 0);
            reader
                .read_exact_at(&mut bytes[start..], run.0)
                .map_err(io_error("reading", &path))
        };
        for (id, (offset, len)) in ids {
            let end = offset + u64::from(len);
            run = match run {
                Some((from, to)) if to == offset => Some((from, end)),
                Some(done) => {
                    read(done, &mut bytes)?;
                    Some((offset, end))
                }
                None => Some((offset, end)),
            };
            records.push((id, len));
        }
        if let Some(done) = run {
            read(done, &mut bytes)?;
        }
        write_whole(dir, &path, &bytes)?;
        self.seg = open_segment(&path, dir)?;
        self.live.clear();
        self.live_bytes = 0;
        self.place(&records, HEADER_LEN as u64);
        Ok(())
    }
}

/// Replaces `path` with a header and `records`: a temp file beside it, synced, renamed
/// over it, the directory synced.
fn write_whole(dir: &Path, path: &Path, records: &[u8]) -> Result<(), JournalError> {
    let tmp = tmp_path(path);
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(&header(KIND_OUTBOX, 0))?;
            f.write_all(records)?;
            f.sync_all()
        })
        .map_err(io_error("writing", &tmp));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path).map_err(io_error("renaming over", path))?;
    sync_dir(dir)
}

fn tmp_path(path: &Path) -> PathBuf {
    path.with_extension("log.tmp")
}

fn open_segment(path: &Path, dir: &Path) -> Result<Segment, JournalError> {
    let (seg, created) =
        Segment::open(path.to_path_buf(), KIND_OUTBOX, 0).map_err(io_error("opening", path))?;
    if created {
        sync_file(&seg.file, &seg.path)?;
        sync_dir(dir)?;
    }
    Ok(seg)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{grant, morning, open};
    use super::super::{FaultHook, Journal, JournalOptions, Step};
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn reply(id: u64, text: &str) -> OwedReply {
        OwedReply {
            id,
            queue: "azercell".into(),
            source: "8103".into(),
            destination: format!("99450{id:07}"),
            dest_ton: 1,
            dest_npi: 1,
            text: text.into(),
            owed_at: morning(),
        }
    }

    fn ids(owed: &[OwedReply]) -> Vec<u64> {
        owed.iter().map(|r| r.id).collect()
    }

    #[tokio::test]
    async fn replies_stay_owed_across_a_restart_until_settled() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = open(dir.path(), morning());
        let replies: Vec<_> = (1..=5).map(|i| reply(i, "İcazə verildi")).collect();
        journal
            .append_round(vec![grant(1, morning())], &replies)
            .await
            .unwrap();
        journal.settle(2);
        journal.settle(4);
        journal.settle(99); // never owed: nothing to write
        // The next round carries the settlements.
        journal
            .append_round(vec![], &[reply(6, "ok")])
            .await
            .unwrap();
        assert_eq!(journal.stats().owed, 4);
        drop(journal);

        let (journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.owed, 4);
        assert_eq!(replayed.grants, vec![grant(1, morning())]);
        let owed = journal.take_owed();
        assert_eq!(ids(&owed), [1, 3, 5, 6]);
        assert_eq!(owed[0], replies[0], "a reply comes back whole");
        assert!(journal.take_owed().is_empty(), "given once");
        // Opening rewrote the file to what is still owed: the settled ones are gone.
        let len = fs::metadata(dir.path().join(OUTBOX_FILE)).unwrap().len();
        let mut expect = HEADER_LEN;
        for r in &owed {
            let mut frame = Vec::new();
            encode_owed(&mut frame, r);
            expect += frame.len();
        }
        assert_eq!(len as usize, expect);
    }

    #[derive(Debug, Default)]
    struct FullDisk(AtomicBool);

    impl FaultHook for FullDisk {
        fn before(&self, step: Step) -> std::io::Result<()> {
            match step {
                Step::Write if self.0.load(Ordering::SeqCst) => Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "injected: no space left",
                )),
                _ => Ok(()),
            }
        }
    }

    #[tokio::test]
    async fn a_round_that_cannot_be_written_owes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let full = std::sync::Arc::new(FullDisk::default());
        let options = JournalOptions {
            faults: Some(full.clone()),
            ..JournalOptions::default()
        };
        let (journal, _) = Journal::open_with(
            dir.path(),
            chrono_tz::Asia::Baku,
            morning(),
            3 * 3600,
            options,
        )
        .unwrap();
        journal
            .append_round(vec![], &[reply(1, "a")])
            .await
            .unwrap();
        full.0.store(true, Ordering::SeqCst);
        let failed = journal
            .append_round(vec![grant(2, morning())], &[reply(2, "b")])
            .await;
        assert!(failed.is_err(), "a full disk fails the round");
        assert_eq!(
            journal.stats().owed,
            1,
            "the failed round's reply is not owed"
        );
        full.0.store(false, Ordering::SeqCst);
        journal
            .append_round(vec![], &[reply(3, "c")])
            .await
            .unwrap();
        drop(journal);
        let (journal, replayed) = open(dir.path(), morning());
        assert!(replayed.grants.is_empty(), "nor is its grant");
        assert_eq!(ids(&journal.take_owed()), [1, 3]);
    }

    #[tokio::test]
    async fn a_settlement_the_full_disk_refused_is_written_once_space_returns() {
        let dir = tempfile::tempdir().unwrap();
        let full = std::sync::Arc::new(FullDisk::default());
        let options = JournalOptions {
            faults: Some(full.clone()),
            ..JournalOptions::default()
        };
        let (journal, _) = Journal::open_with(
            dir.path(),
            chrono_tz::Asia::Baku,
            morning(),
            3 * 3600,
            options,
        )
        .unwrap();
        journal
            .append_round(vec![], &[reply(1, "a")])
            .await
            .unwrap();
        full.0.store(true, Ordering::SeqCst);
        journal.settle(1);
        // The round that carries it fails.
        assert!(
            journal
                .append_round(vec![], &[reply(2, "b")])
                .await
                .is_err()
        );
        full.0.store(false, Ordering::SeqCst);
        journal
            .append_round(vec![], &[reply(3, "c")])
            .await
            .unwrap();
        drop(journal);
        let (journal, _) = open(dir.path(), morning());
        assert_eq!(
            ids(&journal.take_owed()),
            [3],
            "1 settled after all, 2 never owed"
        );
    }

    #[tokio::test]
    async fn a_torn_last_reply_is_cut_and_the_others_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = open(dir.path(), morning());
        for i in 1..=3 {
            journal
                .append_round(vec![], &[reply(i, "x")])
                .await
                .unwrap();
        }
        drop(journal);
        let path = dir.path().join(OUTBOX_FILE);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.damage.len(), 1);
        assert_eq!(ids(&journal.take_owed()), [1, 2]);
    }

    #[tokio::test]
    async fn the_file_is_rewritten_once_settled_replies_fill_it() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = open(dir.path(), morning());
        let text = "ə".repeat(crate::store::outbox::MAX_TEXT / 4); // about 4 KiB a record
        let n = REWRITE_BYTES / 4096 + 200;
        for chunk in (1..=n).collect::<Vec<_>>().chunks(100) {
            let replies: Vec<_> = chunk.iter().map(|&i| reply(i, &text)).collect();
            journal.append_round(vec![], &replies).await.unwrap();
            for &i in chunk {
                if i != 7 {
                    journal.settle(i);
                }
            }
        }
        journal
            .append_round(vec![], &[reply(n + 1, "last")])
            .await
            .unwrap();
        let len = fs::metadata(dir.path().join(OUTBOX_FILE)).unwrap().len();
        assert!(len < REWRITE_BYTES, "rewritten: {len} bytes");
        drop(journal);
        let (journal, _) = open(dir.path(), morning());
        assert_eq!(ids(&journal.take_owed()), [7, n + 1]);
    }
}
