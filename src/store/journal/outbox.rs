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

/// The writer's side of `outbox.log`.
pub(super) struct OutboxLog {
    pub(super) seg: Segment,
    /// This round's bytes.
    pub(super) buf: Vec<u8>,
    /// Each reply still owed, as its framed record (what a rewrite writes).
    live: HashMap<u64, Box<[u8]>>,
    live_bytes: u64,
    /// Replies owed in this round: forgotten again if the round fails.
    added: Vec<u64>,
    settled: Settled,
    /// Settled ids taken this round (kept between rounds for its capacity).
    taken: Vec<u64>,
}

impl OutboxLog {
    /// Reads `outbox.log` in `dir` (creating it if missing) and returns the writer's side
    /// and the replies still owed, oldest first. A file holding settled records is
    /// rewritten at once to the replies still owed.
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
        let mut settled_records = 0usize;
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
                match entry {
                    OutboxEntry::Owed(r) => {
                        by_id.insert(r.id, r);
                    }
                    OutboxEntry::Settled(id) => {
                        settled_records += 1;
                        by_id.remove(&id);
                    }
                }
            }
            owed = by_id.into_values().collect();
            owed.sort_unstable_by_key(|r| r.id);
        }
        let mut live = HashMap::with_capacity(owed.len());
        let mut live_bytes = 0;
        for r in &owed {
            let mut frame = Vec::new();
            encode_owed(&mut frame, r);
            live_bytes += frame.len() as u64;
            live.insert(r.id, frame.into_boxed_slice());
        }
        let mut log = OutboxLog {
            seg: open_segment(&path, dir)?,
            buf: Vec::new(),
            live,
            live_bytes,
            added: Vec::new(),
            settled,
            taken: Vec::new(),
        };
        if settled_records > 0 {
            log.rewrite(dir)?;
        }
        Ok((log, owed))
    }

    /// Adds `r` to this round.
    pub(super) fn owe(&mut self, r: &OwedReply) {
        let start = self.buf.len();
        encode_owed(&mut self.buf, r);
        let frame: Box<[u8]> = self.buf[start..].into();
        self.live_bytes += frame.len() as u64;
        if let Some(old) = self.live.insert(r.id, frame) {
            self.live_bytes -= old.len() as u64;
        }
        self.added.push(r.id);
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
            if let Some(frame) = self.live.remove(&id) {
                self.live_bytes -= frame.len() as u64;
                encode_settled(&mut self.buf, id);
            }
        }
    }

    /// Replies still owed.
    pub(super) fn owed(&self) -> usize {
        self.live.len()
    }

    /// Ends the round: on failure the replies owed in it are forgotten (their MOs are
    /// refused, so nothing is owed for them).
    pub(super) fn end_round(&mut self, ok: bool) {
        if !ok {
            for id in &self.added {
                if let Some(frame) = self.live.remove(id) {
                    self.live_bytes -= frame.len() as u64;
                }
            }
        }
        self.added.clear();
        self.buf.clear();
    }

    /// Whether the file has grown enough past what is still owed to be rewritten.
    pub(super) fn wants_rewrite(&self) -> bool {
        self.seg.len > REWRITE_BYTES && self.seg.len > 4 * self.live_bytes
    }

    /// Replaces `outbox.log` with the replies still owed, oldest first: a temp file beside
    /// it, synced, renamed over it, the directory synced. A crash leaves the old file or
    /// the new one.
    pub(super) fn rewrite(&mut self, dir: &Path) -> Result<(), JournalError> {
        let path = self.seg.path.clone();
        let tmp = tmp_path(&path);
        let mut ids: Vec<u64> = self.live.keys().copied().collect();
        ids.sort_unstable();
        let mut bytes = Vec::with_capacity(HEADER_LEN + self.live_bytes as usize);
        bytes.extend_from_slice(&header(KIND_OUTBOX, 0));
        for id in ids {
            bytes.extend_from_slice(&self.live[&id]);
        }
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(&bytes)?;
                f.sync_all()
            })
            .map_err(io_error("writing", &tmp));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &path).map_err(io_error("renaming over", &path))?;
        sync_dir(dir)?;
        self.seg = open_segment(&path, dir)?;
        Ok(())
    }
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
            .append_round(vec![grant(1, morning())], replies.clone())
            .await
            .unwrap();
        journal.settle(2);
        journal.settle(4);
        journal.settle(99); // never owed: nothing to write
        // The next round carries the settlements.
        journal
            .append_round(vec![], vec![reply(6, "ok")])
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
            .append_round(vec![], vec![reply(1, "a")])
            .await
            .unwrap();
        full.0.store(true, Ordering::SeqCst);
        let failed = journal
            .append_round(vec![grant(2, morning())], vec![reply(2, "b")])
            .await;
        assert!(failed.is_err(), "a full disk fails the round");
        assert_eq!(
            journal.stats().owed,
            1,
            "the failed round's reply is not owed"
        );
        full.0.store(false, Ordering::SeqCst);
        journal
            .append_round(vec![], vec![reply(3, "c")])
            .await
            .unwrap();
        drop(journal);
        let (journal, replayed) = open(dir.path(), morning());
        assert!(replayed.grants.is_empty(), "nor is its grant");
        assert_eq!(ids(&journal.take_owed()), [1, 3]);
    }

    #[tokio::test]
    async fn a_torn_last_reply_is_cut_and_the_others_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = open(dir.path(), morning());
        for i in 1..=3 {
            journal
                .append_round(vec![], vec![reply(i, "x")])
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
            let replies = chunk.iter().map(|&i| reply(i, &text)).collect();
            journal.append_round(vec![], replies).await.unwrap();
            for &i in chunk {
                if i != 7 {
                    journal.settle(i);
                }
            }
        }
        journal
            .append_round(vec![], vec![reply(n + 1, "last")])
            .await
            .unwrap();
        let len = fs::metadata(dir.path().join(OUTBOX_FILE)).unwrap().len();
        assert!(len < REWRITE_BYTES, "rewritten: {len} bytes");
        drop(journal);
        let (journal, _) = open(dir.path(), morning());
        assert_eq!(ids(&journal.take_owed()), [7, n + 1]);
    }
}
