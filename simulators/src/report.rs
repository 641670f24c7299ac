//! The run's report: throughput, latency percentiles, errors, the oracle's verdict, CPU
//! shares and a per-second series; as JSON for machines and a summary for people.

use crate::ledger::Stats;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A reply that is not what the oracle predicted.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MismatchRecord {
    /// The citizen's number.
    pub msisdn: String,
    /// The MO's text.
    pub sent: String,
    /// Where the MO came from in the traffic model.
    pub origin: String,
    /// The predicted class (and what it concerns).
    pub expected: String,
    /// The reply's class.
    pub got: String,
    /// The reply's text.
    pub reply: String,
    /// Every difference found.
    pub why: String,
}

/// A reply no MO was waiting for.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DuplicateRecord {
    /// Its destination.
    pub msisdn: String,
    /// Its text.
    pub reply: String,
    /// Why it matched nothing.
    pub why: String,
}

/// An MO without a reply at the end of the run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MissingRecord {
    /// The citizen's number.
    pub msisdn: String,
    /// The MO's text.
    pub sent: String,
    /// Where it came from in the traffic model.
    pub origin: String,
    /// The predicted class, `?` if none was made.
    pub expected: String,
    /// Whether the gateway acknowledged it.
    pub acknowledged: bool,
    /// Whether a reply came but the acknowledgement did not.
    pub replied: bool,
    /// How often it was sent.
    pub attempts: u32,
}

/// What was asked of the run.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    /// `loadgen` (the simulator binds to the gateway) or `smsc` (the gateway binds to it).
    pub mode: String,
    /// loadgen: the gateway's address. smsc: where it listened for the gateway's binds.
    pub target: String,
    /// SMPP sessions when sending started.
    pub binds: u32,
    /// `trx`, `pair` or (smsc, if the gateway mixed them) `mixed`.
    pub bind_kind: String,
    /// MO per second asked for; `None` for `max`.
    pub rate: Option<u64>,
    /// Unacknowledged MOs per sending session.
    pub window: u32,
    /// Seconds of sending.
    pub duration_s: f64,
    /// Documents in the population.
    pub population: u32,
    /// Phones in the population.
    pub phones: u32,
    /// The seed.
    pub seed: u64,
    /// The rules file.
    pub rules: String,
}

/// Totals over the run.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    /// Distinct MOs sent.
    pub sent: u64,
    /// submit_sm written, resends included.
    pub submits: u64,
    /// MOs acknowledged with ESME_ROK (submit_sm_resp, or deliver_sm_resp for smsc).
    pub acknowledged: u64,
    /// Replies matched to an MO.
    pub answered: u64,
    /// Replies received.
    pub replies: u64,
    /// ESME_RTHROTTLED answers.
    pub throttled: u64,
    /// Resends.
    pub resent: u64,
    /// MOs whose session ended before their acknowledgement (smsc: the gateway lost its
    /// bind), sent again on the session that took over; a grant may come back as `active`.
    pub redelivered: u64,
    /// MOs refused for good or given up: no reply owed.
    pub dropped: u64,
    /// Replies that differ from the prediction.
    pub mismatches: u64,
    /// MOs without reply (or acknowledgement) at the end.
    pub missing: u64,
    /// Replies no MO was waiting for.
    pub duplicates: u64,
    /// Replies that overtook an earlier MO of the same phone (no error).
    pub reordered: u64,
    /// MOs sent and acknowledged on two sides of a Baku midnight or an hours edge.
    pub boundary: u64,
    /// Replies no template matches.
    pub unrecognised: u64,
    /// MOs the schedule asked for that the windows did not let out in time.
    pub behind_schedule: u64,
}

/// Rates over the sending period, per second.
#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    /// The rate asked for, if any.
    pub target: Option<u64>,
    /// Whether the rate asked for was held: at least 99% of it sent and answered, and at
    /// most 1% of the schedule held back by the windows. Always true for `max`.
    pub sustained: bool,
    /// MOs sent.
    pub sent: f64,
    /// MOs acknowledged.
    pub acknowledged: f64,
    /// Replies.
    pub answered: f64,
}

