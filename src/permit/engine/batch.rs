//! The batch path: a batch's requests sorted by shard, each shard locked once, the home
//! lines of its requests read before any is decided (see the engine's module docs).

use super::table::{Probe, Probes, Table, grant_probe, key};
use super::{QuotaEngine, SHARDS, precheck, shard_of};
use crate::permit::clock::Moment;
use crate::permit::decision::{Decision, Denial, Outcome};
use crate::permit::request::PermitRequest;
use crate::permit::rules::Rules;
use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::{MutexGuard, TryLockError};

/// Shards a batch locks at once. Taking a lock is an atomic instruction that waits for the
/// loads before it, so touching shard after shard under one lock each leaves only that
/// shard's misses to overlap; a window of shards locked first overlaps all of theirs. More
/// helps one thread and hurts two, which find more shards taken (measured with 16 shards,
/// batches of 256 at 1M documents: one thread 43 ns a decision with 1, 38 with 4, 37 with
/// all 16; two threads 19, 20 and 40 ns).
const WINDOW: usize = 4;

/// Reusable buffers for [`QuotaEngine::decide_batch_with`] and
/// [`QuotaEngine::peek_batch_with`]: once they have grown to the
/// batch size, deciding a batch allocates nothing.
#[derive(Debug)]
pub struct BatchScratch {
    /// The requests that need state, in request order.
    staged: Vec<Job>,
    /// The same, grouped by shard, in request order within a shard.
    jobs: Vec<Job>,
    /// `jobs[starts[s]..starts[s + 1]]` are shard `s`'s.
    starts: [u32; SHARDS + 1],
}

/// One request of a batch that needs state: where its decision goes, and its keys hashed.
#[derive(Debug, Clone, Copy, Default)]
struct Job {
    /// The group entry's key; a code that shares its group hashes its grant key when it is
    /// decided (24 bytes a job instead of 40: less to copy in the sort).
    group: Probe,
    /// Index of the request in the batch.
    index: u32,
    code: u8,
    shard: u8,
    shared: bool,
}

impl Job {
    /// The job's [`Probes`]; `hasher` is the engine's (any table's copy).
    #[inline]
    fn probes(&self, hasher: &foldhash::fast::RandomState) -> Probes {
        Probes {
            group: self.group,
            grant: if self.shared {
                grant_probe(hasher, self.group.key, self.code)
            } else {
                Probe::default()
            },
        }
    }
}

impl BatchScratch {
    /// Empty buffers; they grow on first use.
    pub fn new() -> Self {
        BatchScratch {
            staged: Vec::new(),
            jobs: Vec::new(),
            starts: [0; SHARDS + 1],
        }
    }

    /// Gives back what one huge batch (a replay, say) made the buffers grow to, so a
    /// thread's scratch stays the size of an ordinary batch.
    fn trim(&mut self) {
        const KEEP: usize = 1 << 14;
        if self.staged.capacity() > KEEP {
            self.staged = Vec::with_capacity(KEEP);
            self.jobs = Vec::with_capacity(KEEP);
        }
    }
}

impl Default for BatchScratch {
    fn default() -> Self {
        Self::new()
    }
}

thread_local! {
    /// The scratch of [`QuotaEngine::decide_batch`] and [`QuotaEngine::peek_batch`]: one per
    /// thread, so the convenience forms do not allocate per batch either.
    static SCRATCH: RefCell<BatchScratch> = RefCell::new(BatchScratch::new());
}

impl QuotaEngine {
    /// Decides many requests at one instant, taking each shard's lock once; see
    /// [`QuotaEngine::decide_batch_with`]. Appends one decision per request to `out`, in
    /// request order.
    pub fn decide_batch(
        &self,
        rules: &Rules,
        requests: &[PermitRequest],
        now: i64,
        out: &mut Vec<Decision>,
    ) {
        SCRATCH.with_borrow_mut(|scratch| {
            self.decide_batch_with(rules, requests, now, out, scratch);
            scratch.trim();
        });
    }

