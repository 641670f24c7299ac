//! The day's figures officials quote: MOs by code and outcome, invalid texts by reason,
//! distinct documents and phones, time to decide and to reply, per operator; kept per Baku day for the
//! last [`DAYS_KEPT`] days, in memory on this node (with Redis, also summed across nodes in
//! `icaze:stats:*`, see `admin/stats.rs`).
//!
//! The pipeline tallies a batch without locking ([`Tally`]) and hands it over once
//! ([`Stats::record`]): one short lock per batch, two set inserts per MO.
//!
//! A day's counters also read as flat fields ([`Day::fields`]: `mos`, `c|2|denied|daily_limit`,
//! `i|no_code`, `o|demo|granted`, `b|3` for a decision-time bucket, `r|5` for a reply-time
//! bucket), the form Redis sums across nodes;
//! [`Stats::take_deltas`] gives what changed since the last call for that.

use crate::permit::answer::Verdict;
use crate::permit::decision::Decision;
use crate::permit::engine::shards;
use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Days kept (today and the six before).
pub const DAYS_KEPT: usize = 7;
/// Upper bounds of the decision-time buckets, microseconds; the last bucket is open.
pub const BUCKETS_US: [u64; 15] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000,
];

/// Upper bounds of the reply-time buckets (an MO read to its reply's last part answered:
/// what the citizen waited), milliseconds; the last bucket is open. The 2020 system
/// sometimes answered an hour late, so the buckets go that far.
pub const REPLY_BUCKETS_MS: [u64; 14] = [
    1, 5, 10, 50, 100, 500, 1_000, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000,
];

/// Reply times a connection gathers between hand-overs ([`Stats::replied`]), so a
/// delivered reply costs no lock.
#[derive(Debug, Default, Clone)]
pub struct ReplyTimes {
    counts: [u64; REPLY_BUCKETS_MS.len() + 1],
    n: u64,
}

impl ReplyTimes {
    /// One reply delivered `took` after its MO was read.
    pub fn add(&mut self, took: Duration) {
        let ms = took.as_millis() as u64;
        let bucket = REPLY_BUCKETS_MS
            .iter()
            .position(|&b| ms <= b)
            .unwrap_or(REPLY_BUCKETS_MS.len());
        self.counts[bucket] += 1;
        self.n += 1;
    }

    /// Whether none was added since the last hand-over.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// One MO as the stats see it.
#[derive(Debug, Clone, Copy)]
struct Row {
    /// Whether the row is an MO (the first or only document of its text); the further
    /// documents of a family count by code and as documents, not as MOs.
    mo: bool,
    outcome: &'static str,
    reason: &'static str,
    code: Option<u8>,
    document: Option<u64>,
    phone: u64,
}

/// One batch's MOs, gathered by the pipeline before the lock is taken.
#[derive(Debug, Default)]
pub struct Tally {
    rows: Vec<Row>,
}

impl Tally {
    /// Room for `n` MOs.
    pub fn with_capacity(n: usize) -> Self {
        Tally {
            rows: Vec::with_capacity(n),
        }
    }

    /// One MO from `msisdn`: its outcome name (`granted`, …, `try_later`, `refused`), the
    /// reason if any, and the verdict if it was decided or invalid.
    pub fn add(
        &mut self,
        stats: &Stats,
        msisdn: &str,
        outcome: &'static str,
        reason: &'static str,
        verdict: Option<&Verdict>,
    ) {
        let (code, document) = match verdict {
            Some(Verdict::Decided(d)) => (Some(d.code), Some(d.document.packed())),
            _ => (None, None),
        };
        self.rows.push(Row {
            mo: true,
            outcome,
            reason,
            code,
            document,
            phone: stats.hasher.hash_one(msisdn),
        });
    }

    /// A further document of the family the last [`Tally::add`] MO named: its decision
    /// counts by code and it counts as a document asked for; the MO was counted once.
    pub fn add_document(&mut self, decision: &Decision) {
        let verdict = Verdict::Decided(*decision);
        let phone = self.rows.last().map_or(0, |r| r.phone);
        self.rows.push(Row {
            mo: false,
            outcome: verdict.kind().name(),
            reason: verdict.reason().unwrap_or(""),
            code: Some(decision.code),
            document: Some(decision.document.packed()),
            phone,
        });
    }

