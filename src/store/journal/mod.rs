//! The embedded default store: an append-only journal with group commit and replay on start.
//!
//! The engine decides in memory; the journal makes each grant (and each blocklist change
//! made through the admin API) durable before the gateway acknowledges the MO, and gives
//! them back at the next start so the engine can rebuild its counts.
//!
//! # Files
//! All in the configured data directory (created if missing):
//! - `grants-YYYY-MM-DD.log`: the grants issued on that local calendar day (Asia/Baku days
//!   for the 2020 rules). A permit issued at 22:30 and valid until 01:30 lives in the file of
//!   the day it was issued, because that is the day whose quota it used.
//! - `blocklist.log`: blocklist changes, rewritten to its net state when it grows large.
//! - `blocks.log`: documents blocked (or unblocked) through the admin API, with reason and
//!   expiry (added after version 1 like `revocations.log`).
//! - `revocations.log`: permits revoked by officials (added after version 1 shipped: a
//!   journal without it reads as "nothing revoked", and a build that predates it ignores it).
//!
//! At open, `revocations.log` drops the revocations of grants whose segment is gone and
//! `blocks.log` is cut to each document's last entry that still blocks; either is rewritten
//! (temp file, fsync, rename) only when that removes something, so neither grows from day
//! to day.
//! - `LOCK`: held (advisory lock) while a journal is open, so two gateways never append to
//!   the same files.
//!
//! # Format (version 1, little-endian)
//! Every file opens with a 16-byte header: `b"ICZJ"`, version `u8`, file kind `u8` (`b'G'`
//! grants, `b'B'` blocklist), two zero bytes, the local day `i32` (days since 1970-01-01;
//! 0 for the blocklist), and the CRC32 of the first 12 bytes.
//!
//! Then records, each framed as tag `u8`, body length `u8`, body, CRC32 of tag + length +
//! body:
//! - grant, tag 1, 25-byte body: document `u64` ([`Document::packed`]), code `u8`, from
//!   `i64`, until `i64` (Unix seconds); 31 bytes in all.
//! - blocklist change, tag 2, 49-byte body: document `u64`, codes `[u64; 4]` (bit `c` set =
//!   code `c`), blocked `u8` (1 add, 0 remove), at `i64`; 55 bytes in all.
//! - revocation, tag 3 (in `revocations.log`, file kind `b'R'`), 162-byte body: the grant as
//!   in a grant record (25 bytes), at `i64`, the reason's length `u8` and its UTF-8 bytes
//!   zero-padded to 128; 168 bytes in all.
//! - admin blocklist entry, tag 4 (in `blocks.log`, file kind `b'K'`), 186-byte body:
//!   document `u64`, codes `[u64; 4]`, blocked `u8`, at `i64`, until `i64` (0: no expiry),
//!   the reason's length `u8` and its bytes zero-padded to 128; 192 bytes in all.
//!
//! A crash can leave a partial record at the end of a file. At open each file is read to its
//! end: a tail that is not a whole, checksummed record is cut off (with a warning naming the
//! file and offset), and bad bytes followed by good records are skipped, reading resumes at
//! the next valid record, and the file is left as it is for inspection.
//!
//! # Group commit
//! One writer thread owns the files. [`Journal::append`] puts the records on a bounded
//! queue and waits; the writer takes everything queued, writes it with one `write` per file,
//! runs one `fdatasync` per file, and only then answers every waiter. At load an `fdatasync`
//! is shared by every connection that appended meanwhile, so its cost is paid once per round
//! rather than once per grant; when the disk is slow the queue fills and callers wait
//! (backpressure) instead of memory growing.
//!
//! # Layout
//! - `format`: file names, headers, record encoding and decoding.
//! - `files`: the directory lock, day segments and their expiry, syncs, one open file.
//! - `replay`: [`Journal::open_with`], reading files back and repairing torn tails.
//! - `writer`: the writer thread: commit rounds, roll back, compaction, blocklist rewrite.
//! - `error`: [`JournalError`]; `faults`: [`FaultHook`] and [`Step`] for tests of bad disks.

