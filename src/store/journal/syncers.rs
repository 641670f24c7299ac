//! Threads kept for the side-by-side syncs of a commit round.
//!
//! A round that touched several files (a day's grants and `outbox.log`, the usual case)
//! syncs them at once, so it waits for the slowest rather than their sum: the writer syncs
//! the first and hands the others to these threads. They live as long as the writer: a
//! thread spawned per round (as `std::thread::scope` did) cost a clone, a stack mapped and
//! unmapped and an exit each time, ~670 a second at 50,000 MO/s, more CPU than the syncs.

use super::files::sync_data;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};

/// One kept thread: a file in, its `fdatasync`'s result out.
struct Helper {
    jobs: Sender<Arc<File>>,
    done: Receiver<io::Result<()>>,
}

impl Helper {
    fn spawn(n: usize) -> io::Result<Helper> {
        let (jobs, job_rx) = mpsc::channel::<Arc<File>>();
        let (done_tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("icaze-sync-{n}"))
            .spawn(move || {
                // Ends when the writer (and so `jobs`) is gone.
                while let Ok(file) = job_rx.recv() {
                    if done_tx.send(sync_data(&file)).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Helper { jobs, done })
    }
}

/// The kept threads, started as a round first needs them (one per file synced beside the
/// writer's own).
#[derive(Default)]
pub(super) struct Syncers {
    helpers: Vec<Helper>,
}

impl Syncers {
    /// Syncs `first` on this thread and each of `others` on a kept thread, all at once;
    /// one result per file, `first`'s first. A helper that cannot be started or has died
    /// leaves its file to be synced here, after `first`.
    pub(super) fn sync_all(&mut self, first: &File, others: &[Arc<File>]) -> Vec<io::Result<()>> {
        let mut handed = Vec::with_capacity(others.len());
        for (k, file) in others.iter().enumerate() {
            if self.helpers.len() == k {
                match Helper::spawn(k) {
                    Ok(h) => self.helpers.push(h),
                    Err(e) => {
                        tracing::warn!(error = %e, "journal: cannot start a sync thread; syncing in turn");
                        handed.push(false);
                        continue;
                    }
                }
            }
            handed.push(self.helpers[k].jobs.send(file.clone()).is_ok());
        }
        let mut results = Vec::with_capacity(1 + others.len());
        results.push(sync_data(first));
        let mut dead = None;
        for (k, file) in others.iter().enumerate() {
            let answered = if handed[k] {
                self.helpers.get(k).and_then(|h| h.done.recv().ok())
            } else {
                None
            };
            if answered.is_none() && k < self.helpers.len() {
                dead.get_or_insert(k);
            }
            results.push(answered.unwrap_or_else(|| sync_data(file)));
        }
        // A helper that died (its channel closed) is started afresh next time.
        if let Some(k) = dead {
            self.helpers.truncate(k);
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn every_file_is_synced_and_the_threads_are_kept_between_rounds() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            let mut f = File::create(dir.path().join(name)).unwrap();
            f.write_all(b"x").unwrap();
            f
        };
        let first = open("a");
        let others: Vec<Arc<File>> = ["b", "c"].iter().map(|n| Arc::new(open(n))).collect();
        let mut syncers = Syncers::default();
        for _ in 0..50 {
            let results = syncers.sync_all(&first, &others);
            assert_eq!(results.len(), 3);
            assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
        }
        // Two kept threads served all 50 rounds.
        assert_eq!(syncers.helpers.len(), 2);
        let one = syncers.sync_all(&first, &others[..1]);
        assert_eq!(one.len(), 2);
        assert_eq!(syncers.helpers.len(), 2);
    }

    #[test]
    fn a_failed_sync_is_reported_for_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = File::create(dir.path().join("a")).unwrap();
        // A pipe's write end cannot be fdatasynced (EINVAL).
        let (_r, w) = std::io::pipe().unwrap();
        let bad: File = std::os::fd::OwnedFd::from(w).into();
        let mut syncers = Syncers::default();
        let results = syncers.sync_all(&good, &[Arc::new(bad)]);
        assert!(results[0].is_ok());
        assert!(results[1].is_err(), "{results:?}");
    }
}
