//! Durability behind the engine: the engine decides tentatively in memory, a store makes each
//! grant survive a restart (or, with Redis, decides it for every node), and only then does
//! the engine commit it and the gateway acknowledge the MO.
//!
//! - [`journal`]: the embedded default, an append-only file with group commit.
//! - [`redis`]: Redis or Redis Cluster, for several gateway nodes sharing one quota.
//! - [`Store`]: the store a gateway runs on, opened from the config, with one
//!   [`Store::decide`] for every kind.

pub mod journal;
pub mod outbox;
pub mod redis;

use crate::config::{Config, RedisConfig, StoreConfig};
use crate::permit::decision::Validity;
use crate::permit::document::Document;
use crate::permit::engine::QuotaEngine;
use crate::permit::engine::blocks::{Block, from_words, words};
use crate::permit::engine::permits::Revocation;
use crate::permit::id::{PermitId, PhoneTag};
use crate::permit::rules::Rules;
use journal::{BlockRecord, Journal, JournalError, JournalOptions, RevocationRecord};
use outbox::OwedReply;
use redis::{
    GrantAsk, RedisError, RedisOptions, RedisRevocation, RedisStore, RedisVerdict, WaitAof,
};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One grant, as the stores keep it: enough to rebuild the engine's state and the permit id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantRecord {
    /// The document the permit is for.
    pub document: Document,
    /// The permit code.
    pub code: u8,
    /// Issued and valid from, Unix seconds.
    pub from: i64,
    /// Valid until, Unix seconds.
    pub until: i64,
    /// The phone that asked ([`PhoneTag::NONE`] in records written before phones were
    /// kept): rebuilt into the permit book and the phone's documents of the day.
    pub phone: PhoneTag,
}

/// A grant the engine would make, handed to the store before anything is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tentative {
    /// The document asked for.
    pub document: Document,
    /// The code asked for.
    pub code: u8,
    /// The permit's window as this node's engine computed it (what the journal writes).
    pub validity: Validity,
    /// The phone that asked.
    pub phone: PhoneTag,
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

/// Why a store could not decide or make durable a round of grants. Nothing of the round
/// may be committed or acknowledged as granted.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The journal could not write or sync (full or read-only disk, i/o error, closed).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Redis could not decide (unreachable, not durable in time, closed).
    #[error(transparent)]
    Redis(#[from] RedisError),
}

impl StoreError {
    /// Whether the same round may succeed if tried again later (a disk that gets space
    /// again, Redis back up), as opposed to a store that is stopping or misconfigured.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Journal(e) => e.is_retryable(),
            StoreError::Redis(e) => e.is_retryable(),
        }
    }

    /// Whether the store was closed because the gateway is stopping: the MO is left to the
    /// operator to resend, to this node or another.
    pub fn is_closed(&self) -> bool {
        matches!(
            self,
            StoreError::Journal(JournalError::Closed) | StoreError::Redis(RedisError::Closed)
        )
    }
}

/// Why the gateway could not open its store.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The journal could not be opened or replayed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The Redis store could not be set up (bad options, no `WAITAOF`, no permission to
    /// load functions, not a cluster node).
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// Shutdown was asked for while waiting for Redis to become reachable.
    #[error("stopped while waiting for Redis ({last})")]
    Stopped {
        /// Why Redis was not reachable at the last try.
        last: RedisError,
    },
}

impl Store {
    /// Opens the store `config` names, replaying a journal into `engine` (`now`: Unix
    /// seconds). A Redis store is waited for while it is unreachable (see
    /// [`Store::open_redis`]); `volatile` opens nothing durable whatever the config says.
    pub async fn open(
        config: &Config,
        engine: &QuotaEngine,
        now: i64,
        volatile: bool,
        shutdown: &CancellationToken,
    ) -> Result<Store, OpenError> {
        if volatile {
            tracing::warn!("store: volatile (nothing is durable; a restart forgets every permit)");
            return Ok(Store::Volatile);
        }
        match &config.store {
            StoreConfig::Redis(redis) => {
                let options = RedisOptions {
                    permit_key: Some(config.permit_key.clone()),
                    ..redis_options(redis)
                };
                Ok(Store::Redis(
                    Self::open_redis_with(options, shutdown).await?,
                ))
            }
            StoreConfig::Journal => Self::open_journal(config, engine, now),
        }
    }

