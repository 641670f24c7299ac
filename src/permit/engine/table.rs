//! One shard's open-addressing table: 16-byte buckets four to a cache line, the packed
//! entries they hold, and the decision of one request against them (see the engine's
//! module docs for the layout).

use crate::permit::clock::Moment;
use crate::permit::decision::{Denial, Outcome, Validity};
use crate::permit::document::{DOCUMENT_BITS, Document};
use crate::permit::rules::{CodeRule, DailyLimit};
use std::collections::HashMap;
use std::hash::BuildHasher;

/// Buckets per 64-byte line.
pub(super) const SLOTS: usize = 4;
/// Lines a shard starts with.
pub(super) const MIN_LINES: usize = 4;
/// The share of buckets in use at which a table grows by 1.5×, as a fraction. Below 1, so
/// a probe always meets an empty bucket and ends; low enough that few lookups leave their
/// first line (each that does is a second miss: 4% of lookups at load 0.5, 10% at 2/3, 13%
/// at 3/4); high enough that the table stays at 24–36 bytes per entry.
pub(super) const MAX_LOAD: (usize, usize) = (2, 3);
/// Buckets a sweep examines per lock hold, so a sweep never stalls decisions for long.
pub(super) const SWEEP_CHUNK: usize = 1 << 14;
pub(super) const TAG_SHIFT: u32 = DOCUMENT_BITS;

/// A validity at or above this (in [`encode_span`]) is in whole minutes.
pub(super) const SPAN_MINUTES: u16 = 0x8000;
/// The validity does not fit 16 bits; its seconds are in the shard's `wide` map.
pub(super) const SPAN_WIDE: u16 = u16::MAX;

/// Validity in 16 bits: below 2^15 as seconds (every validity up to 9 h 6 min, to the
/// second), above that as whole minutes (up to 22 days); anything else is [`SPAN_WIDE`] and
/// kept exactly beside the table, so no rules file can make a permit end at another time.
pub(super) fn encode_span(secs: u32) -> u16 {
    if secs < u32::from(SPAN_MINUTES) {
        secs as u16
    } else if secs.is_multiple_of(60) && secs / 60 < u32::from(SPAN_WIDE - SPAN_MINUTES) {
        SPAN_MINUTES | (secs / 60) as u16
    } else {
        SPAN_WIDE
    }
}

/// Seconds of a [`encode_span`] code; `None` for [`SPAN_WIDE`].
pub(super) fn decode_span(span: u16) -> Option<u32> {
    match span {
        SPAN_WIDE => None,
        s if s >= SPAN_MINUTES => Some(u32::from(s - SPAN_MINUTES) * 60),
        s => Some(u32::from(s)),
    }
}

/// A bucket's value, unpacked (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Entry {
    /// Latest grant: issued, Unix seconds (u32 lasts until 2106). In a group entry also the
    /// day `used` counts for.
    pub(super) issued: u32,
    /// Latest grant's validity, [`encode_span`]d; 0 in a shared group's entry.
    pub(super) span: u16,
    /// Grants in the group on the local day of `issued`; 0 in a grant-only entry.
    pub(super) used: u16,
}

impl Entry {
    pub(super) fn pack(self) -> u64 {
        u64::from(self.issued) | (u64::from(self.span) << 32) | (u64::from(self.used) << 48)
    }

    pub(super) fn unpack(value: u64) -> Entry {
        Entry {
            issued: value as u32,
            span: (value >> 32) as u16,
            used: (value >> 48) as u16,
        }
    }

    /// The group's count if it is from the day starting at `day_start` (or later, if the
    /// clock stepped back), else 0: a new day starts with nothing used.
    pub(super) fn used_since(self, day_start: i64) -> u16 {
        if i64::from(self.issued) >= day_start {
            self.used
        } else {
            0
        }
    }
}

/// One key and its packed [`Entry`]; key 0 is empty.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Bucket {
    pub(super) key: u64,
    pub(super) value: u64,
}

/// Four buckets on one cache line: a probe starts at a line's first bucket, so a lookup
/// reads one line unless that line is full.
#[repr(align(64))]
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Line([Bucket; SLOTS]);

/// One shard's open-addressing table (linear probing, no deletion marks: a sweep deletes by
/// shifting the rest of a run back).
#[derive(Debug)]
pub(super) struct Table {
    pub(super) lines: Box<[Line]>,
    /// Entries held.
    pub(super) len: usize,
    /// `len` at which the next insert grows the table first.
    pub(super) grow_at: usize,
    pub(super) hasher: foldhash::fast::RandomState,
    /// Exact validity, seconds, of the entries whose span is [`SPAN_WIDE`]: empty unless a
    /// rules file or a replayed grant has a validity over 9 hours that is not whole minutes.
    pub(super) wide: HashMap<u64, u32, foldhash::fast::RandomState>,
}

