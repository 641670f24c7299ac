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
//! requests all fall in one shard. [`QuotaEngine::peek_batch_with`] is the same path
//! without the writes: the gateway's tentative pass over the MOs of one read, whose grants
//! the store makes durable before [`QuotaEngine::record_grant`] commits them.
//!
//! Rules are passed in on each call, so a reload swaps them without touching state.

mod batch;
pub mod blocks;
mod listed;
pub mod permits;
pub mod phones;
pub(crate) mod shards;
mod table;
#[cfg(test)]
mod tests;

use crate::permit::clock::Moment;
pub use crate::permit::decision::{Decision, Denial, Outcome, Validity};
use crate::permit::document::Document;
use crate::permit::id::PhoneTag;
use crate::permit::request::PermitRequest;
use crate::permit::rules::{CodeRule, Rules};
pub use batch::BatchScratch;
use blocks::Blocks;
use permits::{Issued, Permits};
use phones::Phones;
use std::cmp::Ordering;
use std::sync::{Mutex, MutexGuard, PoisonError};
use table::{Entry, SWEEP_CHUNK, Table, encode_span, key, probes, to_u32};

/// Shards. Fewer shards make a batch denser per shard (more misses overlapped under one
/// lock, fewer lock round trips: each lock and unlock is an atomic instruction of some 10 ns
/// here); more shards let two cores meet less often and make each table, so each growth
/// pause, smaller. At most 64 (a batch keeps its pending shards in a `u64`). Measured at 1M
/// documents: one thread, batches of 256, 39 ns a decision with 16 shards, 43 with 32; two
/// threads, batches of 1024, 21 against 18; 64 is worse for both.
const SHARDS: usize = 16;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();
const _: () = assert!(SHARDS.is_power_of_two() && SHARDS <= 64);