    /// MOs tallied.
    pub fn len(&self) -> usize {
        self.rows.iter().filter(|r| r.mo).count()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One day's figures.
#[derive(Debug, Default, Clone)]
pub struct Day {
    /// MOs taken.
    pub mos: u64,
    /// `(code, outcome, reason)` → MOs; reason is empty unless denied.
    pub by_code: BTreeMap<(u8, &'static str, &'static str), u64>,
    /// Invalid texts by reason.
    pub invalid: BTreeMap<&'static str, u64>,
    /// Operator → outcome → MOs.
    pub by_operator: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// MOs per decision-time bucket ([`BUCKETS_US`], then the open one).
    pub decide_us: [u64; BUCKETS_US.len() + 1],
    /// Replies per reply-time bucket ([`REPLY_BUCKETS_MS`], then the open one).
    pub reply_ms: [u64; REPLY_BUCKETS_MS.len() + 1],
    /// Filled in when the day is read ([`Stats::day`]) from the sets behind it.
    distinct_documents: usize,
    distinct_phones: usize,
}

/// Distinct 64-bit keys (packed documents, hashed phones), in the permit book's shards: a
/// set growing copies itself under the figures' lock while every batch waits to be
/// counted; a shard is a sixteenth of the copy.
#[derive(Debug)]
struct Distinct {
    shards: Box<[HashSet<u64, foldhash::fast::RandomState>]>,
}

impl Distinct {
    /// Room for `n` keys before any shard grows.
    fn with_capacity(n: usize) -> Self {
        let room = shards::room(n);
        Distinct {
            shards: (0..shards::SHARDS)
                .map(|_| HashSet::with_capacity_and_hasher(room, Default::default()))
                .collect(),
        }
    }

    /// Whether `key` is new.
    fn insert(&mut self, key: u64) -> bool {
        self.shards[shards::shard_of(key)].insert(key)
    }

    /// Keys held.
    fn len(&self) -> usize {
        self.shards.iter().map(HashSet::len).sum()
    }

    /// Gives back the room a past day no longer needs.
    fn shrink(&mut self) {
        for s in self.shards.iter_mut() {
            s.shrink_to_fit();
        }
    }

    /// Keys the smallest shard holds before it grows.
    #[cfg(test)]
    fn room(&self) -> usize {
        self.shards.iter().map(|s| s.capacity()).min().unwrap_or(0)
    }
}

/// One day as kept: its figures and the sets behind its distinct counts (never copied out:
/// a copy of a million-entry set under the lock would hold up every batch).
#[derive(Debug)]
struct DayState {
    figures: Day,
    documents: Distinct,
    phones: Distinct,
    /// Documents and phones first seen since the last [`Stats::take_deltas`] (kept only
    /// when the figures are shared through Redis, see [`Stats::sharing`]).
    new_documents: Vec<u64>,
    new_phones: Vec<u64>,
}

/// What changed on one day since the last [`Stats::take_deltas`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// The local day.
    pub day: i32,
    /// Field → increase (see [`Day::fields`]).
    pub fields: BTreeMap<String, u64>,
    /// Documents first seen (packed).
    pub documents: Vec<u64>,
    /// Phones first seen (hashed with a seed every node of one deployment shares).
    pub phones: Vec<u64>,
}

impl Day {
    /// The counters as flat fields (zero ones left out).
    pub fn fields(&self) -> BTreeMap<String, u64> {
        let mut f = BTreeMap::new();
        f.insert("mos".to_string(), self.mos);
        for (&(code, outcome, reason), &n) in &self.by_code {
            f.insert(format!("c|{code}|{outcome}|{reason}"), n);
        }
        for (reason, &n) in &self.invalid {
            f.insert(format!("i|{reason}"), n);
        }
        for (op, outcomes) in &self.by_operator {
            for (outcome, &n) in outcomes {
                f.insert(format!("o|{op}|{outcome}"), n);
            }
        }
        for (i, &n) in self.decide_us.iter().enumerate() {
            if n > 0 {
                f.insert(format!("b|{i}"), n);
            }
        }
        for (i, &n) in self.reply_ms.iter().enumerate() {
            if n > 0 {
                f.insert(format!("r|{i}"), n);
            }
        }
        f
    }

