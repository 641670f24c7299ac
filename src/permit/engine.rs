//! The quota engine: the hot path, in memory. One decision per message, atomic per
//! document, with no allocation and one short lock; a batch of messages takes each lock
//! once.
//!
//! # State
//! Entries are keyed by `(document, tag)` packed into a `u64` (a packed document is never
//! 0, so key 0 marks an empty bucket):
//! - tag = the quota group's lowest code: the group's count of grants today and, for a
//!   group of one code (the common case), that code's latest grant;
//! - tag = 256 + code: the latest grant of a code that shares its group with others.
//!
//! Each value is 8 bytes: the latest grant's issue time (`u32` Unix seconds), its validity
//! (`u16`, see `encode_span`) and the group's count (`u16`; limits are at most 65,535).
//! There is no day field: the count belongs to the local day of the latest grant in the
//! group, whose issue time the group entry holds (for a shared group, the latest of its
//! codes' grants), so "is the count from today?" is one comparison with
//! [`Moment::day_start`].
//!
//! # Layout
//! `SHARDS` shards, each a `Mutex` around its own open-addressing table: 16-byte buckets
//! `{ key, value }`, four to a 64-byte aligned line. A key hashes (foldhash, seeded at random
//! per engine, so citizens cannot choose documents that collide) to a line and probes
//! linearly from that line's first bucket, so a lookup reads one cache line unless that
//! line is full (about 4% of lookups at half load). Past 1M documents the tables are far
//! bigger than the L3 cache and every decision costs a DRAM miss; this layout costs one
//! where hashbrown costs two (control bytes, then the bucket). Capacities are any number of
//! lines (the hash is reduced by a multiply-shift, not a mask), so a table grows by 1.5×
//! and its load stays between `MAX_LOAD`/1.5 and `MAX_LOAD` (0.44–0.67): 24–36 bytes of
//! table per entry. Keys are hashed before the lock is taken.
//!
//! The shard is chosen from the document alone, so every entry of one document sits behind
//! one lock and a decision that touches a group count and a grant is atomic without lock
//! ordering.
//!
//! # Batches
//! One decision alone waits for its miss, and the lock's atomic instructions keep the CPU
//! from starting the next decision's miss early. [`QuotaEngine::decide_batch_with`] hashes
//! the batch's keys and sorts them by shard (a counting sort into reusable scratch), then
//! takes each shard's lock once, a few shards at a time: it first reads the home line of
//! every request of those shards (plain independent loads, so the misses overlap), then
//! decides them in request order from cache. Decisions are exactly those of deciding the
//! requests one after another in request order: the sort is stable and a document's
//! requests all fall in one shard.
//!
//! Rules are passed in on each call, so a reload swaps them without touching state.

use crate::permit::clock::Moment;
pub use crate::permit::decision::{Decision, Denial, Outcome, Validity};
use crate::permit::document::{DOCUMENT_BITS, Document};
use crate::permit::request::PermitRequest;
use crate::permit::rules::{CodeRule, DailyLimit, Rules};
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

/// Shards. Fewer shards make a batch denser per shard (more misses overlapped under one
/// lock, fewer lock round trips: each lock and unlock is an atomic instruction of some 10 ns
/// here); more shards let two cores meet less often and make each table, so each growth
/// pause, smaller. At most 64 (a batch keeps its pending shards in a `u64`). Measured at 1M
/// documents: one thread, batches of 256, 39 ns a decision with 16 shards, 43 with 32; two
/// threads, batches of 1024, 21 against 18; 64 is worse for both.
const SHARDS: usize = 16;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();
const _: () = assert!(SHARDS.is_power_of_two() && SHARDS <= 64);

/// Shards a batch locks at once. Taking a lock is an atomic instruction that waits for the
/// loads before it, so touching shard after shard under one lock each leaves only that
/// shard's misses to overlap; a window of shards locked first overlaps all of theirs. More
/// helps one thread and hurts two, which find more shards taken (measured with 16 shards,
/// batches of 256 at 1M documents: one thread 43 ns a decision with 1, 38 with 4, 37 with
/// all 16; two threads 19, 20 and 40 ns).
const WINDOW: usize = 4;

/// Buckets per 64-byte line.
const SLOTS: usize = 4;
/// Lines a shard starts with.
const MIN_LINES: usize = 4;
/// The share of buckets in use at which a table grows by 1.5×, as a fraction. Below 1, so
/// a probe always meets an empty bucket and ends; low enough that few lookups leave their
/// first line (each that does is a second miss: 4% of lookups at load 0.5, 10% at 2/3, 13%
/// at 3/4); high enough that the table stays at 24–36 bytes per entry.
const MAX_LOAD: (usize, usize) = (2, 3);
/// Buckets a sweep examines per lock hold, so a sweep never stalls decisions for long.
const SWEEP_CHUNK: usize = 1 << 14;
const TAG_SHIFT: u32 = DOCUMENT_BITS;

/// A validity at or above this (in [`encode_span`]) is in whole minutes.
const SPAN_MINUTES: u16 = 0x8000;
/// The validity does not fit 16 bits; its seconds are in the shard's `wide` map.
const SPAN_WIDE: u16 = u16::MAX;

/// Validity in 16 bits: below 2^15 as seconds (every validity up to 9 h 6 min, to the
/// second), above that as whole minutes (up to 22 days); anything else is [`SPAN_WIDE`] and
/// kept exactly beside the table, so no rules file can make a permit end at another time.
fn encode_span(secs: u32) -> u16 {
    if secs < u32::from(SPAN_MINUTES) {
        secs as u16
    } else if secs.is_multiple_of(60) && secs / 60 < u32::from(SPAN_WIDE - SPAN_MINUTES) {
        SPAN_MINUTES | (secs / 60) as u16
    } else {
        SPAN_WIDE
    }
}

/// Seconds of a [`encode_span`] code; `None` for [`SPAN_WIDE`].
fn decode_span(span: u16) -> Option<u32> {
    match span {
        SPAN_WIDE => None,
        s if s >= SPAN_MINUTES => Some(u32::from(s - SPAN_MINUTES) * 60),
        s => Some(u32::from(s)),
    }
}

