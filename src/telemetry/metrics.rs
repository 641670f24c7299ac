//! The gateway's metrics, in the Prometheus text format (`prometheus-client`), every name
//! prefixed `icaze_`.
//!
//! The hot path never looks a label set up: each family's handles are made once (per
//! operator when it is set up, per code or reason the first time it is seen) and kept, so
//! counting an MO is an atomic add on a handle already in hand (~5 ns measured here).
//! Depths and other levels that the gateway already keeps (reply queues) are read into
//! their gauges when the metrics are scraped ([`Metrics::encode`]), not updated per MO.

use std::sync::{Mutex, RwLock};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// What became of an MO, for `icaze_mos_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoOutcome {
    /// A new permit.
    Granted,
    /// The permit already active.
    Active,
    /// Refused under the rules.
    Denied,
    /// Not a request (a hint was sent).
    Invalid,
    /// A help text: the usage reply.
    Help,
    /// A status request: the phone's permits of today.
    Status,
    /// The store could not decide in time: "try again later".
    TryLater,
    /// Not acknowledged (the store failed): the operator resends.
    Refused,
    /// Refused at intake: the operator's reply queue is full.
    QueueFull,
    /// Refused at intake: over the operator's rate.
    Throttled,
}

impl MoOutcome {
    const ALL: [MoOutcome; 10] = [
        MoOutcome::Granted,
        MoOutcome::Active,
        MoOutcome::Denied,
        MoOutcome::Invalid,
        MoOutcome::Help,
        MoOutcome::Status,
        MoOutcome::TryLater,
        MoOutcome::Refused,
        MoOutcome::QueueFull,
        MoOutcome::Throttled,
    ];

    fn name(self) -> &'static str {
        match self {
            MoOutcome::Granted => "granted",
            MoOutcome::Active => "active",
            MoOutcome::Denied => "denied",
            MoOutcome::Invalid => "invalid",
            MoOutcome::Help => "help",
            MoOutcome::Status => "status",
            MoOutcome::TryLater => "try_later",
            MoOutcome::Refused => "refused",
            MoOutcome::QueueFull => "queue_full",
            MoOutcome::Throttled => "throttled",
        }
    }
}

/// Bind kinds, for `icaze_binds{kind}`: 0 transmitter, 1 receiver, 2 transceiver.
pub const BIND_KINDS: [&str; 3] = ["transmitter", "receiver", "transceiver"];

/// One operator's (or connector's) handles, made when it is set up.
#[derive(Debug, Clone)]
pub struct OperatorMetrics {
    mos: [Counter; 10],
    /// Binds up now, by kind ([`BIND_KINDS`] order).
    pub binds: [Gauge; 3],
    /// Replies waiting in its queue (read at scrape time).
    pub queue_depth: Gauge,
    /// Replies the operator refused for good (dropped).
    pub reply_drops: Counter,
    /// Replies delivered (the last part's response came back).
    pub replies_delivered: Counter,
}

impl OperatorMetrics {
    /// Counts one MO.
    pub fn mo(&self, outcome: MoOutcome) {
        self.mos[outcome as usize].inc();
    }

    /// MOs counted so far, every outcome.
    pub fn mos_total(&self) -> u64 {
        self.mos.iter().map(Counter::get).sum()
    }
}

/// What a receipt said of one part, for `icaze_receipts_total{connector,state}`, in
/// [`RECEIPT_STATES`] order.
pub const RECEIPT_STATES: [&str; 6] = [
    "delivered",
    "failed",
    "expired",
    "unknown",
    "enroute",
    "unmatched",
];

/// What became of a reply, for `icaze_reply_delivery_total{connector,state}`, in
/// [`REPLY_STATES`] order.
pub const REPLY_STATES: [&str; 4] = ["delivered", "failed", "expired", "unknown"];