mod error;
mod faults;
mod files;
mod format;
mod outbox;
mod replay;
mod syncers;
#[cfg(test)]
mod tests;
mod writer;

pub use error::JournalError;
pub use faults::{FaultHook, Step};
pub use format::{REASON_BYTES, cut_reason};

use crate::permit::document::Document;
use crate::store::GrantRecord;
use crate::store::outbox::OwedReply;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// Every code, for [`BlockChange::codes`].
pub const ALL_CODES: [u64; 4] = [u64::MAX; 4];

/// A change to the blocklist (e.g. a health-authority quarantine list entry), journaled so it
/// survives a restart. Replayed in order over the rules file's blocklist, so a removal of a
/// block that the rules file made is kept too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockChange {
    /// The document concerned.
    pub document: Document,
    /// The codes concerned, a bitset (bit `c` of word `c / 64` is code `c`); [`ALL_CODES`]
    /// for every code.
    pub codes: [u64; 4],
    /// `true` blocks the codes, `false` lifts the block.
    pub blocked: bool,
    /// When the change was made, Unix seconds.
    pub at: i64,
}

impl BlockChange {
    /// The shortest list of changes with the same effect as `changes` applied in order: at
    /// most one block and one unblock per document, with disjoint codes and the time of the
    /// document's last change. This is what `blocklist.log` is rewritten to.
    pub fn net(changes: &[BlockChange]) -> Vec<BlockChange> {
        let mut net = BlockNet::default();
        for change in changes {
            net.apply(change);
        }
        net.changes()
    }
}

/// A permit an official revoked, journaled so it stays revoked after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    /// The permit, as its grant was journaled.
    pub grant: GrantRecord,
    /// When it was revoked, Unix seconds.
    pub at: i64,
    /// Why; at most [`REASON_BYTES`] bytes are kept (see [`cut_reason`]).
    pub reason: String,
}

/// A document blocked or unblocked through the admin API, journaled with its reason and
/// expiry. Replayed in order: the last entry of a document is the one in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRecord {
    /// The document.
    pub document: Document,
    /// The codes blocked, a bitset like [`BlockChange::codes`].
    pub codes: [u64; 4],
    /// `true` blocks, `false` lifts the admin block.
    pub blocked: bool,
    /// When, Unix seconds.
    pub at: i64,
    /// When the block ends by itself, Unix seconds; `None` for never.
    pub until: Option<i64>,
    /// Why; at most [`REASON_BYTES`] bytes are kept.
    pub reason: String,
}

/// What [`Journal::open`] read back, for the caller to feed into the engine.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Grants of every segment that can still matter, oldest day first, each day in append
    /// order.
    pub grants: Vec<GrantRecord>,
    /// Every blocklist change, in append order (after a rewrite: the net state).
    pub block_changes: Vec<BlockChange>,
    /// Every revocation, in append order.
    pub revocations: Vec<RevocationRecord>,
    /// Every admin blocklist entry, in append order.
    pub blocks: Vec<BlockRecord>,
    /// Damage found and repaired while reading; each was also logged as a warning.
    pub damage: Vec<Damage>,
    /// Segment files deleted because no grant in them can matter any more.
    pub removed_segments: Vec<PathBuf>,
    /// Replies still owed in `outbox.log` (given by [`Journal::take_owed`]).
    pub owed: usize,
}

/// Damage found in a journal file at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// The file ended in a partial or corrupt record and was truncated at `offset`, dropping
    /// `bytes`. A crash mid-write leaves this, and those records were never acknowledged; a
    /// flipped bit in the last record looks the same, and then that record is lost.
    TornTail {
        /// The file.
        path: PathBuf,
        /// Where the last good record ends and the file now ends.
        offset: u64,
        /// Bytes dropped.
        bytes: u64,
    },
    /// `bytes` unreadable bytes at `offset`, with good records after them: the good ones were
    /// read, the bad ones skipped, and the file left as it is for inspection.
    Skipped {
        /// The file.
        path: PathBuf,
        /// Where the bad bytes start.
        offset: u64,
        /// How many bytes were skipped before the next valid record.
        bytes: u64,
    },
}

