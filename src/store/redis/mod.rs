//! Redis or Redis Cluster as the store, for several gateway nodes behind one short number.
//!
//! # Why Redis decides, not only stores
//! With one gateway the in-memory engine decides and the journal only makes grants durable.
//! With several gateway nodes, operators spread their binds over the nodes, and the same
//! citizen's SMS (or an operator's re-send of it) can reach two nodes at once: only one
//! place may decide, atomically. So here each ask is decided inside Redis by the function
//! `icaze_grant` of the library [`LIBRARY`] (`#!lua name=icaze`, loaded with `FUNCTION LOAD
//! REPLACE` on every primary at [`RedisStore::connect`], called with `FCALL`), with exactly
//! the engine's rules for one ask:
//!
//! 1. the code's grant holds a permit whose `until` is after `now`: [`RedisVerdict::Active`]
//!    with the same window (so the same permit id), no quota used;
//! 2. else the group's count for today (kept with the day start it counts for; an older day
//!    counts as 0) has reached the limit: [`RedisVerdict::DailyLimit`];
//! 3. else the count goes up by one, the grant is stored (`from = now`, `until = now +
//!    validity`) and [`RedisVerdict::Granted`].
//!
//! The hours, switched-off codes and the blocklist need no shared state: the gateway checks
//! them before it asks. The first ask of a document's day finds no key and is decided by one
//! `SET key value NX EXAT t GET` (one more for a shared group's count); only later asks read
//! and rewrite.
//!
//! # Keys
//! The document (its [`Display`](std::fmt::Display) form, `AZE11111111`) is the hash tag, so
//! every key one ask touches is in one cluster slot, on one node:
//! - `icaze:{AZE11111111}:g:2`: quota group 2 (a group's tag is its lowest code);
//! - `icaze:{AZE11111111}:c:1`: the latest permit of code 1, for a code that shares its
//!   group with others. A code with a group of its own keeps its permit in the group key.
//! - `icaze:permit:{K7QM-4RTX}`: `DOCUMENT CODE FROM UNTIL` of the permit with that id, so a
//!   checkpoint asking any node can verify it (see [`RedisOptions::permit_key`]): written by
//!   the same `FCALL` as its grant on a standalone Redis, and right after the verdict (before
//!   the MO is acknowledged) in a cluster, where it is in another slot.
//! - `icaze:revoked:{K7QM-4RTX}`: `AT REASON` of a revoked permit; `icaze:revocations`: a
//!   stream of every revocation, which each node follows so its engine answers a revoked
//!   permit's repeat itself (`admin.rs`).
//! - `icaze:phone:{TAG}` and `icaze:{AZE11111111}:status`: each phone's documents of the
//!   day and each document's permits of the day with their phone (`citizens.rs`).
//!
//! A value is `day count from until ask`: the Unix second of the local midnight the count is
//! for, the grants counted that day, the latest permit's window, and the id (hex) of the ask
//! that made it (`0` where the key holds no count, no permit or no id). Plain strings, so
//! `GET` in `redis-cli` shows an operator what a citizen has.
//!
//! # Expiry
//! Every key written gets `EXAT` = the caller's [`GrantAsk::expire_at`] (next local midnight
//! plus the longest validity: after that neither the count nor the permit can change a
//! decision), at least the permit's `until`, plus a random jitter of up to
//! [`RedisOptions::jitter`]. Without the jitter every key written on one day would expire in
//! the same second, and Redis would spend that second deleting millions of keys while the
//! gateway waits.
//!
//! # Batching
//! [`RedisStore::decide`] queues its asks for one background task, which gathers the asks of
//! every caller and sends them as one pipeline when [`RedisOptions::flush_after`] has passed
//! since the first or [`RedisOptions::batch_max`] asks are waiting; each caller awaits a
//! oneshot. One round trip and one `appendfsync always` fsync then serve hundreds of MOs.
//! `icaze_grant` takes any number of asks (two keys and six arguments each) and decides them
//! in order, so a pipeline holds few `FCALL`s of up to `ASKS_PER_CALL` (64) asks: a writing
//! `FCALL`'s fixed cost in Redis (parsing, function set-up, propagation to the AOF) is
//! several times that of deciding one ask, and sharing it is most of the throughput.
//!
//! In a cluster, the keys of one command must be in one slot, so there a call holds the asks
//! of one document (one slot); a pipeline goes to one primary. The store keeps its own slot
//! map (`CLUSTER SLOTS`) and its own connections to each node (see `cluster.rs`: redis-rs's
//! cluster client repairs itself on the one task every request waits behind, which stalled
//! every primary's requests during a failover), splits a batch into one sub-pipeline per
//! primary and sends them concurrently. A stale map shows as `MOVED` (or a primary that
//! cannot be reached): the map is reloaded and the asks retried.
//!
//! # Durability
//! With `appendonly yes` and `appendfsync always` Redis writes and fsyncs the AOF before it
//! answers, so a grant the store returned survives a restart of the server. With
//! [`RedisOptions::waitaof`] each pipeline also ends with `WAITAOF local replicas timeout` on
//! the same connection, so a grant is acknowledged only once that many AOFs (this node's,
//! its replicas') hold it: the guard against losing a primary's disk. `WAITAOF` exists from
//! Redis 7.2 (and Valkey); [`RedisStore::connect`] tries it once on every primary and refuses
//! a server that lacks it rather than pretend.
//!
//! # Faults and retries
//! Connections come back by themselves (redis-rs's `ConnectionManager`, and the cluster
//! client's reconnects). An ask that meets a fault Redis can recover from (connection lost,
//! refused, timed out, `LOADING` after a restart, `TRYAGAIN`, `CLUSTERDOWN`, `MOVED`, a
//! missing function library, an unconfirmed `WAITAOF`) is retried with backoff for up to
//! [`RedisOptions::retry_for`] (plus at most one connection or response timeout, when the
//! last attempt was under way); then it fails with an error whose
//! [`is_retryable`](RedisError::is_retryable) is true, and the gateway tells the citizen to
//! try again in a few minutes. Retrying is safe because deciding is idempotent: an ask whose
//! grant was made before the connection broke finds its own permit and gets it back. Each
//! ask carries a random id, kept with the permit it makes, so the function can tell "this
//! ask's own grant, whose reply was lost" ([`RedisVerdict::Granted`] again) from "a repeat of
//! the MO" (a new call, a new id: [`RedisVerdict::Active`]); a lost reply never turns a new
//! permit into "already active", nor a repeat into a second permit.
//!
//! # Layout
//! - `icaze.lua`: the function library ([`LIBRARY`]).
//! - `options`: [`RedisOptions`], [`WaitAof`]; `error`: [`RedisError`].
//! - `batch`: the batching task, retries with backoff; `pipeline`: one attempt's `FCALL`s
//!   and what their replies mean.
//! - `backend`: a standalone Redis, and what every backend does; `cluster`: a Redis
//!   Cluster and its slot map.
//! - `citizens`: phones' documents of the day and status lists (`icaze_phone`,
//!   `icaze_note`).