/// One connector's receipt handles, made when it is set up.
#[derive(Debug, Clone)]
pub struct ReceiptMetrics {
    /// Receipts by what they say of their part ([`RECEIPT_STATES`]; `unmatched`: for no
    /// part we know).
    pub receipts: [Counter; 6],
    /// Replies by their delivery state once it is known ([`REPLY_STATES`]).
    pub replies: [Counter; 4],
}

/// Every family, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    mos: Family<Labels, Counter>,
    binds: Family<Labels, Gauge>,
    queue_depth: Family<Labels, Gauge>,
    reply_drops: Family<Labels, Counter>,
    replies_delivered: Family<Labels, Counter>,
    decisions: Family<Labels, Counter>,
    decision_cache: RwLock<Vec<((u8, &'static str), Counter)>>,
    invalid: Family<Labels, Counter>,
    invalid_cache: RwLock<Vec<(&'static str, Counter)>>,
    /// From an MO's arrival to its reply's delivery (the last part's response).
    pub mo_to_mt: Histogram,
    /// One store round (journal append + fsync, or a Redis batch), as the pipeline waits
    /// for it.
    pub store_latency: Histogram,
    store_errors: Family<Labels, Counter>,
    refused_binds: Family<Labels, Counter>,
    refused_connections: Family<Labels, Counter>,
    connector_up: Family<Labels, Gauge>,
    receipts: Family<Labels, Counter>,
    reply_delivery: Family<Labels, Counter>,
    /// Admin API requests refused for a missing or wrong token.
    pub unauthorized: Counter,
    /// Replies durable in the store's outbox and not yet delivered (set at each scrape).
    pub replies_owed: Gauge,
    operators: Mutex<Vec<OperatorMetrics>>,
    /// `mo_to_mt` alone, so its buckets can be read without encoding every family.
    mo_to_mt_only: Registry,
}

/// The journal's fdatasync calls, timed where they happen (the writer thread, which knows
/// no gateway); one per process, registered by every [`Metrics`].
pub static JOURNAL_FSYNC: std::sync::LazyLock<Histogram> =
    std::sync::LazyLock::new(|| Histogram::new(seconds_buckets()));

fn seconds_buckets() -> impl Iterator<Item = f64> {
    // 50 µs to ~105 s, doubling.
    exponential_buckets(0.000_05, 2.0, 22)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family, registered under `icaze_`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("icaze");
        let m = Metrics {
            mos: Family::default(),
            binds: Family::default(),
            queue_depth: Family::default(),
            reply_drops: Family::default(),
            replies_delivered: Family::default(),
            decisions: Family::default(),
            decision_cache: RwLock::new(Vec::new()),
            invalid: Family::default(),
            invalid_cache: RwLock::new(Vec::new()),
            mo_to_mt: Histogram::new(seconds_buckets()),
            store_latency: Histogram::new(seconds_buckets()),
            store_errors: Family::default(),
            refused_binds: Family::default(),
            refused_connections: Family::default(),
            connector_up: Family::default(),
            receipts: Family::default(),
            reply_delivery: Family::default(),
            unauthorized: Counter::default(),
            replies_owed: Gauge::default(),
            operators: Mutex::new(Vec::new()),
            registry: Registry::default(),
            mo_to_mt_only: Registry::default(),
        };
        let mut mo_to_mt_only = Registry::default();
        mo_to_mt_only.register("mo_to_mt_seconds", "", m.mo_to_mt.clone());
        registry.register("mos", "MOs by operator and outcome", m.mos.clone());
        registry.register(
            "decisions",
            "Decisions by code and outcome (granted, active, or the denial's reason)",
            m.decisions.clone(),
        );
        registry.register(
            "invalid_texts",
            "Texts that are no request, by reason",
            m.invalid.clone(),
        );
        registry.register(
            "mo_to_mt_seconds",
            "From an MO's arrival to its reply's delivery",
            m.mo_to_mt.clone(),
        );
        registry.register(
            "store_round_seconds",
            "One store round as the pipeline waits for it",
            m.store_latency.clone(),
        );
        registry.register(
            "store_errors",
            "Store rounds that failed, by kind",
            m.store_errors.clone(),
        );
        registry.register(
            "journal_fsync_seconds",
            "The journal's fdatasync calls",
            JOURNAL_FSYNC.clone(),
        );
        registry.register(
            "reply_queue_depth",
            "Replies waiting per operator",
            m.queue_depth.clone(),
        );
        registry.register(
            "reply_drops",
            "Replies an operator refused for good",
            m.reply_drops.clone(),
        );
        registry.register(
            "replies_delivered",
            "Replies delivered per operator",
            m.replies_delivered.clone(),
        );
        registry.register("binds", "Binds up, per operator and kind", m.binds.clone());
        registry.register(
            "refused_binds",
            "Binds refused, by reason",
            m.refused_binds.clone(),
        );
        registry.register(
            "refused_connections",
            "Connections refused at accept, by reason",
            m.refused_connections.clone(),
        );
        registry.register(
            "connector_up",
            "Connector binds up, per connector",
            m.connector_up.clone(),
        );
        registry.register(
            "receipts",
            "Delivery receipts per connector, by what they say of their part (unmatched: for no part we know)",
            m.receipts.clone(),
        );
        registry.register(
            "reply_delivery",
            "Replies per connector by delivery state, once their receipts tell it",
            m.reply_delivery.clone(),
        );
        registry.register(
            "admin_unauthorized",
            "Admin requests refused for a missing or wrong token",
            m.unauthorized.clone(),
        );
        registry.register(
            "replies_owed",
            "Replies durable in the store's outbox and not yet delivered (0 with no outbox)",
            m.replies_owed.clone(),
        );
        Metrics {
            registry,
            mo_to_mt_only,
            ..m
        }
    }

    /// MOs counted so far across every operator and connector (read once a second by the
    /// console's history, never per MO).
    pub fn mos_total(&self) -> u64 {
        self.operators
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(OperatorMetrics::mos_total)
            .sum()
    }

    /// The `mo_to_mt` histogram now: `(upper bound in seconds, replies at or under it)`,
    /// cumulative, the open bucket last as infinity. `prometheus-client` shows buckets only
    /// through its encoder, so they are read back from the text form of this one family.
    pub fn mo_to_mt_buckets(&self) -> Vec<(f64, u64)> {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.mo_to_mt_only);
        text.lines()
            .filter_map(|line| {
                let rest = line.split_once("_bucket{le=\"")?.1;
                let (le, count) = rest.split_once("\"} ")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, count.trim().parse().ok()?))
            })
            .collect()
    }

    /// The handles of operator (or connector) `name`, made once.
    pub fn operator(&self, name: &str) -> OperatorMetrics {
        let label =
            |k: &'static str, v: &str| vec![("operator", name.to_string()), (k, v.to_string())];
        let om = OperatorMetrics {
            mos: MoOutcome::ALL.map(|o| self.mos.get_or_create_owned(&label("outcome", o.name()))),
            binds: BIND_KINDS.map(|k| self.binds.get_or_create_owned(&label("kind", k))),
            queue_depth: self
                .queue_depth
                .get_or_create_owned(&vec![("operator", name.to_string())]),
            reply_drops: self
                .reply_drops
                .get_or_create_owned(&vec![("operator", name.to_string())]),
            replies_delivered: self
                .replies_delivered
                .get_or_create_owned(&vec![("operator", name.to_string())]),
        };
        self.operators
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(om.clone());
        om
    }

    /// The receipt handles of connector `name`, made once.
    pub fn receipts(&self, name: &str) -> ReceiptMetrics {
        let label = |v: &str| vec![("connector", name.to_string()), ("state", v.to_string())];
        ReceiptMetrics {
            receipts: RECEIPT_STATES.map(|s| self.receipts.get_or_create_owned(&label(s))),
            replies: REPLY_STATES.map(|s| self.reply_delivery.get_or_create_owned(&label(s))),
        }
    }

    /// Counts a decision of `code` whose outcome is `outcome` (granted, active, or a
    /// denial's reason).
    pub fn decision(&self, code: u8, outcome: &'static str) {
        if let Some(c) = read(&self.decision_cache)
            .iter()
            .find(|((k, o), _)| *k == code && std::ptr::eq(*o, outcome))
            .map(|(_, c)| c)
        {
            c.inc();
            return;
        }
        let c = self.decisions.get_or_create_owned(&vec![
            ("code", code.to_string()),
            ("outcome", outcome.to_string()),
        ]);
        c.inc();
        write(&self.decision_cache).push(((code, outcome), c));
    }

    /// Counts a text that is no request, by `reason`.
    pub fn invalid(&self, reason: &'static str) {
        if let Some(c) = read(&self.invalid_cache)
            .iter()
            .find(|(r, _)| std::ptr::eq(*r, reason))
            .map(|(_, c)| c)
        {
            c.inc();
            return;
        }
        let c = self
            .invalid
            .get_or_create_owned(&vec![("reason", reason.to_string())]);
        c.inc();
        write(&self.invalid_cache).push((reason, c));
    }

    /// Counts a failed store round of `kind` (journal, redis).
    pub fn store_error(&self, kind: &'static str) {
        self.store_errors
            .get_or_create(&vec![("store", kind.to_string())])
            .inc();
    }

    /// Counts a refused bind, by `reason` (not on the hot path).
    pub fn refused_bind(&self, reason: &'static str) {
        self.refused_binds
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    /// Counts a connection refused at accept, by `reason`.
    pub fn refused_connection(&self, reason: &'static str) {
        self.refused_connections
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    /// Connector `name` has `up` binds up.
    pub fn connector(&self, name: &str, delta: i64) {
        self.connector_up
            .get_or_create(&vec![("connector", name.to_string())])
            .inc_by(delta);
    }

    /// Observes `d` into `histogram`, in seconds.
    pub fn observe(histogram: &Histogram, d: Duration) {
        histogram.observe(d.as_secs_f64());
    }

    /// The text format of every metric, after `refresh` has set the levels read at scrape
    /// time (queue depths).
    pub fn encode(&self, refresh: impl FnOnce()) -> String {
        refresh();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_count_into_the_text_format() {
        let m = Metrics::new();
        let op = m.operator("azercell");
        op.mo(MoOutcome::Granted);
        op.mo(MoOutcome::Granted);
        op.mo(MoOutcome::Invalid);
        op.binds[2].inc();
        m.decision(2, "granted");
        m.decision(2, "granted");
        m.decision(1, "daily_limit");
        m.invalid("unknown_series");
        Metrics::observe(&m.mo_to_mt, Duration::from_millis(3));
        let text = m.encode(|| {
            op.queue_depth.set(7);
        });
        for line in [
            "icaze_mos_total{operator=\"azercell\",outcome=\"granted\"} 2",
            "icaze_mos_total{operator=\"azercell\",outcome=\"invalid\"} 1",
            "icaze_binds{operator=\"azercell\",kind=\"transceiver\"} 1",
            "icaze_decisions_total{code=\"2\",outcome=\"granted\"} 2",
            "icaze_decisions_total{code=\"1\",outcome=\"daily_limit\"} 1",
            "icaze_invalid_texts_total{reason=\"unknown_series\"} 1",
            "icaze_reply_queue_depth{operator=\"azercell\"} 7",
            "icaze_mo_to_mt_seconds_count 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert_eq!(m.mos_total(), 3);
        let buckets = m.mo_to_mt_buckets();
        assert_eq!(buckets.len(), 23, "22 bounds and the open bucket");
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 1)));
        let first_holding = buckets.iter().find(|(_, n)| *n == 1).unwrap().0;
        assert!((0.003..0.007).contains(&first_holding), "{buckets:?}");
    }
}