/// MO→MT latency, milliseconds: the MO written (submit_sm, or deliver_sm for smsc) to the
/// reply's last part read.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Replies measured.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// CPU used during the sending period, in cores (1.0 = one core busy all the time).
#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    /// Cores of the machine.
    pub cores: usize,
    /// This process, loadgen or smsc (in a smoke test that runs the gateway in-process,
    /// both).
    pub loadgen: Option<f64>,
    /// The gateway's pid, if found.
    pub gateway_pid: Option<u32>,
    /// The gateway process.
    pub gateway: Option<f64>,
    /// The whole machine, other users included.
    pub machine: Option<f64>,
    /// Load averages (1, 5, 15 min) when sending started.
    pub load_before: Option<[f64; 3]>,
    /// Load averages when it ended.
    pub load_after: Option<[f64; 3]>,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct SecondRow {
    /// Seconds since sending started.
    pub t: usize,
    /// MOs sent.
    pub sent: u64,
    /// MOs acknowledged.
    pub acknowledged: u64,
    /// Replies.
    pub answered: u64,
    /// ESME_RTHROTTLED answers.
    pub throttled: u64,
    /// Median latency of the replies of this second, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether every MO got exactly one reply and every reply was the predicted one.
    pub passed: bool,
    /// When sending started (RFC 3339, Baku time).
    pub started_at: String,
    /// What was asked.
    pub config: RunConfig,
    /// Totals.
    pub totals: Totals,
    /// Rates over the sending period.
    pub rates: Rates,
    /// MO→MT latency.
    pub latency_ms: Latency,
    /// Non-OK command_status answers by name.
    pub errors: BTreeMap<String, u64>,
    /// Predicted reply classes.
    pub expected: BTreeMap<String, u64>,
    /// Reply classes received.
    pub got: BTreeMap<String, u64>,
    /// MOs by origin in the traffic model.
    pub traffic: BTreeMap<String, u64>,
    /// Replies by the language of their template (`az`, `en`, `ru`).
    pub languages: BTreeMap<String, u64>,
    /// CPU shares.
    pub cpu: Cpu,
    /// Sessions that ended with an error.
    pub session_errors: Vec<String>,
    /// Mismatches by prediction and reply ("granted → try_later").
    pub mismatch_kinds: BTreeMap<String, u64>,
    /// The first mismatches.
    pub mismatches: Vec<MismatchRecord>,
    /// The first missing replies.
    pub missing: Vec<MissingRecord>,
    /// The first duplicate or unsolicited replies.
    pub duplicates: Vec<DuplicateRecord>,
    /// Per second.
    pub seconds: Vec<SecondRow>,
}

/// Counts as "name n" each, joined by `sep`.
fn counts<K: std::fmt::Display>(m: &BTreeMap<K, u64>, sep: &str) -> String {
    let parts: Vec<String> = m.iter().map(|(k, n)| format!("{k} {n}")).collect();
    parts.join(sep)
}

/// Microseconds as milliseconds.
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// What the ledger cannot know: the run's frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// What was asked.
    pub config: RunConfig,
    /// When sending started.
    pub started_at: String,
    /// Seconds of sending.
    pub sending_secs: f64,
    /// MOs missing at the end, and the first of them.
    pub missing: (u64, Vec<MissingRecord>),
    /// Scheduled MOs not sent in time.
    pub behind_schedule: u64,
    /// CPU figures.
    pub cpu: Cpu,
    /// Sessions that failed.
    pub session_errors: Vec<String>,
}

impl Report {
    /// Builds the report from the ledger's counts and the run's frame.
    pub fn build(stats: &Stats, frame: Frame) -> Report {
        let h = &stats.latency;
        let latency = Latency {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean().round() / 1000.0,
        };
        let secs = frame.sending_secs.max(1e-9);
        // Rates count what happened while sending, not the drain after it.
        let in_window = |f: fn(&crate::ledger::Second) -> u64| -> u64 {
            stats.seconds.iter().take(secs.ceil() as usize).map(f).sum()
        };
        let sent_rate = in_window(|s| s.sent) as f64 / secs;
        let answered_rate = in_window(|s| s.answered) as f64 / secs;
        let sustained = frame.config.rate.is_none_or(|r| {
            let r = r as f64;
            sent_rate >= 0.99 * r
                && answered_rate >= 0.99 * r
                && (frame.behind_schedule as f64) <= 0.01 * r * secs
        });
        let rates = Rates {
            target: frame.config.rate,
            sustained,
            sent: (in_window(|s| s.sent) as f64 / secs).round(),
            acknowledged: (in_window(|s| s.acked) as f64 / secs).round(),
            answered: (in_window(|s| s.answered) as f64 / secs).round(),
        };
        let seconds = stats
            .seconds
            .iter()
            .enumerate()
            .map(|(t, s)| SecondRow {
                t,
                sent: s.sent,
                acknowledged: s.acked,
                answered: s.answered,
                throttled: s.throttled,
                p50_ms: s.latency.as_ref().map(|h| ms(h.value_at_quantile(0.5))),
                p99_ms: s.latency.as_ref().map(|h| ms(h.value_at_quantile(0.99))),
            })
            .collect();
        let (missing, missing_list) = frame.missing;
        let totals = Totals {
            sent: stats.sent,
            submits: stats.submits,
            acknowledged: stats.acked,
            answered: stats.answered,
            replies: stats.replies,
            throttled: stats.throttled,
            resent: stats.resent,
            redelivered: stats.redelivered,
            dropped: stats.dropped,
            mismatches: stats.mismatches,
            missing,
            duplicates: stats.duplicates,
            reordered: stats.reordered,
            boundary: stats.boundary,
            unrecognised: stats.unrecognised,
            behind_schedule: frame.behind_schedule,
        };
        let passed = totals.mismatches == 0
            && totals.missing == 0
            && totals.duplicates == 0
            && totals.dropped == 0
            && totals.answered > 0
            && totals.answered == totals.sent;
        Report {
            passed,
            started_at: frame.started_at,
            config: frame.config,
            totals,
            rates,
            latency_ms: latency,
            errors: stats.errors.clone(),
            expected: stats.expected.clone(),
            got: stats.got.clone(),
            traffic: stats.origins.clone(),
            languages: stats.languages.clone(),
            cpu: frame.cpu,
            session_errors: frame.session_errors,
            mismatch_kinds: stats.mismatch_kinds.clone(),
            mismatches: stats.mismatch_list.clone(),
            missing: missing_list,
            duplicates: stats.duplicate_list.clone(),
            seconds,
        }
    }

