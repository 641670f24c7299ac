//! What the ledger counts: totals, the per-second series, the first records of each kind.

use crate::report::{DuplicateRecord, MismatchRecord};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// One second of the run, for the report's time series.
#[derive(Debug, Clone)]
pub struct Second {
    /// MOs sent for the first time.
    pub sent: u64,
    /// submit_sm_resp with ESME_ROK.
    pub acked: u64,
    /// Replies matched to an MO.
    pub answered: u64,
    /// ESME_RTHROTTLED answers.
    pub throttled: u64,
    /// MO→MT latency of the replies that arrived in this second, microseconds.
    pub latency: Option<Histogram<u64>>,
}

/// Everything counted.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Distinct MOs sent.
    pub sent: u64,
    /// submit_sm written, resends included.
    pub submits: u64,
    /// MOs acknowledged with ESME_ROK.
    pub acked: u64,
    /// Replies matched to an MO.
    pub answered: u64,
    /// Replies received in all.
    pub replies: u64,
    /// ESME_RTHROTTLED answers.
    pub throttled: u64,
    /// Resends after a transient refusal or a lost session.
    pub resent: u64,
    /// MOs whose session ended before their acknowledgement, sent again.
    pub redelivered: u64,
    /// Non-OK statuses by name.
    pub errors: BTreeMap<String, u64>,
    /// MOs refused for good (no reply expected) or given up after [`MAX_ATTEMPTS`](super::MAX_ATTEMPTS).
    pub dropped: u64,
    /// Replies whose class or echoes differ from the prediction.
    pub mismatches: u64,
    /// Replies for which no MO was waiting.
    pub duplicates: u64,
    /// Replies that overtook an earlier MO of the same phone.
    pub reordered: u64,
    /// MOs whose send and acknowledgement straddled a day boundary or an hours edge.
    pub boundary: u64,
    /// Replies no template matches.
    pub unrecognised: u64,
    /// Predicted classes.
    pub expected: BTreeMap<String, u64>,
    /// Classes of the replies.
    pub got: BTreeMap<String, u64>,
    /// MOs by where they came from in the traffic model.
    pub origins: BTreeMap<String, u64>,
    /// Replies by the language of their template.
    pub languages: BTreeMap<String, u64>,
    /// MO→MT latency, microseconds.
    pub latency: Histogram<u64>,
    /// Per second since the start of sending.
    pub seconds: Vec<Second>,
    /// Mismatches by what was predicted and what came ("granted → try_later"): a double
    /// grant would show as "active → granted".
    pub mismatch_kinds: BTreeMap<String, u64>,
    /// The first mismatches.
    pub mismatch_list: Vec<MismatchRecord>,
    /// The first duplicate or unsolicited replies.
    pub duplicate_list: Vec<DuplicateRecord>,
}

/// Longest latency tracked (10 minutes, in microseconds); longer ones count as this.
const MAX_LATENCY_US: u64 = 600_000_000;
/// Seconds of per-second rows kept; a run longer than a day folds into the last row.
pub(super) const MAX_SECONDS: usize = 86_400;

pub(super) fn histogram(sigfig: u8) -> Histogram<u64> {
    // Bounds and precision are constants the crate accepts: 1 µs to 10 min, 2–3 digits.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, sigfig).expect("valid histogram bounds")
}

impl Stats {
    pub(super) fn new() -> Stats {
        Stats {
            sent: 0,
            submits: 0,
            acked: 0,
            answered: 0,
            replies: 0,
            throttled: 0,
            resent: 0,
            redelivered: 0,
            errors: BTreeMap::new(),
            dropped: 0,
            mismatches: 0,
            duplicates: 0,
            reordered: 0,
            boundary: 0,
            unrecognised: 0,
            expected: BTreeMap::new(),
            got: BTreeMap::new(),
            origins: BTreeMap::new(),
            languages: BTreeMap::new(),
            latency: histogram(3),
            seconds: Vec::new(),
            mismatch_kinds: BTreeMap::new(),
            mismatch_list: Vec::new(),
            duplicate_list: Vec::new(),
        }
    }
}
