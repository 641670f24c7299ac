//! Joins the wire to the domain: an MO's text is decided, made durable, answered.
//!
//! [`Gateway`] is the state every connection shares: the rules (swappable at run time), the
//! engine, the store, the operators with their reply queues and rate limits. A connection
//! hands it the MOs of one read as a batch ([`Gateway::take_mos`], in [`pipeline`]): one path
//! for every store. The batch is parsed, decided tentatively by the engine's batch path
//! without committing, its possible grants are claimed per document (so one document is
//! never decided by two rounds at once) and handed to the store in one round (group commit
//! across connections, or one Redis batch); only what the store made durable is committed to
//! the engine, then the replies are queued and the connection may acknowledge. A store
//! failure leaves no trace in the engine, so the operator's retry is decided afresh. An
//! answer that reports an earlier grant ("already active", "limit used") comes from the
//! engine's committed state, which holds only durable grants.
//!
//! # With Redis
//! Several gateway nodes share one quota, so Redis decides every grant (see
//! [`crate::store::redis`]). The engine stays in front of it as a cache of what this node has
//! seen: it answers on the spot what it safely can (an invalid text, a blocked document, a
//! code switched off or outside its hours, a permit already active here, a limit already
//! used here: none of these can turn into a grant elsewhere) and sends only possible grants
//! to Redis, batched with every other connection's. Redis's verdicts are recorded in the
//! engine, so a repeat is answered locally next time. When Redis stays unreachable for
//! `[redis] retry_for`, the citizen is told to try again in a few minutes and the MO is
//! acknowledged with that answer (so the operator does not resend it while Redis is away).

pub mod admission;
mod citizens;
mod claims;
pub mod connection;
pub mod connector;
pub mod lanes;
pub mod listener;
pub mod message_id;
pub mod outbound;
pub mod pipeline;
pub mod receipts;
pub mod shutdown;
pub mod stats;
pub mod throttle;

use crate::config::{Config, ConfigErrors, Connector, Operator, StoreConfig};
use crate::permit::clock::Clock;
use crate::permit::engine::QuotaEngine;
use crate::permit::id::PermitKey;
use crate::permit::rules::Rules;
use crate::smpp::Status;
use crate::store::outbox::OwedReply;
use crate::store::redis::RedisError;
pub use crate::store::{OpenError, Store};
use crate::telemetry::metrics::{Metrics, OperatorMetrics};
use admission::Admission;
use claims::Claims;
use message_id::MessageIds;
use outbound::Mt;
use outbound::ReplyQueue;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use throttle::Throttle;
use tokio_util::sync::CancellationToken;

/// An MO as the gateway sees it: who sent what to which number. The wire's details (PDU
/// kind, coding, segments) are already gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mo {
    /// The citizen's number.
    pub source: String,
    /// Its type of number.
    pub source_ton: u8,
    /// Its numbering plan.
    pub source_npi: u8,
    /// The short number texted.
    pub destination: String,
    /// The text, decoded.
    pub text: String,
    /// When it was read (the start of its MO→MT time).
    pub received: tokio::time::Instant,
}

/// What becomes of one MO: acknowledged with a message id, or refused with a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoResult {
    /// Decided, durable, reply queued: acknowledge with this message_id.
    Accepted(String),
    /// Refused with this SMPP command_status; the operator may retry.
    Refused(Status),
}

/// An operator's live state.
#[derive(Debug)]
pub struct OperatorState {
    /// Its config.
    pub config: Operator,
    /// Its queue's name in the store's outbox: its `system_id`, or `@` and the name of a
    /// connector.
    pub name: String,
    /// Binds open now.
    pub binds: AtomicU32,
    /// Replies owed to its subscribers.
    pub queue: ReplyQueue,
    /// Its inbound rate limit.
    pub throttle: Throttle,
    /// Its metric handles.
    pub metrics: OperatorMetrics,
    /// A connector's delivery receipts (none for an operator bound to us).
    pub receipts: Option<receipts::ReceiptBook>,
}

impl OperatorState {
    /// Fresh state for `config`, its queue called `name` in the outbox: no binds, an
    /// empty queue, its metric handles in `metrics`.
    pub fn new(config: Operator, name: String, metrics: &Metrics) -> Self {
        OperatorState {
            name,
            metrics: metrics.operator(&config.system_id),
            binds: AtomicU32::new(0),
            queue: ReplyQueue::new(config.queue),
            throttle: Throttle::new(config.tps),
            config,
            receipts: None,
        }
    }
}