/// What one [`Journal::compact`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Compaction {
    /// Segment files deleted because their day is past the longest validity.
    pub removed_segments: Vec<PathBuf>,
    /// Whether `blocklist.log` was rewritten to its net state.
    pub blocklist_rewritten: bool,
}

/// Counters since open, for metrics: grants per commit shows how well group commit works.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JournalStats {
    /// Commit rounds that wrote and synced something (one `fdatasync` per file per round).
    pub commits: u64,
    /// Grants made durable.
    pub grants: u64,
    /// Blocklist changes made durable.
    pub block_changes: u64,
    /// Record bytes written.
    pub bytes: u64,
    /// Replies owed now (durable in `outbox.log`, not yet settled).
    pub owed: u64,
}

/// Tunables of [`Journal::open_with`]; [`Default`] suits the gateway.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// Appends queued for the writer before further callers wait: the backpressure bound.
    /// One append is one batch, typically one connection's worth of MOs.
    pub queue_depth: usize,
    /// Records `blocklist.log` may hold before a rewrite to its net state is considered; it
    /// is rewritten only when that at least halves it.
    pub blocklist_rewrite_records: usize,
    /// Faults to inject before the writer's writes and syncs (tests of a failing or slow
    /// disk); `None` in the gateway.
    pub faults: Option<Arc<dyn FaultHook>>,
    /// The shortest time from the start of one commit round to the start of the next: the
    /// appends that arrive meanwhile share the next round's writes and `fdatasync`s. Zero
    /// starts a round as soon as the last one is done (a round per `fdatasync` the disk
    /// can do, each with its wake-ups); the default 2 ms keeps rounds at most 500 a
    /// second, and an MO waits at most that much longer for its commit.
    pub round_every: std::time::Duration,
}

/// The default [`JournalOptions::round_every`].
pub const ROUND_EVERY: std::time::Duration = std::time::Duration::from_millis(2);

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            queue_depth: 1024,
            blocklist_rewrite_records: 10_000,
            faults: None,
            round_every: ROUND_EVERY,
        }
    }
}

/// The append-only journal. Clones share one writer thread, so hand one to every connection.
/// The writer stops at [`Journal::close`], or when the last clone and the last pending append
/// are dropped; that drop waits for the writer to finish what is queued (at most one commit
/// round), so the files and the lock are free once it returns.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

/// What the clones of a [`Journal`] share.
struct Inner {
    dir: PathBuf,
    /// `None` only while dropping, so the writer sees the queue close before it is joined.
    tx: Option<mpsc::Sender<Command>>,
    writer: Option<JoinHandle<()>>,
    longest_validity_secs: Arc<AtomicU32>,
    counters: Arc<Counters>,
    /// Replies settled since the writer last looked.
    settled: outbox::Settled,
    /// The replies owed at open, until the gateway takes them.
    owed_at_open: std::sync::Mutex<Vec<OwedReply>>,
}

impl Drop for Inner {
    /// Closes the queue and waits for the writer to finish what is queued (at most one
    /// commit round), so the files and the lock are released when the last handle is gone.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Counters the writer updates and [`Journal::stats`] reads.
#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    grants: AtomicU64,
    block_changes: AtomicU64,
    bytes: AtomicU64,
    owed: AtomicU64,
}

/// Answer channel of one append.
type Done = oneshot::Sender<Result<(), JournalError>>;

/// What callers ask of the writer thread.
enum Command {
    Grants {
        grants: Vec<GrantRecord>,
        replies: outbox::OwedFrames,
        done: Done,
    },
    /// Nothing to answer: wakes the writer to write the replies settled meanwhile.
    Flush,
    Block {
        change: BlockChange,
        done: Done,
    },
    Revoke {
        record: RevocationRecord,
        done: Done,
    },
    BlockEntry {
        record: BlockRecord,
        done: Done,
    },
    Check {
        done: Done,
    },
    Compact {
        now_unix: i64,
        done: oneshot::Sender<Result<Compaction, JournalError>>,
    },
    Close {
        done: oneshot::Sender<()>,
    },
}