mod admin;
mod backend;
mod batch;
mod citizens;
mod cluster;
mod error;
mod options;
mod outbox;
mod pipeline;

pub use admin::RedisRevocation;
pub use citizens::{PhoneAsk, StatusEntry};
pub use cluster::Shards;
pub use error::RedisError;
pub use options::{RedisOptions, WaitAof};

use crate::permit::clock::Calendar;
use crate::permit::document::Document;
use crate::permit::engine::Validity;
use crate::permit::rules::{CodeRule, DailyLimit};
use backend::{Backend, SingleBackend};
use batch::{Batcher, Tuning};
use cluster::ClusterBackend;
use options::validate;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// The function library, loaded with `FUNCTION LOAD REPLACE` on every primary. Its header
/// names the library `icaze`; `icaze_grant` decides one ask (see the module docs for the
/// rules and the value format). Lua numbers are doubles, exact for Unix seconds.
pub const LIBRARY: &str = include_str!("icaze.lua");

/// One request for a permit whose code exists, is switched on, is within its hours and is
/// not blocked for the document: what is left needs the shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantAsk {
    /// The document asked for.
    pub document: Document,
    /// The code asked for.
    pub code: u8,
    /// The quota group's tag (its lowest code).
    pub group_tag: u8,
    /// Whether the group holds other codes too (then the permit has its own key).
    pub shared: bool,
    /// The group's daily limit (an unlimited code's `abuse_after`); `None` for an unlimited
    /// code without one.
    pub limit: Option<u32>,
    /// How long a new permit lasts, seconds.
    pub validity_secs: u32,
    /// When the MO is decided, Unix seconds; a new permit starts then. A retry of the same
    /// MO must send the same `now`, so it finds the permit the first attempt made.
    pub now: i64,
    /// The Unix second of the local midnight that starts `now`'s day: counts of earlier days
    /// are 0.
    pub day_start: i64,
    /// The next local midnight plus the longest validity of any code, Unix seconds: when
    /// the keys this ask writes can no longer matter. The store adds jitter.
    pub expire_at: i64,
}

