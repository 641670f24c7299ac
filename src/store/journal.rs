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

use crate::permit::clock::Calendar;
use crate::permit::document::Document;
use crate::store::GrantRecord;
use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use std::collections::{BTreeMap, btree_map};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// First bytes of every journal file.
const MAGIC: [u8; 4] = *b"ICZJ";
/// The format this build writes and reads.
const VERSION: u8 = 1;
/// Bytes of a file header.
const HEADER_LEN: usize = 16;
/// File kind byte of a grants segment.
const KIND_GRANTS: u8 = b'G';
/// File kind byte of the blocklist file.
const KIND_BLOCKLIST: u8 = b'B';
/// Record tag of a grant.
const TAG_GRANT: u8 = 1;
/// Record tag of a blocklist change.
const TAG_BLOCK: u8 = 2;
/// Body bytes of a grant record.
const GRANT_BODY: usize = 8 + 1 + 8 + 8;
/// Body bytes of a blocklist change record.
const BLOCK_BODY: usize = 8 + 32 + 1 + 8;
/// Tag, length and checksum around a body.
const FRAME_OVERHEAD: usize = 2 + 4;
/// Bytes of one grant record on disk.
const GRANT_FRAME: usize = GRANT_BODY + FRAME_OVERHEAD;
/// Bytes of one blocklist change record on disk.
const BLOCK_FRAME: usize = BLOCK_BODY + FRAME_OVERHEAD;
/// A commit round slower than this is logged: every MO in it waited that long.
const SLOW_COMMIT: std::time::Duration = std::time::Duration::from_millis(50);
/// The blocklist file's name.
const BLOCKLIST_FILE: &str = "blocklist.log";
/// Where a blocklist rewrite is built before it replaces [`BLOCKLIST_FILE`].
const BLOCKLIST_TMP: &str = "blocklist.log.tmp";
/// The lock file's name.
const LOCK_FILE: &str = "LOCK";
/// `NaiveDate::num_days_from_ce` of 1970-01-01, to turn a [`Calendar`] day into a date.
const CE_DAYS_AT_EPOCH: i32 = 719_163;
/// Segment files the writer keeps open; more than today and yesterday only when grants of
/// older days are appended, which the gateway does not do.
const MAX_OPEN_SEGMENTS: usize = 4;

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

/// What [`Journal::open`] read back, for the caller to feed into the engine.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Grants of every segment that can still matter, oldest day first, each day in append
    /// order.
    pub grants: Vec<GrantRecord>,
    /// Every blocklist change, in append order (after a rewrite: the net state).
    pub block_changes: Vec<BlockChange>,
    /// Damage found and repaired while reading; each was also logged as a warning.
    pub damage: Vec<Damage>,
    /// Segment files deleted because no grant in them can matter any more.
    pub removed_segments: Vec<PathBuf>,
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
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            queue_depth: 1024,
            blocklist_rewrite_records: 10_000,
            faults: None,
        }
    }
}

/// A step of a commit round where a fault can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Before a round's bytes are written to a file.
    Write,
    /// Before a written file is `fdatasync`ed.
    Sync,
}

/// Injects disk faults into the writer, so tests can show what the gateway does on a disk
/// that fails or is slow without needing one. Called on the writer's thread: an `Err` is
/// taken exactly as the real write or sync failing there (a failed write is rolled back and
/// later rounds go on; a failed sync stops the journal), and a hook that sleeps is a slow
/// disk.
pub trait FaultHook: Send + Sync + std::fmt::Debug {
    /// Called before `step`; an error fails the step.
    fn before(&self, step: Step) -> io::Result<()>;
}

/// Why the journal could not open, write or compact.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// A file or the directory could not be read, created, listed, repaired or removed.
    #[error("journal: {action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "reading".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// Another open journal (in this process or another gateway) holds the directory.
    #[error("journal: {path} is locked by another open journal")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A file named like a journal file does not start with a valid header of its kind.
    #[error("journal: {path} at offset {offset}: not a valid journal header ({reason})")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// Where the header is bad.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A file written by another format version.
    #[error("journal: {path} has format version {found}; this build reads version {VERSION}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in its header.
        found: u8,
    },
    /// Writing a commit round failed. If it was rolled back (the files cut back to where
    /// the round started) nothing of it remains and a retry can succeed, e.g. once disk
    /// space is freed; otherwise the journal refuses further writes until reopened.
    #[error(
        "journal: writing {bytes} bytes to {path} at offset {offset} failed ({}): {source}",
        if *rolled_back { "rolled back" } else { "not rolled back; journal stopped" }
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// Where the round's bytes started.
        offset: u64,
        /// The round's bytes for this file.
        bytes: usize,
        /// Whether the file was cut back to `offset`.
        rolled_back: bool,
        /// The system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// `fdatasync` failed. The kernel may have dropped the unsynced pages, so a later sync
    /// that succeeds proves nothing: the journal refuses further writes until reopened,
    /// which re-reads what is really on disk.
    #[error("journal: fsync of {path} failed; journal stopped until reopened: {source}")]
    Sync {
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The writer thread has stopped (closed, or every handle is being dropped).
    #[error("journal: writer stopped")]
    Closed,
}