/// A bucket's value, unpacked (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Entry {
    /// Latest grant: issued, Unix seconds (u32 lasts until 2106). In a group entry also the
    /// day `used` counts for.
    issued: u32,
    /// Latest grant's validity, [`encode_span`]d; 0 in a shared group's entry.
    span: u16,
    /// Grants in the group on the local day of `issued`; 0 in a grant-only entry.
    used: u16,
}

impl Entry {
    fn pack(self) -> u64 {
        u64::from(self.issued) | (u64::from(self.span) << 32) | (u64::from(self.used) << 48)
    }

    fn unpack(value: u64) -> Entry {
        Entry {
            issued: value as u32,
            span: (value >> 32) as u16,
            used: (value >> 48) as u16,
        }
    }

    /// The group's count if it is from the day starting at `day_start` (or later, if the
    /// clock stepped back), else 0: a new day starts with nothing used.
    fn used_since(self, day_start: i64) -> u16 {
        if i64::from(self.issued) >= day_start {
            self.used
        } else {
            0
        }
    }
}

/// One key and its packed [`Entry`]; key 0 is empty.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    key: u64,
    value: u64,
}

/// Four buckets on one cache line: a probe starts at a line's first bucket, so a lookup
/// reads one line unless that line is full.
#[repr(align(64))]
#[derive(Debug, Clone, Copy, Default)]
struct Line([Bucket; SLOTS]);

/// One shard's open-addressing table (linear probing, no deletion marks: a sweep deletes by
/// shifting the rest of a run back).
#[derive(Debug)]
struct Table {
    lines: Box<[Line]>,
    /// Entries held.
    len: usize,
    /// `len` at which the next insert grows the table first.
    grow_at: usize,
    hasher: foldhash::fast::RandomState,
    /// Exact validity, seconds, of the entries whose span is [`SPAN_WIDE`]: empty unless a
    /// rules file or a replayed grant has a validity over 9 hours that is not whole minutes.
    wide: HashMap<u64, u32, foldhash::fast::RandomState>,
}

impl Table {
    fn with_lines(lines: usize, hasher: foldhash::fast::RandomState) -> Table {
        let lines = lines.max(MIN_LINES);
        Table {
            lines: vec![Line::default(); lines].into_boxed_slice(),
            len: 0,
            grow_at: lines * SLOTS * MAX_LOAD.0 / MAX_LOAD.1,
            hasher,
            wide: HashMap::default(),
        }
    }

    /// Lines needed to hold `entries` below the growth threshold.
    fn lines_for(entries: usize) -> usize {
        (entries * MAX_LOAD.1).div_ceil(MAX_LOAD.0 * SLOTS) + 1
    }

    fn slots(&self) -> usize {
        self.lines.len() * SLOTS
    }

    /// The first bucket a key's probe looks at.
    #[inline]
    fn home(&self, key: u64) -> usize {
        self.home_of(self.hasher.hash_one(key))
    }

    /// The first bucket of the probe for a key with this hash (the engine's hasher; the same
    /// seeds as the table's).
    #[inline]
    fn home_of(&self, hash: u64) -> usize {
        // Multiply-shift maps the hash onto any number of lines, uniformly.
        ((u128::from(hash) * self.lines.len() as u128) >> 64) as usize * SLOTS
    }

    #[inline]
    fn bucket(&self, pos: usize) -> Bucket {
        self.lines[pos / SLOTS].0[pos % SLOTS]
    }

    #[inline]
    fn bucket_mut(&mut self, pos: usize) -> &mut Bucket {
        &mut self.lines[pos / SLOTS].0[pos % SLOTS]
    }

    /// Where `key` is (`Ok`), or the empty bucket where it would go (`Err`). Ends because
    /// the table is never full (`grow_at` < buckets).
    #[inline]
    fn find(&self, key: u64) -> Result<usize, usize> {
        self.find_hashed(Probe {
            key,
            hash: self.hasher.hash_one(key),
        })
    }

    /// [`Table::find`] with the hash computed already (outside the lock).
    #[inline]
    fn find_hashed(&self, probe: Probe) -> Result<usize, usize> {
        self.lookup(probe).0
    }

    /// [`Table::find_hashed`] and the entry found (an empty one if none), read in the same
    /// pass over the line.
    #[inline]
    fn lookup(&self, probe: Probe) -> (Result<usize, usize>, Entry) {
        let lines = self.lines.len();
        let mut line = self.home_of(probe.hash) / SLOTS;
        loop {
            for (slot, bucket) in self.lines[line].0.iter().enumerate() {
                if bucket.key == probe.key {
                    return (Ok(line * SLOTS + slot), Entry::unpack(bucket.value));
                }
                if bucket.key == 0 {
                    return (Err(line * SLOTS + slot), Entry::default());
                }
            }
            line = if line + 1 == lines { 0 } else { line + 1 };
        }
    }

    /// Reads the line a probe starts at, so that its miss is under way while the caller
    /// goes on to the next key; the value is meaningless.
    #[inline]
    fn touch(&self, hash: u64) -> u64 {
        self.bucket(self.home_of(hash)).key
    }

    /// The entry at a `find` result, or an empty one.
    #[inline]
    fn entry(&self, at: Result<usize, usize>) -> Entry {
        match at {
            Ok(pos) => Entry::unpack(self.bucket(pos).value),
            Err(_) => Entry::default(),
        }
    }

    /// The validity, seconds, of the grant in `entry` (stored under `key`).
    #[inline]
    fn span_secs(&self, key: u64, entry: Entry) -> u32 {
        decode_span(entry.span).unwrap_or_else(|| self.wide.get(&key).copied().unwrap_or(0))
    }

    /// When the grant in `entry` (stored under `key`) ends, Unix seconds.
    #[inline]
    fn until(&self, key: u64, entry: Entry) -> i64 {
        i64::from(entry.issued) + i64::from(self.span_secs(key, entry))
    }

