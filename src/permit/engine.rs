//! The quota engine: the hot path, in memory. One decision per message, atomic per
//! document, with no allocation and one short lock.
//!
//! State lives in a sharded hash map keyed by `(document, tag)` packed into a `u64`. The
//! shard is chosen from the document alone, so every entry of one document sits behind one
//! lock and a decision that touches a group counter and a grant is atomic without lock
//! ordering. Entries:
//! - tag = the quota group's lowest code: the group's day and count, and (for a group of one
//!   code, the common case) that code's latest grant in the same 16 bytes;
//! - tag = 256 + code: the latest grant of a code that shares its group with others.
//!
//! Rules are passed in on each call, so a reload swaps them without touching state.

use crate::permit::clock::Moment;
use crate::permit::document::{DOCUMENT_BITS, Document};
use crate::permit::request::PermitRequest;
use crate::permit::rules::{DailyLimit, Hours, Rules};
use std::collections::HashMap;
use std::sync::Mutex;

/// A permit's validity window, Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// When the permit was issued and starts.
    pub from: i64,
    /// When it ends.
    pub until: i64,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The quota group's daily limit is used up for today.
    DailyLimit {
        /// The limit that is used up.
        limit: u32,
    },
    /// The code may not be granted at this local hour.
    OutsideHours {
        /// When it may.
        hours: Hours,
    },
    /// The code is switched off (e.g. a weekend lockdown).
    CodeDisabled,
    /// The document is on the blocklist for this code.
    Blocked,
    /// The code is not in the current rules (they were reloaded after parsing).
    UnknownCode,
}

impl Denial {
    /// A stable snake_case key for templates and JSON.
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::DailyLimit { .. } => "daily_limit",
            Denial::OutsideHours { .. } => "outside_hours",
            Denial::CodeDisabled => "code_disabled",
            Denial::Blocked => "blocked",
            Denial::UnknownCode => "unknown_code",
        }
    }
}

/// What the engine decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new permit: the store must make it durable before the MO is acknowledged.
    Granted(Validity),
    /// A permit of this code is still active: the same permit is sent again, no quota used.
    Active(Validity),
    /// Refused.
    Denied(Denial),
}

/// One decision about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The code asked for.
    pub code: u8,
    /// The document asked for.
    pub document: Document,
    /// What was decided.
    pub outcome: Outcome,
}

impl Decision {
    /// The permit's window if the decision carries a permit (new or re-sent).
    pub fn validity(&self) -> Option<Validity> {
        match self.outcome {
            Outcome::Granted(v) | Outcome::Active(v) => Some(v),
            Outcome::Denied(_) => None,
        }
    }
}

/// 16 bytes of state per entry (see the module docs for what each tag holds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    /// Local day `used` counts for.
    day: i32,
    /// Grants on `day` in this quota group.
    used: u32,
    /// Latest grant: issued, Unix seconds (u32 lasts until 2106).
    issued: u32,
    /// Latest grant: valid until, Unix seconds; 0 = none.
    until: u32,
}

type Map = HashMap<u64, Slot, foldhash::fast::RandomState>;

/// One lock and its map, on its own cache line so shards do not false-share.
#[repr(align(64))]
#[derive(Debug, Default)]
struct Shard(Mutex<Map>);

/// Shards: enough that two cores (or sixteen) rarely meet on one lock.
const SHARDS: usize = 128;
const TAG_SHIFT: u32 = DOCUMENT_BITS;

/// The in-memory quota engine. Cheap to share (`Arc`), safe to call from many threads.
#[derive(Debug)]
pub struct QuotaEngine {
    shards: Box<[Shard]>,
}

impl Default for QuotaEngine {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn shard_of(document: Document) -> usize {
    // Fibonacci hashing of the document spreads sequential numbers over all shards.
    (document.packed().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 57) as usize % SHARDS
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
        QuotaEngine {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }

    /// An engine with room for about `entries` entries, so a load test or a replay does not
    /// pay for rehashing.
    pub fn with_capacity(entries: usize) -> Self {
        let per = entries.div_ceil(SHARDS);
        QuotaEngine {
            shards: (0..SHARDS)
                .map(|_| {
                    Shard(Mutex::new(Map::with_capacity_and_hasher(
                        per,
                        Default::default(),
                    )))
                })
                .collect(),
        }
    }

    fn lock(&self, document: Document) -> std::sync::MutexGuard<'_, Map> {
        // A panic while holding a shard cannot leave a slot half-written (slots are Copy and
        // written whole), so a poisoned lock is safe to keep using.
        self.shards[shard_of(document)]
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decides one request at `now` (Unix seconds) under `rules`.
    pub fn decide(&self, rules: &Rules, request: &PermitRequest, now: i64) -> Decision {
        let moment = rules.calendar.moment(now);
        self.decide_at(rules, request.code, request.document, &moment)
    }