    /// Distinct documents that asked.
    pub fn distinct_documents(&self) -> usize {
        self.distinct_documents
    }

    /// Distinct phones that wrote.
    pub fn distinct_phones(&self) -> usize {
        self.distinct_phones
    }
}

/// Drops the days before the last [`DAYS_KEPT`].
fn keep_last_days(days: &mut BTreeMap<i32, DayState>) {
    while days.len() > DAYS_KEPT {
        days.pop_first();
    }
}

/// The figures of the last [`DAYS_KEPT`] days. Safe to share.
#[derive(Debug, Default)]
pub struct Stats {
    days: Mutex<BTreeMap<i32, DayState>>,
    /// The fields of each day as of the last [`Stats::take_deltas`].
    flushed: Mutex<BTreeMap<i32, BTreeMap<String, u64>>>,
    hasher: foldhash::fast::FixedState,
    /// Distinct documents (and phones) a new day has room for before its sets grow.
    reserve: usize,
    /// Whether the documents and phones first seen are kept for [`Stats::take_deltas`].
    sharing: bool,
}

impl Stats {
    /// Empty figures; phones are hashed with `seed`, which every node of a deployment must
    /// share for distinct phones to add up across nodes.
    pub fn with_seed(seed: u64) -> Self {
        Stats {
            hasher: foldhash::fast::FixedState::with_seed(seed),
            ..Stats::default()
        }
    }

    /// Room for `n` distinct documents and phones a day before the day's sets grow (the
    /// engine's `[engine] reserve`): a set growing past a million entries holds every batch
    /// up for tens of milliseconds while it is copied.
    pub fn reserving(mut self, n: usize) -> Self {
        self.reserve = n;
        self
    }

    /// Keeps the documents and phones first seen for [`Stats::take_deltas`] (the figures
    /// are summed across nodes in Redis); without it they are only counted, and a day's
    /// lists do not grow with every document of the day.
    pub fn sharing(mut self, on: bool) -> Self {
        self.sharing = on;
        self
    }

    /// Starts day `day`'s figures (with their reserved room) if they are not yet kept: at
    /// start, so the first MOs are not counted while the sets are set up under the lock.
    pub fn prepare(&self, day: i32) {
        let mut days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
        self.day_mut(&mut days, day);
        keep_last_days(&mut days);
    }

    /// The day `day`, started if new; a new day gives back the room of the days before it.
    /// (The caller drops the days past [`DAYS_KEPT`] once done with this one.)
    fn day_mut<'a>(&self, days: &'a mut BTreeMap<i32, DayState>, day: i32) -> &'a mut DayState {
        if !days.contains_key(&day) {
            for (_, past) in days.range_mut(..day) {
                past.documents.shrink();
                past.phones.shrink();
            }
        }
        days.entry(day).or_insert_with(|| DayState {
            figures: Day::default(),
            documents: Distinct::with_capacity(self.reserve),
            phones: Distinct::with_capacity(self.reserve),
            new_documents: Vec::new(),
            new_phones: Vec::new(),
        })
    }

    /// What changed since the last call, day by day.
    pub fn take_deltas(&self) -> Vec<Delta> {
        let mut days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
        let mut flushed = self.flushed.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        for (&day, d) in days.iter_mut() {
            let now = d.figures.fields();
            let before = flushed.entry(day).or_default();
            let fields: BTreeMap<String, u64> = now
                .iter()
                .filter_map(|(k, &v)| {
                    let grew = v.saturating_sub(before.get(k).copied().unwrap_or(0));
                    (grew > 0).then(|| (k.clone(), grew))
                })
                .collect();
            *before = now;
            let delta = Delta {
                day,
                fields,
                documents: std::mem::take(&mut d.new_documents),
                phones: std::mem::take(&mut d.new_phones),
            };
            if !delta.fields.is_empty() || !delta.documents.is_empty() || !delta.phones.is_empty() {
                out.push(delta);
            }
        }
        flushed.retain(|day, _| days.contains_key(day));
        out
    }