    /// Writes `entry` for `key` at a `find` result taken since the last insert; `secs` is
    /// the validity `entry.span` encodes.
    fn put(&mut self, key: u64, at: Result<usize, usize>, entry: Entry, secs: u32) {
        match at {
            Ok(pos) => {
                let bucket = self.bucket_mut(pos);
                let old = Entry::unpack(bucket.value);
                bucket.value = entry.pack();
                if old.span == SPAN_WIDE && entry.span != SPAN_WIDE {
                    self.wide.remove(&key);
                }
            }
            Err(pos) => {
                let pos = if self.len < self.grow_at {
                    pos
                } else {
                    self.grow();
                    match self.find(key) {
                        Ok(pos) | Err(pos) => pos,
                    }
                };
                *self.bucket_mut(pos) = Bucket {
                    key,
                    value: entry.pack(),
                };
                self.len += 1;
            }
        }
        if entry.span == SPAN_WIDE {
            self.wide.insert(key, secs);
        }
    }

    /// Rehashes into 1.5× the lines. Building the new table whole and then swapping it in
    /// means a panic cannot leave a half-moved table.
    #[cold]
    fn grow(&mut self) {
        let lines = (self.lines.len() * 3 / 2).max(self.lines.len() + 1);
        let mut next = Table {
            lines: vec![Line::default(); lines].into_boxed_slice(),
            len: self.len,
            grow_at: lines * SLOTS * MAX_LOAD.0 / MAX_LOAD.1,
            hasher: self.hasher.clone(),
            wide: std::mem::take(&mut self.wide),
        };
        for line in self.lines.iter() {
            for bucket in line.0.iter().filter(|b| b.key != 0) {
                let pos = match next.find(bucket.key) {
                    Ok(pos) | Err(pos) => pos,
                };
                *next.bucket_mut(pos) = *bucket;
            }
        }
        *self = next;
    }

    /// Empties bucket `hole` and closes the gap: later buckets of the same run move back if
    /// their probe passes `hole`, so every key stays reachable from its home without
    /// deletion marks.
    fn remove_at(&mut self, mut hole: usize) {
        let slots = self.slots();
        let mut pos = hole;
        loop {
            pos = if pos + 1 == slots { 0 } else { pos + 1 };
            let bucket = self.bucket(pos);
            if bucket.key == 0 {
                break;
            }
            let home = self.home(bucket.key);
            // Movable iff `hole` lies on the probe from `home` to `pos`.
            if (pos + slots - home) % slots >= (pos + slots - hole) % slots {
                *self.bucket_mut(hole) = bucket;
                hole = pos;
            }
        }
        *self.bucket_mut(hole) = Bucket::default();
        self.len -= 1;
    }

    /// Deletes the entries in buckets `from..to` that can no longer change a decision: a
    /// count from before `day_start` whose permit has ended by `now`. Returns how many.
    fn sweep(&mut self, from: usize, to: usize, day_start: i64, now: i64) -> usize {
        let mut dropped = 0;
        let mut pos = from;
        while pos < to.min(self.slots()) {
            let bucket = self.bucket(pos);
            let entry = Entry::unpack(bucket.value);
            if bucket.key != 0
                && i64::from(entry.issued) < day_start
                && self.until(bucket.key, entry) <= now
            {
                if entry.span == SPAN_WIDE {
                    self.wide.remove(&bucket.key);
                }
                // A later bucket may move into `pos`: look at it again.
                self.remove_at(pos);
                dropped += 1;
            } else {
                pos += 1;
            }
        }
        dropped
    }

    /// The decision for one request whose code exists, is enabled and is not blocked for
    /// the document (see [`precheck`]); `probes` are its keys (see [`probes`]). Inlined
    /// into its callers so the outcome stays in registers (returned through memory, its
    /// store and reload cost more than the decision).
    ///
    /// With `COMMIT = false` nothing is written: a grant is only reported as possible (see
    /// [`QuotaEngine::peek_at`]).
    #[inline(always)]
    fn decide<const COMMIT: bool>(
        &mut self,
        rule: &CodeRule,
        probes: Probes,
        m: &Moment,
    ) -> Outcome {
        let now = m.unix;
        let group_key = probes.group.key;
        if rule.shared {
            return self.decide_shared::<COMMIT>(rule, probes, m);
        }
        let (at, group) = self.lookup(probes.group);
        if at.is_ok() {
            let until = self.until(group_key, group);
            if until > now {
                return Outcome::Active(Validity {
                    from: i64::from(group.issued),
                    until,
                });
            }
        }
        let used = match check_quota(rule, group.used_since(m.day_start), m) {
            Ok(used) => used,
            Err(denial) => return Outcome::Denied(denial),
        };
        let (validity, issued, secs) = new_grant(rule, now);
        if !COMMIT {
            return Outcome::Granted(validity);
        }
        let entry = Entry {
            issued,
            span: encode_span(secs),
            used: used.saturating_add(1),
        };
        self.put(group_key, at, entry, secs);
        Outcome::Granted(validity)
    }

    /// [`Table::decide`] for a code that shares its group: the grant has its own entry.
    #[inline(always)]
    fn decide_shared<const COMMIT: bool>(
        &mut self,
        rule: &CodeRule,
        probes: Probes,
        m: &Moment,
    ) -> Outcome {
        let now = m.unix;
        let (group_key, grant_key) = (probes.group.key, probes.grant.key);
        let (at, grant) = self.lookup(probes.grant);
        if at.is_ok() {
            let until = self.until(grant_key, grant);
            if until > now {
                return Outcome::Active(Validity {
                    from: i64::from(grant.issued),
                    until,
                });
            }
        }
        let (at, group) = self.lookup(probes.group);
        let used = match check_quota(rule, group.used_since(m.day_start), m) {
            Ok(used) => used,
            Err(denial) => return Outcome::Denied(denial),
        };
        let (validity, issued, secs) = new_grant(rule, now);
        if !COMMIT {
            return Outcome::Granted(validity);
        }
        // The group remembers its latest grant's time: that is the day its count is for.
        let latest = if used == 0 {
            issued
        } else {
            group.issued.max(issued)
        };
        let counted = Entry {
            issued: latest,
            span: 0,
            used: used.saturating_add(1),
        };
        self.put(group_key, at, counted, 0);
        // Look again: the insert above may have grown the table or taken the grant's bucket.
        let at = self.find_hashed(probes.grant);
        let grant = Entry {
            issued,
            span: encode_span(secs),
            used: 0,
        };
        self.put(grant_key, at, grant, secs);
        Outcome::Granted(validity)
    }
}