/// The checks that need no state: the code exists, the document is not blocked for it (by
/// the rules file or at run time, at `now`), the code is switched on. Done before any lock
/// is taken.
#[inline]
fn precheck<'r>(
    rules: &'r Rules,
    blocks: &Blocks,
    code: u8,
    document: Document,
    now: i64,
) -> Result<&'r CodeRule, Denial> {
    let Some(rule) = rules.code(code) else {
        return Err(Denial::UnknownCode);
    };
    if rules.is_blocked(document, code) || blocks.refuses(document, code, now) {
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

/// The in-memory quota engine. Cheap to share (`Arc`), safe to call from many threads.
#[derive(Debug)]
pub struct QuotaEngine {
    shards: Box<[Shard]>,
    /// Every shard's table hashes with a copy of this (seeded at random per engine, so
    /// citizens cannot choose documents that collide), so keys are hashed before the lock.
    hasher: foldhash::fast::RandomState,
    /// The permits recorded, by id and document, and the revoked ones; `None` for an engine
    /// made without a permit key (benches, `decide`, `replay`).
    permits: Option<Permits>,
    /// Documents blocked at run time, on top of the rules file's blocklist.
    blocks: Blocks,
    /// Each phone's documents of the day, for `max_documents_per_phone`.
    phones: Phones,
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
            permits: None,
            blocks: Blocks::default(),
            phones: Phones::default(),
        }
    }

    /// [`QuotaEngine::with_capacity`], also keeping a [`Permits`] book of every grant
    /// recorded with [`QuotaEngine::record_grant`] (ids computed with `key`), so a checkpoint
    /// can verify a permit id and an official revoke it; a revoked permit's repeat is then
    /// answered [`Denial::Revoked`] instead of active.
    /// `entries` also reserves the book and the phones' table for as many grants, and
    /// touches their memory now (~0.2 s a million here), so the first grants do not fault
    /// it in while MOs wait.
    pub fn with_permits(entries: usize, key: crate::permit::id::PermitKey) -> Self {
        let engine = QuotaEngine {
            permits: Some(Permits::with_capacity(key, entries)),
            phones: Phones::with_capacity(entries),
            ..Self::with_capacity(entries)
        };
        if entries > 0 {
            engine.phones.warm();
            if let Some(p) = &engine.permits {
                p.warm();
            }
        }
        engine
    }

    /// The permit book, if this engine keeps one (see [`QuotaEngine::with_permits`]).
    pub fn permits(&self) -> Option<&Permits> {
        self.permits.as_ref()
    }

    /// Each phone's documents of the day (see [`Phones`]).
    pub fn phones(&self) -> &Phones {
        &self.phones
    }

    /// Whether `phone` may get a new permit for `document` at `m` under the rules'
    /// `max_documents_per_phone` (see [`Phones::admits`]; `pending`: documents of the same
    /// phone about to be granted alongside). A caller asks this of each possible grant
    /// before it goes to the store, and refuses with [`Denial::Abuse`] when not.
    pub fn phone_admits(
        &self,
        rules: &Rules,
        phone: PhoneTag,
        document: Document,
        m: &Moment,
        pending: &[Document],
    ) -> bool {
        match rules.max_documents_per_phone {
            None => true,
            Some(max) => self
                .phones
                .admits(phone, document, m.day_start, max, pending),
        }
    }

    /// A status request: the permits of `document` issued today (at `now`) that `phone`
    /// asked for, oldest first. Empty for a stranger's phone, an unknown phone, or an engine
    /// without a permit book. Uses no quota.
    pub fn status(
        &self,
        rules: &Rules,
        document: Document,
        phone: PhoneTag,
        now: i64,
    ) -> Vec<Issued> {
        let since = rules.calendar.moment(now).day_start;
        self.permits
            .as_ref()
            .map(|p| p.of_phone(document, phone, since))
            .unwrap_or_default()
    }

    /// Decides one request from `phone` and commits a grant at once, its phone recorded:
    /// for callers with no store between deciding and committing (`icaze decide`,
    /// `icaze replay`, tests). The gateway does the same in two steps around its store.
    pub fn decide_by(
        &self,
        rules: &Rules,
        request: &PermitRequest,
        phone: PhoneTag,
        now: i64,
    ) -> Decision {
        let m = rules.calendar.moment(now);
        let mut decision = self.peek_at(rules, request.code, request.document, &m);
        if let Outcome::Granted(v) = decision.outcome {
            if self.phone_admits(rules, phone, request.document, &m, &[]) {
                self.record_grant_by(rules, request.code, request.document, v, phone);
            } else {
                decision.outcome = Outcome::Denied(Denial::Abuse);
            }
        }
        decision
    }

    /// The run-time blocklist (the admin API's), checked beside the rules file's.
    pub fn blocks(&self) -> &Blocks {
        &self.blocks
    }

    /// An active permit that was revoked becomes a refusal.
    #[inline]
    fn unless_revoked(&self, decision: &mut Decision) {
        if let (Outcome::Active(v), Some(permits)) = (decision.outcome, &self.permits)
            && permits.is_revoked(decision.document, decision.code, v)
        {
            decision.outcome = Outcome::Denied(Denial::Revoked);
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

    /// Decides `code` for `document` at a precomputed moment.
    pub fn decide_at(&self, rules: &Rules, code: u8, document: Document, m: &Moment) -> Decision {
        let outcome = match precheck(rules, &self.blocks, code, document, m.unix) {
            Ok(rule) => {
                let probes = probes(&self.hasher, rule, code, document);
                self.lock(document).decide::<true>(rule, probes, m)
            }
            Err(denial) => Outcome::Denied(denial),
        };
        let mut decision = Decision {
            code,
            document,
            outcome,
        };
        self.unless_revoked(&mut decision);
        decision
    }

    /// What [`QuotaEngine::decide_at`] would decide, without recording anything: `Granted`
    /// means a grant is possible here, not that one was made. The Redis store asks this
    /// first, answers an active permit or a used-up limit on the spot, and sends only
    /// possible grants to Redis, whose verdict is then recorded with
    /// [`QuotaEngine::record_grant`].
    pub fn peek_at(&self, rules: &Rules, code: u8, document: Document, m: &Moment) -> Decision {
        let outcome = match precheck(rules, &self.blocks, code, document, m.unix) {
            Ok(rule) => {
                let probes = probes(&self.hasher, rule, code, document);
                self.lock(document).decide::<false>(rule, probes, m)
            }
            Err(denial) => Outcome::Denied(denial),
        };
        let mut decision = Decision {
            code,
            document,
            outcome,
        };
        self.unless_revoked(&mut decision);
        decision
    }

    /// Records a grant made elsewhere (journal replay at start, another node via Redis) as if
    /// this engine had made it: the day's count goes up and the permit is active.
    ///
    /// Grants may arrive out of order. One case cannot be kept exactly with a count that
    /// takes its day from the latest grant: a grant of a code with its own limit, from an
    /// earlier day than the one already counted, that outlasts the stored permit. One engine
    /// never makes such a pair (it re-sends the active permit instead), so it is ignored.
    pub fn record_grant(&self, rules: &Rules, code: u8, document: Document, validity: Validity) {
        self.record_grant_by(rules, code, document, validity, PhoneTag::NONE);
    }

    /// [`QuotaEngine::record_grant`] of a grant `phone` asked for: the permit book keeps the
    /// phone's tag (for status requests) and the phone's documents of the day count it.
    pub fn record_grant_by(
        &self,
        rules: &Rules,
        code: u8,
        document: Document,
        validity: Validity,
        phone: PhoneTag,
    ) {
        let Some(rule) = rules.code(code) else {
            return;
        };
        if let Some(permits) = &self.permits {
            permits.record(document, code, validity, phone);
        }
        let at = rules.calendar.moment(validity.from);
        self.phones.record(phone, document, at.day_start);
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
    /// permit has expired, phones' documents of an earlier day. Call it now and then (the gateway does every minute). It holds
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
        if let Some(permits) = &self.permits {
            // Yesterday's permits stay listed for checkpoints.
            let yesterday = rules.calendar.moment(day_start - 1).day_start;
            dropped += permits.sweep(yesterday, now);
        }
        dropped + self.phones.sweep(day_start)
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