impl GrantAsk {
    /// The ask for `document` and `rule`'s code at `now`, with the day and expiry computed
    /// in `calendar`'s time zone; `longest_validity_secs` is the rules' longest validity.
    pub fn for_rule(
        document: Document,
        rule: &CodeRule,
        calendar: &Calendar,
        now: i64,
        longest_validity_secs: u32,
    ) -> GrantAsk {
        let day_start = calendar.moment(now).day_start;
        // Local days last 23 to 25 hours, so 26 hours after a day's start is always in the
        // next day.
        let next_day_start = calendar.moment(day_start + 26 * 3600).day_start;
        GrantAsk {
            document,
            code: rule.code,
            group_tag: rule.group_tag,
            shared: rule.shared,
            // An unlimited code's `abuse_after` is decided in Redis like a limit; the
            // gateway tells the citizen it is abuse.
            limit: match rule.limit {
                DailyLimit::PerDay(n) => Some(n),
                DailyLimit::Unlimited => rule.abuse_after,
            },
            validity_secs: rule.validity_secs,
            now,
            day_start,
            expire_at: next_day_start + i64::from(longest_validity_secs),
        }
    }

    /// When a permit granted for this ask ends.
    pub(super) fn until(&self) -> i64 {
        self.now + i64::from(self.validity_secs)
    }
}

/// What Redis decided for one ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisVerdict {
    /// A new permit, durable as configured before this is returned.
    Granted(Validity),
    /// A permit of this code is still active: the same permit again, no quota used.
    Active(Validity),
    /// The quota group's daily limit is used up for today.
    DailyLimit {
        /// The limit that is used up.
        limit: u32,
    },
}

impl RedisVerdict {
    /// The permit's window, if the verdict carries a permit (new or re-sent).
    pub fn validity(&self) -> Option<Validity> {
        match self {
            RedisVerdict::Granted(v) | RedisVerdict::Active(v) => Some(*v),
            RedisVerdict::DailyLimit { .. } => None,
        }
    }
}

/// The Redis store. Clones share one batcher and one set of connections, so hand one to
/// every connection task. The batcher stops when the last clone is dropped, after the
/// pipelines in flight are answered.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<StoreInner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("nodes", &self.inner.backend.label())
            .finish_non_exhaustive()
    }
}

/// What the clones of a [`RedisStore`] share.
struct StoreInner {
    queue: mpsc::Sender<Job>,
    backend: Arc<Backend>,
    /// Replies delivered, for the background `HDEL` (see `outbox`).
    settled: mpsc::UnboundedSender<(u16, u64)>,
    /// Replies this node's outbox holds, as far as this node wrote and removed them.
    owed: Arc<AtomicU64>,
    /// In a cluster, the key that gives permit ids: each grant's index entry is written
    /// after its verdict (its key is in another slot than the document's, so the grant's
    /// function cannot write it). `None` standalone, where the function writes it.
    cluster_index: Option<crate::permit::id::PermitKey>,
}

/// One caller's asks and where their verdicts go.
struct Job {
    asks: Vec<GrantAsk>,
    /// One result per ask, in order: an ask on a shard that failed does not fail the asks
    /// the healthy shards decided.
    done: oneshot::Sender<Vec<Result<RedisVerdict, RedisError>>>,
    /// When the oldest MO behind these asks was read: `retry_for` counts from then, so an
    /// MO that waited for a batch slot does not wait a whole `retry_for` more.
    read_at: Option<tokio::time::Instant>,
}