/// A key and its hash under the engine's hasher, computed before the lock is taken.
#[derive(Debug, Clone, Copy, Default)]
struct Probe {
    key: u64,
    hash: u64,
}

/// The keys one decision looks up: the group entry, and for a code that shares its group,
/// the code's grant entry (otherwise unused).
#[derive(Debug, Clone, Copy, Default)]
struct Probes {
    group: Probe,
    grant: Probe,
}

/// The [`Probes`] of `code` for `document` under `rule`.
#[inline]
fn probes(
    hasher: &foldhash::fast::RandomState,
    rule: &CodeRule,
    code: u8,
    document: Document,
) -> Probes {
    let group = key(document, u16::from(rule.group_tag));
    Probes {
        group: Probe {
            key: group,
            hash: hasher.hash_one(group),
        },
        grant: if rule.shared {
            grant_probe(hasher, group, code)
        } else {
            Probe::default()
        },
    }
}

/// The [`Probe`] of `code`'s grant entry, from the key of any entry of the same document.
#[inline]
fn grant_probe(hasher: &foldhash::fast::RandomState, document_key: u64, code: u8) -> Probe {
    let key =
        (document_key & ((1 << TAG_SHIFT) - 1)) | (u64::from(256 + u16::from(code)) << TAG_SHIFT);
    Probe {
        key,
        hash: hasher.hash_one(key),
    }
}

/// Permitted hours, then the daily limit, for a request with no active permit; the count
/// used today if a grant may follow.
#[inline]
fn check_quota(rule: &CodeRule, used: u16, m: &Moment) -> Result<u16, Denial> {
    if let Some(hours) = rule.hours
        && !hours.contains(m.second_of_day)
    {
        return Err(Denial::OutsideHours { hours });
    }
    if let DailyLimit::PerDay(limit) = rule.limit
        && u32::from(used) >= limit
    {
        return Err(Denial::DailyLimit { limit });
    }
    Ok(used)
}

/// A new permit of `rule` at `now`: its window, and its issue time and validity as stored.
#[inline]
fn new_grant(rule: &CodeRule, now: i64) -> (Validity, u32, u32) {
    let validity = Validity {
        from: now,
        until: now + i64::from(rule.validity_secs),
    };
    let issued = to_u32(validity.from);
    (
        validity,
        issued,
        to_u32(validity.until).saturating_sub(issued),
    )
}

/// The checks that need no state: the code exists, the document is not blocked for it, the
/// code is switched on. Done before any lock is taken.
#[inline]
fn precheck(rules: &Rules, code: u8, document: Document) -> Result<&CodeRule, Denial> {
    let Some(rule) = rules.code(code) else {
        return Err(Denial::UnknownCode);
    };
    if rules.is_blocked(document, code) {
        return Err(Denial::Blocked);
    }
    if !rule.enabled {
        return Err(Denial::CodeDisabled);
    }
    Ok(rule)
}

/// One lock and its table, on its own cache lines so shards do not false-share.
#[repr(align(64))]
#[derive(Debug)]
struct Shard(Mutex<Table>);

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Table> {
        // No operation panics between two writes that must go together (an insert writes
        // the bucket, then the count; growth swaps in a finished table), so a poisoned lock
        // is safe to keep using.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Reusable buffers for [`QuotaEngine::decide_batch_with`]: once they have grown to the
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
    /// [`QuotaEngine::decide_batch`]'s scratch: one per thread, so the convenience form does
    /// not allocate per batch either.
    static SCRATCH: RefCell<BatchScratch> = RefCell::new(BatchScratch::new());
}

/// The in-memory quota engine. Cheap to share (`Arc`), safe to call from many threads.
#[derive(Debug)]
pub struct QuotaEngine {
    shards: Box<[Shard]>,
    /// Every shard's table hashes with a copy of this (seeded at random per engine, so
    /// citizens cannot choose documents that collide), so keys are hashed before the lock.
    hasher: foldhash::fast::RandomState,
}

impl Default for QuotaEngine {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn shard_of(document: Document) -> usize {
    // Fibonacci hashing of the document spreads sequential numbers over all shards. It is
    // not seeded: crafted documents could crowd one shard's lock, but not its table, whose
    // hash is.
    (document.packed().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SHARD_BITS)) as usize
}

#[inline]
fn key(document: Document, tag: u16) -> u64 {
    document.packed() | (u64::from(tag) << TAG_SHIFT)
}

fn to_u32(unix: i64) -> u32 {
    unix.clamp(0, i64::from(u32::MAX)) as u32
}