impl Journal {
    /// Makes `grants` durable: resolves once they are written and `fdatasync`ed, together
    /// with whatever else was queued meanwhile (group commit). Waits first if the queue is
    /// full. The grants are copied at the call, so the future borrows nothing; dropping it
    /// does not un-write them (they may or may not be durable then).
    pub fn append(
        &self,
        grants: &[GrantRecord],
    ) -> impl Future<Output = Result<(), JournalError>> + Send + use<> {
        self.append_owned(grants.to_vec())
    }

    /// [`Journal::append`] for grants the caller built for the journal anyway: they are
    /// handed to the writer as they are, not copied again.
    pub fn append_owned(
        &self,
        grants: Vec<GrantRecord>,
    ) -> impl Future<Output = Result<(), JournalError>> + Send + use<> {
        self.append_round(grants, [])
    }

    /// Makes `grants` and the `replies` owed for their batch durable in one commit round
    /// (grants in their day's segment, replies in `outbox.log`): once it resolves `Ok`, a
    /// restart knows both; on an error neither may be counted on.
    /// The replies are framed here, on the caller's thread, so the writer only copies
    /// their bytes.
    pub fn append_round<'a, I: IntoIterator<Item = &'a OwedReply>>(
        &self,
        grants: Vec<GrantRecord>,
        replies: I,
    ) -> impl Future<Output = Result<(), JournalError>> + Send + use<I> {
        let inner = self.inner.clone();
        let replies = outbox::OwedFrames::of(replies);
        async move {
            if grants.is_empty() && replies.is_empty() {
                return Ok(());
            }
            let (done, answer) = oneshot::channel();
            inner
                .send(Command::Grants {
                    grants,
                    replies,
                    done,
                })
                .await?;
            answer.await.unwrap_or(Err(JournalError::Closed))
        }
    }

    /// Marks the owed reply `id` settled (delivered, or refused for good): written with the
    /// next commit round, without waiting. Until then a restart would deliver it again.
    pub fn settle(&self, id: u64) {
        let first = {
            let mut settled = self
                .inner
                .settled
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            settled.push(id);
            settled.len() == 1
        };
        if first && let Some(tx) = &self.inner.tx {
            // A full queue means a round is coming anyway, and it takes these too.
            let _ = tx.try_send(Command::Flush);
        }
    }