impl Table {
    pub(super) fn with_lines(lines: usize, hasher: foldhash::fast::RandomState) -> Table {
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
    pub(super) fn lines_for(entries: usize) -> usize {
        (entries * MAX_LOAD.1).div_ceil(MAX_LOAD.0 * SLOTS) + 1
    }

    pub(super) fn slots(&self) -> usize {
        self.lines.len() * SLOTS
    }

    /// The first bucket a key's probe looks at.
    #[inline]
    pub(super) fn home(&self, key: u64) -> usize {
        self.home_of(self.hasher.hash_one(key))
    }

    /// The first bucket of the probe for a key with this hash (the engine's hasher; the same
    /// seeds as the table's).
    #[inline]
    pub(super) fn home_of(&self, hash: u64) -> usize {
        // Multiply-shift maps the hash onto any number of lines, uniformly.
        ((u128::from(hash) * self.lines.len() as u128) >> 64) as usize * SLOTS
    }

    #[inline]
    pub(super) fn bucket(&self, pos: usize) -> Bucket {
        self.lines[pos / SLOTS].0[pos % SLOTS]
    }

    #[inline]
    pub(super) fn bucket_mut(&mut self, pos: usize) -> &mut Bucket {
        &mut self.lines[pos / SLOTS].0[pos % SLOTS]
    }

    /// Where `key` is (`Ok`), or the empty bucket where it would go (`Err`). Ends because
    /// the table is never full (`grow_at` < buckets).
    #[inline]
    pub(super) fn find(&self, key: u64) -> Result<usize, usize> {
        self.find_hashed(Probe {
            key,
            hash: self.hasher.hash_one(key),
        })
    }

    /// [`Table::find`] with the hash computed already (outside the lock).
    #[inline]
    pub(super) fn find_hashed(&self, probe: Probe) -> Result<usize, usize> {
        self.lookup(probe).0
    }

    /// [`Table::find_hashed`] and the entry found (an empty one if none), read in the same
    /// pass over the line.
    #[inline]
    pub(super) fn lookup(&self, probe: Probe) -> (Result<usize, usize>, Entry) {
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
    pub(super) fn touch(&self, hash: u64) -> u64 {
        self.bucket(self.home_of(hash)).key
    }

    /// The entry at a `find` result, or an empty one.
    #[inline]
    pub(super) fn entry(&self, at: Result<usize, usize>) -> Entry {
        match at {
            Ok(pos) => Entry::unpack(self.bucket(pos).value),
            Err(_) => Entry::default(),
        }
    }

    /// The validity, seconds, of the grant in `entry` (stored under `key`).
    #[inline]
    pub(super) fn span_secs(&self, key: u64, entry: Entry) -> u32 {
        decode_span(entry.span).unwrap_or_else(|| self.wide.get(&key).copied().unwrap_or(0))
    }

    /// When the grant in `entry` (stored under `key`) ends, Unix seconds.
    #[inline]
    pub(super) fn until(&self, key: u64, entry: Entry) -> i64 {
        i64::from(entry.issued) + i64::from(self.span_secs(key, entry))
    }

    /// Writes `entry` for `key` at a `find` result taken since the last insert; `secs` is
    /// the validity `entry.span` encodes.
    pub(super) fn put(&mut self, key: u64, at: Result<usize, usize>, entry: Entry, secs: u32) {
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
    pub(super) fn grow(&mut self) {
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
    pub(super) fn remove_at(&mut self, mut hole: usize) {
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
    pub(super) fn sweep(&mut self, from: usize, to: usize, day_start: i64, now: i64) -> usize {
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
    /// the document (see [`super::precheck`]); `probes` are its keys (see [`probes`]). Inlined
    /// into its callers so the outcome stays in registers (returned through memory, its
    /// store and reload cost more than the decision).
    ///
    /// With `COMMIT = false` nothing is written: a grant is only reported as possible (see
    /// [`super::QuotaEngine::peek_at`]).
    #[inline(always)]
    pub(super) fn decide<const COMMIT: bool>(
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
    pub(super) fn decide_shared<const COMMIT: bool>(
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
pub(super) struct Probe {
    pub(super) key: u64,
    pub(super) hash: u64,
}

/// The keys one decision looks up: the group entry, and for a code that shares its group,
/// the code's grant entry (otherwise unused).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Probes {
    pub(super) group: Probe,
    pub(super) grant: Probe,
}

/// The [`Probes`] of `code` for `document` under `rule`.
#[inline]
pub(super) fn probes(
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
pub(super) fn grant_probe(
    hasher: &foldhash::fast::RandomState,
    document_key: u64,
    code: u8,
) -> Probe {
    let key =
        (document_key & ((1 << TAG_SHIFT) - 1)) | (u64::from(256 + u16::from(code)) << TAG_SHIFT);
    Probe {
        key,
        hash: hasher.hash_one(key),
    }
}

/// Permitted hours, then the daily limit (or an unlimited code's `abuse_after`), for a request with no active permit; the count
/// used today if a grant may follow.
#[inline]
pub(super) fn check_quota(rule: &CodeRule, used: u16, m: &Moment) -> Result<u16, Denial> {
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
    // An unlimited code counts its grants all the same: past `abuse_after` it is abuse.
    if let Some(after) = rule.abuse_after
        && u32::from(used) >= after
    {
        return Err(Denial::Abuse);
    }
    Ok(used)
}

/// A new permit of `rule` at `now`: its window, and its issue time and validity as stored.
#[inline]
pub(super) fn new_grant(rule: &CodeRule, now: i64) -> (Validity, u32, u32) {
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

pub(super) fn to_u32(unix: i64) -> u32 {
    unix.clamp(0, i64::from(u32::MAX)) as u32
}

/// The key of `document`'s entry with `tag` (see the engine's module docs).
#[inline]
pub(super) fn key(document: Document, tag: u16) -> u64 {
    document.packed() | (u64::from(tag) << TAG_SHIFT)
}