impl QuotaEngine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An engine with room for about `entries` entries, so a load test or a replay does not
    /// pay for growing (each growth rehashes a shard under its lock).
    pub fn with_capacity(entries: usize) -> Self {
        let lines = Table::lines_for(entries.div_ceil(SHARDS));
        let hasher = foldhash::fast::RandomState::default();
        QuotaEngine {
            shards: (0..SHARDS)
                .map(|_| Shard(Mutex::new(Table::with_lines(lines, hasher.clone()))))
                .collect(),
            hasher,
        }
    }

    fn lock(&self, document: Document) -> MutexGuard<'_, Table> {
        self.shards[shard_of(document)].lock()
    }

    /// Decides one request at `now` (Unix seconds) under `rules`.
    pub fn decide(&self, rules: &Rules, request: &PermitRequest, now: i64) -> Decision {
        let moment = rules.calendar.moment(now);
        self.decide_at(rules, request.code, request.document, &moment)
    }

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
        // Jobs index requests with a `u32`.
        const MAX_BATCH: usize = u32::MAX as usize;
        if requests.len() > MAX_BATCH {
            for part in requests.chunks(MAX_BATCH) {
                self.decide_batch_with(rules, part, now, out, scratch);
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
            let outcome = match precheck(rules, r.code, r.document) {
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
                    decide_in_shard(&mut table, rules, jobs(s), &m, out);
                    pending &= !(1 << s);
                }
            }
        }
        // Then the shards that were busy, waiting for each with no other lock held.
        while pending != 0 {
            let s = pending.trailing_zeros() as usize;
            let mut table = self.shards[s].lock();
            std::hint::black_box(touch(&table, jobs(s)));
            decide_in_shard(&mut table, rules, jobs(s), &m, out);
            pending &= !(1 << s);
        }
    }

    /// Decides `code` for `document` at a precomputed moment.
    pub fn decide_at(&self, rules: &Rules, code: u8, document: Document, m: &Moment) -> Decision {
        let outcome = match precheck(rules, code, document) {
            Ok(rule) => {
                let probes = probes(&self.hasher, rule, code, document);
                self.lock(document).decide::<true>(rule, probes, m)
            }
            Err(denial) => Outcome::Denied(denial),
        };
        Decision {
            code,
            document,
            outcome,
        }
    }

    /// What [`QuotaEngine::decide_at`] would decide, without recording anything: `Granted`
    /// means a grant is possible here, not that one was made. The Redis store asks this
    /// first, answers an active permit or a used-up limit on the spot, and sends only
    /// possible grants to Redis, whose verdict is then recorded with
    /// [`QuotaEngine::record_grant`].
    pub fn peek_at(&self, rules: &Rules, code: u8, document: Document, m: &Moment) -> Decision {
        let outcome = match precheck(rules, code, document) {
            Ok(rule) => {
                let probes = probes(&self.hasher, rule, code, document);
                self.lock(document).decide::<false>(rule, probes, m)
            }
            Err(denial) => Outcome::Denied(denial),
        };
        Decision {
            code,
            document,
            outcome,
        }
    }

    /// Records a grant made elsewhere (journal replay at start, another node via Redis) as if
    /// this engine had made it: the day's count goes up and the permit is active.
    ///
    /// Grants may arrive out of order. One case cannot be kept exactly with a count that
    /// takes its day from the latest grant: a grant of a code with its own limit, from an
    /// earlier day than the one already counted, that outlasts the stored permit. One engine
    /// never makes such a pair (it re-sends the active permit instead), so it is ignored.
    pub fn record_grant(&self, rules: &Rules, code: u8, document: Document, validity: Validity) {
        let Some(rule) = rules.code(code) else {
            return;
        };
        let at = rules.calendar.moment(validity.from);
        let issued = to_u32(validity.from);
        let until = to_u32(validity.until);
        let secs = until.saturating_sub(issued);
        let group_key = key(document, u16::from(rule.group_tag));
        let mut table = self.lock(document);
        let found = table.find(group_key);
        let group = table.entry(found);
        // This grant's day against the day of the group's count.
        let order = if found.is_err() || i64::from(group.issued) < at.day_start {
            Ordering::Greater
        } else {
            at.day
                .cmp(&rules.calendar.moment(i64::from(group.issued)).day)
        };
        let own = Entry {
            issued,
            span: encode_span(secs),
            used: 0,
        };
        let used = group.used.saturating_add(1);
        // The group entry to write and the exact validity of the grant it holds.
        let updated = match (order, rule.shared) {
            (Ordering::Greater, false) => Some((Entry { used: 1, ..own }, secs)),
            (Ordering::Greater, true) => Some((
                Entry {
                    issued,
                    span: 0,
                    used: 1,
                },
                0,
            )),
            (Ordering::Equal, false) if i64::from(until) > table.until(group_key, group) => {
                Some((Entry { used, ..own }, secs))
            }
            (Ordering::Equal, false) => {
                Some((Entry { used, ..group }, table.span_secs(group_key, group)))
            }
            (Ordering::Equal, true) => Some((
                Entry {
                    issued: group.issued.max(issued),
                    span: 0,
                    used,
                },
                0,
            )),
            (Ordering::Less, _) => None,
        };
        if let Some((entry, entry_secs)) = updated {
            table.put(group_key, found, entry, entry_secs);
        }
        if rule.shared {
            let grant_key = key(document, 256 + u16::from(code));
            let at = table.find(grant_key);
            if at.is_err() || i64::from(until) > table.until(grant_key, table.entry(at)) {
                table.put(grant_key, at, own, secs);
            }
        }
    }

    /// Drops state that can no longer change a decision: counts from an earlier day whose
    /// permit has expired. Call it now and then (the gateway does every minute). It holds
    /// one shard's lock for at most a few thousand buckets at a time, and deletes in place:
    /// tables keep their size, since tomorrow's traffic refills them and growing again would
    /// cost rehashing.
    pub fn sweep(&self, rules: &Rules, now: i64) -> usize {
        let day_start = rules.calendar.moment(now).day_start;
        let mut dropped = 0;
        for shard in self.shards.iter() {
            // If the table grows between two chunks, buckets move and a few dead entries may
            // be passed over: the next sweep drops them.
            let mut from = 0;
            loop {
                let mut table = shard.lock();
                if from >= table.slots() {
                    break;
                }
                dropped += table.sweep(from, from + SWEEP_CHUNK, day_start, now);
                from += SWEEP_CHUNK;
            }
        }
        dropped
    }

    /// Entries held (for metrics and the memory benchmark).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len).sum()
    }

    /// Whether the engine holds no state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries the engine holds before any shard must grow (and pause under its lock).
    pub fn capacity(&self) -> usize {
        self.shards.iter().map(|s| s.lock().grow_at).sum()
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

/// Decides one shard's share of a batch under its lock, in request order.
#[inline]
fn decide_in_shard(
    table: &mut Table,
    rules: &Rules,
    jobs: &[Job],
    m: &Moment,
    out: &mut [Decision],
) {
    for job in jobs {
        if let Some(rule) = rules.code(job.code) {
            let probes = job.probes(&table.hasher);
            out[job.index as usize].outcome = table.decide::<true>(rule, probes, m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
timezone = "Asia/Baku"
[[documents]]
series = "AZE"
digits = [8, 7]
[codes.1]
name = "medical"
validity = "3h"
group = "daily"
[codes.2]
name = "food"
validity = "2h"
group = "daily"
[codes.3]
name = "funeral"
validity = "3h"
daily_limit = "unlimited"
[codes.4]
name = "walk"
validity = "1h"
daily_limit = 2
hours = "07:00-20:00"
[codes.5]
name = "off"
enabled = false
validity = "1h"
daily_limit = 1
[groups.daily]
daily_limit = 1
[[blocklist]]
document = "AZE 99999999"
codes = [3]
"#;

    fn at(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    fn doc(n: &str) -> Document {
        Document::new(b"AZE", n.as_bytes()).unwrap()
    }

    fn rules() -> Rules {
        Rules::from_toml(RULES).unwrap()
    }

    fn ask(e: &QuotaEngine, r: &Rules, code: u8, d: Document, t: &str) -> Outcome {
        e.decide_at(r, code, d, &r.calendar.moment(at(t))).outcome
    }

    #[test]
    fn grant_repeat_and_daily_limit_across_a_group() {
        let (e, r) = (QuotaEngine::new(), rules());
        let d = doc("11111111");
        let g = ask(&e, &r, 1, d, "2020-04-06T10:00:00+04:00");
        let Outcome::Granted(v) = g else {
            panic!("{g:?}")
        };
        assert_eq!(v.until - v.from, 3 * 3600);
        // Repeat while active: the same permit again.
        assert_eq!(
            ask(&e, &r, 1, d, "2020-04-06T11:00:00+04:00"),
            Outcome::Active(v)
        );
        // Code 2 shares the group's one permit a day.
        assert_eq!(
            ask(&e, &r, 2, d, "2020-04-06T11:00:00+04:00"),
            Outcome::Denied(Denial::DailyLimit { limit: 1 })
        );
        // After expiry, the same code is refused too: the day's permit is used.
        assert_eq!(
            ask(&e, &r, 1, d, "2020-04-06T13:00:00+04:00"),
            Outcome::Denied(Denial::DailyLimit { limit: 1 })
        );
        // Next Baku day: a new permit.
        assert!(matches!(
            ask(&e, &r, 2, d, "2020-04-07T00:00:00+04:00"),
            Outcome::Granted(_)
        ));
        // Another document is untouched.
        assert!(matches!(
            ask(&e, &r, 2, doc("1111111"), "2020-04-06T11:00:00+04:00"),
            Outcome::Granted(_)
        ));
    }

    #[test]
    fn peek_reports_without_recording_and_agrees_with_decide() {
        let (e, r) = (QuotaEngine::new(), rules());
        let d = doc("44444444");
        let m = r.calendar.moment(at("2020-04-06T10:00:00+04:00"));
        // A possible grant, any number of times: nothing is used.
        for code in [1, 2, 4] {
            let peek = e.peek_at(&r, code, d, &m).outcome;
            assert!(matches!(peek, Outcome::Granted(_)), "{peek:?}");
            assert_eq!(peek, e.peek_at(&r, code, d, &m).outcome);
        }
        assert!(e.is_empty());
        // Denials that need no state are the same as decide's.
        assert_eq!(
            e.peek_at(&r, 5, d, &m).outcome,
            Outcome::Denied(Denial::CodeDisabled)
        );
        // Once a grant is recorded (as the Redis path does), peek sees it like decide would:
        // the permit is active, and the shared group's limit is used for the other code.
        let Outcome::Granted(v) = e.peek_at(&r, 1, d, &m).outcome else {
            panic!()
        };
        e.record_grant(&r, 1, d, v);
        let later = r.calendar.moment(at("2020-04-06T11:00:00+04:00"));
        assert_eq!(e.peek_at(&r, 1, d, &later).outcome, Outcome::Active(v));
        assert_eq!(
            e.peek_at(&r, 2, d, &later).outcome,
            Outcome::Denied(Denial::DailyLimit { limit: 1 })
        );
        assert_eq!(
            e.peek_at(&r, 2, d, &later),
            e.decide_at(&r, 2, d, &later),
            "peek and decide agree where nothing is granted"
        );
    }

    #[test]
    fn late_permit_crosses_midnight_and_counts_for_its_day() {
        let (e, r) = (QuotaEngine::new(), rules());
        let d = doc("22222222");
        let Outcome::Granted(v) = ask(&e, &r, 1, d, "2020-04-06T22:30:00+04:00") else {
            panic!()
        };
        assert_eq!(r.calendar.hh_mm(v.until), "01:30");
        // At 00:30 the permit is still active: a repeat re-sends it.
        assert_eq!(
            ask(&e, &r, 1, d, "2020-04-07T00:30:00+04:00"),
            Outcome::Active(v)
        );
        // But it counted for the 6th, so the 7th has its own permit once it expires.
        assert!(matches!(
            ask(&e, &r, 1, d, "2020-04-07T01:30:00+04:00"),
            Outcome::Granted(_)
        ));
    }

    #[test]
    fn unlimited_hours_disabled_blocked() {
        let (e, r) = (QuotaEngine::new(), rules());
        let d = doc("33333333");
        let Outcome::Granted(v) = ask(&e, &r, 3, d, "2020-04-06T10:00:00+04:00") else {
            panic!()
        };
        assert_eq!(
            ask(&e, &r, 3, d, "2020-04-06T12:59:59+04:00"),
            Outcome::Active(v)
        );
        assert!(matches!(
            ask(&e, &r, 3, d, "2020-04-06T13:00:00+04:00"),
            Outcome::Granted(_)
        ));
        assert!(matches!(
            ask(&e, &r, 3, d, "2020-04-06T16:00:00+04:00"),
            Outcome::Granted(_)
        ));
        assert!(matches!(
            ask(&e, &r, 4, d, "2020-04-06T06:59:00+04:00"),
            Outcome::Denied(Denial::OutsideHours { .. })
        ));
        assert!(matches!(
            ask(&e, &r, 4, d, "2020-04-06T07:00:00+04:00"),
            Outcome::Granted(_)
        ));
        assert!(matches!(
            ask(&e, &r, 4, d, "2020-04-06T09:00:00+04:00"),
            Outcome::Granted(_)
        ));
        assert_eq!(
            ask(&e, &r, 4, d, "2020-04-06T11:00:00+04:00"),
            Outcome::Denied(Denial::DailyLimit { limit: 2 })
        );
        assert_eq!(
            ask(&e, &r, 5, d, "2020-04-06T11:00:00+04:00"),
            Outcome::Denied(Denial::CodeDisabled)
        );
        assert_eq!(
            ask(&e, &r, 9, d, "2020-04-06T11:00:00+04:00"),
            Outcome::Denied(Denial::UnknownCode)
        );
        let b = doc("99999999");
        assert_eq!(
            ask(&e, &r, 3, b, "2020-04-06T11:00:00+04:00"),
            Outcome::Denied(Denial::Blocked)
        );
        assert!(matches!(
            ask(&e, &r, 1, b, "2020-04-06T11:00:00+04:00"),
            Outcome::Granted(_)
        ));
    }

    #[test]
    fn sweep_drops_only_dead_state_and_record_grant_restores() {
        let (e, r) = (QuotaEngine::new(), rules());
        for n in 0..100u32 {
            ask(
                &e,
                &r,
                3,
                doc(&format!("{:08}", n)),
                "2020-04-06T22:30:00+04:00",
            );
        }
        ask(&e, &r, 3, doc("44444444"), "2020-04-07T00:10:00+04:00");
        assert_eq!(e.len(), 101);
        // 00:30 on the 7th: yesterday's permits still run until 01:30.
        assert_eq!(e.sweep(&r, at("2020-04-07T00:30:00+04:00")), 0);
        assert_eq!(e.sweep(&r, at("2020-04-07T01:30:00+04:00")), 100);
        assert_eq!(e.len(), 1);

        let restored = QuotaEngine::new();
        let v = Validity {
            from: at("2020-04-06T10:00:00+04:00"),
            until: at("2020-04-06T12:00:00+04:00"),
        };
        restored.record_grant(&r, 2, doc("55555555"), v);
        assert_eq!(
            ask(
                &restored,
                &r,
                2,
                doc("55555555"),
                "2020-04-06T11:00:00+04:00"
            ),
            Outcome::Active(v)
        );
        assert_eq!(
            ask(
                &restored,
                &r,
                1,
                doc("55555555"),
                "2020-04-06T11:00:00+04:00"
            ),
            Outcome::Denied(Denial::DailyLimit { limit: 1 })
        );
    }

    /// A small deterministic generator, so the table tests need no dependency.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn table_agrees_with_a_hash_map_through_growth_and_deletion() {
        let mut table = Table::with_lines(0, foldhash::fast::RandomState::default());
        let mut reference = std::collections::HashMap::new();
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        for round in 0..40_000u32 {
            // Keys from a small space so updates and deletions hit present keys often.
            let k = 1 + xorshift(&mut rng) % 5_000;
            let value = Entry {
                issued: round,
                span: (round % 7) as u16,
                used: (round % 5) as u16,
            };
            if xorshift(&mut rng).is_multiple_of(4) {
                if let Ok(pos) = table.find(k) {
                    table.remove_at(pos);
                }
                reference.remove(&k);
            } else {
                let at = table.find(k);
                table.put(k, at, value, u32::from(value.span));
                reference.insert(k, value);
            }
            assert!(table.len < table.slots());
        }
        assert_eq!(table.len, reference.len());
        for k in 1..=5_000u64 {
            let got = table
                .find(k)
                .ok()
                .map(|pos| Entry::unpack(table.bucket(pos).value));
            assert_eq!(got, reference.get(&k).copied(), "key {k}");
        }
        // Sweeping everything from before `issued` 30_000 whose (short) grant has ended.
        let before = table.len;
        let dropped = table.sweep(0, table.slots(), 30_000, 30_000);
        reference.retain(|_, e| e.issued >= 30_000 || e.issued + u32::from(e.span) > 30_000);
        assert_eq!(table.len, reference.len());
        assert_eq!(before - dropped, table.len);
        for k in 1..=5_000u64 {
            assert_eq!(table.find(k).is_ok(), reference.contains_key(&k), "key {k}");
        }
    }

    #[test]
    fn validity_of_any_length_comes_back_exact() {
        for secs in [
            1,
            45,
            32_767,
            32_768,
            32_820,
            10 * 3600,
            10 * 3600 + 1,
            30 * 86_400,
        ] {
            let span = encode_span(secs);
            let kept = decode_span(span).unwrap_or(secs);
            assert_eq!(kept, secs, "{secs} s");
        }
        assert_eq!(decode_span(encode_span(10 * 3600 + 1)), None);
        let toml = RULES.replace(
            "validity = \"3h\"\ndaily_limit = \"unlimited\"",
            "validity = \"10h0m1s\"\ndaily_limit = \"unlimited\"",
        );
        let r = Rules::from_toml(&toml).unwrap();
        let e = QuotaEngine::new();
        let d = doc("12121212");
        let Outcome::Granted(v) = ask(&e, &r, 3, d, "2020-04-06T10:00:00+04:00") else {
            panic!()
        };
        assert_eq!(v.until - v.from, 10 * 3600 + 1);
        assert_eq!(
            ask(&e, &r, 3, d, "2020-04-06T20:00:00+04:00"),
            Outcome::Active(v)
        );
        assert!(matches!(
            ask(&e, &r, 3, d, "2020-04-06T20:00:01+04:00"),
            Outcome::Granted(_)
        ));
        // A replayed grant with an odd window is also kept to the second.
        let odd = Validity {
            from: at("2020-04-06T10:00:00+04:00"),
            until: at("2020-04-07T09:00:07+04:00"),
        };
        let other = doc("13131313");
        e.record_grant(&r, 4, other, odd);
        assert_eq!(
            ask(&e, &r, 4, other, "2020-04-07T09:00:06+04:00"),
            Outcome::Active(odd)
        );
        // A sweep after it ends drops it and its side entry.
        let before = e.len();
        assert!(e.sweep(&r, at("2020-04-07T09:00:07+04:00")) >= 1);
        assert!(e.len() < before);
        assert!(e.shards.iter().all(|s| s.lock().wide.len() <= 1));
    }

    #[test]
    fn a_batch_decides_as_one_by_one_in_request_order() {
        let r = rules();
        let now = at("2020-04-06T10:00:00+04:00");
        let requests: Vec<PermitRequest> = (0..2_000u32)
            .map(|i| PermitRequest {
                // Few documents, so most appear many times in the batch.
                code: [1, 2, 3, 4, 5, 9][(i % 6) as usize],
                document: if i % 97 == 0 {
                    doc("99999999")
                } else {
                    doc(&format!("{:08}", i % 37))
                },
                extra: String::new(),
            })
            .collect();
        let one_by_one = QuotaEngine::new();
        let want: Vec<Decision> = requests
            .iter()
            .map(|q| one_by_one.decide(&r, q, now))
            .collect();
        let batched = QuotaEngine::new();
        let mut out = vec![want[0]];
        batched.decide_batch(&r, &requests[..700], now, &mut out);
        let mut scratch = BatchScratch::new();
        batched.decide_batch_with(&r, &requests[700..], now, &mut out, &mut scratch);
        assert_eq!(out[1..], want[..]);
        assert_eq!(batched.len(), one_by_one.len());
    }

    #[test]
    fn a_reserved_engine_takes_its_reserve_without_growing() {
        let r = rules();
        // 50,000 documents ask code 2 at 10:00; every one is granted.
        let fill = |e: &QuotaEngine| {
            for i in 0..50_000u32 {
                let d = doc(&format!("{:08}", 10_000_000 + i));
                let g = ask(e, &r, 2, d, "2020-04-06T10:00:00+04:00");
                assert!(matches!(g, Outcome::Granted(_)), "{g:?}");
            }
        };
        // These rules' codes 1 and 2 share a group: a grant is two entries.
        let e = QuotaEngine::with_capacity(100_000);
        let reserved = e.capacity();
        assert!(reserved >= 100_000, "{reserved}");
        fill(&e);
        assert_eq!(e.len(), 100_000);
        assert_eq!(e.capacity(), reserved, "no table grew");
        // Unreserved, the same load makes the tables grow.
        let grown = QuotaEngine::new();
        let before = grown.capacity();
        fill(&grown);
        assert!(grown.capacity() > before);
    }

    #[test]
    fn record_grant_on_a_shared_group_counts_and_re_sends() {
        let r = rules();
        let e = QuotaEngine::new();
        let d = doc("66666666");
        let v = Validity {
            from: at("2020-04-06T09:00:00+04:00"),
            until: at("2020-04-06T12:00:00+04:00"),
        };
        // Codes 1 and 2 share one permit a day: code 1's replayed grant uses it.
        e.record_grant(&r, 1, d, v);
        assert_eq!(
            ask(&e, &r, 1, d, "2020-04-06T10:00:00+04:00"),
            Outcome::Active(v)
        );
        assert_eq!(
            ask(&e, &r, 2, d, "2020-04-06T10:00:00+04:00"),
            Outcome::Denied(Denial::DailyLimit { limit: 1 })
        );
        // A replayed grant from the day before does not touch today's count.
        let yesterday = Validity {
            from: v.from - 86_400,
            until: v.until - 86_400,
        };
        let fresh = doc("77777777");
        e.record_grant(&r, 2, fresh, v);
        e.record_grant(&r, 2, fresh, yesterday);
        assert_eq!(
            ask(&e, &r, 2, fresh, "2020-04-06T10:00:00+04:00"),
            Outcome::Active(v)
        );
        assert_eq!(
            ask(&e, &r, 1, fresh, "2020-04-06T12:30:00+04:00"),
            Outcome::Denied(Denial::DailyLimit { limit: 1 })
        );
        assert!(matches!(
            ask(&e, &r, 1, fresh, "2020-04-07T00:00:00+04:00"),
            Outcome::Granted(_)
        ));
    }

    #[test]
    fn many_documents_grow_every_shard_and_stay_found() {
        let (e, r) = (QuotaEngine::new(), rules());
        let m = r.calendar.moment(at("2020-04-06T10:00:00+04:00"));
        let docs: Vec<Document> = (0..20_000u32).map(|n| doc(&format!("{n:08}"))).collect();
        for d in &docs {
            assert!(matches!(
                e.decide_at(&r, 3, *d, &m).outcome,
                Outcome::Granted(_)
            ));
        }
        assert_eq!(e.len(), docs.len());
        for d in &docs {
            assert!(matches!(
                e.decide_at(&r, 3, *d, &m).outcome,
                Outcome::Active(_)
            ));
        }
        // Everything is dead the next day after the permits end; the sweep empties it.
        assert_eq!(e.sweep(&r, at("2020-04-07T02:00:00+04:00")), docs.len());
        assert!(e.is_empty());
    }

    #[test]
    fn concurrent_batches_grant_each_permit_once() {
        let (e, r) = (QuotaEngine::new(), rules());
        let now = at("2020-04-06T10:00:00+04:00");
        let docs: Vec<Document> = (0..3_000u32).map(|n| doc(&format!("{n:08}"))).collect();
        let granted: Vec<Vec<Decision>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4usize)
                .map(|t| {
                    let (e, r, docs) = (&e, &r, &docs);
                    s.spawn(move || {
                        // Each thread asks for every document, codes 1 and 2 (one permit a
                        // day between them) and 3, starting at a different place.
                        let requests: Vec<PermitRequest> = (0..docs.len() * 3)
                            .map(|i| {
                                let i = i + t * 997;
                                PermitRequest {
                                    code: [1, 2, 3][i % 3],
                                    document: docs[(i / 3) % docs.len()],
                                    extra: String::new(),
                                }
                            })
                            .collect();
                        let mut out = Vec::new();
                        for batch in requests.chunks(100) {
                            e.decide_batch(r, batch, now, &mut out);
                        }
                        out.retain(|d| matches!(d.outcome, Outcome::Granted(_)));
                        out
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let mut per_doc = std::collections::HashMap::new();
        for d in granted.iter().flatten() {
            let (daily, funeral) = per_doc.entry(d.document).or_insert((0, 0));
            if d.code == 3 {
                *funeral += 1
            } else {
                *daily += 1
            }
        }
        assert_eq!(per_doc.len(), docs.len());
        assert!(per_doc.values().all(|&n| n == (1, 1)), "{per_doc:?}");
    }
}