    /// Decides many requests at one instant: the clock and the calendar are read once.
    pub fn decide_batch(
        &self,
        rules: &Rules,
        requests: &[PermitRequest],
        now: i64,
        out: &mut Vec<Decision>,
    ) {
        let moment = rules.calendar.moment(now);
        out.extend(
            requests
                .iter()
                .map(|r| self.decide_at(rules, r.code, r.document, &moment)),
        );
    }

    /// Decides `code` for `document` at a precomputed moment.
    pub fn decide_at(&self, rules: &Rules, code: u8, document: Document, m: &Moment) -> Decision {
        let outcome = self.outcome(rules, code, document, m);
        Decision {
            code,
            document,
            outcome,
        }
    }

    fn outcome(&self, rules: &Rules, code: u8, document: Document, m: &Moment) -> Outcome {
        let Some(rule) = rules.code(code) else {
            return Outcome::Denied(Denial::UnknownCode);
        };
        if rules.is_blocked(document, code) {
            return Outcome::Denied(Denial::Blocked);
        }
        if !rule.enabled {
            return Outcome::Denied(Denial::CodeDisabled);
        }
        let now = m.unix;
        let group_key = key(document, u16::from(rule.group_tag));
        let grant_key = if rule.shared {
            key(document, 256 + u16::from(code))
        } else {
            group_key
        };
        let mut map = self.lock(document);
        if let Some(g) = map.get(&grant_key)
            && i64::from(g.until) > now
        {
            return Outcome::Active(Validity {
                from: i64::from(g.issued),
                until: i64::from(g.until),
            });
        }
        if let Some(hours) = rule.hours
            && !hours.contains(m.second_of_day)
        {
            return Outcome::Denied(Denial::OutsideHours { hours });
        }
        let group = map.entry(group_key).or_insert(Slot {
            day: m.day,
            ..Slot::default()
        });
        if m.day > group.day {
            group.day = m.day;
            group.used = 0;
        }
        if let DailyLimit::PerDay(limit) = rule.limit
            && group.used >= limit
        {
            return Outcome::Denied(Denial::DailyLimit { limit });
        }
        group.used = group.used.saturating_add(1);
        let validity = Validity {
            from: now,
            until: now + i64::from(rule.validity_secs),
        };
        let (issued, until) = (to_u32(validity.from), to_u32(validity.until));
        if rule.shared {
            map.insert(
                grant_key,
                Slot {
                    day: m.day,
                    used: 0,
                    issued,
                    until,
                },
            );
        } else {
            group.issued = issued;
            group.until = until;
        }
        Outcome::Granted(validity)
    }

    /// Records a grant made elsewhere (journal replay at start, another node via Redis) as if
    /// this engine had made it: the day's count goes up and the permit is active.
    pub fn record_grant(&self, rules: &Rules, code: u8, document: Document, validity: Validity) {
        let Some(rule) = rules.code(code) else {
            return;
        };
        let day = rules.calendar.moment(validity.from).day;
        let group_key = key(document, u16::from(rule.group_tag));
        let mut map = self.lock(document);
        let group = map.entry(group_key).or_insert(Slot {
            day,
            ..Slot::default()
        });
        if day > group.day {
            *group = Slot {
                day,
                ..Slot::default()
            };
        }
        if day == group.day {
            group.used = group.used.saturating_add(1);
        }
        let (issued, until) = (to_u32(validity.from), to_u32(validity.until));
        let grant = if rule.shared {
            map.entry(key(document, 256 + u16::from(code)))
                .or_insert(Slot {
                    day,
                    ..Slot::default()
                })
        } else {
            group
        };
        if until > grant.until {
            grant.issued = issued;
            grant.until = until;
        }
    }

    /// Drops state that can no longer change a decision: entries from an earlier day whose
    /// permit has expired. Call it now and then (the gateway does every minute); it locks
    /// one shard at a time.
    pub fn sweep(&self, rules: &Rules, now: i64) -> usize {
        let today = rules.calendar.moment(now).day;
        let mut dropped = 0;
        for shard in self.shards.iter() {
            let mut map = shard
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let before = map.len();
            map.retain(|_, s| s.day >= today || i64::from(s.until) > now);
            dropped += before - map.len();
        }
        dropped
    }

    /// Entries held (for metrics and the memory benchmark).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.0.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len()
            })
            .sum()
    }

    /// Whether the engine holds no state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permit::rules::Rules;

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
}
