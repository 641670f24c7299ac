//! The data directory: its lock, the day segments it holds and their expiry, syncs, and
//! one open file.

use super::error::{JournalError, io_error};
use super::format::{HEADER_LEN, LOCK_FILE, header, segment_day};
use crate::permit::clock::Calendar;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The first local day whose segment is kept at `now`: the day a permit issued
/// `longest_validity_secs` ago was issued on (an older grant has expired and its day's quota
/// no longer counts), but never later than yesterday, a day of slack for a clock stepped back
/// and for checking yesterday's permits.
pub(super) fn first_kept_day(calendar: &Calendar, now: i64, longest_validity_secs: u32) -> i32 {
    let today = calendar.moment(now).day;
    let oldest_active = calendar
        .moment(now.saturating_sub(i64::from(longest_validity_secs)))
        .day;
    oldest_active.min(today - 1)
}

/// The segment files in `dir`, oldest day first.
pub(super) fn list_segments(dir: &Path) -> Result<Vec<(i32, PathBuf)>, JournalError> {
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
pub(super) fn remove_segments_before(
    dir: &Path,
    keep_from: i32,
) -> Result<Vec<PathBuf>, JournalError> {
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
pub(super) fn lock_dir(dir: &Path) -> Result<File, JournalError> {
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
pub(super) fn sync_file(file: &File, path: &Path) -> Result<(), JournalError> {
    sync_data(file).map_err(|e| sync_error(path, e))
}

/// `fdatasync` of a file, timed for the fsync histogram.
pub(super) fn sync_data(file: &File) -> io::Result<()> {
    let started = std::time::Instant::now();
    let synced = file.sync_data();
    crate::telemetry::metrics::JOURNAL_FSYNC.observe(started.elapsed().as_secs_f64());
    synced
}

/// A failed sync of `path`.
pub(super) fn sync_error(path: &Path, e: io::Error) -> JournalError {
    JournalError::Sync {
        path: path.to_path_buf(),
        source: Arc::new(e),
    }
}

/// `fsync` of a directory, so created, renamed and removed names are durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::Sync {
            path: dir.to_path_buf(),
            source: Arc::new(e),
        })
}

/// One open journal file and its length (where the next round's bytes go).
pub(super) struct Segment {
    pub(super) path: PathBuf,
    /// Shared with the sync threads ([`super::syncers`]) while a round syncs.
    pub(super) file: Arc<File>,
    pub(super) len: u64,
}

impl Segment {
    /// Opens `path` for appending, creating it with its header if missing or empty. Returns
    /// with the header unsynced: the caller syncs it with the first round (or at once).
    pub(super) fn open(path: PathBuf, kind: u8, day: i32) -> io::Result<(Segment, bool)> {
        let mut file = OpenOptions::new().append(true).create(true).open(&path)?;
        let mut len = file.metadata()?.len();
        let created = len == 0;
        if created {
            file.write_all(&header(kind, day))?;
            len = HEADER_LEN as u64;
        }
        Ok((
            Segment {
                path,
                file: Arc::new(file),
                len,
            },
            created,
        ))
    }
}