    /// Opens the journal in `config.data_dir` and replays its grants into `engine`. Blocking
    /// file I/O: call it at start, before serving.
    pub fn open_journal(
        config: &Config,
        engine: &QuotaEngine,
        now: i64,
    ) -> Result<Store, OpenError> {
        let rules = &config.rules;
        let (journal, replayed) = Journal::open_with(
            &config.data_dir,
            rules.calendar.tz(),
            now,
            rules.longest_validity_secs,
            JournalOptions {
                round_every: config.journal_round_every,
                ..Default::default()
            },
        )?;
        for g in &replayed.grants {
            engine.record_grant_by(
                rules,
                g.code,
                g.document,
                Validity {
                    from: g.from,
                    until: g.until,
                },
                g.phone,
            );
        }
        if let Some(permits) = engine.permits() {
            for r in &replayed.revocations {
                let g = r.grant;
                let validity = Validity {
                    from: g.from,
                    until: g.until,
                };
                permits.revoke(
                    permits.id_of(g.document, g.code, validity),
                    Revocation {
                        reason: r.reason.clone(),
                        at: r.at,
                    },
                );
            }
        }
        for b in &replayed.blocks {
            let block = b.blocked.then(|| Block {
                codes: from_words(b.codes),
                reason: b.reason.clone(),
                at: b.at,
                until: b.until,
            });
            engine.blocks().set(b.document, block);
        }
        tracing::info!(
            dir = %config.data_dir.display(),
            grants = replayed.grants.len(),
            blocks = replayed.blocks.len(),
            revocations = replayed.revocations.len(),
            repaired = replayed.damage.len(),
            "journal replayed"
        );
        Ok(Store::Journal(journal))
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
        Self::open_redis_with(redis_options(redis), shutdown).await
    }