    /// The replies that were owed when the journal was opened, oldest first (once: the
    /// gateway queues them for delivery).
    pub fn take_owed(&self) -> Vec<OwedReply> {
        std::mem::take(
            &mut *self
                .inner
                .owed_at_open
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Makes one blocklist change durable, like [`Journal::append`].
    pub fn append_block_change(
        &self,
        change: BlockChange,
    ) -> impl Future<Output = Result<(), JournalError>> + Send + use<> {
        let inner = self.inner.clone();
        async move {
            let (done, answer) = oneshot::channel();
            inner.send(Command::Block { change, done }).await?;
            answer.await.unwrap_or(Err(JournalError::Closed))
        }
    }

    /// Makes one revocation durable, like [`Journal::append`].
    pub fn append_revocation(
        &self,
        record: RevocationRecord,
    ) -> impl Future<Output = Result<(), JournalError>> + Send + use<> {
        let inner = self.inner.clone();
        async move {
            let (done, answer) = oneshot::channel();
            inner.send(Command::Revoke { record, done }).await?;
            answer.await.unwrap_or(Err(JournalError::Closed))
        }
    }

    /// Makes one admin blocklist entry durable, like [`Journal::append`].
    pub fn append_block_entry(
        &self,
        record: BlockRecord,
    ) -> impl Future<Output = Result<(), JournalError>> + Send + use<> {
        let inner = self.inner.clone();
        async move {
            let (done, answer) = oneshot::channel();
            inner.send(Command::BlockEntry { record, done }).await?;
            answer.await.unwrap_or(Err(JournalError::Closed))
        }
    }

    /// Whether the journal can take appends now: the writer answers (so it is not stuck),
    /// no earlier sync failed, and the data directory takes a new file. For readiness
    /// probes; it writes and removes a small probe file, and syncs nothing.
    pub async fn check(&self) -> Result<(), JournalError> {
        let (done, answer) = oneshot::channel();
        self.inner.send(Command::Check { done }).await?;
        answer.await.unwrap_or(Err(JournalError::Closed))
    }

    /// Deletes segments whose grants can no longer matter at `now_unix` and rewrites
    /// `blocklist.log` to its net state if it has grown large. Runs on the writer thread
    /// between commit rounds; the gateway calls it now and then (e.g. hourly).
    pub async fn compact(&self, now_unix: i64) -> Result<Compaction, JournalError> {
        let (done, answer) = oneshot::channel();
        self.inner.send(Command::Compact { now_unix, done }).await?;
        answer.await.unwrap_or(Err(JournalError::Closed))
    }

    /// Changes the longest validity that [`Journal::compact`] keeps segments for, after a
    /// rules reload (e.g. permits going from 2 h to 3 h).
    pub fn set_longest_validity_secs(&self, secs: u32) {
        self.inner
            .longest_validity_secs
            .store(secs, Ordering::Relaxed);
    }

    /// Finishes everything queued and stops the writer; later appends on other clones fail
    /// with [`JournalError::Closed`]. Dropping the last clone does the same, but blocks.
    pub async fn close(self) {
        let (done, answer) = oneshot::channel();
        if self.inner.send(Command::Close { done }).await.is_ok() {
            let _ = answer.await;
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Counters since open.
    pub fn stats(&self) -> JournalStats {
        let c = &self.inner.counters;
        JournalStats {
            commits: c.commits.load(Ordering::Relaxed),
            grants: c.grants.load(Ordering::Relaxed),
            block_changes: c.block_changes.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            owed: c.owed.load(Ordering::Relaxed),
        }
    }
}

impl Inner {
    /// Queues a command, waiting while the queue is full.
    ///
    /// Futures hold the `Inner` rather than a clone of the sender, so the queue has exactly
    /// one sender and closes when the last holder is gone; an append future that is never
    /// polled then keeps the writer alive instead of making `Drop` wait for it forever.
    async fn send(&self, command: Command) -> Result<(), JournalError> {
        match &self.tx {
            Some(tx) => tx.send(command).await.map_err(|_| JournalError::Closed),
            None => Err(JournalError::Closed),
        }
    }
}

/// The net effect of blocklist changes, per document: codes blocked and codes unblocked
/// (disjoint), and the time of the last change.
#[derive(Default)]
struct BlockNet {
    docs: BTreeMap<Document, NetEntry>,
}

#[derive(Default)]
struct NetEntry {
    blocked: [u64; 4],
    unblocked: [u64; 4],
    at: i64,
}

impl BlockNet {
    fn apply(&mut self, c: &BlockChange) {
        let e = self.docs.entry(c.document).or_insert(NetEntry {
            at: c.at,
            ..NetEntry::default()
        });
        for i in 0..4 {
            if c.blocked {
                e.blocked[i] |= c.codes[i];
                e.unblocked[i] &= !c.codes[i];
            } else {
                e.unblocked[i] |= c.codes[i];
                e.blocked[i] &= !c.codes[i];
            }
        }
        e.at = e.at.max(c.at);
    }

    /// At most an unblock and a block per document, in document order.
    fn changes(&self) -> Vec<BlockChange> {
        let mut out = Vec::new();
        for (&document, e) in &self.docs {
            for (codes, blocked) in [(e.unblocked, false), (e.blocked, true)] {
                if codes != [0; 4] {
                    out.push(BlockChange {
                        document,
                        codes,
                        blocked,
                        at: e.at,
                    });
                }
            }
        }
        out
    }
}
