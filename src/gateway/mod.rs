//! Joins the wire to the domain: an MO's text is decided, made durable, answered.
//!
//! [`Gateway`] is the state every connection shares: the rules (swappable at run time), the
//! engine, the store, the operators with their reply queues and rate limits. A connection
//! hands it the MOs of one read as a batch ([`Gateway::take_mos`]); the gateway decides
//! them all, makes the batch's grants durable with one store call (group commit across
//! connections), queues the replies and only then lets the connection acknowledge.

pub mod connection;
pub mod connector;
pub mod listener;
pub mod outbound;
pub mod shutdown;
pub mod throttle;

use crate::config::{Config, Operator};
use crate::permit::answer::{Verdict, reply_text};
use crate::permit::clock::Clock;
use crate::permit::engine::{Outcome, QuotaEngine};
use crate::permit::id::PermitKey;
use crate::permit::rules::Rules;
use crate::smpp::Status;
use crate::store::GrantRecord;
use crate::store::journal::{Journal, JournalError};
use outbound::{Mt, ReplyQueue};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use throttle::Throttle;

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
    /// Nothing durable: for load tests that measure the gateway alone. A restart forgets
    /// every permit; `serve` logs this loudly.
    Volatile,
}

impl Store {
    async fn persist(&self, grants: &[GrantRecord]) -> Result<(), JournalError> {
        match self {
            Store::Journal(j) => j.append(grants).await,
            Store::Volatile => Ok(()),
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
            .map(|o| {
                (
                    o.system_id.clone(),
                    Arc::new(OperatorState {
                        config: o.clone(),
                        binds: AtomicU32::new(0),
                        receivers: AtomicU32::new(0),
                        queue: ReplyQueue::new(o.queue),
                        throttle: Throttle::new(o.tps),
                    }),
                )
            })
            .collect();
        let id_prefix = (clock.now().timestamp() as u32) & 0x0fff_ffff;
        Gateway {
            rules: RwLock::new(Arc::new(config.rules.clone())),
            key: config.permit_key.clone(),
            config,
            engine,
            store,
            operators,
            clock,
            message_ids: AtomicU64::new(1),
            id_prefix,
        }
    }

    /// Opens the configured store, replays it into a new engine, and builds the gateway.
    pub fn open(config: Config, clock: Arc<dyn Clock>, volatile: bool) -> Result<Self, OpenError> {
        if let crate::config::StoreConfig::Redis(_) = &config.store
            && !volatile
        {
            return Err(OpenError::Redis(
                "store = redis://…: the Redis store is not wired into the gateway in this build; use store = \"journal\"".into(),
            ));
        }
        let now = clock.now().timestamp();
        let rules = &config.rules;
        let engine = QuotaEngine::new();
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
            let mo = &mos[i];
            operator.queue.push(Mt {
                id: operator.queue.next_id(),
                source: mo.destination.clone(),
                destination: mo.source.clone(),
                dest_ton: mo.source_ton,
                dest_npi: mo.source_npi,
                text,
                attempts: 0,
            });
            results.push(MoResult::Accepted(self.message_id()));
        }
    }
}