    /// [`Store::open_redis`] with the options given.
    pub async fn open_redis_with(
        options: RedisOptions,
        shutdown: &CancellationToken,
    ) -> Result<RedisStore, OpenError> {
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
                        _ = shutdown.cancelled() => return Err(OpenError::Stopped { last: e }),
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(OpenError::Redis(e)),
            }
        }
    }

    /// Decides a round of tentative grants made at `now` under `rules` for good, one verdict
    /// per grant in order. The
    /// journal writes and syncs them all (group commit with the other connections' rounds)
    /// and grants them as the engine computed; Redis decides each against the shared state
    /// (another node may have granted first: then the verdict says active or limit used);
    /// volatile grants them. On an error nothing of the round is durable (or, with Redis,
    /// known to be), and the caller must commit nothing. With Redis each grant has its own
    /// result: when one shard of a cluster is away only its grants fail (`Err` of
    /// [`RedisError`]), and what the healthy shards granted is granted. `read_at` is when
    /// the oldest MO behind the grants was read: Redis's `retry_for` counts from then.
    pub async fn decide(
        &self,
        rules: &Rules,
        now: i64,
        grants: &[Tentative],
        read_at: Option<tokio::time::Instant>,
    ) -> Result<Vec<Result<RedisVerdict, RedisError>>, StoreError> {
        if grants.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Store::Journal(journal) => {
                let records: Vec<GrantRecord> = grants
                    .iter()
                    .map(|g| GrantRecord {
                        document: g.document,
                        code: g.code,
                        from: g.validity.from,
                        until: g.validity.until,
                        phone: g.phone,
                    })
                    .collect();
                journal.append_owned(records).await?;
                Ok(granted(grants))
            }
            Store::Redis(redis) => {
                // The shared-state question (quota group, day, expiry) is only Redis's to ask,
                // so only Redis pays for working it out.
                let asks: Vec<GrantAsk> = grants
                    .iter()
                    .filter_map(|g| {
                        let rule = rules.code(g.code)?;
                        Some(GrantAsk::for_rule(
                            g.document,
                            rule,
                            &rules.calendar,
                            now,
                            rules.longest_validity_secs,
                        ))
                    })
                    .collect();
                if asks.len() != grants.len() {
                    return Err(StoreError::Redis(RedisError::Config {
                        reason: "a tentative grant names a code the rules do not have".into(),
                    }));
                }
                Ok(redis.decide_each_since(&asks, read_at).await)
            }
            Store::Volatile => Ok(granted(grants)),
        }
    }

    /// Whether the store grants every tentative grant as the engine computed it (the
    /// journal, volatile): then the grants of a batch's last round can wait to be written
    /// with its replies, in one commit ([`Store::owe`]). Redis decides against every node's
    /// state, so it is asked first ([`Store::decide`]).
    pub fn grants_as_asked(&self) -> bool {
        matches!(self, Store::Journal(_) | Store::Volatile)
    }

    /// Which shard decides each document, on a store of several independent parts (Redis:
    /// one per primary); `None` on a store that decides every MO in one place (the
    /// journal), where MOs need not be kept apart.
    pub fn shards(&self) -> Option<crate::store::redis::Shards> {
        match self {
            Store::Redis(redis) => Some(redis.shards()),
            Store::Journal(_) | Store::Volatile => None,
        }
    }

    /// Makes `grants` (of a store that [grants as asked](Store::grants_as_asked); empty
    /// otherwise) and the `replies` their batch owes durable in one round: the journal
    /// writes both in one commit (one `fdatasync` per file, shared with other connections'
    /// rounds); Redis keeps the replies in node `node`'s outbox hash, written after its
    /// verdicts. Once it returns `Ok` a restart still owes every reply until it is
    /// [settled](Store::settle); on an error nothing of it may be counted on.
    pub async fn owe(
        &self,
        node: u16,
        grants: &[Tentative],
        replies: &[&OwedReply],
    ) -> Result<(), StoreError> {
        match self {
            Store::Journal(journal) => {
                let records = grants
                    .iter()
                    .map(|g| GrantRecord {
                        document: g.document,
                        code: g.code,
                        from: g.validity.from,
                        until: g.validity.until,
                        phone: g.phone,
                    })
                    .collect();
                Ok(journal
                    .append_round(records, replies.iter().copied())
                    .await?)
            }
            Store::Redis(redis) => Ok(redis.owe(node, replies).await?),
            Store::Volatile => Ok(()),
        }
    }

    /// Node `node`'s reply `id` was delivered (or refused for good): the store no longer
    /// owes it. Written without waiting.
    pub fn settle(&self, node: u16, id: u64) {
        match self {
            Store::Journal(journal) => journal.settle(id),
            Store::Redis(redis) => redis.settle(node, id),
            Store::Volatile => {}
        }
    }

    /// Replies owed now, durable and not yet settled (for `icaze_replies_owed`).
    pub fn owed_now(&self) -> u64 {
        match self {
            Store::Journal(journal) => journal.stats().owed,
            Store::Redis(redis) => redis.owed_now(),
            Store::Volatile => 0,
        }
    }

    /// The replies node `node` owed when the store was opened (after a crash: those
    /// acknowledged and never delivered), oldest first; the journal gives them once.
    pub async fn take_owed(&self, node: u16) -> Result<Vec<OwedReply>, StoreError> {
        match self {
            Store::Journal(journal) => Ok(journal.take_owed()),
            Store::Redis(redis) => Ok(redis.owed(node).await?),
            Store::Volatile => Ok(Vec::new()),
        }
    }

    /// Makes the revocation of the permit `id` (`grant`) durable (at `at`, Unix seconds, for
    /// `reason`): once this returns `Ok` a restart still knows it. The caller then marks it
    /// in the engine's permit book.
    pub async fn revoke(
        &self,
        id: PermitId,
        grant: GrantRecord,
        at: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        match self {
            Store::Journal(journal) => Ok(journal
                .append_revocation(RevocationRecord {
                    grant,
                    at,
                    reason: journal::cut_reason(reason).to_string(),
                })
                .await?),
            Store::Redis(redis) => Ok(redis
                .revoke(&RedisRevocation {
                    id,
                    grant,
                    at,
                    reason: reason.to_string(),
                })
                .await?),
            Store::Volatile => Ok(()),
        }
    }

    /// Makes a run-time block of `document` durable (`Some`), or its lifting (`None`); the
    /// caller then sets it in the engine. Redis keeps it where every node reads it.
    pub async fn block(
        &self,
        document: Document,
        block: Option<&Block>,
        at: i64,
    ) -> Result<(), StoreError> {
        match self {
            Store::Journal(journal) => Ok(journal
                .append_block_entry(BlockRecord {
                    document,
                    codes: block.map_or([0; 4], |b| words(b.codes)),
                    blocked: block.is_some(),
                    at: block.map_or(at, |b| b.at),
                    until: block.and_then(|b| b.until),
                    reason: block
                        .map_or("", |b| journal::cut_reason(&b.reason))
                        .to_string(),
                })
                .await?),
            Store::Redis(redis) => Ok(redis.block(document, block).await?),
            Store::Volatile => Ok(()),
        }
    }

    /// A permit another node granted, and its revocation `(at, reason)` if any, looked up
    /// by id in the store's index (Redis, standalone or cluster); other stores have no other
    /// nodes and answer `None`.
    pub async fn permit(
        &self,
        id: PermitId,
    ) -> Result<Option<(GrantRecord, Option<(i64, String)>)>, StoreError> {
        match self {
            Store::Redis(redis) => Ok(redis.permit(id).await?),
            _ => Ok(None),
        }
    }

    /// Whether another node revoked `id`, `(at, reason)` (Redis); `None` for other stores,
    /// whose revocations are all in this node's engine.
    pub async fn revocation(&self, id: PermitId) -> Result<Option<(i64, String)>, StoreError> {
        match self {
            Store::Redis(redis) => Ok(redis.revocation(id).await?),
            _ => Ok(None),
        }
    }

    /// Whether the store can take writes now (for readiness): the journal's writer answers
    /// and its directory takes a file; every Redis primary answers `PING`.
    pub async fn check(&self) -> Result<(), StoreError> {
        match self {
            Store::Journal(journal) => Ok(journal.check().await?),
            Store::Redis(redis) => Ok(redis.health().await?),
            Store::Volatile => Ok(()),
        }
    }

    /// The store's name in logs and health answers.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Journal(_) => "journal",
            Store::Redis(_) => "redis",
            Store::Volatile => "volatile",
        }
    }
}

fn granted(grants: &[Tentative]) -> Vec<Result<RedisVerdict, RedisError>> {
    grants
        .iter()
        .map(|g| Ok(RedisVerdict::Granted(g.validity)))
        .collect()
}

/// The Redis store's options from the config's `store` and `[redis]`.
pub fn redis_options(config: &RedisConfig) -> RedisOptions {
    RedisOptions {
        nodes: config.nodes.clone(),
        cluster: config.cluster,
        batch_max: config.batch_max,
        flush_after: config.flush_after,
        retry_for: config.retry_for,
        waitaof: config
            .waitaof
            .map(|(local, replicas, timeout)| WaitAof {
                local,
                replicas,
                timeout,
                received_only: false,
            })
            .or(config.replicas.map(|(replicas, timeout)| WaitAof {
                local: 0,
                replicas,
                timeout,
                received_only: true,
            })),
        ..RedisOptions::default()
    }
}