    /// Gives back deltas that could not be passed on, so the next [`Stats::take_deltas`]
    /// has them again.
    pub fn restore(&self, deltas: Vec<Delta>) {
        let mut days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
        let mut flushed = self.flushed.lock().unwrap_or_else(PoisonError::into_inner);
        for delta in deltas {
            if let Some(before) = flushed.get_mut(&delta.day) {
                for (k, v) in &delta.fields {
                    if let Some(b) = before.get_mut(k) {
                        *b = b.saturating_sub(*v);
                    }
                }
            }
            if let Some(d) = days.get_mut(&delta.day) {
                d.new_documents.extend(delta.documents);
                d.new_phones.extend(delta.phones);
            }
        }
    }
    /// Adds a batch of `operator`'s MOs taken on local `day`, decided in `took`.
    pub fn record(&self, operator: &str, day: i32, tally: &Tally, took: Duration) {
        if tally.is_empty() {
            return;
        }
        let us = took.as_micros() as u64;
        let bucket = BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BUCKETS_US.len());
        let mut days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
        let state = self.day_mut(&mut days, day);
        let d = &mut state.figures;
        if !d.by_operator.contains_key(operator) {
            d.by_operator.insert(operator.to_string(), BTreeMap::new());
        }
        d.mos += tally.len() as u64;
        d.decide_us[bucket] += tally.len() as u64;
        for row in &tally.rows {
            if let Some(code) = row.code {
                *d.by_code
                    .entry((code, row.outcome, row.reason))
                    .or_default() += 1;
            }
            if row.outcome == "invalid" {
                *d.invalid.entry(row.reason).or_default() += 1;
            }
            if let Some(doc) = row.document
                && state.documents.insert(doc)
                && self.sharing
            {
                state.new_documents.push(doc);
            }
            if state.phones.insert(row.phone) && self.sharing {
                state.new_phones.push(row.phone);
            }
            if row.mo
                && let Some(outcomes) = d.by_operator.get_mut(operator)
            {
                *outcomes.entry(row.outcome).or_default() += 1;
            }
        }
        keep_last_days(&mut days);
    }

    /// Adds the reply times a connection gathered on local `day`, and empties them.
    pub fn replied(&self, day: i32, times: &mut ReplyTimes) {
        if times.is_empty() {
            return;
        }
        let mut days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
        let d = &mut self.day_mut(&mut days, day).figures;
        for (slot, n) in d.reply_ms.iter_mut().zip(&times.counts) {
            *slot += n;
        }
        *times = ReplyTimes::default();
        keep_last_days(&mut days);
    }

    /// A copy of one day's figures.
    pub fn day(&self, day: i32) -> Option<Day> {
        self.days
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&day)
            .map(|d| Day {
                distinct_documents: d.documents.len(),
                distinct_phones: d.phones.len(),
                ..d.figures.clone()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permit::decision::{Decision, Outcome, Validity};
    use crate::permit::document::Document;

    #[test]
    fn reply_times_land_in_their_buckets_and_count_once() {
        let stats = Stats::with_seed(1);
        let mut times = ReplyTimes::default();
        times.add(Duration::from_millis(3));
        times.add(Duration::from_millis(3));
        times.add(Duration::from_secs(2 * 3600));
        stats.replied(18_358, &mut times);
        assert!(times.is_empty(), "handed over once");
        stats.replied(18_358, &mut times);
        let day = stats.day(18_358).unwrap();
        assert_eq!(day.reply_ms[1], 2, "3 ms is in the 5 ms bucket");
        assert_eq!(
            day.reply_ms[REPLY_BUCKETS_MS.len()],
            1,
            "two hours: the open one"
        );
        assert_eq!(day.fields().get("r|1"), Some(&2));
        assert_eq!(day.mos, 0, "reply times are not MOs");
    }

    #[test]
    fn a_day_counts_outcomes_distinct_documents_and_phones() {
        let stats = Stats::default().sharing(true);
        let d = Document::new(b"AZE", b"11111111").unwrap();
        let granted = Verdict::Decided(Decision {
            code: 2,
            document: d,
            outcome: Outcome::Granted(Validity { from: 0, until: 1 }),
        });
        let mut t = Tally::with_capacity(3);
        t.add(&stats, "994501234567", "granted", "", Some(&granted));
        t.add(&stats, "994501234567", "active", "", Some(&granted));
        t.add(&stats, "994507654321", "invalid", "no_code", None);
        stats.record("demo", 18_000, &t, Duration::from_micros(700));
        let day = stats.day(18_000).unwrap();
        assert_eq!(day.mos, 3);
        assert_eq!(day.by_code[&(2, "granted", "")], 1);
        assert_eq!(day.invalid["no_code"], 1);
        assert_eq!((day.distinct_documents(), day.distinct_phones()), (1, 2));
        assert_eq!(day.by_operator["demo"]["active"], 1);
        assert_eq!(day.decide_us[3], 3, "700 µs is in the bucket up to 1 ms");
        assert!(stats.day(17_999).is_none());

        let deltas = stats.take_deltas();
        assert_eq!(deltas.len(), 1);
        assert_eq!(deltas[0].fields["mos"], 3);
        assert_eq!(deltas[0].fields["c|2|granted|"], 1);
        assert_eq!((deltas[0].documents.len(), deltas[0].phones.len()), (1, 2));
        assert!(stats.take_deltas().is_empty(), "nothing new");
        stats.restore(deltas.clone());
        assert_eq!(stats.take_deltas(), deltas, "given back, taken again");

        // Not shared (the journal): counted all the same, no list of what is new.
        let alone = Stats::default();
        alone.record("demo", 18_000, &t, Duration::from_micros(700));
        let day = alone.day(18_000).unwrap();
        assert_eq!((day.distinct_documents(), day.distinct_phones()), (1, 2));
        let deltas = alone.take_deltas();
        assert_eq!((deltas[0].documents.len(), deltas[0].phones.len()), (0, 0));
    }

    #[test]
    fn a_reserved_day_counts_its_documents_without_growing_and_gives_the_room_back_after() {
        let stats = Stats::default().reserving(20_000);
        let mut t = Tally::with_capacity(20_000);
        for n in 0..20_000u32 {
            let d = Document::new(b"AZE", format!("{:08}", n + 1).as_bytes()).unwrap();
            let asked = Verdict::Decided(Decision {
                code: 2,
                document: d,
                outcome: Outcome::Granted(Validity { from: 0, until: 1 }),
            });
            t.add(&stats, &format!("99450{n:07}"), "granted", "", Some(&asked));
        }
        let room = |day| {
            let days = stats.days.lock().unwrap();
            let d = &days[&day];
            (d.documents.room(), d.phones.room())
        };
        let mut first = Tally::with_capacity(1);
        first.add(&stats, "994500000000", "invalid", "no_code", None);
        stats.record("demo", 18_000, &first, Duration::ZERO);
        let (docs, phones) = room(18_000);
        assert!(docs >= 20_000 / shards::SHARDS && phones >= 20_000 / shards::SHARDS);
        stats.record("demo", 18_000, &t, Duration::from_micros(700));
        assert_eq!(room(18_000), (docs, phones), "a set grew");
        // A day prepared ahead (at start) has its room before its first MO, and no MOs.
        stats.prepare(17_999);
        assert_eq!(room(17_999), (docs, phones));
        assert_eq!(stats.day(17_999).unwrap().mos, 0);
        let day = stats.day(18_000).unwrap();
        assert_eq!(
            (day.distinct_documents(), day.distinct_phones()),
            (20_000, 20_000)
        );
        // The next day starts with its own room; the day before shrinks to what it holds.
        stats.record("demo", 18_001, &t, Duration::from_micros(700));
        let (past_docs, _) = room(18_000);
        assert!(past_docs <= docs, "{past_docs} > {docs}");
        assert_eq!(stats.day(18_000).unwrap().distinct_documents(), 20_000);
    }
}