/// Where the rules in force came from: what the admin API shows and readiness reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesInfo {
    /// The first 16 hex digits of the SHA-256 of the file's text: two nodes with the same
    /// version run the same rules.
    pub version: String,
    /// When they were loaded, Unix seconds.
    pub loaded_at: i64,
    /// The file they were read from.
    pub path: PathBuf,
    /// The file's text as loaded.
    pub text: String,
}

impl RulesInfo {
    /// The info of rules read from `path` with this `text` at `now`.
    pub fn new(path: &Path, text: String, now: i64) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(text.as_bytes());
        let version = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        RulesInfo {
            version,
            loaded_at: now,
            path: path.to_path_buf(),
            text,
        }
    }
}

/// The shared state of a running gateway.
pub struct Gateway {
    /// The config it started with.
    pub config: Config,
    rules: RwLock<Arc<Rules>>,
    rules_info: RwLock<Arc<RulesInfo>>,
    /// Held while the rules file is re-read or replaced, so two changes never interleave.
    rules_change: Mutex<()>,
    /// Whether the SMPP listener is bound and accepting (for readiness).
    pub smpp_listening: AtomicBool,
    /// The day's figures (`GET /v1/stats`).
    pub stats: stats::Stats,
    /// The quota engine.
    pub engine: QuotaEngine,
    /// The permit-id key.
    pub key: PermitKey,
    /// Where grants become durable.
    pub store: Store,
    /// Operators by system_id.
    pub operators: HashMap<String, Arc<OperatorState>>,
    /// Operators' SMSCs we bind to, each with the state its MOs and replies share across
    /// its binds (kept apart from `operators`: nobody can bind to us as a connector).
    pub connectors: Vec<(Connector, Arc<OperatorState>)>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    message_ids: MessageIds,
    /// Documents whose possible grant is with the store right now.
    claims: Claims,
    /// Phones whose possible grants are with the store now (under a per-phone limit).
    phone_claims: Claims<crate::permit::id::PhoneTag>,
    /// Connection slots, unbound connections per address, failed binds per address.
    pub admission: Arc<Admission>,
    /// Every metric (`GET /metrics`).
    pub metrics: Arc<Metrics>,
    /// The next reply's id in the outbox.
    reply_ids: AtomicU64,
    /// The certificates of the SMPP TLS port and the HTTPS admin API (re-read on SIGHUP).
    pub tls: crate::tls::Servers,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("operators", &self.operators.len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway over `config`, with `store` (already replayed into `engine`).
    pub fn new(config: Config, engine: QuotaEngine, store: Store, clock: Arc<dyn Clock>) -> Self {
        let metrics = Arc::new(Metrics::new());
        let operators = config
            .operators
            .iter()
            .map(|o| {
                let state = OperatorState::new(o.clone(), o.system_id.clone(), &metrics);
                (o.system_id.clone(), Arc::new(state))
            })
            .collect();
        let connectors = config
            .connectors
            .iter()
            .map(|c| {
                let mut state =
                    OperatorState::new(c.as_operator(), format!("@{}", c.name), &metrics);
                let bounds = receipts::Bounds {
                    registered_delivery: c.registered_delivery,
                    expiry: c.receipt_expiry,
                    limit: c.receipt_limit,
                };
                state.receipts = Some(receipts::ReceiptBook::new(
                    &c.name,
                    bounds,
                    metrics.receipts(&c.name),
                ));
                (c.clone(), Arc::new(state))
            })
            .collect();
        let now = clock.now().timestamp();
        let reply_ids = AtomicU64::new(first_reply_id(clock.as_ref()));
        // The text the config's rules were loaded from; a file changed since start shows
        // another version, which a reload then makes true.
        let text = crate::config::read_rules_text(&config.rules_path).unwrap_or_default();
        let info = RulesInfo::new(&config.rules_path, text, now);
        let gateway = Gateway {
            rules: RwLock::new(Arc::new(config.rules.clone())),
            rules_info: RwLock::new(Arc::new(info)),
            rules_change: Mutex::new(()),
            smpp_listening: AtomicBool::new(false),
            // A seed every node with the same permit key shares, so distinct phones add up.
            // The day's sets get the engine's reserve; what is first seen is kept for Redis.
            stats: stats::Stats::with_seed(
                crate::permit::document::Document::new(b"AA", b"0000000")
                    .map_or(0, |d| config.permit_key.permit_id(d, 0, 0, 0).bits()),
            )
            .reserving(config.engine_reserve)
            .sharing(matches!(store, Store::Redis(_))),
            key: config.permit_key.clone(),
            engine,
            store,
            operators,
            connectors,
            clock,
            message_ids: MessageIds::new(config.smpp.node_id, config.smpp.message_ids),
            claims: Claims::new(),
            phone_claims: Claims::new(),
            admission: Arc::new(Admission::new(&config)),
            metrics,
            reply_ids,
            tls: crate::tls::Servers::new(&config),
            config,
        };
        if let Store::Journal(journal) = &gateway.store {
            gateway.queue_owed(journal.take_owed());
        }
        // Today's figures are set up now, their reserved sets with them, not under the
        // figures' lock when the first MOs are counted.
        let today = gateway.rules().calendar.moment(now).day;
        gateway.stats.prepare(today);
        gateway
    }

    /// Queues the replies the store still owed at start (after a crash: those acknowledged
    /// but never delivered) for their operators, oldest first, ahead of anything new; new
    /// ids start past theirs. A reply whose operator is no longer configured stays owed
    /// in the store and is logged.
    pub fn queue_owed(&self, owed: Vec<OwedReply>) {
        if owed.is_empty() {
            return;
        }
        let last = owed.iter().map(|r| r.id).max().unwrap_or(0);
        self.reply_ids.fetch_max(last + 1, Ordering::Relaxed);
        let now = tokio::time::Instant::now();
        let mut queued = 0usize;
        let mut orphans = 0usize;
        for reply in owed {
            let operator = self.operators.get(&reply.queue).or_else(|| {
                self.connectors
                    .iter()
                    .find(|(_, o)| o.name == reply.queue)
                    .map(|(_, o)| o)
            });
            match operator {
                Some(op) => {
                    op.queue.push(Mt::owed(reply, now));
                    queued += 1;
                }
                None => {
                    orphans += 1;
                    tracing::warn!(queue = %reply.queue, msisdn = %crate::telemetry::mask_msisdn(&reply.destination),
                        "a reply owed before the restart is for an operator no longer configured: kept in the outbox");
                }
            }
        }
        tracing::info!(
            queued,
            orphans,
            "replies owed before the restart queued for delivery"
        );
    }

    /// Owes `reply` on `operator`'s queue outside an MO's batch (the hint for a
    /// concatenated MO whose parts were acknowledged but never completed): made durable,
    /// then queued; if the store cannot keep it, it is queued all the same (its parts were
    /// acknowledged long ago).
    pub fn owe_later(self: &Arc<Self>, operator: Arc<OperatorState>, reply: OwedReply) {
        let gw = self.clone();
        let since = tokio::time::Instant::now();
        tokio::spawn(async move {
            match gw.store.owe(gw.node(), &[], &[&reply]).await {
                Ok(()) => operator.queue.push(Mt::owed(reply, since)),
                Err(e) => {
                    tracing::warn!(error = %e, "a hint reply could not be made durable: queued all the same");
                    operator.queue.push(Mt::in_memory(reply, since));
                }
            }
        });
    }

    /// This node's id (`[smpp] node_id`): its outbox in a shared store.
    pub fn node(&self) -> u16 {
        self.config.smpp.node_id
    }

    /// Settles reply `mt`: delivered, or refused for good (nothing to do for a reply the
    /// store never held).
    pub fn settle(&self, mt: &Mt) {
        if mt.kept {
            self.store.settle(self.node(), mt.id);
        }
    }

    /// A fresh outbox id for a reply.
    pub fn next_reply_id(&self) -> u64 {
        self.reply_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Opens the configured store (Redis included, waiting for it while it is unreachable;
    /// see [`Store::open_redis`]), replays a journal into a new engine, and builds the
    /// gateway.
    pub async fn connect(
        config: Config,
        clock: Arc<dyn Clock>,
        volatile: bool,
        shutdown: &CancellationToken,
    ) -> Result<Self, OpenError> {
        let engine = QuotaEngine::with_permits(config.engine_reserve, config.permit_key.clone());
        let now = clock.now().timestamp();
        let store = Store::open(&config, &engine, now, volatile, shutdown).await?;
        let gateway = Gateway::new(config, engine, store, clock);
        if let Store::Redis(redis) = &gateway.store {
            gateway.queue_owed(redis.owed(gateway.node()).await?);
        }
        Ok(gateway)
    }

    /// [`Gateway::connect`] without waiting: the journal (or nothing, with `volatile`). A
    /// Redis store needs [`Gateway::connect`].
    pub fn open(config: Config, clock: Arc<dyn Clock>, volatile: bool) -> Result<Self, OpenError> {
        let engine = QuotaEngine::with_permits(config.engine_reserve, config.permit_key.clone());
        let store = match (&config.store, volatile) {
            (_, true) => Store::Volatile,
            (StoreConfig::Journal, false) => {
                Store::open_journal(&config, &engine, clock.now().timestamp())?
            }
            (StoreConfig::Redis(_), false) => {
                return Err(OpenError::Redis(RedisError::Config {
                    reason: "store = redis://…: a Redis store is opened with Gateway::connect"
                        .into(),
                }));
            }
        };
        Ok(Gateway::new(config, engine, store, clock))
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<Rules> {
        self.rules
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Swaps the rules; decisions already made keep their state.
    pub fn set_rules(&self, rules: Rules) {
        if let Store::Journal(j) = &self.store {
            j.set_longest_validity_secs(rules.longest_validity_secs);
        }
        *self
            .rules
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(rules);
    }

    /// Where the rules in force came from.
    pub fn rules_info(&self) -> Arc<RulesInfo> {
        self.rules_info
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the rules file (SIGHUP, `POST /v1/rules/reload`): valid rules are swapped in
    /// and their info returned; a bad file changes nothing and every error is returned.
    /// Blocking file I/O.
    pub fn reload_rules(&self) -> Result<Arc<RulesInfo>, ConfigErrors> {
        let _one = self
            .rules_change
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = &self.config.rules_path;
        let text = crate::config::read_rules_text(path)?;
        let rules = crate::config::rules_from_text(path, &text)?;
        Ok(self.swap_rules(rules, text))
    }

    /// Replaces the rules file with `text` (`PUT /v1/rules`): validated first (a bad text
    /// changes nothing, file included, and every error is returned), then written beside
    /// the file, synced and renamed over it, and swapped in. Blocking file I/O.
    pub fn replace_rules(&self, text: String) -> Result<Arc<RulesInfo>, ConfigErrors> {
        let _one = self
            .rules_change
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = &self.config.rules_path;
        let rules = crate::config::rules_from_text(path, &text)?;
        write_atomically(path, text.as_bytes()).map_err(|e| {
            ConfigErrors(vec![crate::config::ConfigError {
                file: path.clone(),
                key: "(file)".into(),
                message: format!("cannot write: {e}"),
            }])
        })?;
        Ok(self.swap_rules(rules, text))
    }

    fn swap_rules(&self, rules: Rules, text: String) -> Arc<RulesInfo> {
        let info = Arc::new(RulesInfo::new(
            &self.config.rules_path,
            text,
            self.clock.now().timestamp(),
        ));
        self.set_rules(rules);
        *self
            .rules_info
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = info.clone();
        info
    }

    /// Whether `destination` is one of our short numbers.
    pub fn is_short_number(&self, destination: &str) -> bool {
        self.config
            .smpp
            .short_numbers
            .iter()
            .any(|n| n == destination)
    }

    /// Every metric in the Prometheus text format, with the reply queues' depths read now.
    pub fn metrics_text(&self) -> String {
        self.metrics.encode(|| {
            let all = self
                .operators
                .values()
                .chain(self.connectors.iter().map(|(_, o)| o));
            for op in all {
                op.metrics.queue_depth.set(op.queue.len() as i64);
            }
            self.metrics.replies_owed.set(self.store.owed_now() as i64);
        })
    }

    fn message_id(&self) -> String {
        self.message_ids.next()
    }
}

/// The first reply id of a run: the clock in microseconds, so ids keep growing across
/// restarts even once the outbox holds none of the earlier ones.
fn first_reply_id(clock: &dyn Clock) -> u64 {
    clock.now().timestamp_micros().max(1) as u64
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path` and
/// syncs the folder: a crash leaves the old file or the new one, never half of either.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{}.tmp", name.unwrap_or_else(|| "rules".into())));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::File::open(dir)?.sync_all()
}