    /// Decides many requests at one instant (the clock and the calendar are read once) and
    /// appends one decision per request to `out`, in request order. The decisions are those
    /// of deciding the requests one by one in order, the same document twice included.
    ///
    /// Why it is faster than a loop of [`QuotaEngine::decide_at`]: the batch is sorted by
    /// shard, each shard is locked once, and the home lines of all its requests are read
    /// before any is decided, so their DRAM misses overlap instead of queueing. A shard
    /// another thread holds is skipped and returned to last, so two batching threads rarely
    /// wait for each other.
    pub fn decide_batch_with(
        &self,
        rules: &Rules,
        requests: &[PermitRequest],
        now: i64,
        out: &mut Vec<Decision>,
        scratch: &mut BatchScratch,
    ) {
        self.batch::<true>(rules, requests, now, out, scratch);
    }

    /// What [`QuotaEngine::peek_at`] would answer for each request, at one instant, without
    /// recording anything; see [`QuotaEngine::peek_batch_with`]. Appends one decision per
    /// request to `out`, in request order.
    pub fn peek_batch(
        &self,
        rules: &Rules,
        requests: &[PermitRequest],
        now: i64,
        out: &mut Vec<Decision>,
    ) {
        SCRATCH.with_borrow_mut(|scratch| {
            self.peek_batch_with(rules, requests, now, out, scratch);
            scratch.trim();
        });
    }

    /// The tentative decisions of a batch: for each request, what [`QuotaEngine::peek_at`]
    /// would answer at `now`, appended to `out` in request order. Nothing is committed, so
    /// the same document twice in one batch gets two answers as if each were alone (two
    /// possible grants, say): the gateway's claims settle which one goes to the store.
    ///
    /// The same path as [`QuotaEngine::decide_batch_with`] (one lock per shard, misses
    /// overlapped), only without the writes.
    pub fn peek_batch_with(
        &self,
        rules: &Rules,
        requests: &[PermitRequest],
        now: i64,
        out: &mut Vec<Decision>,
        scratch: &mut BatchScratch,
    ) {
        self.batch::<false>(rules, requests, now, out, scratch);
    }

