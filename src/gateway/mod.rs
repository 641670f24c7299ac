//! Joins the wire to the domain: an MO's text is decided, made durable, answered.
//!
//! [`Gateway`] is the state every connection shares: the rules (swappable at run time), the
//! engine, the store, the operators with their reply queues and rate limits. A connection
//! hands it the MOs of one read as a batch ([`Gateway::take_mos`]); the gateway decides
//! them all, makes the batch's grants durable with one store call (group commit across
//! connections), queues the replies and only then lets the connection acknowledge.
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

pub mod connection;
pub mod connector;
pub mod listener;
pub mod outbound;
pub mod shutdown;
pub mod throttle;

use crate::config::{Config, Connector, Operator, RedisConfig, StoreConfig};
use crate::permit::answer::{Verdict, reply_text};
use crate::permit::clock::Clock;
use crate::permit::engine::{Decision, Denial, Outcome, QuotaEngine};
use crate::permit::id::PermitKey;
use crate::permit::reply::Replier;
use crate::permit::rules::Rules;
use crate::smpp::Status;
use crate::store::GrantRecord;
use crate::store::journal::{Journal, JournalError};
use crate::store::redis::{GrantAsk, RedisError, RedisOptions, RedisStore, RedisVerdict, WaitAof};
use outbound::{Mt, ReplyQueue};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
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
}

/// What becomes of one MO: acknowledged with a message id, or refused with a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoResult {
    /// Decided, durable, reply queued: acknowledge with this message_id.
    Accepted(String),
    /// Refused with this SMPP command_status; the operator may retry.
    Refused(Status),
}

/// Where grants become durable.
#[derive(Debug)]
pub enum Store {
    /// The embedded journal (the default).
    Journal(Journal),
    /// Redis or Redis Cluster: Redis decides grants, so several nodes share one quota.
    Redis(RedisStore),
    /// Nothing durable: for load tests that measure the gateway alone. A restart forgets
    /// every permit; `serve` logs this loudly.
    Volatile,
}

impl Store {
    async fn persist(&self, grants: &[GrantRecord]) -> Result<(), JournalError> {
        match self {
            Store::Journal(j) => j.append(grants).await,
            // Redis made the grants durable when it decided them.
            Store::Redis(_) | Store::Volatile => Ok(()),
        }
    }
}

/// Why the gateway could not open its store.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The journal could not be opened or replayed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The Redis store could not be reached or set up.
    #[error("{0}")]
    Redis(String),
}

/// An operator's live state.
#[derive(Debug)]
pub struct OperatorState {
    /// Its config.
    pub config: Operator,
    /// Binds open now.
    pub binds: AtomicU32,
    /// Receiver-capable binds open now.
    pub receivers: AtomicU32,
    /// Replies owed to its subscribers.
    pub queue: ReplyQueue,
    /// Its inbound rate limit.
    pub throttle: Throttle,
}

impl OperatorState {
    /// Fresh state for `config`: no binds, an empty queue.
    pub fn new(config: Operator) -> Self {
        OperatorState {
            binds: AtomicU32::new(0),
            receivers: AtomicU32::new(0),
            queue: ReplyQueue::new(config.queue),
            throttle: Throttle::new(config.tps),
            config,
        }
    }
}

