//! The batching task: it gathers the asks of every caller into pipelines, retries what Redis
//! can recover from with backoff, and answers each caller.

use super::backend::Backend;
use super::error::RedisError;
use super::options::WaitAof;
use super::{GrantAsk, Job, RedisVerdict};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;

/// First pause between two attempts of a failed ask; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// Longest pause between two attempts, so a Redis that is back is used within this.
const MAX_BACKOFF: Duration = Duration::from_millis(400);

/// The batcher's settings.
pub(super) struct Tuning {
    pub(super) batch_max: usize,
    pub(super) flush_after: Duration,
    pub(super) retry_for: Duration,
    pub(super) waitaof: Option<WaitAof>,
    pub(super) jitter_secs: u64,
    /// Seeded at random per store: the jitter of a key, and ask ids.
    pub(super) hasher: foldhash::fast::RandomState,
    /// Asks given an id so far.
    pub(super) asks: AtomicU64,
    /// The key of permit ids, when grants also write the permit index.
    pub(super) permit_key: Option<crate::permit::id::PermitKey>,
}

impl Tuning {
    /// The `EXAT` of the keys `ask` writes: its expiry, at least the permit's end, plus a
    /// jitter that is random per store but the same for every attempt of one ask.
    pub(super) fn expire_at(&self, ask: &GrantAsk) -> i64 {
        let jitter = if self.jitter_secs == 0 {
            0
        } else {
            let h = self
                .hasher
                .hash_one((ask.document.packed(), ask.group_tag, ask.now));
            (h % (self.jitter_secs + 1)) as i64
        };
        ask.expire_at.max(ask.until()) + jitter
    }

    /// A fresh ask id: random per store (the hasher's seed), distinct within it, never 0.
    pub(super) fn ask_id(&self) -> u64 {
        self.hasher
            .hash_one(self.asks.fetch_add(1, Ordering::Relaxed))
            .max(1)
    }
}

/// The background task that gathers asks into pipelines.
pub(super) struct Batcher {
    pub(super) backend: Arc<Backend>,
    pub(super) tuning: Tuning,
    pub(super) in_flight: Arc<Semaphore>,
}

impl Batcher {
    /// Gathers jobs until `flush_after` has passed since the first or `batch_max` asks wait,
    /// then sends them on a task of its own (at most `pipelines_in_flight` attempts at once;
    /// a batch waiting to retry holds no place, so a shard that is away cannot take every
    /// place and stall the asks for the healthy ones). Ends when every
    /// [`RedisStore`](super::RedisStore) clone is gone.
    pub(super) async fn run(self, mut jobs: mpsc::Receiver<Job>) {
        let tuning = Arc::new(self.tuning);
        while let Some(first) = jobs.recv().await {
            let mut asks = first.asks.len();
            let mut batch = vec![first];
            let deadline = Instant::now() + tuning.flush_after;
            while asks < tuning.batch_max {
                let job = match jobs.try_recv() {
                    Ok(job) => job,
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        match tokio::time::timeout_at(deadline, jobs.recv()).await {
                            Ok(Some(job)) => job,
                            Ok(None) | Err(_) => break,
                        }
                    }
                };
                asks += job.asks.len();
                batch.push(job);
            }
            let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                break;
            };
            let backend = self.backend.clone();
            let tuning = tuning.clone();
            let in_flight = self.in_flight.clone();
            tokio::spawn(async move {
                run_batch(&backend, &tuning, batch, &in_flight, permit).await;
            });
        }
    }
}

/// One ask of a batch in flight.
pub(super) struct Pending {
    pub(super) ask: GrantAsk,
    /// `EXAT` of its keys, fixed for every attempt.
    pub(super) expire_at: i64,
    /// Kept with the permit it makes, the same for every attempt: a retry after a lost
    /// reply finds its own grant.
    pub(super) id: u64,
    /// Index of its job in the batch.
    pub(super) job: usize,
    /// The id a grant for it gets, when the permit index is written.
    pub(super) permit: Option<crate::permit::id::PermitId>,
    /// Retried until then (its job's): `retry_for` after the job's oldest MO was read.
    pub(super) give_up_at: Instant,
}

