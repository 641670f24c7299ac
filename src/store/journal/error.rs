//! [`JournalError`]: why the journal could not open, write or compact, and whether a retry
//! can help.

use super::format::VERSION;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
pub(super) fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(io::Error) -> JournalError {
    move |source| JournalError::Io {
        action,
        path: path.to_path_buf(),
        source: Arc::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