impl RedisStore {
    /// Connects, loads the function library on every primary (`FUNCTION LOAD REPLACE`, so a
    /// new build's library replaces an old one), checks `WAITAOF` if configured, and starts
    /// the batcher. Must be called inside a Tokio runtime.
    ///
    /// Fails with [`RedisError::Unreachable`] (retryable) when Redis is down: the gateway
    /// keeps retrying at start.
    pub async fn connect(options: RedisOptions) -> Result<RedisStore, RedisError> {
        validate(&options)?;
        let backend = if options.cluster {
            Backend::Cluster(Box::new(ClusterBackend::connect(&options).await?))
        } else {
            Backend::Single(SingleBackend::connect(&options).await?)
        };
        let backend = Arc::new(backend);
        backend.load_library().await?;
        if let Some(wait) = options.waitaof {
            backend.probe_waitaof(wait).await?;
        }
        let (queue, jobs) = mpsc::channel(options.queue_depth);
        let batcher = Batcher {
            backend: backend.clone(),
            tuning: Tuning {
                batch_max: options.batch_max,
                flush_after: options.flush_after,
                retry_for: options.retry_for,
                waitaof: options.waitaof,
                jitter_secs: options.jitter.as_secs(),
                hasher: foldhash::fast::RandomState::default(),
                asks: AtomicU64::new(0),
                permit_key: options.permit_key.clone().filter(|_| !options.cluster),
            },
            in_flight: Arc::new(Semaphore::new(options.pipelines_in_flight)),
        };
        tokio::spawn(batcher.run(jobs));
        let (settled, settlements) = mpsc::unbounded_channel();
        let owed = Arc::new(AtomicU64::new(0));
        tokio::spawn(outbox::settle_loop(
            backend.clone(),
            settlements,
            owed.clone(),
        ));
        tracing::info!(
            nodes = %backend.label(),
            cluster = options.cluster,
            waitaof = options.waitaof.is_some(),
            "redis store connected, function library loaded"
        );
        Ok(RedisStore {
            inner: Arc::new(StoreInner {
                queue,
                backend,
                settled,
                owed,
                cluster_index: options.permit_key.clone().filter(|_| options.cluster),
            }),
        })
    }

    /// Which primary decides each document now (see [`Shards`]).
    pub fn shards(&self) -> Shards {
        match &*self.inner.backend {
            Backend::Cluster(b) => Shards::of(b.slots()),
            Backend::Single(_) => Shards::one(),
        }
    }

    /// Decides `asks`, one verdict per ask in order, batched with other callers' asks. A
    /// document's asks are decided in the order given. Waits first if the queue is full.
    ///
    /// On `Err` none of the verdicts is known: some grants may have been made, and asking
    /// again (same asks, same `now`) returns them rather than new ones. [`decide_each`]
    /// gives the verdicts that are known when some asks fail.
    ///
    /// [`decide_each`]: RedisStore::decide_each
    pub async fn decide(&self, asks: &[GrantAsk]) -> Result<Vec<RedisVerdict>, RedisError> {
        self.decide_each(asks).await.into_iter().collect()
    }

    /// Decides `asks` like [`RedisStore::decide`], with a result per ask: when one shard
    /// of a cluster is away (a failover) for longer than `retry_for`, only its asks fail;
    /// a grant the healthy shards made is a grant. A failed ask's grant may have been made
    /// (the reply was lost); asking again returns it rather than a new one.
    pub async fn decide_each(&self, asks: &[GrantAsk]) -> Vec<Result<RedisVerdict, RedisError>> {
        self.decide_each_since(asks, None).await
    }

    /// [`RedisStore::decide_each`] for asks of MOs read at `read_at` (the oldest): their
    /// retries end `retry_for` after it, however long they waited before being asked.
    pub async fn decide_each_since(
        &self,
        asks: &[GrantAsk],
        read_at: Option<tokio::time::Instant>,
    ) -> Vec<Result<RedisVerdict, RedisError>> {
        if asks.is_empty() {
            return Vec::new();
        }
        let closed = || vec![Err(RedisError::Closed); asks.len()];
        let (done, answer) = oneshot::channel();
        let job = Job {
            asks: asks.to_vec(),
            done,
            read_at,
        };
        if self.inner.queue.send(job).await.is_err() {
            return closed();
        }
        let Ok(verdicts) = answer.await else {
            return closed();
        };
        if let Some(key) = &self.inner.cluster_index {
            self.index_in_cluster(key, asks, &verdicts).await;
        }
        verdicts
    }