/// A job of a batch in flight.
struct JobState {
    results: Vec<Option<Result<RedisVerdict, RedisError>>>,
    first: usize,
    left: usize,
    done: Option<oneshot::Sender<Vec<Result<RedisVerdict, RedisError>>>>,
}

impl JobState {
    /// Settles ask `i` of the batch (the job's `i - first`), and sends the results once
    /// every ask has one. An ask that failed fails alone: the job's other asks are still
    /// decided (and retried) as before.
    fn settle(&mut self, i: usize, result: Result<RedisVerdict, RedisError>) {
        let slot = &mut self.results[i - self.first];
        if slot.is_none() {
            *slot = Some(result);
            self.left -= 1;
        }
        if self.left == 0
            && let Some(done) = self.done.take()
        {
            let results = self.results.drain(..).flatten().collect();
            let _ = done.send(results);
        }
    }

    fn open(&self) -> bool {
        self.done.is_some()
    }
}

/// What one attempt made of one ask.
pub(super) enum AskOutcome {
    /// Decided.
    Done(RedisVerdict),
    /// Worth another attempt.
    Retry(Fault),
    /// Final.
    Failed(RedisError),
}

/// A failure worth retrying, and what it says about the ask.
#[derive(Clone)]
pub(super) enum Fault {
    /// redis-rs failed the command or the whole pipeline.
    Redis {
        node: String,
        error: Arc<redis::RedisError>,
    },
    /// `WAITAOF` confirmed too few AOFs: the command ran.
    NotDurable(RedisError),
}

/// What the store should repair before the next attempt.
#[derive(Default)]
pub(super) struct Repairs {
    pub(super) reload_library: bool,
    pub(super) refresh_slots: bool,
}

/// Decides a batch: attempts, retries with backoff until `retry_for`, answers every job.
/// Each attempt holds a place of `in_flight` (`first` is the first attempt's), given back
/// before the pause to a retry. A job is answered as soon as its own asks are decided: in a
/// cluster, as soon as the sub-pipelines of their primaries answer, whatever the others do.
async fn run_batch(
    backend: &Backend,
    tuning: &Tuning,
    jobs: Vec<Job>,
    in_flight: &Arc<Semaphore>,
    first: OwnedSemaphorePermit,
) {
    let mut pending = Vec::new();
    let mut states = Vec::with_capacity(jobs.len());
    let started = Instant::now();
    for (j, job) in jobs.into_iter().enumerate() {
        let since = job.read_at.map_or(started, |at| at.min(started));
        let give_up_at = since + tuning.retry_for;
        states.push(JobState {
            results: vec![None; job.asks.len()],
            first: pending.len(),
            left: job.asks.len(),
            done: Some(job.done),
        });
        pending.extend(job.asks.iter().map(|&ask| {
            Pending {
                ask,
                expire_at: tuning.expire_at(&ask),
                id: tuning.ask_id(),
                job: j,
                permit: tuning
                    .permit_key
                    .as_ref()
                    .map(|k| k.permit_id(ask.document, ask.code, ask.now, ask.until())),
                give_up_at,
            }
        }));
    }
    let mut todo: Vec<usize> = (0..pending.len()).collect();
    let mut backoff = MIN_BACKOFF;
    let mut attempts = 0u32;
    let mut place = Some(first);
    loop {
        let mut held = match place.take() {
            Some(place) => Some(place),
            None => match in_flight.clone().acquire_owned().await {
                Ok(place) => Some(place),
                Err(_) => {
                    for &i in &todo {
                        states[pending[i].job].settle(i, Err(RedisError::Closed));
                    }
                    return;
                }
            },
        };
        attempts += 1;
        let mut repairs = Repairs::default();
        let mut retry = Vec::new();
        // Asks for a primary that has been away for a while: not retried (see
        // `Backend::away_long`).
        let mut given_up = Vec::new();
        let mut last_fault = None;
        backend
            .attempt(
                &pending,
                &todo,
                tuning.waitaof,
                &mut repairs,
                &mut held,
                &mut |i, outcome| {
                    let state = &mut states[pending[i].job];
                    if !state.open() {
                        return;
                    }
                    match outcome {
                        AskOutcome::Done(verdict) => state.settle(i, Ok(verdict)),
                        AskOutcome::Failed(error) => state.settle(i, Err(error)),
                        AskOutcome::Retry(fault) => {
                            if let Fault::Redis { node, .. } = &fault
                                && backend.away_long(node)
                            {
                                given_up.push(i);
                            }
                            retry.push(i);
                            last_fault = Some(fault);
                        }
                    }
                },
            )
            .await;
        drop(held);
        given_up.sort_unstable();
        retry.retain(|&i| states[pending[i].job].open());
        // In the order asked, so a document's asks are decided in that order again.
        retry.sort_unstable();
        let Some(fault) = last_fault.filter(|_| !retry.is_empty()) else {
            return;
        };
        let now = Instant::now();
        let waited = now - started;
        // Asks whose MOs have waited `retry_for` since they were read, or whose primary
        // has been away for a while, fail now; the rest are tried again.
        let (expired, alive): (Vec<usize>, Vec<usize>) = retry
            .iter()
            .partition(|&&i| pending[i].give_up_at <= now || given_up.binary_search(&i).is_ok());
        if !expired.is_empty() {
            let error = match fault.clone() {
                Fault::Redis { node, error, .. } => RedisError::Unavailable {
                    node,
                    waited,
                    attempts,
                    source: error,
                },
                Fault::NotDurable(error) => error,
            };
            tracing::warn!(asks = expired.len(), %error, "redis: asks failed after retrying");
            for &i in &expired {
                states[pending[i].job].settle(i, Err(error.clone()));
            }
        }
        let retry = alive;
        let Some(next_give_up) = retry.iter().map(|&i| pending[i].give_up_at).min() else {
            return;
        };
        if attempts == 1 {
            match &fault {
                Fault::Redis { node, error, .. } => {
                    tracing::warn!(asks = retry.len(), %node, %error, "redis: asks failed, retrying")
                }
                Fault::NotDurable(error) => {
                    tracing::warn!(asks = retry.len(), %error, "redis: durability not confirmed, retrying")
                }
            }
        }
        tokio::time::sleep(backoff.min(next_give_up.saturating_duration_since(now))).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        backend.repair(repairs).await;
        todo = retry;
    }
}

