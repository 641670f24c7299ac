//! The day's figures officials quote: MOs by code and outcome, invalid texts by reason,
//! distinct documents and phones, time to decide, per operator; kept per Baku day for the
//! last [`DAYS_KEPT`] days, in memory on this node (with Redis, also summed across nodes in
//! `icaze:stats:*`, see `admin/stats.rs`).
//!
//! The pipeline tallies a batch without locking ([`Tally`]) and hands it over once
//! ([`Stats::record`]): one short lock per batch, two set inserts per MO.

use crate::permit::answer::Verdict;
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

/// One MO as the stats see it.
#[derive(Debug, Clone, Copy)]
struct Row {
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
            outcome,
            reason,
            code,
            document,
            phone: stats.hasher.hash_one(msisdn),
        });
    }

    /// MOs tallied.
    pub fn len(&self) -> usize {
        self.rows.len()
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
    documents: HashSet<u64, foldhash::fast::RandomState>,
    phones: HashSet<u64, foldhash::fast::RandomState>,
}

impl Day {
    /// Distinct documents that asked.
    pub fn distinct_documents(&self) -> usize {
        self.documents.len()
    }

    /// Distinct phones that wrote.
    pub fn distinct_phones(&self) -> usize {
        self.phones.len()
    }

    /// The upper bound of the bucket holding the `q` quantile of decision times,
    /// microseconds (`None` without MOs; `u64::MAX` for the open bucket).
    pub fn decide_quantile_us(&self, q: f64) -> Option<u64> {
        let total: u64 = self.decide_us.iter().sum();
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.decide_us.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(BUCKETS_US.get(i).copied().unwrap_or(u64::MAX));
            }
        }
        Some(u64::MAX)
    }
}

/// The figures of the last [`DAYS_KEPT`] days. Safe to share.
#[derive(Debug, Default)]
pub struct Stats {
    days: Mutex<BTreeMap<i32, Day>>,
    hasher: foldhash::fast::RandomState,
}

impl Stats {
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
        let d = days.entry(day).or_default();
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
            if let Some(doc) = row.document {
                d.documents.insert(doc);
            }
            d.phones.insert(row.phone);
            if let Some(outcomes) = d.by_operator.get_mut(operator) {
                *outcomes.entry(row.outcome).or_default() += 1;
            }
        }
        while days.len() > DAYS_KEPT {
            days.pop_first();
        }
    }

    /// A copy of one day's figures.
    pub fn day(&self, day: i32) -> Option<Day> {
        self.days
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&day)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permit::decision::{Decision, Outcome, Validity};
    use crate::permit::document::Document;

    #[test]
    fn a_day_counts_outcomes_distinct_documents_and_phones() {
        let stats = Stats::default();
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
        assert_eq!(day.decide_quantile_us(0.5), Some(1_000));
        assert!(stats.day(17_999).is_none());
    }
}