    /// Writes `icaze:permit:{ID}` of every grant among `verdicts` (a cluster's index, one
    /// command per permit, each routed to its slot's node, all at once), before the MOs are
    /// acknowledged: a checkpoint asking any node finds the permit by its id.
    ///
    /// A grant is a grant even when its entry cannot be written now (the primary of the
    /// id's slot is away): the citizen is told of his permit, and the entry is written in
    /// the background, retried until it lands or the permit ends; until then a checkpoint
    /// asking another node by id may not find it.
    async fn index_in_cluster(
        &self,
        key: &crate::permit::id::PermitKey,
        asks: &[GrantAsk],
        verdicts: &[Result<RedisVerdict, RedisError>],
    ) {
        let backend = &self.inner.backend;
        let entries: Vec<(redis::Cmd, i64)> = asks
            .iter()
            .zip(verdicts)
            .filter_map(|(ask, verdict)| {
                let Ok(RedisVerdict::Granted(v)) = *verdict else {
                    return None;
                };
                let id = key.permit_id(ask.document, ask.code, v.from, v.until);
                let mut set = redis::cmd("SET");
                set.arg(pipeline::permit_key(id))
                    .arg(format!(
                        "{} {} {} {}",
                        ask.document, ask.code, v.from, v.until
                    ))
                    .arg("EXAT")
                    .arg(ask.expire_at.max(v.until));
                Some((set, v.until))
            })
            .collect();
        let writes = entries
            .iter()
            .map(|(set, _)| backend.command("SET of a permit index entry", set.clone()));
        // Waited for only briefly: a primary that is away (a failover) must not hold up
        // the MOs whose grants are made; what is not written by then is written behind.
        let results = tokio::time::timeout(INDEX_WAIT, futures_util::future::join_all(writes))
            .await
            .unwrap_or_default();
        let mut late = 0usize;
        for (k, (set, until)) in entries.into_iter().enumerate() {
            match results.get(k) {
                Some(Ok(_)) => continue,
                Some(Err(error)) => {
                    tracing::warn!(%error, "redis: a permit index entry is not written yet; retrying in the background")
                }
                None => late += 1,
            }
            tokio::spawn(index_later(backend.clone(), set, until));
        }
        if late > 0 {
            tracing::warn!(entries = late, wait = ?INDEX_WAIT, "redis: permit index entries not written in time; written in the background");
        }
    }

    /// Whether every primary answers `PING` now (no retry), for the admin health check.
    pub async fn health(&self) -> Result<(), RedisError> {
        self.inner.backend.ping().await
    }
}

/// How long a batch waits for its permit index entries (a round trip takes well under a
/// millisecond when the cluster is whole).
const INDEX_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Writes a permit index entry that could not be written with its grant, every half
/// second until it lands or the permit has ended (then nobody needs it).
async fn index_later(backend: Arc<Backend>, set: redis::Cmd, until: i64) {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if chrono::Utc::now().timestamp() >= until {
            return;
        }
        if backend
            .command("SET of a permit index entry", set.clone())
            .await
            .is_ok()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn doc(s: &str) -> Document {
        Document::parse_canonical(s).unwrap()
    }

    pub(super) fn ask(shared: bool) -> GrantAsk {
        GrantAsk {
            document: doc("AZE11111111"),
            code: 2,
            group_tag: if shared { 1 } else { 2 },
            shared,
            limit: Some(1),
            validity_secs: 10_800,
            now: 1_586_152_800,
            day_start: 1_586_116_800,
            expire_at: 1_586_203_200 + 10_800,
        }
    }

    #[test]
    fn asks_follow_the_rules() {
        let rules = crate::permit::rules::Rules::from_toml(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/rules.toml"
        )))
        .unwrap();
        let calendar = Calendar::new(chrono_tz::Asia::Baku);
        // 10:00 in Baku on 6 April 2020.
        let now = 1_586_152_800;
        for rule in rules.codes() {
            let a = GrantAsk::for_rule(
                doc("AZE11111111"),
                rule,
                &calendar,
                now,
                rules.longest_validity_secs,
            );
            assert_eq!(a.day_start, now - 10 * 3600);
            assert_eq!(
                a.expire_at,
                a.day_start + 86_400 + i64::from(rules.longest_validity_secs)
            );
            assert_eq!(a.group_tag, rule.group_tag);
            assert_eq!(a.shared, rule.shared);
        }
    }
}