#[cfg(test)]
mod tests {
    use super::super::pipeline::hex;
    use super::super::tests::{ask, doc};
    use super::*;

    #[test]
    fn expiry_has_bounded_jitter_and_outlives_the_permit() {
        let tuning = Tuning {
            batch_max: 1,
            flush_after: Duration::ZERO,
            retry_for: Duration::ZERO,
            waitaof: None,
            jitter_secs: 600,
            hasher: foldhash::fast::RandomState::default(),
            asks: AtomicU64::new(0),
            permit_key: None,
        };
        let mut a = ask(false);
        let mut seen = std::collections::HashSet::new();
        for n in 0..200 {
            a.document = doc(&format!("AZE{:08}", n));
            let at = tuning.expire_at(&a);
            assert!((a.expire_at..=a.expire_at + 600).contains(&at));
            assert_eq!(at, tuning.expire_at(&a), "the same ask, the same expiry");
            seen.insert(at);
        }
        assert!(seen.len() > 50, "jitter spreads expiries: {}", seen.len());
        a.expire_at = a.now;
        assert!(tuning.expire_at(&a) >= a.until());
    }

    #[test]
    fn ask_ids_are_distinct_hex_and_never_zero() {
        let tuning = Tuning {
            batch_max: 1,
            flush_after: Duration::ZERO,
            retry_for: Duration::ZERO,
            waitaof: None,
            jitter_secs: 0,
            hasher: foldhash::fast::RandomState::default(),
            asks: AtomicU64::new(0),
            permit_key: None,
        };
        let ids: std::collections::HashSet<u64> = (0..10_000).map(|_| tuning.ask_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(!ids.contains(&0));
        let mut buf = [0u8; 16];
        assert_eq!(hex(0x1f, &mut buf), b"1f");
        assert_eq!(hex(u64::MAX, &mut buf), b"ffffffffffffffff");
        assert_eq!(hex(0, &mut buf), b"0");
    }
}