impl JournalError {
    /// Whether retrying the same call can help (the gateway then answers the operator with
    /// a temporary error rather than a permanent one).
    pub fn is_retryable(&self) -> bool {
        match self {
            JournalError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::Interrupted
                    | io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::StorageFull
                    | io::ErrorKind::QuotaExceeded
                    | io::ErrorKind::ResourceBusy
            ),
            JournalError::Locked { .. } => true,
            JournalError::Write { rolled_back, .. } => *rolled_back,
            JournalError::BadHeader { .. }
            | JournalError::UnsupportedVersion { .. }
            | JournalError::Sync { .. }
            | JournalError::Closed => false,
        }
    }
}

/// Builds an [`JournalError::Io`] for `path`.
fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> JournalError {
    move |source| JournalError::Io {
        action,
        path: path.to_path_buf(),
        source: Arc::new(source),
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
}

/// Answer channel of one append.
type Done = oneshot::Sender<Result<(), JournalError>>;

/// What callers ask of the writer thread.
enum Command {
    Grants {
        grants: Vec<GrantRecord>,
        done: Done,
    },
    Block {
        change: BlockChange,
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
    /// Opens (or creates) the journal in `dir` with default [`JournalOptions`]. See
    /// [`Journal::open_with`].
    pub fn open(
        dir: impl AsRef<Path>,
        tz: Tz,
        now_unix: i64,
        longest_validity_secs: u32,
    ) -> Result<(Journal, Replayed), JournalError> {
        Self::open_with(
            dir,
            tz,
            now_unix,
            longest_validity_secs,
            JournalOptions::default(),
        )
    }

    /// Opens (or creates) the journal in `dir`, days counted in `tz`, and returns what it
    /// holds that can still matter at `now_unix`: the grants of every day from the one a
    /// permit issued `longest_validity_secs` ago falls on (and at least yesterday's), and the
    /// whole blocklist. Older segments are deleted; torn tails are truncated (see
    /// [`Damage`]). Blocking file I/O: call it at start, before serving, or from
    /// `spawn_blocking`.
    pub fn open_with(
        dir: impl AsRef<Path>,
        tz: Tz,
        now_unix: i64,
        longest_validity_secs: u32,
        options: JournalOptions,
    ) -> Result<(Journal, Replayed), JournalError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_error("creating directory", &dir))?;
        let lock = lock_dir(&dir)?;
        let calendar = Calendar::new(tz);
        let mut replayed = Replayed::default();

        let tmp = dir.join(BLOCKLIST_TMP);
        if tmp.exists() {
            // A rewrite that crashed before its rename: blocklist.log is still whole.
            fs::remove_file(&tmp).map_err(io_error("removing", &tmp))?;
        }

        let keep_from = first_kept_day(&calendar, now_unix, longest_validity_secs);
        replayed.removed_segments = remove_segments_before(&dir, keep_from)?;
        for (day, path) in list_segments(&dir)? {
            let grants = load_file(
                &path,
                KIND_GRANTS,
                day,
                GRANT_FRAME,
                decode_grant,
                &mut replayed.damage,
            )?;
            replayed.grants.extend(grants);
        }

        let block_path = dir.join(BLOCKLIST_FILE);
        if block_path.exists() {
            replayed.block_changes = load_file(
                &block_path,
                KIND_BLOCKLIST,
                0,
                BLOCK_FRAME,
                decode_block,
                &mut replayed.damage,
            )?;
        }
        let (blocklist, created) = Segment::open(block_path.clone(), KIND_BLOCKLIST, 0)
            .map_err(io_error("opening", &block_path))?;
        if created {
            sync_file(&blocklist.file, &blocklist.path)?;
            sync_dir(&dir)?;
        }
        let mut net = BlockNet::default();
        for change in &replayed.block_changes {
            net.apply(change);
        }

        let (tx, rx) = mpsc::channel(options.queue_depth.max(1));
        let longest = Arc::new(AtomicU32::new(longest_validity_secs));
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            dir: dir.clone(),
            calendar,
            longest_validity_secs: longest.clone(),
            counters: counters.clone(),
            segments: BTreeMap::new(),
            blocklist,
            block_records: replayed.block_changes.len(),
            net,
            needs_dir_sync: false,
            failed: None,
            _lock: lock,
            day_bufs: Vec::new(),
            block_buf: Vec::new(),
            pending_blocks: Vec::new(),
            waiters: Vec::new(),
            rewrite_threshold: options.blocklist_rewrite_records,
            faults: options.faults.clone(),
        };
        let batch_limit = options.queue_depth.max(1);
        let handle = std::thread::Builder::new()
            .name("icaze-journal".into())
            .spawn(move || writer.run(rx, batch_limit))
            .map_err(io_error("starting the writer thread for", &dir))?;
        let journal = Journal {
            inner: Arc::new(Inner {
                dir,
                tx: Some(tx),
                writer: Some(handle),
                longest_validity_secs: longest,
                counters,
            }),
        };
        Ok((journal, replayed))
    }

    /// Makes `grants` durable: resolves once they are written and `fdatasync`ed, together
    /// with whatever else was queued meanwhile (group commit). Waits first if the queue is
    /// full. The grants are copied at the call, so the future borrows nothing; dropping it
    /// does not un-write them (they may or may not be durable then).
    pub fn append(
        &self,
        grants: &[GrantRecord],
    ) -> impl Future<Output = Result<(), JournalError>> + Send + use<> {
        let inner = self.inner.clone();
        let grants = grants.to_vec();
        async move {
            if grants.is_empty() {
                return Ok(());
            }
            let (done, answer) = oneshot::channel();
            inner.send(Command::Grants { grants, done }).await?;
            answer.await.unwrap_or(Err(JournalError::Closed))
        }
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

/// The first local day whose segment is kept at `now`: the day a permit issued
/// `longest_validity_secs` ago was issued on (an older grant has expired and its day's quota
/// no longer counts), but never later than yesterday, a day of slack for a clock stepped back
/// and for checking yesterday's permits.
fn first_kept_day(calendar: &Calendar, now: i64, longest_validity_secs: u32) -> i32 {
    let today = calendar.moment(now).day;
    let oldest_active = calendar
        .moment(now.saturating_sub(i64::from(longest_validity_secs)))
        .day;
    oldest_active.min(today - 1)
}

/// The file name of a day's grants, e.g. `grants-2020-04-06.log`.
fn segment_name(day: i32) -> String {
    // Calendar days come from chrono-valid instants, so they are always in range.
    let date = NaiveDate::from_num_days_from_ce_opt(day.saturating_add(CE_DAYS_AT_EPOCH))
        .unwrap_or_default();
    format!("grants-{}.log", date.format("%Y-%m-%d"))
}

/// The day of a segment file name, `None` for any other name.
fn segment_day(name: &str) -> Option<i32> {
    let date = name.strip_prefix("grants-")?.strip_suffix(".log")?;
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()?
        .num_days_from_ce()
        - CE_DAYS_AT_EPOCH;
    (segment_name(day) == name).then_some(day)
}

/// The segment files in `dir`, oldest day first.
fn list_segments(dir: &Path) -> Result<Vec<(i32, PathBuf)>, JournalError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("listing", dir))? {
        let entry = entry.map_err(io_error("listing", dir))?;
        if let Some(day) = entry.file_name().to_str().and_then(segment_day) {
            out.push((day, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes the segments of days before `keep_from`; returns their paths.
fn remove_segments_before(dir: &Path, keep_from: i32) -> Result<Vec<PathBuf>, JournalError> {
    let mut removed = Vec::new();
    for (day, path) in list_segments(dir)? {
        if day < keep_from {
            fs::remove_file(&path).map_err(io_error("removing", &path))?;
            tracing::info!(file = %path.display(), "journal: removed an expired day segment");
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Takes the directory's lock file, so a second gateway on the same directory fails fast.
fn lock_dir(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_error("opening", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(JournalError::Locked { path }),
        Err(fs::TryLockError::Error(e)) => Err(io_error("locking", &path)(e)),
    }
}

/// `fdatasync` of a file.
fn sync_file(file: &File, path: &Path) -> Result<(), JournalError> {
    file.sync_data().map_err(|e| JournalError::Sync {
        path: path.to_path_buf(),
        source: Arc::new(e),
    })
}

/// `fsync` of a directory, so created, renamed and removed names are durable.
fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::Sync {
            path: dir.to_path_buf(),
            source: Arc::new(e),
        })
}

/// The header of a file of `kind` for `day`.
fn header(kind: u8, day: i32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4] = VERSION;
    h[5] = kind;
    h[8..12].copy_from_slice(&day.to_le_bytes());
    let crc = crc32fast::hash(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a whole header against the one expected for this file.
fn check_header(h: &[u8], path: &Path, kind: u8, day: i32) -> Result<(), JournalError> {
    let bad = |offset, reason| JournalError::BadHeader {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if h[..4] != MAGIC {
        return Err(bad(0, "magic is not ICZJ"));
    }
    if h[4] != VERSION {
        return Err(JournalError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: h[4],
        });
    }
    if crc32fast::hash(&h[..12]).to_le_bytes() != h[12..16] {
        return Err(bad(12, "header checksum does not match"));
    }
    if h[5] != kind {
        return Err(bad(5, "file kind does not match its name"));
    }
    if h[8..12] != day.to_le_bytes() {
        return Err(bad(8, "day does not match the file name"));
    }
    Ok(())
}

/// Appends one framed grant to `out`.
fn encode_grant(out: &mut Vec<u8>, g: &GrantRecord) {
    let mut f = [0u8; GRANT_FRAME];
    f[0] = TAG_GRANT;
    f[1] = GRANT_BODY as u8;
    f[2..10].copy_from_slice(&g.document.packed().to_le_bytes());
    f[10] = g.code;
    f[11..19].copy_from_slice(&g.from.to_le_bytes());
    f[19..27].copy_from_slice(&g.until.to_le_bytes());
    let crc = crc32fast::hash(&f[..2 + GRANT_BODY]);
    f[2 + GRANT_BODY..].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&f);
}

/// Appends one framed blocklist change to `out`.
fn encode_block(out: &mut Vec<u8>, c: &BlockChange) {
    let mut f = [0u8; BLOCK_FRAME];
    f[0] = TAG_BLOCK;
    f[1] = BLOCK_BODY as u8;
    f[2..10].copy_from_slice(&c.document.packed().to_le_bytes());
    for (i, word) in c.codes.iter().enumerate() {
        f[10 + 8 * i..18 + 8 * i].copy_from_slice(&word.to_le_bytes());
    }
    f[42] = u8::from(c.blocked);
    f[43..51].copy_from_slice(&c.at.to_le_bytes());
    let crc = crc32fast::hash(&f[..2 + BLOCK_BODY]);
    f[2 + BLOCK_BODY..].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&f);
}

/// The body of a whole, checksummed frame of `tag` at the start of `buf`.
fn frame_body(buf: &[u8], tag: u8, body_len: usize) -> Option<&[u8]> {
    let frame = buf.get(..body_len + FRAME_OVERHEAD)?;
    if frame[0] != tag || usize::from(frame[1]) != body_len {
        return None;
    }
    let (covered, crc) = frame.split_at(2 + body_len);
    (crc32fast::hash(covered).to_le_bytes() == crc).then(|| &covered[2..])
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// A grant frame at the start of `buf`, if whole and valid.
fn decode_grant(buf: &[u8]) -> Option<GrantRecord> {
    let b = frame_body(buf, TAG_GRANT, GRANT_BODY)?;
    Some(GrantRecord {
        document: Document::from_packed(le_u64(&b[0..]))?,
        code: b[8],
        from: le_u64(&b[9..]) as i64,
        until: le_u64(&b[17..]) as i64,
    })
}

/// A blocklist change frame at the start of `buf`, if whole and valid.
fn decode_block(buf: &[u8]) -> Option<BlockChange> {
    let b = frame_body(buf, TAG_BLOCK, BLOCK_BODY)?;
    let blocked = match b[40] {
        0 => false,
        1 => true,
        _ => return None,
    };
    Some(BlockChange {
        document: Document::from_packed(le_u64(&b[0..]))?,
        codes: std::array::from_fn(|i| le_u64(&b[8 + 8 * i..])),
        blocked,
        at: le_u64(&b[41..]) as i64,
    })
}

/// The records of one file's bytes and where they are damaged.
struct Scanned<T> {
    records: Vec<T>,
    /// `(offset, bytes)` of bad stretches followed by good records.
    skipped: Vec<(usize, usize)>,
    /// Where a tail without any good record starts.
    tail: Option<usize>,
}

/// Reads fixed-size frames from `HEADER_LEN` to the end of `data`, resyncing after bad bytes
/// on the next offset where a whole valid frame starts (a CRC32 match by chance is a one in
/// four billion event per offset, and the tag, length and document must fit too).
fn scan<T>(data: &[u8], frame_len: usize, decode: fn(&[u8]) -> Option<T>) -> Scanned<T> {
    let mut out = Scanned {
        records: Vec::with_capacity(data.len().saturating_sub(HEADER_LEN) / frame_len),
        skipped: Vec::new(),
        tail: None,
    };
    let mut pos = HEADER_LEN;
    while pos < data.len() {
        if let Some(record) = decode(&data[pos..]) {
            out.records.push(record);
            pos += frame_len;
            continue;
        }
        let resume = (pos + 1..data.len().saturating_sub(frame_len - 1))
            .find(|&p| decode(&data[p..]).is_some());
        match resume {
            Some(next) => {
                out.skipped.push((pos, next - pos));
                pos = next;
            }
            None => {
                out.tail = Some(pos);
                break;
            }
        }
    }
    out
}

/// Reads one journal file at open, repairs a torn tail or a torn header, and returns its
/// records.
fn load_file<T>(
    path: &Path,
    kind: u8,
    day: i32,
    frame_len: usize,
    decode: fn(&[u8]) -> Option<T>,
    damage: &mut Vec<Damage>,
) -> Result<Vec<T>, JournalError> {
    let data = fs::read(path).map_err(io_error("reading", path))?;
    let expected = header(kind, day);
    if data.len() < HEADER_LEN {
        // A crash while the file was being created: nothing acknowledged can be in it.
        if data[..] != expected[..data.len()] && data.iter().any(|&b| b != 0) {
            return Err(JournalError::BadHeader {
                path: path.to_path_buf(),
                offset: 0,
                reason: "shorter than a header and not a torn one",
            });
        }
        tracing::warn!(
            file = %path.display(),
            offset = 0,
            bytes = data.len(),
            "journal: file ends inside its header (crash while creating it); header rewritten"
        );
        let mut file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(io_error("repairing", path))?;
        file.write_all(&expected)
            .map_err(io_error("repairing", path))?;
        sync_file(&file, path)?;
        damage.push(Damage::TornTail {
            path: path.to_path_buf(),
            offset: 0,
            bytes: data.len() as u64,
        });
        return Ok(Vec::new());
    }
    check_header(&data[..HEADER_LEN], path, kind, day)?;
    let scanned = scan(&data, frame_len, decode);
    for &(offset, bytes) in &scanned.skipped {
        tracing::warn!(
            file = %path.display(),
            offset,
            bytes,
            resumed_at = offset + bytes,
            "journal: corrupt bytes in the middle of the file skipped, the records after \
             them were read; the file is left as it is for inspection"
        );
        damage.push(Damage::Skipped {
            path: path.to_path_buf(),
            offset: offset as u64,
            bytes: bytes as u64,
        });
    }
    if let Some(offset) = scanned.tail {
        let bytes = data.len() - offset;
        tracing::warn!(
            file = %path.display(),
            offset,
            bytes,
            kept_records = scanned.records.len(),
            "journal: torn or corrupt tail truncated (a partial or bad record, e.g. after a \
             crash mid-write); every record before it is kept"
        );
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_error("truncating", path))?;
        file.set_len(offset as u64)
            .map_err(io_error("truncating", path))?;
        sync_file(&file, path)?;
        damage.push(Damage::TornTail {
            path: path.to_path_buf(),
            offset: offset as u64,
            bytes: bytes as u64,
        });
    }
    Ok(scanned.records)
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

/// One open journal file and its length (where the next round's bytes go).
struct Segment {
    path: PathBuf,
    file: File,
    len: u64,
}

impl Segment {
    /// Opens `path` for appending, creating it with its header if missing or empty. Returns
    /// with the header unsynced: the caller syncs it with the first round (or at once).
    fn open(path: PathBuf, kind: u8, day: i32) -> io::Result<(Segment, bool)> {
        let mut file = OpenOptions::new().append(true).create(true).open(&path)?;
        let mut len = file.metadata()?.len();
        let created = len == 0;
        if created {
            file.write_all(&header(kind, day))?;
            len = HEADER_LEN as u64;
        }
        Ok((Segment { path, file, len }, created))
    }
}

/// The writer thread's state: it alone touches the files.
struct Writer {
    dir: PathBuf,
    calendar: Calendar,
    longest_validity_secs: Arc<AtomicU32>,
    counters: Arc<Counters>,
    /// Open grant segments by day.
    segments: BTreeMap<i32, Segment>,
    blocklist: Segment,
    /// Records in `blocklist.log`.
    block_records: usize,
    net: BlockNet,
    /// A name was created or renamed and the directory has not been synced since.
    needs_dir_sync: bool,
    /// Set when a sync failed or a failed write could not be rolled back: every later
    /// append gets this error.
    failed: Option<JournalError>,
    /// Held for the writer's lifetime: the directory's lock.
    _lock: File,
    /// This round's grant bytes per day; the buffers are kept between rounds.
    day_bufs: Vec<(i32, Vec<u8>)>,
    /// This round's blocklist bytes.
    block_buf: Vec<u8>,
    /// This round's blocklist changes, applied to `net` once durable.
    pending_blocks: Vec<BlockChange>,
    waiters: Vec<Done>,
    rewrite_threshold: usize,
    /// Injected faults (tests only).
    faults: Option<Arc<dyn FaultHook>>,
}

/// Which file a round touched.
#[derive(Clone, Copy)]
enum Target {
    Day(i32),
    Blocklist,
}

impl Writer {
    /// Serves commit rounds until the queue closes or [`Command::Close`].
    fn run(mut self, mut rx: mpsc::Receiver<Command>, batch_limit: usize) {
        let mut batch = Vec::with_capacity(batch_limit);
        while rx.blocking_recv_many(&mut batch, batch_limit) > 0 {
            if !self.round(&mut batch) {
                break;
            }
        }
    }

    /// One commit round over everything taken from the queue; `false` once asked to close.
    fn round(&mut self, batch: &mut Vec<Command>) -> bool {
        let mut compactions = Vec::new();
        let mut close = None;
        let mut grants = 0u64;
        for command in batch.drain(..) {
            match command {
                Command::Grants { grants: g, done } => {
                    for grant in &g {
                        let day = self.calendar.moment(grant.from).day;
                        encode_grant(day_buf(&mut self.day_bufs, day), grant);
                    }
                    grants += g.len() as u64;
                    self.waiters.push(done);
                }
                Command::Block { change, done } => {
                    encode_block(&mut self.block_buf, &change);
                    self.pending_blocks.push(change);
                    self.waiters.push(done);
                }
                Command::Compact { now_unix, done } => compactions.push((now_unix, done)),
                Command::Close { done } => close = Some(done),
            }
        }

        if !self.waiters.is_empty() {
            let started = std::time::Instant::now();
            let result = match &self.failed {
                Some(e) => Err(e.clone()),
                None => self.commit(),
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
                    + self.day_bufs.iter().map(|(_, b)| b.len()).sum::<usize>();
                c.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            }
            for done in self.waiters.drain(..) {
                let _ = done.send(result.clone());
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
                let _ = done.send(());
                false
            }
            None => true,
        }
    }

    /// Writes this round's bytes (one write per file) and syncs them (one `fdatasync` per
    /// file); on a failed write, cuts every touched file back to where the round started.
    fn commit(&mut self) -> Result<(), JournalError> {
        let day_bufs = std::mem::take(&mut self.day_bufs);
        let mut touched: Vec<(Target, u64)> = Vec::new();
        let written = self.write_round(&day_bufs, &mut touched);
        self.day_bufs = day_bufs;
        if let Err(e) = written {
            return Err(self.roll_back(&touched, e));
        }
        for &(target, _) in &touched {
            // Every touched segment is still open: segments are closed only between rounds.
            let faults = self.faults.clone();
            if let Some(seg) = self.segment_of(target)
                && let Err(e) = inject(faults.as_deref(), Step::Sync)
                    .map_err(|e| JournalError::Sync {
                        path: seg.path.clone(),
                        source: Arc::new(e),
                    })
                    .and_then(|()| sync_file(&seg.file, &seg.path))
            {
                return Err(self.fail(e));
            }
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
        }
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

    /// See [`Journal::compact`].
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

/// Runs the injected fault of `step`, if any.
fn inject(faults: Option<&dyn FaultHook>, step: Step) -> io::Result<()> {
    faults.map_or(Ok(()), |f| f.before(step))
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
    use super::*;
    use chrono::DateTime;

    const BAKU: Tz = chrono_tz::Asia::Baku;
    const THREE_HOURS: u32 = 3 * 3600;

    fn unix(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    fn doc(n: u64) -> Document {
        Document::new(b"AZE", format!("{n:08}").as_bytes()).unwrap()
    }

    fn grant(n: u64, from: i64) -> GrantRecord {
        GrantRecord {
            document: doc(n),
            code: (n % 3) as u8 + 1,
            from,
            until: from + i64::from(THREE_HOURS),
        }
    }

    /// 10:00 in Baku on 2020-04-06.
    fn morning() -> i64 {
        unix("2020-04-06T10:00:00+04:00")
    }

    fn open(dir: &Path, now: i64) -> (Journal, Replayed) {
        Journal::open(dir, BAKU, now, THREE_HOURS).unwrap()
    }

    fn today_file(dir: &Path) -> PathBuf {
        dir.join("grants-2020-04-06.log")
    }

    async fn append_each(journal: &Journal, grants: &[GrantRecord]) {
        for g in grants {
            journal.append(std::slice::from_ref(g)).await.unwrap();
        }
    }

    #[test]
    fn journal_is_cheap_to_share() {
        fn shared<T: Send + Sync + Clone + 'static>() {}
        fn sendable<T: Send + 'static>(_: &T) {}
        shared::<Journal>();
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = open(dir.path(), morning());
        let future = journal.append(&[grant(1, morning())]);
        sendable(&future);
    }

    #[test]
    fn segment_names_round_trip() {
        let cal = Calendar::new(BAKU);
        let day = cal.moment(morning()).day;
        assert_eq!(segment_name(day), "grants-2020-04-06.log");
        assert_eq!(segment_day("grants-2020-04-06.log"), Some(day));
        assert_eq!(segment_day("grants-2020-4-6.log"), None);
        assert_eq!(segment_day("grants-2020-04-06.log.tmp"), None);
        assert_eq!(segment_day("blocklist.log"), None);
    }

    #[tokio::test]
    async fn append_and_reopen_replays_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (journal, replayed) = open(&data, morning());
        assert!(replayed.grants.is_empty() && replayed.damage.is_empty());
        let grants: Vec<_> = (0..100).map(|n| grant(n, morning() + n as i64)).collect();
        journal.append(&grants[..40]).await.unwrap();
        append_each(&journal, &grants[40..]).await;
        journal.append(&[]).await.unwrap();
        assert_eq!(journal.stats().grants, 100);
        journal.close().await;

        let (_journal, replayed) = open(&data, morning() + 60);
        assert_eq!(replayed.grants, grants);
        assert!(replayed.damage.is_empty());
        let len = fs::metadata(today_file(&data)).unwrap().len();
        assert_eq!(len, (HEADER_LEN + 100 * GRANT_FRAME) as u64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appenders_share_commits() {
        const TASKS: u64 = 8;
        const EACH: u64 = 1000;
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = open(dir.path(), morning());
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let journal = journal.clone();
                tokio::spawn(async move {
                    for i in 0..EACH {
                        let n = t * 1_000_000 + i;
                        journal
                            .append(&[grant(n, morning() + i as i64)])
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stats = journal.stats();
        assert_eq!(stats.grants, TASKS * EACH);
        assert!(
            stats.commits < TASKS * EACH,
            "group commit should share fsyncs: {stats:?}"
        );
        drop(journal);

        let (_journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants.len() as u64, TASKS * EACH);
        // Each task's grants come back in the order it appended them.
        for t in 0..TASKS {
            let mine: Vec<u64> = replayed
                .grants
                .iter()
                .map(|g| g.document.number())
                .filter(|n| n / 1_000_000 == t)
                .collect();
            let expected: Vec<u64> = (0..EACH).map(|i| t * 1_000_000 + i).collect();
            assert_eq!(mine, expected);
        }
    }

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
    async fn torn_tail_is_truncated_and_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let grants: Vec<_> = (0..10).map(|n| grant(n, morning())).collect();
        {
            let (journal, _) = open(dir.path(), morning());
            append_each(&journal, &grants).await;
        }
        let file = today_file(dir.path());
        let full = fs::metadata(&file).unwrap().len();
        let cut = full - 7;
        OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(cut)
            .unwrap();

        let good = (HEADER_LEN + 9 * GRANT_FRAME) as u64;
        let (journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants, grants[..9]);
        assert_eq!(
            replayed.damage,
            vec![Damage::TornTail {
                path: file.clone(),
                offset: good,
                bytes: cut - good,
            }]
        );
        assert_eq!(fs::metadata(&file).unwrap().len(), good);

        journal.append(&grants[9..]).await.unwrap();
        drop(journal);
        let (_journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants, grants);
        assert!(replayed.damage.is_empty());
    }

    #[tokio::test]
    async fn garbage_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let grants: Vec<_> = (0..5).map(|n| grant(n, morning())).collect();
        {
            let (journal, _) = open(dir.path(), morning());
            journal.append(&grants).await.unwrap();
        }
        let file = today_file(dir.path());
        let good = fs::metadata(&file).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(&[0xde, 0xad, 0xbe, 0xef].repeat(25)).unwrap();
        f.write_all(&[0; 4096]).unwrap();
        drop(f);

        let (_journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants, grants);
        assert!(matches!(
            replayed.damage[..],
            [Damage::TornTail { offset, bytes: 4196, .. }] if offset == good
        ));
        assert_eq!(fs::metadata(&file).unwrap().len(), good);
    }

    #[tokio::test]
    async fn flipped_byte_in_last_record_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let grants: Vec<_> = (0..5).map(|n| grant(n, morning())).collect();
        {
            let (journal, _) = open(dir.path(), morning());
            journal.append(&grants).await.unwrap();
        }
        let file = today_file(dir.path());
        let mut bytes = fs::read(&file).unwrap();
        let last = HEADER_LEN + 4 * GRANT_FRAME;
        bytes[last + 12] ^= 0x01; // a bit of `from`
        fs::write(&file, &bytes).unwrap();

        let (_journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants, grants[..4]);
        assert_eq!(
            replayed.damage,
            vec![Damage::TornTail {
                path: file.clone(),
                offset: last as u64,
                bytes: GRANT_FRAME as u64,
            }]
        );
    }

    #[tokio::test]
    async fn corruption_in_the_middle_keeps_the_records_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let grants: Vec<_> = (0..10).map(|n| grant(n, morning())).collect();
        {
            let (journal, _) = open(dir.path(), morning());
            journal.append(&grants).await.unwrap();
        }
        let file = today_file(dir.path());
        let mut bytes = fs::read(&file).unwrap();
        let fifth = HEADER_LEN + 4 * GRANT_FRAME;
        bytes[fifth + 3] ^= 0xff;
        bytes[fifth + GRANT_FRAME + 20] ^= 0x10; // and the sixth
        fs::write(&file, &bytes).unwrap();

        let (journal, replayed) = open(dir.path(), morning());
        let expected: Vec<_> = grants[..4].iter().chain(&grants[6..]).copied().collect();
        assert_eq!(replayed.grants, expected);
        assert_eq!(
            replayed.damage,
            vec![Damage::Skipped {
                path: file.clone(),
                offset: fifth as u64,
                bytes: 2 * GRANT_FRAME as u64,
            }]
        );
        // Left in place for inspection; appends go after it and are read back.
        assert_eq!(fs::read(&file).unwrap(), bytes);
        journal.append(&[grant(99, morning())]).await.unwrap();
        drop(journal);
        let (_journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants.len(), 9);
        assert_eq!(replayed.grants[8], grant(99, morning()));
    }

    #[tokio::test]
    async fn crash_without_clean_shutdown_keeps_acknowledged_grants() {
        let dir = tempfile::tempdir().unwrap();
        let grants: Vec<_> = (0..50).map(|n| grant(n, morning())).collect();
        let (journal, _) = open(dir.path(), morning());
        append_each(&journal, &grants).await;
        // The crash hits while the next round is half written: a partial record.
        let file = today_file(dir.path());
        let mut torn = Vec::new();
        encode_grant(&mut torn, &grant(777, morning()));
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(&torn[..GRANT_FRAME / 2]).unwrap();
        drop(f);
        drop(journal); // no close()

        let (journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants, grants);
        assert_eq!(replayed.damage.len(), 1);
        journal.append(&[grant(51, morning())]).await.unwrap();
    }

    #[tokio::test]
    async fn torn_header_is_repaired_and_foreign_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = today_file(dir.path());
        fs::write(
            &file,
            &header(KIND_GRANTS, Calendar::new(BAKU).moment(morning()).day)[..5],
        )
        .unwrap();
        {
            let (journal, replayed) = open(dir.path(), morning());
            assert!(replayed.grants.is_empty());
            assert_eq!(replayed.damage.len(), 1);
            journal.append(&[grant(1, morning())]).await.unwrap();
        }
        let (_journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants, vec![grant(1, morning())]);
        drop(_journal);

        fs::write(&file, b"not a journal, but someone's notes").unwrap();
        let err = Journal::open(dir.path(), BAKU, morning(), THREE_HOURS).unwrap_err();
        assert!(matches!(&err, JournalError::BadHeader { path, .. } if *path == file));
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("grants-2020-04-06.log"));

        let mut future = header(KIND_GRANTS, 0);
        future[4] = VERSION + 1;
        fs::write(&file, future).unwrap();
        let err = Journal::open(dir.path(), BAKU, morning(), THREE_HOURS).unwrap_err();
        assert!(matches!(
            err,
            JournalError::UnsupportedVersion { found: 2, .. }
        ));
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
                "grants-2020-04-06.log",
                "grants-2020-04-07.log",
                "notes.txt"
            ]
        );

        // A longer validity keeps more days.
        journal.set_longest_validity_secs(3 * 86_400);
        journal.append(&[grant(8, day(8))]).await.unwrap();
        let compaction = journal.compact(day(9)).await.unwrap();
        assert!(compaction.removed_segments.is_empty());
    }

    /// The blocked state per (document, code), applying changes one by one.
    fn model(changes: &[BlockChange]) -> BTreeMap<(Document, u8), bool> {
        let mut state = BTreeMap::new();
        for c in changes {
            for code in 0..=255u8 {
                if c.codes[usize::from(code / 64)] & (1 << (code % 64)) != 0 {
                    state.insert((c.document, code), c.blocked);
                }
            }
        }
        state
    }

    fn change(n: u64, codes: &[u8], blocked: bool, at: i64) -> BlockChange {
        let mut set = [0u64; 4];
        for &c in codes {
            set[usize::from(c / 64)] |= 1 << (c % 64);
        }
        BlockChange {
            document: doc(n),
            codes: if codes.is_empty() { ALL_CODES } else { set },
            blocked,
            at,
        }
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

    #[tokio::test]
    async fn a_second_journal_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = open(dir.path(), morning());
        let err = Journal::open(dir.path(), BAKU, morning(), THREE_HOURS).unwrap_err();
        assert!(matches!(err, JournalError::Locked { .. }));
        assert!(err.is_retryable());
        drop(journal);
        let _ = open(dir.path(), morning());
    }

    #[tokio::test]
    async fn appends_after_close_fail_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = open(dir.path(), morning());
        let other = journal.clone();
        journal.close().await;
        let err = other.append(&[grant(1, morning())]).await.unwrap_err();
        assert!(matches!(err, JournalError::Closed));
        assert!(!err.is_retryable());
        assert!(matches!(
            other.compact(morning()).await,
            Err(JournalError::Closed)
        ));
    }

    #[tokio::test]
    async fn a_pending_append_outlives_the_last_handle() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = open(dir.path(), morning());
        let pending = journal.append(&[grant(1, morning())]);
        drop(journal);
        pending.await.unwrap();
        // Its end released the writer and the lock.
        let (_journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants, vec![grant(1, morning())]);
    }

    proptest::proptest! {
        /// Cutting a file anywhere keeps exactly the whole records before the cut.
        #[test]
        fn any_cut_keeps_the_records_before_it(n in 1usize..40, cut in 0usize..2000) {
            let grants: Vec<_> = (0..n as u64).map(|i| grant(i, 1_586_152_800 + i as i64)).collect();
            let mut data = header(KIND_GRANTS, 0).to_vec();
            for g in &grants {
                encode_grant(&mut data, g);
            }
            let cut = HEADER_LEN + cut % (data.len() - HEADER_LEN + 1);
            let scanned = scan(&data[..cut], GRANT_FRAME, decode_grant);
            let whole = (cut - HEADER_LEN) / GRANT_FRAME;
            proptest::prop_assert_eq!(&scanned.records[..], &grants[..whole]);
            proptest::prop_assert!(scanned.skipped.is_empty());
            let torn = !(cut - HEADER_LEN).is_multiple_of(GRANT_FRAME);
            proptest::prop_assert_eq!(scanned.tail, torn.then_some(HEADER_LEN + whole * GRANT_FRAME));
        }

        /// A damaged byte loses only the record it is in.
        #[test]
        fn a_damaged_byte_loses_only_its_record(
            n in 1usize..40,
            at in 0usize..10_000,
            xor in 1u8..=255,
        ) {
            let grants: Vec<_> = (0..n as u64).map(|i| grant(i, 1_586_152_800 + i as i64)).collect();
            let mut data = header(KIND_GRANTS, 0).to_vec();
            for g in &grants {
                encode_grant(&mut data, g);
            }
            let at = HEADER_LEN + at % (data.len() - HEADER_LEN);
            data[at] ^= xor;
            let hit = (at - HEADER_LEN) / GRANT_FRAME;
            let scanned = scan(&data, GRANT_FRAME, decode_grant);
            let mut expected = grants.clone();
            expected.remove(hit);
            proptest::prop_assert_eq!(scanned.records, expected);
            let start = HEADER_LEN + hit * GRANT_FRAME;
            if hit + 1 == n {
                proptest::prop_assert_eq!(scanned.tail, Some(start));
            } else {
                proptest::prop_assert_eq!(scanned.skipped, vec![(start, GRANT_FRAME)]);
            }
        }
    }

    #[test]
    fn errors_say_whether_a_retry_helps() {
        let io = |kind: io::ErrorKind| Arc::new(io::Error::from(kind));
        let write = |rolled_back| JournalError::Write {
            path: "g.log".into(),
            offset: 16,
            bytes: 31,
            rolled_back,
            source: io(io::ErrorKind::StorageFull),
        };
        assert!(write(true).is_retryable());
        assert!(!write(false).is_retryable());
        assert!(write(true).to_string().contains("g.log at offset 16"));
        let sync = JournalError::Sync {
            path: "g.log".into(),
            source: io(io::ErrorKind::Other),
        };
        assert!(!sync.is_retryable());
        let io_err = |kind| JournalError::Io {
            action: "reading",
            path: "d".into(),
            source: io(kind),
        };
        assert!(io_err(io::ErrorKind::StorageFull).is_retryable());
        assert!(!io_err(io::ErrorKind::PermissionDenied).is_retryable());
    }

    #[test]
    fn log_lines_never_hold_a_whole_document() {
        let c = change(12_345_678, &[3], true, 0);
        let shown = format!("{c:?} {:?}", grant(12_345_678, 0));
        assert!(!shown.contains("12345678"), "{shown}");
    }
}