/// The shared state of a running gateway.
pub struct Gateway {
    /// The config it started with.
    pub config: Config,
    rules: RwLock<Arc<Rules>>,
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
    message_ids: AtomicU64,
    id_prefix: u32,
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
        let operators = config
            .operators
            .iter()
            .map(|o| (o.system_id.clone(), Arc::new(OperatorState::new(o.clone()))))
            .collect();
        let connectors = config
            .connectors
            .iter()
            .map(|c| (c.clone(), Arc::new(OperatorState::new(c.as_operator()))))
            .collect();
        let id_prefix = (clock.now().timestamp() as u32) & 0x0fff_ffff;
        Gateway {
            rules: RwLock::new(Arc::new(config.rules.clone())),
            key: config.permit_key.clone(),
            config,
            engine,
            store,
            operators,
            connectors,
            clock,
            message_ids: AtomicU64::new(1),
            id_prefix,
        }
    }

    /// Opens the configured store (Redis included, waiting for it while it is unreachable;
    /// see [`Gateway::open_redis`]) and builds the gateway.
    pub async fn connect(
        config: Config,
        clock: Arc<dyn Clock>,
        volatile: bool,
        shutdown: &CancellationToken,
    ) -> Result<Self, OpenError> {
        match &config.store {
            StoreConfig::Redis(redis) if !volatile => {
                let store = Self::open_redis(redis, shutdown).await?;
                let engine = QuotaEngine::with_capacity(config.engine_reserve);
                Ok(Gateway::new(config, engine, Store::Redis(store), clock))
            }
            _ => Self::open(config, clock, volatile),
        }
    }

    /// Connects to Redis and loads the function library. While Redis is unreachable (down,
    /// refusing, still loading its data) it says so in the log and tries again, backing off
    /// from 0.5 s to 10 s, until it succeeds or `shutdown` is cancelled; other errors (a
    /// server that is not a cluster node, no permission to load functions, no `WAITAOF`)
    /// are returned at once.
    pub async fn open_redis(
        redis: &RedisConfig,
        shutdown: &CancellationToken,
    ) -> Result<RedisStore, OpenError> {
        let options = redis_options(redis);
        let mut pause = Duration::from_millis(500);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match RedisStore::connect(options.clone()).await {
                Ok(store) => {
                    if attempts > 1 {
                        tracing::info!(attempts, "redis reachable again: starting");
                    }
                    return Ok(store);
                }
                Err(e @ RedisError::Unreachable { .. }) => {
                    tracing::warn!(
                        error = %e,
                        attempts,
                        retry_in = ?pause,
                        "redis store unreachable: SMPP stays closed until it answers; retrying"
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => {
                            return Err(OpenError::Redis(format!("stopped while waiting for Redis: {e}")));
                        }
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(OpenError::Redis(e.to_string())),
            }
        }
    }

    /// Opens the journal (or nothing, with `volatile`), replays it into a new engine, and
    /// builds the gateway. A Redis store needs [`Gateway::connect`].
    pub fn open(config: Config, clock: Arc<dyn Clock>, volatile: bool) -> Result<Self, OpenError> {
        if let StoreConfig::Redis(_) = &config.store
            && !volatile
        {
            return Err(OpenError::Redis(
                "store = redis://…: a Redis store is opened with Gateway::connect".into(),
            ));
        }
        let now = clock.now().timestamp();
        let rules = &config.rules;
        let engine = QuotaEngine::with_capacity(config.engine_reserve);
        let store = if volatile {
            tracing::warn!("store: volatile (nothing is durable; a restart forgets every permit)");
            Store::Volatile
        } else {
            let (journal, replayed) = Journal::open(
                &config.data_dir,
                rules.calendar.tz(),
                now,
                rules.longest_validity_secs,
            )?;
            for g in &replayed.grants {
                engine.record_grant(
                    rules,
                    g.code,
                    g.document,
                    crate::permit::engine::Validity {
                        from: g.from,
                        until: g.until,
                    },
                );
            }
            tracing::info!(
                dir = %config.data_dir.display(),
                grants = replayed.grants.len(),
                repaired = replayed.damage.len(),
                "journal replayed"
            );
            Store::Journal(journal)
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

    /// Whether `destination` is one of our short numbers.
    pub fn is_short_number(&self, destination: &str) -> bool {
        self.config
            .smpp
            .short_numbers
            .iter()
            .any(|n| n == destination)
    }

    fn message_id(&self) -> String {
        let n = self.message_ids.fetch_add(1, Ordering::Relaxed);
        format!("{:07x}{:09x}", self.id_prefix, n)
    }

    /// Decides a batch of MOs from `operator`, makes their grants durable, queues their
    /// replies, and says for each how to answer it. Results are in MO order.
    pub async fn take_mos(
        &self,
        operator: &OperatorState,
        mos: &[Mo],
        results: &mut Vec<MoResult>,
    ) {
        if let Store::Redis(redis) = &self.store {
            return self.take_mos_redis(redis, operator, mos, results).await;
        }
        let rules = self.rules();
        let now = self.clock.now().timestamp();
        let lang = operator.config.language;
        let mut grants: Vec<GrantRecord> = Vec::new();
        let mut replies: Vec<(usize, String)> = Vec::with_capacity(mos.len());
        for (i, mo) in mos.iter().enumerate() {
            let verdict = crate::permit::answer::decide_text(&self.engine, &rules, &mo.text, now);
            if let Verdict::Decided(d) = &verdict
                && let Outcome::Granted(v) = d.outcome
            {
                grants.push(GrantRecord {
                    document: d.document,
                    code: d.code,
                    from: v.from,
                    until: v.until,
                });
            }
            tracing::debug!(
                operator = %operator.config.system_id,
                msisdn = %crate::telemetry::mask_msisdn(&mo.source),
                text = %crate::telemetry::mask_text(&mo.text),
                outcome = ?verdict.kind(),
                reason = verdict.reason().unwrap_or(""),
                "MO decided"
            );
            replies.push((i, reply_text(&rules, &self.key, lang, &verdict)));
        }
        let durable = match self.store.persist(&grants).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, grants = grants.len(), "store failed: MOs refused, operator will retry");
                false
            }
        };
        results.clear();
        for (i, text) in replies {
            if !durable {
                results.push(MoResult::Refused(Status::ESME_RSYSERR));
                continue;
            }
            results.push(self.answer(operator, &mos[i], text));
        }
    }

    /// Queues `text` as the reply to `mo` and gives the MO's acknowledgement.
    fn answer(&self, operator: &OperatorState, mo: &Mo, text: String) -> MoResult {
        operator.queue.push(Mt {
            id: operator.queue.next_id(),
            source: mo.destination.clone(),
            destination: mo.source.clone(),
            dest_ton: mo.source_ton,
            dest_npi: mo.source_npi,
            text,
            attempts: 0,
        });
        MoResult::Accepted(self.message_id())
    }

    /// [`Gateway::take_mos`] with the Redis store: the engine answers what it can, Redis
    /// decides the possible grants of the whole batch in one call (batched further with the
    /// other connections' calls), and its verdicts are recorded in the engine.
    async fn take_mos_redis(
        &self,
        redis: &RedisStore,
        operator: &OperatorState,
        mos: &[Mo],
        results: &mut Vec<MoResult>,
    ) {
        let rules = self.rules();
        let now = self.clock.now().timestamp();
        let moment = rules.calendar.moment(now);
        let parser = rules.parser();
        let mut verdicts = Vec::with_capacity(mos.len());
        let mut asks = Vec::new();
        let mut asked = Vec::new();
        for (i, mo) in mos.iter().enumerate() {
            verdicts.push(match parser.parse(&mo.text) {
                Err(e) => Verdict::Invalid(e),
                Ok(request) => {
                    let decision =
                        self.engine
                            .peek_at(&rules, request.code, request.document, &moment);
                    if let Outcome::Granted(_) = decision.outcome
                        && let Some(rule) = rules.code(request.code)
                    {
                        asks.push(GrantAsk::for_rule(
                            request.document,
                            rule,
                            &rules.calendar,
                            now,
                            rules.longest_validity_secs,
                        ));
                        asked.push(i);
                    }
                    Verdict::Decided(decision)
                }
            });
        }
        // Which MOs Redis could not decide, and why.
        let mut undecided: Option<RedisError> = None;
        if !asks.is_empty() {
            match redis.decide(&asks).await {
                Ok(found) => {
                    for ((ask, &i), verdict) in asks.iter().zip(&asked).zip(found) {
                        let outcome = self.learn(&rules, ask, verdict, &moment);
                        verdicts[i] = Verdict::Decided(Decision {
                            code: ask.code,
                            document: ask.document,
                            outcome,
                        });
                    }
                }
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        mos = asked.len(),
                        retryable = e.is_retryable(),
                        "redis could not decide: those MOs get the try-later reply"
                    );
                    undecided = Some(e);
                }
            }
        }
        let lang = operator.config.language;
        let try_later = Replier::new(&rules, &self.key).try_later(lang);
        results.clear();
        let mut next_asked = asked.iter().peekable();
        for (i, (mo, verdict)) in mos.iter().zip(&verdicts).enumerate() {
            let was_asked = next_asked.next_if_eq(&&i).is_some();
            let text = match &undecided {
                Some(RedisError::Closed) if was_asked => {
                    // The gateway is stopping: leave the MO to the operator to resend.
                    results.push(MoResult::Refused(Status::ESME_RSYSERR));
                    continue;
                }
                Some(_) if was_asked => try_later.clone(),
                _ => reply_text(&rules, &self.key, lang, verdict),
            };
            tracing::debug!(
                operator = %operator.config.system_id,
                msisdn = %crate::telemetry::mask_msisdn(&mo.source),
                text = %crate::telemetry::mask_text(&mo.text),
                outcome = if was_asked && undecided.is_some() { "try_later" } else { verdict.kind().name() },
                reason = verdict.reason().unwrap_or(""),
                store = "redis",
                "MO decided"
            );
            results.push(self.answer(operator, mo, text));
        }
    }

    /// Turns Redis's verdict on `ask` into the engine's outcome and records a permit in the
    /// engine, so a repeat is answered here without asking Redis again.
    fn learn(
        &self,
        rules: &Rules,
        ask: &GrantAsk,
        verdict: RedisVerdict,
        moment: &crate::permit::clock::Moment,
    ) -> Outcome {
        match verdict {
            RedisVerdict::Granted(v) => {
                self.engine.record_grant(rules, ask.code, ask.document, v);
                Outcome::Granted(v)
            }
            RedisVerdict::Active(v) => {
                // Granted elsewhere (another node, or an earlier ask of this batch, which is
                // recorded already and must not be counted twice).
                if self
                    .engine
                    .peek_at(rules, ask.code, ask.document, moment)
                    .outcome
                    != Outcome::Active(v)
                {
                    self.engine.record_grant(rules, ask.code, ask.document, v);
                }
                Outcome::Active(v)
            }
            RedisVerdict::DailyLimit { limit } => Outcome::Denied(Denial::DailyLimit { limit }),
        }
    }
}

/// The Redis store's options from the config's `store` and `[redis]`.
pub fn redis_options(config: &RedisConfig) -> RedisOptions {
    RedisOptions {
        nodes: config.nodes.clone(),
        cluster: config.cluster,
        batch_max: config.batch_max,
        flush_after: config.flush_after,
        retry_for: config.retry_for,
        waitaof: config.waitaof.map(|(local, replicas, timeout)| WaitAof {
            local,
            replicas,
            timeout,
        }),
        ..RedisOptions::default()
    }
}