    /// A few lines for people.
    pub fn summary(&self) -> String {
        let t = &self.totals;
        let l = &self.latency_ms;
        let c = &self.cpu;
        let mut s = String::new();
        let rate = self
            .config
            .rate
            .map_or_else(|| "max".to_string(), |r| format!("{r}/s"));
        let toward = if self.config.mode == "smsc" {
            "listening on"
        } else {
            "→"
        };
        let _ = writeln!(
            s,
            "icaze-sim {} {toward} {}: {} × {} binds, rate {rate}, window {}, {:.0} s, population {} ({} phones), seed {}",
            self.config.mode,
            self.config.target,
            self.config.binds,
            self.config.bind_kind,
            self.config.window,
            self.config.duration_s,
            self.config.population,
            self.config.phones,
            self.config.seed
        );
        let held = match self.rates.target {
            Some(r) if self.rates.sustained => format!("  (rate {r}/s held)"),
            Some(r) => format!("  (rate {r}/s NOT held)"),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "throughput   sent {:.0}/s  acknowledged {:.0}/s  answered {:.0}/s{held}",
            self.rates.sent, self.rates.acknowledged, self.rates.answered
        );
        let _ = writeln!(
            s,
            "MO→MT        p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms  ({} replies)",
            l.p50, l.p90, l.p99, l.p999, l.max, l.count
        );
        let _ = writeln!(
            s,
            "totals       sent {}  acknowledged {}  answered {}  throttled {}  resent {}  redelivered {}  behind schedule {}",
            t.sent,
            t.acknowledged,
            t.answered,
            t.throttled,
            t.resent,
            t.redelivered,
            t.behind_schedule
        );
        let _ = writeln!(
            s,
            "oracle       mismatches {}  missing {}  duplicates {}  dropped {}  reordered {}  boundary {}  unrecognised {}",
            t.mismatches,
            t.missing,
            t.duplicates,
            t.dropped,
            t.reordered,
            t.boundary,
            t.unrecognised
        );
        if !self.errors.is_empty() {
            let _ = writeln!(s, "errors       {}", counts(&self.errors, "  "));
        }
        let _ = writeln!(s, "replies      {}", counts(&self.got, "  "));
        let f = |x: Option<f64>| x.map_or_else(|| "?".into(), |v| format!("{v:.2}"));
        let load = |x: Option<[f64; 3]>| {
            x.map_or_else(
                || "?".into(),
                |l| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]),
            )
        };
        let _ = writeln!(
            s,
            "cpu (cores)  {} {}  gateway {}{}  machine {} of {}  load {} → {}",
            self.config.mode,
            f(c.loadgen),
            f(c.gateway),
            c.gateway_pid
                .map_or_else(String::new, |p| format!(" (pid {p})")),
            f(c.machine),
            c.cores,
            load(c.load_before),
            load(c.load_after)
        );
        for e in &self.session_errors {
            let _ = writeln!(s, "session      {e}");
        }
        if !self.mismatch_kinds.is_empty() {
            // Kinds hold spaces ("granted → try_later"): a comma between them.
            let _ = writeln!(s, "mismatches   {}", counts(&self.mismatch_kinds, ", "));
        }
        for m in self.mismatches.iter().take(5) {
            let _ = writeln!(
                s,
                "mismatch     {} {:?}: {} — {:?}",
                m.msisdn, m.sent, m.why, m.reply
            );
        }
        for m in self.missing.iter().take(5) {
            let _ = writeln!(
                s,
                "missing      {} {:?} expected {} (acknowledged: {})",
                m.msisdn, m.sent, m.expected, m.acknowledged
            );
        }
        for d in self.duplicates.iter().take(5) {
            let _ = writeln!(s, "duplicate    {} {:?}: {}", d.msisdn, d.reply, d.why);
        }
        if t.mismatches > 0
            && self
                .mismatches
                .iter()
                .all(|m| m.why.starts_with("expected granted, got active"))
        {
            let _ = writeln!(
                s,
                "hint         every mismatch is a grant the gateway already had: was it fresh (restart it, or change --seed)?"
            );
        }
        let _ = writeln!(s, "{}", if self.passed { "PASSED" } else { "FAILED" });
        s
    }
}