    /// The batch path of [`QuotaEngine::decide_batch_with`] (`COMMIT`) and
    /// [`QuotaEngine::peek_batch_with`] (not): one loop, the writes switched by `COMMIT` as
    /// in [`Table::decide`].
    fn batch<const COMMIT: bool>(
        &self,
        rules: &Rules,
        requests: &[PermitRequest],
        now: i64,
        out: &mut Vec<Decision>,
        scratch: &mut BatchScratch,
    ) {
        // Jobs index requests with a `u32`.
        const MAX_BATCH: usize = u32::MAX as usize;
        if requests.len() > MAX_BATCH {
            for part in requests.chunks(MAX_BATCH) {
                self.batch::<COMMIT>(rules, part, now, out, scratch);
            }
            return;
        }
        let m = rules.calendar.moment(now);
        let base = out.len();
        out.reserve(requests.len());
        scratch.staged.clear();
        let mut counts = [0u32; SHARDS];
        let staged = &mut scratch.staged;
        out.extend(requests.iter().enumerate().map(|(index, r)| {
            let outcome = match precheck(rules, &self.blocks, r.code, r.document, now) {
                Ok(rule) => {
                    let shard = shard_of(r.document);
                    counts[shard] += 1;
                    let group = key(r.document, u16::from(rule.group_tag));
                    staged.push(Job {
                        group: Probe {
                            key: group,
                            hash: self.hasher.hash_one(group),
                        },
                        index: index as u32,
                        code: r.code,
                        shard: shard as u8,
                        shared: rule.shared,
                    });
                    // Overwritten below, once the shard is locked.
                    Outcome::Denied(Denial::UnknownCode)
                }
                Err(denial) => Outcome::Denied(denial),
            };
            Decision {
                code: r.code,
                document: r.document,
                outcome,
            }
        }));

        // Counting sort by shard; stable, so each shard's requests stay in request order.
        let mut next = [0u32; SHARDS];
        let mut pending = 0u64;
        let mut sum = 0;
        for (s, &count) in counts.iter().enumerate() {
            scratch.starts[s] = sum;
            next[s] = sum;
            sum += count;
            if count > 0 {
                pending |= 1 << s;
            }
        }
        scratch.starts[SHARDS] = sum;
        scratch.jobs.clear();
        scratch.jobs.resize(scratch.staged.len(), Job::default());
        for job in &scratch.staged {
            let slot = &mut next[usize::from(job.shard)];
            scratch.jobs[*slot as usize] = *job;
            *slot += 1;
        }

        let out = &mut out[base..];
        let jobs =
            |s: usize| &scratch.jobs[scratch.starts[s] as usize..scratch.starts[s + 1] as usize];
        // Windows of up to `WINDOW` shards nobody holds: lock them (`try_lock`, so a batch
        // never waits while it holds a lock and cannot deadlock), start the misses of all
        // their requests, then decide shard by shard, letting each go when done. Start where
        // this batch's first request is, so two threads do not walk the shards in step.
        let first = scratch.staged.first().map_or(0, |j| usize::from(j.shard));
        let mut held: [Option<(usize, MutexGuard<'_, Table>)>; WINDOW] = Default::default();
        let mut k = 0;
        while k < SHARDS {
            let mut taken = 0;
            while k < SHARDS && taken < WINDOW {
                let s = (first + k) % SHARDS;
                k += 1;
                if pending & (1 << s) == 0 {
                    continue;
                }
                let table = match self.shards[s].0.try_lock() {
                    Ok(table) => table,
                    Err(TryLockError::Poisoned(p)) => p.into_inner(),
                    Err(TryLockError::WouldBlock) => continue,
                };
                held[taken] = Some((s, table));
                taken += 1;
            }
            let mut seen = 0;
            for (s, table) in held[..taken].iter().flatten() {
                seen ^= touch(table, jobs(*s));
            }
            std::hint::black_box(seen);
            for slot in held[..taken].iter_mut() {
                if let Some((s, mut table)) = slot.take() {
                    decide_in_shard::<COMMIT>(&mut table, rules, jobs(s), &m, out);
                    pending &= !(1 << s);
                }
            }
        }
        // Then the shards that were busy, waiting for each with no other lock held.
        while pending != 0 {
            let s = pending.trailing_zeros() as usize;
            let mut table = self.shards[s].lock();
            std::hint::black_box(touch(&table, jobs(s)));
            decide_in_shard::<COMMIT>(&mut table, rules, jobs(s), &m, out);
            pending &= !(1 << s);
        }
        if self.permits.is_some() {
            for decision in out.iter_mut() {
                self.unless_revoked(decision);
            }
        }
    }
}

/// Reads the first line of every probe of `jobs`: independent plain loads, so the CPU has
/// all their misses in flight at once, and when the jobs are decided their lines are in
/// cache. The value is meaningless (it keeps the loads from being optimised away).
#[inline]
fn touch(table: &Table, jobs: &[Job]) -> u64 {
    let mut seen = 0u64;
    for job in jobs {
        seen ^= table.touch(job.group.hash);
    }
    for job in jobs.iter().filter(|j| j.shared) {
        seen ^= table.touch(grant_probe(&table.hasher, job.group.key, job.code).hash);
    }
    seen
}

/// Decides one shard's share of a batch under its lock, in request order (with `COMMIT`
/// false, only tentatively: see [`Table::decide`]).
#[inline]
fn decide_in_shard<const COMMIT: bool>(
    table: &mut Table,
    rules: &Rules,
    jobs: &[Job],
    m: &Moment,
    out: &mut [Decision],
) {
    for job in jobs {
        if let Some(rule) = rules.code(job.code) {
            let probes = job.probes(&table.hasher);
            out[job.index as usize].outcome = table.decide::<COMMIT>(rule, probes, m);
        }
    }
}
