//! The last ten minutes, second by second: MOs per second and reply time p50/p99, for the
//! console's charts (`GET /v1/now`).
//!
//! Sampled once a second from counters the gateway keeps anyway (every operator's MO
//! counters and the `mo_to_mt` histogram): nothing is added per MO. A ring of
//! [`SECONDS`] samples bounds the memory (~30 KB).

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Samples kept: ten minutes at one a second.
pub const SECONDS: usize = 600;

/// One sample: what happened since the one before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Second {
    /// When it was taken, Unix seconds (the gateway's clock).
    pub at: i64,
    /// MOs taken per second since the sample before.
    pub mos_per_s: f64,
    /// Replies delivered since the sample before.
    pub replies: u64,
    /// Their MO→MT time, median, ms (none when no reply was delivered).
    pub p50_ms: Option<f64>,
    /// Their MO→MT time, 99th percentile, ms.
    pub p99_ms: Option<f64>,
}

/// The counters as read at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// MOs counted since start.
    pub mos: u64,
    /// The MO→MT histogram, cumulative: `(upper bound in seconds, replies at or under it)`.
    pub replies: Vec<(f64, u64)>,
}

#[derive(Debug, Default)]
struct Ring {
    seconds: VecDeque<Second>,
    last: Option<(tokio::time::Instant, Reading)>,
}

/// The ring of the last [`SECONDS`] samples. Safe to share.
#[derive(Debug, Default)]
pub struct History {
    ring: Mutex<Ring>,
}

/// The `q` quantile, ms, of the replies between two cumulative readings of one histogram,
/// interpolated within its bucket (the open bucket answers its lower bound).
fn quantile_ms(before: &[(f64, u64)], now: &[(f64, u64)], q: f64) -> Option<f64> {
    let count = |i: usize| {
        let b = before.get(i).map_or(0, |b| b.1);
        now[i].1.saturating_sub(b)
    };
    let total = count(now.len().checked_sub(1)?);
    if total == 0 {
        return None;
    }
    let want = (q * total as f64).ceil().max(1.0);
    let (mut lower, mut below) = (0.0, 0u64);
    for (i, &(upper, _)) in now.iter().enumerate() {
        let upto = count(i);
        if upto as f64 >= want {
            if upper.is_infinite() {
                return Some(lower * 1000.0);
            }
            let share = (want - below as f64) / (upto - below).max(1) as f64;
            return Some((lower + (upper - lower) * share) * 1000.0);
        }
        (lower, below) = (upper, upto);
    }
    Some(lower * 1000.0)
}

impl History {
    /// Adds the sample of `reading`, taken at `at` (Unix seconds) and `now` (monotonic):
    /// its rates are over the time since the last one. The first reading only sets the
    /// base.
    pub fn sample(&self, at: i64, now: tokio::time::Instant, reading: Reading) {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((then, last)) = &ring.last {
            let secs = now.duration_since(*then).as_secs_f64().max(0.001);
            let same_buckets = last.replies.len() == reading.replies.len();
            let before: &[(f64, u64)] = if same_buckets { &last.replies } else { &[] };
            let total = |b: &[(f64, u64)]| b.last().map_or(0, |l| l.1);
            let replies = total(&reading.replies).saturating_sub(total(before));
            let second = Second {
                at,
                mos_per_s: reading.mos.saturating_sub(last.mos) as f64 / secs,
                replies,
                p50_ms: quantile_ms(before, &reading.replies, 0.5),
                p99_ms: quantile_ms(before, &reading.replies, 0.99),
            };
            if ring.seconds.len() == SECONDS {
                ring.seconds.pop_front();
            }
            ring.seconds.push_back(second);
        }
        ring.last = Some((now, reading));
    }

    /// The samples kept, oldest first.
    pub fn seconds(&self) -> Vec<Second> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.seconds.iter().copied().collect()
    }

    /// Samples `read()` (the wall clock's Unix seconds and the counters) once a second
    /// until `shutdown`; a tick missed under load is skipped, not made up, and the next
    /// sample's rates cover the longer gap.
    pub async fn run(&self, read: impl Fn() -> (i64, Reading), shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                at = tick.tick() => {
                    let (wall, reading) = read();
                    self.sample(wall, at, reading);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn buckets(under_1ms: u64, under_10ms: u64, over: u64) -> Vec<(f64, u64)> {
        vec![
            (0.001, under_1ms),
            (0.010, under_1ms + under_10ms),
            (f64::INFINITY, under_1ms + under_10ms + over),
        ]
    }

    #[test]
    fn a_sample_is_the_rate_and_the_quantiles_since_the_one_before() {
        let h = History::default();
        let t0 = tokio::time::Instant::now();
        h.sample(
            100,
            t0,
            Reading {
                mos: 1_000,
                replies: buckets(50, 0, 0),
            },
        );
        assert!(h.seconds().is_empty(), "the first reading is the base");
        h.sample(
            102,
            t0 + Duration::from_secs(2),
            Reading {
                mos: 1_300,
                replies: buckets(50 + 90, 9, 1),
            },
        );
        let s = h.seconds();
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].at, s[0].mos_per_s, s[0].replies), (102, 150.0, 100));
        let p50 = s[0].p50_ms.unwrap();
        assert!(p50 > 0.0 && p50 <= 1.0, "{p50}");
        let p99 = s[0].p99_ms.unwrap();
        assert!(p99 > 1.0 && p99 <= 10.001, "{p99}");
        h.sample(
            103,
            t0 + Duration::from_secs(3),
            Reading {
                mos: 1_300,
                replies: buckets(140, 9, 1),
            },
        );
        let quiet = h.seconds()[1];
        assert_eq!(
            (quiet.mos_per_s, quiet.replies, quiet.p50_ms),
            (0.0, 0, None)
        );
    }

    #[test]
    fn the_ring_keeps_ten_minutes() {
        let h = History::default();
        let t0 = tokio::time::Instant::now();
        for i in 0..=(SECONDS as u64 + 100) {
            h.sample(
                i as i64,
                t0 + Duration::from_secs(i),
                Reading {
                    mos: i,
                    replies: Vec::new(),
                },
            );
        }
        let s = h.seconds();
        assert_eq!(s.len(), SECONDS);
        assert_eq!(s.first().unwrap().at, 101);
        assert_eq!(s.last().unwrap().at, SECONDS as i64 + 100);
    }

    #[tokio::test(start_paused = true)]
    async fn it_samples_once_a_second_until_shutdown() {
        let h = Arc::new(History::default());
        let mos = Arc::new(AtomicU64::new(0));
        let shutdown = CancellationToken::new();
        let task = {
            let (h, mos, shutdown) = (h.clone(), mos.clone(), shutdown.clone());
            tokio::spawn(async move {
                let read = || {
                    (
                        0,
                        Reading {
                            mos: mos.load(Ordering::Relaxed),
                            replies: Vec::new(),
                        },
                    )
                };
                h.run(read, shutdown).await;
            })
        };
        for _ in 0..5 {
            tokio::task::yield_now().await;
            mos.fetch_add(7, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tokio::task::yield_now().await;
        let s = h.seconds();
        assert_eq!(s.len(), 5, "{s:?}");
        assert!(s.iter().all(|s| s.mos_per_s == 7.0), "{s:?}");
        shutdown.cancel();
        task.await.unwrap();
    }
}
