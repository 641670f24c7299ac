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
//! in order, so a pipeline holds few `FCALL`s of up to [`ASKS_PER_CALL`] asks: a writing
//! `FCALL`'s fixed cost in Redis (parsing, function set-up, propagation to the AOF) is
//! several times that of deciding one ask, and sharing it is most of the throughput.
//!
//! In a cluster, the keys of one command must be in one slot, so there a call holds the asks
//! of one document (one slot). And the commands of one pipeline must be too: redis-rs 1.8's
//! async cluster connection routes a pipeline by the slot of its first keyed command and
//! fails one whose commands name different slots ("Received crossed slots in pipeline",
//! `CROSSSLOT`, before anything is sent); its
//! [`route_pipeline`](redis::cluster_async::ClusterConnection::route_pipeline) sends a whole
//! pipeline to one node of our choosing. So the store keeps its own slot map (`CLUSTER
//! SLOTS`), splits a batch into one sub-pipeline per primary, routes each to its node by the
//! slot of its first ask, and sends them concurrently. A stale map shows as `MOVED`: the map
//! is reloaded and the asks retried. redis-rs's own retries are off for the cluster: after a
//! `MOVED` on one command it would resend the whole pipeline elsewhere.
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

use crate::permit::clock::Calendar;
use crate::permit::document::Document;
use crate::permit::engine::Validity;
use crate::permit::rules::{CodeRule, DailyLimit};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{ErrorKind, ServerErrorKind, Value};
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

/// The function library, loaded with `FUNCTION LOAD REPLACE` on every primary. Its header
/// names the library `icaze`; `icaze_grant` decides one ask (see the module docs for the
/// rules and the value format). Lua numbers are doubles, exact for Unix seconds.
pub const LIBRARY: &str = r#"#!lua name=icaze

-- A value is "day count from until ask": the local day start the count is for, the grants
-- counted on that day, the latest permit's window and the id of the ask that made it.
-- Returns its fields (0 0 0 0 0 for a missing key), or nil if it is not in this form.
local function parse(value)
  if not value then
    return 0, 0, 0, 0, '0'
  end
  local day, count, from, till, ask = string.match(value, '^(%-?%d+) (%d+) (%-?%d+) (%-?%d+) (%x+)$')
  if not day then
    return nil
  end
  return tonumber(day), tonumber(count), tonumber(from), tonumber(till), ask
end

-- Sets `key` to `value` only if it is missing, and returns what it held (false if nothing):
-- the first ask of a document's day finds no key, and is decided with this one command.
local function claim(key, value, exat)
  return redis.call('SET', key, value, 'NX', 'EXAT', exat, 'GET')
end

-- The verdict for an ask that finds a permit still active: its own grant if its id made it
-- (a retry after a lost reply), else the same permit again.
local function active(from, till, maker, id)
  if maker == id then
    return 0, from, till
  end
  return 1, from, till
end

-- One ask, by the engine's rules: its verdict as three numbers (see `grant`). `group` and
-- `code` are its keys (the same key when the code has a group of its own); `now`, `till`,
-- `exat` and `id` are strings as given.
local function decide(group, code, now, till, limit, day_start, exat, id)
  local t = tonumber(now)
  if limit == 0 then
    -- Nothing can be granted: only an active permit is answered.
    local day, _, from, ends, maker = parse(redis.call('GET', code))
    if not day then
      return 3, 0, 0
    end
    if ends > t then
      return active(from, ends, maker, id)
    end
    return 2, 0, 0
  end
  if code == group then
    local old = claim(group, day_start .. ' 1 ' .. now .. ' ' .. till .. ' ' .. id, exat)
    if not old then
      return 0, t, tonumber(till)
    end
    local day, count, from, ends, maker = parse(old)
    if not day then
      return 3, 0, 0
    end
    if ends > t then
      return active(from, ends, maker, id)
    end
    if day < tonumber(day_start) then
      day, count = tonumber(day_start), 0
    end
    if limit > 0 and count >= limit then
      return 2, limit, 0
    end
    redis.call('SET', group, string.format('%d %d %s %s %s', day, count + 1, now, till, id), 'EXAT', exat)
    return 0, t, tonumber(till)
  end
  -- A code sharing its group: the permit is claimed first (tentatively if the key was
  -- missing), then the group's count decides.
  local permit = '0 0 ' .. now .. ' ' .. till .. ' ' .. id
  local old = claim(code, permit, exat)
  if old then
    local kept, _, from, ends, maker = parse(old)
    if not kept then
      return 3, 0, 0
    end
    if ends > t then
      return active(from, ends, maker, id)
    end
  end
  local counted = claim(group, day_start .. ' 1 0 0 0', exat)
  if counted then
    local day, count = parse(counted)
    local refused = nil
    if not day then
      refused = 3
    else
      if day < tonumber(day_start) then
        day, count = tonumber(day_start), 0
      end
      if limit > 0 and count >= limit then
        refused = 2
      end
    end
    if refused then
      if not old then
        redis.call('DEL', code)
      end
      if refused == 2 then
        return 2, limit, 0
      end
      return 3, 0, 0
    end
    redis.call('SET', group, string.format('%d %d 0 0 0', day, count + 1), 'EXAT', exat)
  end
  if old then
    redis.call('SET', code, permit, 'EXAT', exat)
  end
  return 0, t, tonumber(till)
end

-- Any number of asks, decided in order.
-- KEYS: per ask, its quota group's key and its code's grant key.
-- ARGV: per ask, now, until, limit (-1 for none), day_start, expire_at (Unix seconds) and
-- the ask's id (hex, never 0; the same for every attempt of one ask).
-- Returns three integers per ask, flat: 0 from until granted, 1 from until still active,
-- 2 limit 0 the daily limit is used, 3 0 0 a key holds a value icaze did not write
-- (nothing changed for that ask).
local function grant(keys, args)
  local asks = #keys / 2
  if #keys % 2 ~= 0 or #args ~= 6 * asks then
    return redis.error_reply('ERR icaze_grant takes 2 keys and 6 arguments per ask')
  end
  local out = {}
  for i = 1, asks do
    local a = 6 * (i - 1)
    local o = 3 * (i - 1)
    out[o + 1], out[o + 2], out[o + 3] = decide(keys[2 * i - 1], keys[2 * i], args[a + 1],
      args[a + 2], tonumber(args[a + 3]), args[a + 4], args[a + 5], args[a + 6])
  end
  return out
end

redis.register_function('icaze_grant', grant)
"#;

/// The function that decides asks.
const FUNCTION: &str = "icaze_grant";
/// Most asks in one `FCALL`. A call's fixed cost (parsing, function set-up, propagation to
/// the AOF) is shared by its asks, which is most of a standalone Redis's throughput; a call
/// of 64 asks holds the server for a few hundred microseconds at most.
const ASKS_PER_CALL: usize = 64;
/// Prefix of every key the store writes.
const KEY_PREFIX: &str = "icaze:";
/// Slots of a Redis Cluster.
const SLOTS: usize = 16_384;
/// A slot no primary serves, in [`SlotMap::owner`].
const NO_OWNER: u16 = u16::MAX;
/// First pause between two attempts of a failed ask; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// Longest pause between two attempts, so a Redis that is back is used within this.
const MAX_BACKOFF: Duration = Duration::from_millis(400);
/// How long a connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a pipeline may wait for its replies (plus the `WAITAOF` timeout) before the
/// connection is considered broken; a partitioned server sends no reset, so this is what
/// notices it.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How many AOFs must hold a batch's writes before its asks are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitAof {
    /// 1 to wait for the primary's own AOF fsync, 0 not to.
    pub local: u32,
    /// Replicas whose AOF must have fsynced the writes too.
    pub replicas: u32,
    /// How long Redis may wait for them; a batch not confirmed by then is retried (the
    /// grants are found again, not doubled) until [`RedisOptions::retry_for`].
    pub timeout: Duration,
}

/// Where Redis is and how the store uses it. [`Default`] is a standalone Redis on
/// `redis://127.0.0.1:6379` with the tunables the gateway wants.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://` (or `rediss://`) URLs: the server, or for a cluster some of its nodes (the
    /// rest are found from them).
    pub nodes: Vec<String>,
    /// Whether `nodes` are Redis Cluster nodes.
    pub cluster: bool,
    /// Most asks in one pipeline (default 512): bigger batches amortise a round trip and an
    /// fsync over more grants, but hold Redis (single-threaded) longer per batch.
    pub batch_max: usize,
    /// How long the first ask of a batch waits for others (default 1 ms): the latency paid
    /// at low load for throughput at high load.
    pub flush_after: Duration,
    /// End each pipeline with `WAITAOF` (Redis/Valkey 7.2 and later); `None` relies on the
    /// server's `appendfsync` alone.
    pub waitaof: Option<WaitAof>,
    /// Random extra lifetime of up to this much on each key (default 10 min), so a day's
    /// keys do not all expire in the same second.
    pub jitter: Duration,
    /// How long an ask keeps retrying while Redis is unreachable or recovering (default
    /// 5 s) before it fails with a retryable error.
    pub retry_for: Duration,
    /// Pipelines in flight at once, each on a connection of its own (default 8): while
    /// Redis runs one, the next is built and sent. Separate connections matter with
    /// `appendfsync always`: Redis reads at most 16 KB (about a hundred asks) from a
    /// connection per turn of its event loop and fsyncs once per turn, so more connections
    /// share each fsync among more asks (see `benches/redis.rs`).
    pub pipelines_in_flight: usize,
    /// Calls to [`RedisStore::decide`] queued for the batcher before further callers wait
    /// (default 4096): the backpressure bound.
    pub queue_depth: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            nodes: vec!["redis://127.0.0.1:6379".into()],
            cluster: false,
            batch_max: 512,
            flush_after: Duration::from_millis(1),
            waitaof: None,
            jitter: Duration::from_secs(600),
            retry_for: Duration::from_secs(5),
            pipelines_in_flight: 8,
            queue_depth: 4096,
        }
    }
}

impl RedisOptions {
    /// A standalone Redis at `url`, other options default.
    pub fn standalone(url: impl Into<String>) -> Self {
        RedisOptions {
            nodes: vec![url.into()],
            ..RedisOptions::default()
        }
    }

    /// A Redis Cluster reached through `nodes`, other options default.
    pub fn cluster(nodes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        RedisOptions {
            nodes: nodes.into_iter().map(Into::into).collect(),
            cluster: true,
            ..RedisOptions::default()
        }
    }
}

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
    /// The group's daily limit; `None` for an unlimited code.
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
            limit: match rule.limit {
                DailyLimit::PerDay(n) => Some(n),
                DailyLimit::Unlimited => None,
            },
            validity_secs: rule.validity_secs,
            now,
            day_start,
            expire_at: next_day_start + i64::from(longest_validity_secs),
        }
    }

    /// When a permit granted for this ask ends.
    fn until(&self) -> i64 {
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

/// Why the Redis store could not connect or decide.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisError {
    /// The options cannot work (no node, a URL that does not parse, a zero batch).
    #[error("redis: bad options: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// No connection could be made at [`RedisStore::connect`]: Redis is down or not
    /// reachable from here. Retrying later can help.
    #[error(
        "redis: cannot reach {nodes} (is redis-server running and reachable from here?): {source}"
    )]
    Unreachable {
        /// The nodes tried, as host:port (never with credentials).
        nodes: String,
        /// redis-rs's error.
        #[source]
        source: Arc<redis::RedisError>,
    },
    /// Redis stayed unreachable or kept answering "try later" for `waited`: the asks were
    /// not decided (or their answers were lost). The same asks may be retried; they will not
    /// get a second permit.
    #[error(
        "redis: unavailable at {node}; gave up after {attempts} attempts in {waited:?}: {source}"
    )]
    Unavailable {
        /// The node (or "cluster") last tried.
        node: String,
        /// How long the asks were retried.
        waited: Duration,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Arc<redis::RedisError>,
    },
    /// `WAITAOF` did not confirm the writes in time (e.g. a replica is down), until
    /// [`RedisOptions::retry_for`] ran out. The grants are in Redis's memory but not
    /// confirmed durable, so they are not acknowledged; a retry finds them.
    #[error(
        "redis: {node} confirmed {local} local and {replicas} replica AOF fsyncs; {wanted_local} and {wanted_replicas} were required"
    )]
    NotDurable {
        /// The primary concerned.
        node: String,
        /// Local AOFs that confirmed.
        local: u32,
        /// Replica AOFs that confirmed.
        replicas: u32,
        /// Local AOFs required.
        wanted_local: u32,
        /// Replica AOFs required.
        wanted_replicas: u32,
    },
    /// [`RedisOptions::waitaof`] is set but a primary cannot run `WAITAOF` (Redis before
    /// 7.2, or `appendonly no` with `local` > 0).
    #[error("redis: {node} cannot confirm durability with WAITAOF: {reason}")]
    WaitAofUnsupported {
        /// The primary concerned.
        node: String,
        /// What it answered.
        reason: String,
    },
    /// Redis refused a command for a reason a retry cannot fix (permissions, a script
    /// error, a server that is not a cluster node when a cluster was configured).
    #[error("redis: {action} on {node} failed: {source}")]
    Command {
        /// What was being done, e.g. "loading the icaze function library".
        action: &'static str,
        /// The node concerned.
        node: String,
        /// redis-rs's error.
        #[source]
        source: Arc<redis::RedisError>,
    },
    /// Redis answered something this build does not understand.
    #[error("redis: unexpected reply to {action} from {node}: {reply}")]
    UnexpectedReply {
        /// The command.
        action: &'static str,
        /// The node concerned.
        node: String,
        /// The reply, abbreviated.
        reply: String,
    },
    /// A key of this document holds a value the function cannot read (written by something
    /// else than icaze). Nothing was changed for this ask.
    #[error("redis: a key of document {document} holds a value icaze did not write")]
    CorruptState {
        /// The document, masked.
        document: String,
    },
    /// The store's batcher has stopped (the runtime is shutting down).
    #[error("redis: store closed")]
    Closed,
}

impl RedisError {
    /// Whether retrying the same call later can help: the gateway then answers the operator
    /// with a temporary error and the citizen with "try again in a few minutes".
    pub fn is_retryable(&self) -> bool {
        match self {
            RedisError::Unreachable { .. }
            | RedisError::Unavailable { .. }
            | RedisError::NotDurable { .. } => true,
            RedisError::Config { .. }
            | RedisError::WaitAofUnsupported { .. }
            | RedisError::Command { .. }
            | RedisError::UnexpectedReply { .. }
            | RedisError::CorruptState { .. }
            | RedisError::Closed => false,
        }
    }

    /// Whether the error says Redis could not be reached at all (down, refused, timed out),
    /// as opposed to reached and refusing.
    pub fn is_unreachable(&self) -> bool {
        match self {
            RedisError::Unreachable { .. } => true,
            RedisError::Unavailable { source, .. } => source.is_io_error(),
            _ => false,
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
}

/// One caller's asks and where their verdicts go.
struct Job {
    asks: Vec<GrantAsk>,
    done: oneshot::Sender<Result<Vec<RedisVerdict>, RedisError>>,
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
            Backend::Cluster(ClusterBackend::connect(&options).await?)
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
            },
            in_flight: Arc::new(Semaphore::new(options.pipelines_in_flight)),
        };
        tokio::spawn(batcher.run(jobs));
        tracing::info!(
            nodes = %backend.label(),
            cluster = options.cluster,
            waitaof = options.waitaof.is_some(),
            "redis store connected, function library loaded"
        );
        Ok(RedisStore {
            inner: Arc::new(StoreInner { queue, backend }),
        })
    }

    /// Decides `asks`, one verdict per ask in order, batched with other callers' asks. A
    /// document's asks are decided in the order given. Waits first if the queue is full.
    ///
    /// On `Err` none of the verdicts is known: some grants may have been made, and asking
    /// again (same asks, same `now`) returns them rather than new ones.
    pub async fn decide(&self, asks: &[GrantAsk]) -> Result<Vec<RedisVerdict>, RedisError> {
        if asks.is_empty() {
            return Ok(Vec::new());
        }
        let (done, answer) = oneshot::channel();
        self.inner
            .queue
            .send(Job {
                asks: asks.to_vec(),
                done,
            })
            .await
            .map_err(|_| RedisError::Closed)?;
        answer.await.unwrap_or(Err(RedisError::Closed))
    }

    /// Whether every primary answers `PING` now (no retry), for the admin health check.
    pub async fn health(&self) -> Result<(), RedisError> {
        self.inner.backend.ping().await
    }
}

/// Checks the options that would otherwise fail obscurely later.
fn validate(options: &RedisOptions) -> Result<(), RedisError> {
    let bad = |reason: &str| {
        Err(RedisError::Config {
            reason: reason.into(),
        })
    };
    if options.nodes.is_empty() {
        return bad("no node URL given");
    }
    if !options.cluster && options.nodes.len() > 1 {
        return bad("several node URLs given but cluster is off; give one URL");
    }
    if options.batch_max == 0 {
        return bad("batch_max must be at least 1");
    }
    if options.pipelines_in_flight == 0 || options.queue_depth == 0 {
        return bad("pipelines_in_flight and queue_depth must be at least 1");
    }
    if let Some(w) = options.waitaof
        && w.local > 1
    {
        return bad("waitaof.local must be 0 or 1");
    }
    Ok(())
}

/// The batcher's settings.
struct Tuning {
    batch_max: usize,
    flush_after: Duration,
    retry_for: Duration,
    waitaof: Option<WaitAof>,
    jitter_secs: u64,
    /// Seeded at random per store: the jitter of a key, and ask ids.
    hasher: foldhash::fast::RandomState,
    /// Asks given an id so far.
    asks: AtomicU64,
}

impl Tuning {
    /// The `EXAT` of the keys `ask` writes: its expiry, at least the permit's end, plus a
    /// jitter that is random per store but the same for every attempt of one ask.
    fn expire_at(&self, ask: &GrantAsk) -> i64 {
        let jitter = if self.jitter_secs == 0 {
            0
        } else {
            let h = self
                .hasher
                .hash_one((ask.document.packed(), ask.group_tag, ask.now));
            (h % (self.jitter_secs + 1)) as i64
        };
        ask.expire_at.max(ask.until()) + jitter
    }

    /// A fresh ask id: random per store (the hasher's seed), distinct within it, never 0.
    fn ask_id(&self) -> u64 {
        self.hasher
            .hash_one(self.asks.fetch_add(1, Ordering::Relaxed))
            .max(1)
    }
}

/// The background task that gathers asks into pipelines.
struct Batcher {
    backend: Arc<Backend>,
    tuning: Tuning,
    in_flight: Arc<Semaphore>,
}

impl Batcher {
    /// Gathers jobs until `flush_after` has passed since the first or `batch_max` asks wait,
    /// then sends them on a task of its own (at most `pipelines_in_flight` at once). Ends
    /// when every [`RedisStore`] clone is gone.
    async fn run(self, mut jobs: mpsc::Receiver<Job>) {
        let tuning = Arc::new(self.tuning);
        while let Some(first) = jobs.recv().await {
            let mut asks = first.asks.len();
            let mut batch = vec![first];
            let deadline = Instant::now() + tuning.flush_after;
            while asks < tuning.batch_max {
                let job = match jobs.try_recv() {
                    Ok(job) => job,
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        match tokio::time::timeout_at(deadline, jobs.recv()).await {
                            Ok(Some(job)) => job,
                            Ok(None) | Err(_) => break,
                        }
                    }
                };
                asks += job.asks.len();
                batch.push(job);
            }
            let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                break;
            };
            let backend = self.backend.clone();
            let tuning = tuning.clone();
            tokio::spawn(async move {
                run_batch(&backend, &tuning, batch).await;
                drop(permit);
            });
        }
    }
}

/// One ask of a batch in flight.
struct Pending {
    ask: GrantAsk,
    /// `EXAT` of its keys, fixed for every attempt.
    expire_at: i64,
    /// Kept with the permit it makes, the same for every attempt: a retry after a lost
    /// reply finds its own grant.
    id: u64,
    /// Index of its job in the batch.
    job: usize,
}

/// A job of a batch in flight.
struct JobState {
    verdicts: Vec<Option<RedisVerdict>>,
    first: usize,
    left: usize,
    done: Option<oneshot::Sender<Result<Vec<RedisVerdict>, RedisError>>>,
}

impl JobState {
    /// Sends the verdicts once every ask has one.
    fn finish_if_complete(&mut self) {
        if self.left == 0
            && let Some(done) = self.done.take()
        {
            let verdicts = self.verdicts.iter().flatten().copied().collect();
            let _ = done.send(Ok(verdicts));
        }
    }

    /// Fails the job (its other asks are abandoned).
    fn fail(&mut self, error: RedisError) {
        if let Some(done) = self.done.take() {
            let _ = done.send(Err(error));
        }
    }

    fn open(&self) -> bool {
        self.done.is_some()
    }
}

/// What one attempt made of one ask.
enum AskOutcome {
    /// Decided.
    Done(RedisVerdict),
    /// Worth another attempt.
    Retry(Fault),
    /// Final.
    Failed(RedisError),
}

/// A failure worth retrying, and what it says about the ask.
#[derive(Clone)]
enum Fault {
    /// redis-rs failed the command or the whole pipeline.
    Redis {
        node: String,
        error: Arc<redis::RedisError>,
    },
    /// `WAITAOF` confirmed too few AOFs: the command ran.
    NotDurable(RedisError),
}

/// What the store should repair before the next attempt.
#[derive(Default)]
struct Repairs {
    reload_library: bool,
    refresh_slots: bool,
}

/// Decides a batch: attempts, retries with backoff until `retry_for`, answers every job.
async fn run_batch(backend: &Backend, tuning: &Tuning, jobs: Vec<Job>) {
    let mut pending = Vec::new();
    let mut states = Vec::with_capacity(jobs.len());
    for (j, job) in jobs.into_iter().enumerate() {
        states.push(JobState {
            verdicts: vec![None; job.asks.len()],
            first: pending.len(),
            left: job.asks.len(),
            done: Some(job.done),
        });
        pending.extend(job.asks.iter().map(|&ask| Pending {
            ask,
            expire_at: tuning.expire_at(&ask),
            id: tuning.ask_id(),
            job: j,
        }));
    }
    let mut todo: Vec<usize> = (0..pending.len()).collect();
    let started = Instant::now();
    let mut backoff = MIN_BACKOFF;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let mut repairs = Repairs::default();
        let outcomes = backend
            .attempt(&pending, &todo, tuning.waitaof, &mut repairs)
            .await;
        let mut retry = Vec::new();
        let mut last_fault = None;
        for (i, outcome) in outcomes {
            let state = &mut states[pending[i].job];
            if !state.open() {
                continue;
            }
            match outcome {
                AskOutcome::Done(verdict) => {
                    state.verdicts[i - state.first] = Some(verdict);
                    state.left -= 1;
                    state.finish_if_complete();
                }
                AskOutcome::Failed(error) => state.fail(error),
                AskOutcome::Retry(fault) => {
                    retry.push(i);
                    last_fault = Some(fault);
                }
            }
        }
        retry.retain(|&i| states[pending[i].job].open());
        // In the order asked, so a document's asks are decided in that order again.
        retry.sort_unstable();
        let Some(fault) = last_fault.filter(|_| !retry.is_empty()) else {
            return;
        };
        let waited = started.elapsed();
        if waited >= tuning.retry_for {
            let error = match fault {
                Fault::Redis { node, error, .. } => RedisError::Unavailable {
                    node,
                    waited,
                    attempts,
                    source: error,
                },
                Fault::NotDurable(error) => error,
            };
            tracing::warn!(asks = retry.len(), %error, "redis: asks failed after retrying");
            for &i in &retry {
                states[pending[i].job].fail(error.clone());
            }
            return;
        }
        if attempts == 1 {
            match &fault {
                Fault::Redis { node, error, .. } => {
                    tracing::warn!(asks = retry.len(), %node, %error, "redis: asks failed, retrying")
                }
                Fault::NotDurable(error) => {
                    tracing::warn!(asks = retry.len(), %error, "redis: durability not confirmed, retrying")
                }
            }
        }
        tokio::time::sleep(backoff.min(tuning.retry_for.saturating_sub(waited))).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        backend.repair(repairs).await;
        todo = retry;
    }
}

/// How the store reaches Redis.
enum Backend {
    Single(SingleBackend),
    Cluster(ClusterBackend),
}

impl Backend {
    /// The nodes, for logs and errors.
    fn label(&self) -> String {
        match self {
            Backend::Single(b) => b.node.clone(),
            Backend::Cluster(b) => b.seeds.clone(),
        }
    }

    /// Loads [`LIBRARY`] on every primary.
    async fn load_library(&self) -> Result<(), RedisError> {
        let mut cmd = redis::cmd("FUNCTION");
        cmd.arg("LOAD").arg("REPLACE").arg(LIBRARY);
        let (node, result) = match self {
            Backend::Single(b) => (b.node.clone(), b.conn().req_packed_command(&cmd).await),
            Backend::Cluster(b) => (
                b.seeds.clone(),
                b.conn()
                    .route_command(
                        cmd,
                        RoutingInfo::MultiNode((
                            MultipleNodeRoutingInfo::AllMasters,
                            Some(ResponsePolicy::AllSucceeded),
                        )),
                    )
                    .await,
            ),
        };
        match result.and_then(|v| v.extract_error()) {
            Ok(_) => Ok(()),
            // Down, or up and still loading its data after a restart: both pass.
            Err(error) if error.is_io_error() || recoverable(&error) => {
                Err(RedisError::Unreachable {
                    nodes: node,
                    source: Arc::new(error),
                })
            }
            Err(error) => Err(RedisError::Command {
                action: "loading the icaze function library (FUNCTION LOAD)",
                node,
                source: Arc::new(error),
            }),
        }
    }

    /// Runs `WAITAOF` once on every primary, so a server that cannot is refused at start.
    async fn probe_waitaof(&self, wait: WaitAof) -> Result<(), RedisError> {
        let mut cmd = redis::cmd("WAITAOF");
        cmd.arg(wait.local).arg(0).arg(100);
        let targets: Vec<(String, Option<u16>)> = match self {
            Backend::Single(b) => vec![(b.node.clone(), None)],
            Backend::Cluster(b) => {
                let map = b.slots();
                map.nodes
                    .iter()
                    .map(|n| (n.addr.clone(), Some(n.first_slot)))
                    .collect()
            }
        };
        for (node, slot) in targets {
            let reply = match (self, slot) {
                (Backend::Cluster(b), Some(slot)) => {
                    b.conn()
                        .route_command(
                            cmd.clone(),
                            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                                Route::new(slot, SlotAddr::Master),
                            )),
                        )
                        .await
                }
                (Backend::Single(b), _) => b.conn().req_packed_command(&cmd).await,
                (Backend::Cluster(_), None) => continue,
            };
            match reply.and_then(|v| v.extract_error()) {
                Ok(_) => {}
                Err(error) if error.is_io_error() => {
                    return Err(RedisError::Unreachable {
                        nodes: node,
                        source: Arc::new(error),
                    });
                }
                Err(error) => {
                    let detail = error.detail().unwrap_or_default().to_string();
                    let reason = if detail.contains("unknown command") {
                        "the server has no WAITAOF command (it needs Redis or Valkey 7.2 or later); \
                         upgrade it or unset waitaof"
                            .to_string()
                    } else {
                        error.to_string()
                    };
                    return Err(RedisError::WaitAofUnsupported { node, reason });
                }
            }
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), RedisError> {
        let cmd = redis::cmd("PING");
        let (node, result) = match self {
            Backend::Single(b) => (b.node.clone(), b.conn().req_packed_command(&cmd).await),
            Backend::Cluster(b) => (
                b.seeds.clone(),
                b.conn()
                    .route_command(
                        cmd,
                        RoutingInfo::MultiNode((
                            MultipleNodeRoutingInfo::AllMasters,
                            Some(ResponsePolicy::AllSucceeded),
                        )),
                    )
                    .await,
            ),
        };
        match result.and_then(|v| v.extract_error()) {
            Ok(_) => Ok(()),
            Err(error) => Err(RedisError::Unavailable {
                node,
                waited: Duration::ZERO,
                attempts: 1,
                source: Arc::new(error),
            }),
        }
    }

    /// One attempt at the asks `todo` (indices into `pending`, in the order asked): an
    /// outcome for each, as (index, outcome); `repairs` says what to fix before another
    /// attempt.
    async fn attempt(
        &self,
        pending: &[Pending],
        todo: &[usize],
        waitaof: Option<WaitAof>,
        repairs: &mut Repairs,
    ) -> Vec<(usize, AskOutcome)> {
        match self {
            Backend::Single(b) => {
                let plan = Plan::chunked(todo);
                let pipe = pipeline(pending, &plan, waitaof);
                let result = b.conn().req_packed_commands(&pipe, 0, pipe.len()).await;
                outcomes(pending, &plan, &b.node, result, waitaof, repairs)
            }
            Backend::Cluster(b) => b.attempt(pending, todo, waitaof, repairs).await,
        }
    }

    /// Makes what an attempt found broken work again, as far as the store can.
    async fn repair(&self, repairs: Repairs) {
        if repairs.reload_library
            && let Err(error) = self.load_library().await
        {
            tracing::warn!(%error, "redis: reloading the function library failed");
        }
        if repairs.refresh_slots
            && let Backend::Cluster(b) = self
            && let Err(error) = b.refresh_slots().await
        {
            tracing::warn!(%error, "redis: reloading the cluster slot map failed");
        }
    }
}

/// Which asks go in which `FCALL` of a pipeline.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    /// Indices into the pending asks, call after call, each call's in the order asked.
    asks: Vec<usize>,
    /// Where each call's asks end in `asks`.
    ends: Vec<usize>,
}

impl Plan {
    /// For a standalone Redis: any asks can share a call, [`ASKS_PER_CALL`] at most.
    fn chunked(todo: &[usize]) -> Plan {
        let ends = (1..=todo.len().div_ceil(ASKS_PER_CALL))
            .map(|n| (n * ASKS_PER_CALL).min(todo.len()))
            .collect();
        Plan {
            asks: todo.to_vec(),
            ends,
        }
    }

    /// For a cluster node: a call's keys must all be in one slot, so one call per slot (a
    /// document's asks together, in the order asked), [`ASKS_PER_CALL`] at most.
    fn by_slot(mut asks: Vec<(u16, usize)>) -> Plan {
        // Stable: within a slot the order asked is kept.
        asks.sort_by_key(|&(slot, _)| slot);
        let mut plan = Plan::default();
        let mut start = 0;
        for (n, &(slot, i)) in asks.iter().enumerate() {
            if n > start && (slot != asks[start].0 || n - start == ASKS_PER_CALL) {
                plan.ends.push(n);
                start = n;
            }
            plan.asks.push(i);
        }
        if !asks.is_empty() {
            plan.ends.push(asks.len());
        }
        plan
    }

    /// Each call's asks.
    fn calls(&self) -> impl Iterator<Item = &[usize]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.asks[start..end])
    }
}

/// The pipeline of a plan: one `FCALL icaze_grant` per call, then `WAITAOF` if configured.
fn pipeline(pending: &[Pending], plan: &Plan, waitaof: Option<WaitAof>) -> redis::Pipeline {
    let mut pipe = redis::Pipeline::with_capacity(plan.ends.len() + 1);
    let mut group = String::with_capacity(40);
    let mut grant = String::with_capacity(40);
    let mut id = [0u8; 16];
    for call in plan.calls() {
        let fcall = pipe.cmd("FCALL").arg(FUNCTION).arg(2 * call.len());
        for &i in call {
            keys(&pending[i].ask, &mut group, &mut grant);
            fcall.arg(group.as_str()).arg(grant.as_str());
        }
        for &i in call {
            let p = &pending[i];
            fcall
                .arg(p.ask.now)
                .arg(p.ask.until())
                .arg(p.ask.limit.map_or(-1, i64::from))
                .arg(p.ask.day_start)
                .arg(p.expire_at)
                .arg(hex(p.id, &mut id));
        }
    }
    if let Some(w) = waitaof {
        pipe.cmd("WAITAOF")
            .arg(w.local)
            .arg(w.replicas)
            .arg(w.timeout.as_millis().max(1) as u64);
    }
    pipe
}

/// `n` in lower-case hex without leading zeros, in `buf`.
fn hex(n: u64, buf: &mut [u8; 16]) -> &[u8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut at = buf.len();
    let mut n = n;
    loop {
        at -= 1;
        buf[at] = DIGITS[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// Writes the ask's group key and grant key (the same key unless the group is shared).
fn keys(ask: &GrantAsk, group: &mut String, grant: &mut String) {
    group.clear();
    grant.clear();
    // Writing to a String cannot fail.
    let _ = write!(
        group,
        "{KEY_PREFIX}{{{}}}:g:{}",
        ask.document, ask.group_tag
    );
    if ask.shared {
        let _ = write!(grant, "{KEY_PREFIX}{{{}}}:c:{}", ask.document, ask.code);
    } else {
        grant.push_str(group);
    }
}

/// The outcomes of a plan's asks from its pipeline's result, as (index, outcome).
fn outcomes(
    pending: &[Pending],
    plan: &Plan,
    node: &str,
    result: redis::RedisResult<Vec<Value>>,
    waitaof: Option<WaitAof>,
    repairs: &mut Repairs,
) -> Vec<(usize, AskOutcome)> {
    let calls = plan.ends.len();
    let values = match result {
        Ok(values) if values.len() == calls + usize::from(waitaof.is_some()) => values,
        Ok(values) => {
            let error = RedisError::UnexpectedReply {
                action: "a pipeline of FCALLs",
                node: node.to_string(),
                reply: format!("{} replies to {} commands", values.len(), calls),
            };
            return plan
                .asks
                .iter()
                .map(|&i| (i, AskOutcome::Failed(error.clone())))
                .collect();
        }
        Err(error) => {
            // The whole pipeline failed (connection lost, timed out, or redirected): some
            // calls may have run, and a retry finds their grants.
            note_repairs(&error, repairs);
            let error = Arc::new(error);
            return plan
                .asks
                .iter()
                .map(|&i| (i, call_failed(node, &error)))
                .collect();
        }
    };
    let mut values = values.into_iter();
    let mut outs = Vec::with_capacity(plan.asks.len());
    for (call, value) in plan.calls().zip(values.by_ref()) {
        call_outcomes(pending, call, node, value, repairs, &mut outs);
    }
    if let (Some(wait), Some(reply)) = (waitaof, values.next())
        && let Some(fault) = check_waitaof(wait, node, reply)
    {
        // Nothing of this pipeline is confirmed durable: none of it may be acknowledged.
        for (_, out) in &mut outs {
            if matches!(out, AskOutcome::Done(_)) {
                *out = AskOutcome::Retry(fault.clone());
            }
        }
    }
    outs
}

/// The outcome of an ask whose call failed with `error`: retry if Redis can recover.
fn call_failed(node: &str, error: &Arc<redis::RedisError>) -> AskOutcome {
    if recoverable(error) {
        AskOutcome::Retry(Fault::Redis {
            node: node.to_string(),
            error: error.clone(),
        })
    } else {
        AskOutcome::Failed(RedisError::Command {
            action: "FCALL icaze_grant",
            node: node.to_string(),
            source: error.clone(),
        })
    }
}

/// The outcomes of one call's asks from its reply: an array with one verdict per ask, or an
/// error for all of them.
fn call_outcomes(
    pending: &[Pending],
    call: &[usize],
    node: &str,
    value: Value,
    repairs: &mut Repairs,
    outs: &mut Vec<(usize, AskOutcome)>,
) {
    match value {
        Value::Array(items) if items.len() == 3 * call.len() => {
            for (&i, item) in call.iter().zip(items.chunks_exact(3)) {
                let outcome = match parse_verdict(item) {
                    Some(Ok(verdict)) => AskOutcome::Done(verdict),
                    Some(Err(Unreadable)) => AskOutcome::Failed(RedisError::CorruptState {
                        document: pending[i].ask.document.masked(),
                    }),
                    None => AskOutcome::Failed(RedisError::UnexpectedReply {
                        action: "FCALL icaze_grant",
                        node: node.to_string(),
                        reply: format!("{item:?}"),
                    }),
                };
                outs.push((i, outcome));
            }
        }
        Value::ServerError(server) => {
            let error = redis::RedisError::from(server);
            note_repairs(&error, repairs);
            let error = Arc::new(error);
            outs.extend(call.iter().map(|&i| (i, call_failed(node, &error))));
        }
        other => {
            let error = RedisError::UnexpectedReply {
                action: "FCALL icaze_grant",
                node: node.to_string(),
                reply: abbreviate(&other),
            };
            outs.extend(call.iter().map(|&i| (i, AskOutcome::Failed(error.clone()))));
        }
    }
}

/// Whether a retry can help with `error` (after the repairs [`note_repairs`] asks for).
fn recoverable(error: &redis::RedisError) -> bool {
    if missing_function(error) {
        return true;
    }
    match error.kind() {
        ErrorKind::Io | ErrorKind::ClusterConnectionNotFound | ErrorKind::Parse => true,
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::Moved
                | ServerErrorKind::Ask
        ),
        _ => false,
    }
}

/// Whether Redis said the function is not loaded (a server restarted without its data, a
/// new primary, a `FUNCTION FLUSH`).
fn missing_function(error: &redis::RedisError) -> bool {
    error
        .detail()
        .is_some_and(|d| d.contains("Function not found"))
}

/// Records what `error` says needs repairing.
fn note_repairs(error: &redis::RedisError, repairs: &mut Repairs) {
    if missing_function(error) {
        repairs.reload_library = true;
    }
    if matches!(
        error.kind(),
        ErrorKind::ClusterConnectionNotFound
            | ErrorKind::Server(
                ServerErrorKind::Moved
                    | ServerErrorKind::Ask
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::MasterDown
            )
    ) {
        repairs.refresh_slots = true;
    }
}

/// An ask's keys hold values icaze did not write.
#[derive(Debug, PartialEq, Eq)]
struct Unreadable;

/// The verdict in one ask's three numbers: `0 from until`, `1 from until`, `2 limit 0`, or
/// `3 0 0` for [`Unreadable`]; `None` for anything else.
fn parse_verdict(item: &[Value]) -> Option<Result<RedisVerdict, Unreadable>> {
    let [Value::Int(kind), Value::Int(a), Value::Int(b)] = item else {
        return None;
    };
    let verdict = match kind {
        0 => RedisVerdict::Granted(Validity {
            from: *a,
            until: *b,
        }),
        1 => RedisVerdict::Active(Validity {
            from: *a,
            until: *b,
        }),
        2 => RedisVerdict::DailyLimit {
            limit: u32::try_from(*a).ok()?,
        },
        3 => return Some(Err(Unreadable)),
        _ => return None,
    };
    Some(Ok(verdict))
}

/// `None` if `WAITAOF` confirmed enough; else why not, as a fault to retry.
fn check_waitaof(wait: WaitAof, node: &str, reply: Value) -> Option<Fault> {
    let counts = match &reply {
        Value::Array(items) => match items.as_slice() {
            [Value::Int(local), Value::Int(replicas)] => Some((*local, *replicas)),
            _ => None,
        },
        _ => None,
    };
    match counts {
        Some((local, replicas))
            if local >= i64::from(wait.local) && replicas >= i64::from(wait.replicas) =>
        {
            None
        }
        Some((local, replicas)) => Some(Fault::NotDurable(RedisError::NotDurable {
            node: node.to_string(),
            local: u32::try_from(local).unwrap_or(0),
            replicas: u32::try_from(replicas).unwrap_or(0),
            wanted_local: wait.local,
            wanted_replicas: wait.replicas,
        })),
        None => {
            let error = match reply {
                Value::ServerError(server) => redis::RedisError::from(server),
                other => redis::RedisError::from((
                    ErrorKind::UnexpectedReturnType,
                    "unexpected WAITAOF reply",
                    abbreviate(&other),
                )),
            };
            // Unconfirmed either way; the asks ran, so a retry finds them.
            Some(Fault::Redis {
                node: node.to_string(),
                error: Arc::new(error),
            })
        }
    }
}

/// A reply, shortened for an error message.
fn abbreviate(value: &Value) -> String {
    let mut s = format!("{value:?}");
    if s.len() > 120 {
        let mut end = 120;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// A standalone Redis through [`RedisOptions::pipelines_in_flight`] multiplexed
/// connections that reconnect by themselves.
struct SingleBackend {
    conns: Vec<ConnectionManager>,
    next: AtomicUsize,
    /// host:port, without credentials.
    node: String,
}

impl SingleBackend {
    /// The next connection, round robin, so pipelines in flight use different ones.
    fn conn(&self) -> ConnectionManager {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.conns[n % self.conns.len()].clone()
    }

    async fn connect(options: &RedisOptions) -> Result<SingleBackend, RedisError> {
        let url = &options.nodes[0];
        let client = redis::Client::open(url.as_str()).map_err(|e| RedisError::Config {
            reason: format!("node URL is not a Redis URL: {e}"),
        })?;
        let node = client.get_connection_info().addr().to_string();
        let wait = options.waitaof.map_or(Duration::ZERO, |w| w.timeout);
        let mut conns = Vec::with_capacity(options.pipelines_in_flight);
        for _ in 0..options.pipelines_in_flight {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT + wait))
                .set_number_of_retries(2)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_millis(500));
            let conn = ConnectionManager::new_with_config(client.clone(), config)
                .await
                .map_err(|e| RedisError::Unreachable {
                    nodes: node.clone(),
                    source: Arc::new(e),
                })?;
            conns.push(conn);
        }
        Ok(SingleBackend {
            conns,
            next: AtomicUsize::new(0),
            node,
        })
    }
}

/// A Redis Cluster through [`RedisOptions::pipelines_in_flight`] redis-rs cluster
/// connections, with the store's own slot map to split batches by primary.
struct ClusterBackend {
    conns: Vec<ClusterConnection>,
    next: AtomicUsize,
    /// The seed nodes, host:port, for logs.
    seeds: String,
    slots: RwLock<Arc<SlotMap>>,
}

/// Which primary serves each slot, as `CLUSTER SLOTS` last said.
struct SlotMap {
    /// Index into `nodes` per slot; [`NO_OWNER`] for a slot no primary serves.
    owner: Vec<u16>,
    nodes: Vec<SlotOwner>,
}

/// One primary.
struct SlotOwner {
    /// host:port.
    addr: String,
    /// A slot it serves, to route commands that name no key to it.
    first_slot: u16,
}

impl ClusterBackend {
    async fn connect(options: &RedisOptions) -> Result<ClusterBackend, RedisError> {
        let mut seeds = Vec::new();
        for url in &options.nodes {
            let client = redis::Client::open(url.as_str()).map_err(|e| RedisError::Config {
                reason: format!("cluster node URL is not a Redis URL: {e}"),
            })?;
            seeds.push(client.get_connection_info().addr().to_string());
        }
        let seeds = seeds.join(",");
        let wait = options.waitaof.map_or(Duration::ZERO, |w| w.timeout);
        // No retries inside redis-rs: it would resend a whole pipeline after a partial
        // failure (a MOVED on one command resends all of them elsewhere) and hide that the
        // asks may have run; the store retries per ask and knows.
        let client = redis::cluster::ClusterClientBuilder::new(options.nodes.clone())
            .retries(0)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT + wait)
            .build()
            .map_err(|e| RedisError::Config {
                reason: format!("cluster client: {e}"),
            })?;
        let mut conns = Vec::with_capacity(options.pipelines_in_flight);
        for _ in 0..options.pipelines_in_flight {
            let conn =
                client
                    .get_async_connection()
                    .await
                    .map_err(|e| RedisError::Unreachable {
                        nodes: seeds.clone(),
                        source: Arc::new(e),
                    })?;
            conns.push(conn);
        }
        let backend = ClusterBackend {
            conns,
            next: AtomicUsize::new(0),
            seeds,
            slots: RwLock::new(Arc::new(SlotMap {
                owner: vec![NO_OWNER; SLOTS],
                nodes: Vec::new(),
            })),
        };
        backend.refresh_slots().await?;
        Ok(backend)
    }

    /// The next connection, round robin, so pipelines in flight use different ones.
    fn conn(&self) -> ClusterConnection {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.conns[n % self.conns.len()].clone()
    }

    fn slots(&self) -> Arc<SlotMap> {
        self.slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reloads the slot map from `CLUSTER SLOTS` of any node.
    async fn refresh_slots(&self) -> Result<(), RedisError> {
        let reply = self
            .conn()
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await
            .and_then(|v| v.extract_error())
            .map_err(|e| {
                if e.is_io_error() {
                    RedisError::Unreachable {
                        nodes: self.seeds.clone(),
                        source: Arc::new(e),
                    }
                } else {
                    RedisError::Command {
                        action: "CLUSTER SLOTS",
                        node: self.seeds.clone(),
                        source: Arc::new(e),
                    }
                }
            })?;
        let map = parse_cluster_slots(&reply).ok_or_else(|| RedisError::UnexpectedReply {
            action: "CLUSTER SLOTS",
            node: self.seeds.clone(),
            reply: abbreviate(&reply),
        })?;
        *self.slots.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(map);
        Ok(())
    }

    /// One attempt: one sub-pipeline per primary, sent concurrently, each routed to its
    /// node by the slot of its first ask.
    async fn attempt(
        &self,
        pending: &[Pending],
        todo: &[usize],
        waitaof: Option<WaitAof>,
        repairs: &mut Repairs,
    ) -> Vec<(usize, AskOutcome)> {
        let map = self.slots();
        // Per primary, then one more per slot no primary serves: (slot, index) in the
        // order asked.
        let mut groups: Vec<Vec<(u16, usize)>> = vec![Vec::new(); map.nodes.len()];
        let mut key = String::with_capacity(40);
        let mut grant = String::with_capacity(40);
        for &i in todo {
            keys(&pending[i].ask, &mut key, &mut grant);
            let slot = key_slot(key.as_bytes());
            match map.owner[usize::from(slot)] {
                NO_OWNER => groups.push(vec![(slot, i)]),
                owner => groups[usize::from(owner)].push((slot, i)),
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (g, asks) in groups.into_iter().enumerate() {
            let Some(&(slot, _)) = asks.first() else {
                continue;
            };
            let node = map
                .nodes
                .get(g)
                .map_or_else(|| format!("the node of slot {slot}"), |n| n.addr.clone());
            let plan = Plan::by_slot(asks);
            let pipe = pipeline(pending, &plan, waitaof);
            let route = SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master));
            let mut conn = self.conn();
            tasks.spawn(async move {
                let count = pipe.len();
                let result = conn.route_pipeline(pipe, 0, count, route).await;
                (plan, node, result)
            });
        }
        let mut outs = Vec::with_capacity(todo.len());
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((plan, node, result)) => {
                    outs.extend(outcomes(pending, &plan, &node, result, waitaof, repairs));
                }
                Err(panic) => {
                    tracing::error!(error = %panic, "redis: a cluster sub-pipeline task failed");
                }
            }
        }
        if outs.len() < todo.len() {
            // A task failed: its asks get no verdict, and fail rather than wait forever.
            let mut answered = vec![false; pending.len()];
            for (i, _) in &outs {
                answered[*i] = true;
            }
            let error = RedisError::UnexpectedReply {
                action: "a pipeline of FCALLs",
                node: self.seeds.clone(),
                reply: "no reply (the task sending it failed)".into(),
            };
            for &i in todo {
                if !answered[i] {
                    outs.push((i, AskOutcome::Failed(error.clone())));
                }
            }
        }
        outs
    }
}

/// The slot map in a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, ..], replicas
/// ..], ..]`. Primaries are told apart by id (host:port where a reply has none).
fn parse_cluster_slots(reply: &Value) -> Option<SlotMap> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    let mut owner = vec![NO_OWNER; SLOTS];
    let mut nodes: Vec<SlotOwner> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for range in ranges {
        let Value::Array(fields) = range else {
            return None;
        };
        let [
            Value::Int(start),
            Value::Int(end),
            Value::Array(primary),
            ..,
        ] = fields.as_slice()
        else {
            return None;
        };
        let (start, end) = (u16::try_from(*start).ok()?, u16::try_from(*end).ok()?);
        if start > end || usize::from(end) >= SLOTS {
            return None;
        }
        let host = match primary.first()? {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::SimpleString(s) => s.clone(),
            _ => return None,
        };
        let Value::Int(port) = primary.get(1)? else {
            return None;
        };
        let addr = format!("{host}:{port}");
        let id = match primary.get(2) {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => addr.clone(),
        };
        let index = match ids.iter().position(|known| *known == id) {
            Some(index) => index,
            None => {
                ids.push(id);
                nodes.push(SlotOwner {
                    addr,
                    first_slot: start,
                });
                nodes.len() - 1
            }
        };
        let index = u16::try_from(index).ok()?;
        owner[usize::from(start)..=usize::from(end)].fill(index);
    }
    Some(SlotMap { owner, nodes })
}

/// The cluster slot of a key: CRC16 (XMODEM) of its hash tag (or of the whole key if it has
/// none) modulo 16384, as Redis computes it. redis-rs computes it too but does not expose
/// the number, which the store needs to group asks by primary.
fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    crc16_xmodem(tagged) % SLOTS as u16
}

/// CRC16 with polynomial 0x1021 and initial value 0 (XMODEM), bit by bit: the keys are
/// short and this runs once per ask.
fn crc16_xmodem(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> Document {
        Document::parse_canonical(s).unwrap()
    }

    fn ask(shared: bool) -> GrantAsk {
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
    fn keys_carry_the_document_as_hash_tag() {
        let (mut g, mut c) = (String::new(), String::new());
        keys(&ask(false), &mut g, &mut c);
        assert_eq!(g, "icaze:{AZE11111111}:g:2");
        assert_eq!(
            c, g,
            "a code with its own group keeps its permit in the group key"
        );
        keys(&ask(true), &mut g, &mut c);
        assert_eq!(g, "icaze:{AZE11111111}:g:1");
        assert_eq!(c, "icaze:{AZE11111111}:c:2");
        assert_eq!(key_slot(g.as_bytes()), key_slot(c.as_bytes()));
    }

    #[test]
    fn slots_match_redis() {
        // Values from CLUSTER KEYSLOT.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
    }

    #[test]
    fn replies_parse() {
        let v = |items: [i64; 3]| items.map(Value::Int);
        assert_eq!(
            parse_verdict(&v([0, 10, 20])),
            Some(Ok(RedisVerdict::Granted(Validity {
                from: 10,
                until: 20
            })))
        );
        assert_eq!(
            parse_verdict(&v([1, 10, 20])),
            Some(Ok(RedisVerdict::Active(Validity {
                from: 10,
                until: 20
            })))
        );
        assert_eq!(
            parse_verdict(&v([2, 1, 0])),
            Some(Ok(RedisVerdict::DailyLimit { limit: 1 }))
        );
        assert_eq!(parse_verdict(&v([3, 0, 0])), Some(Err(Unreadable)));
        assert_eq!(parse_verdict(&v([4, 1, 0])), None);
        assert_eq!(parse_verdict(&v([2, -1, 0])), None);
        assert_eq!(
            parse_verdict(&[Value::Nil, Value::Int(1), Value::Int(2)]),
            None
        );
    }

    #[test]
    fn expiry_has_bounded_jitter_and_outlives_the_permit() {
        let tuning = Tuning {
            batch_max: 1,
            flush_after: Duration::ZERO,
            retry_for: Duration::ZERO,
            waitaof: None,
            jitter_secs: 600,
            hasher: foldhash::fast::RandomState::default(),
            asks: AtomicU64::new(0),
        };
        let mut a = ask(false);
        let mut seen = std::collections::HashSet::new();
        for n in 0..200 {
            a.document = doc(&format!("AZE{:08}", n));
            let at = tuning.expire_at(&a);
            assert!((a.expire_at..=a.expire_at + 600).contains(&at));
            assert_eq!(at, tuning.expire_at(&a), "the same ask, the same expiry");
            seen.insert(at);
        }
        assert!(seen.len() > 50, "jitter spreads expiries: {}", seen.len());
        a.expire_at = a.now;
        assert!(tuning.expire_at(&a) >= a.until());
    }

    #[test]
    fn ask_ids_are_distinct_hex_and_never_zero() {
        let tuning = Tuning {
            batch_max: 1,
            flush_after: Duration::ZERO,
            retry_for: Duration::ZERO,
            waitaof: None,
            jitter_secs: 0,
            hasher: foldhash::fast::RandomState::default(),
            asks: AtomicU64::new(0),
        };
        let ids: std::collections::HashSet<u64> = (0..10_000).map(|_| tuning.ask_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(!ids.contains(&0));
        let mut buf = [0u8; 16];
        assert_eq!(hex(0x1f, &mut buf), b"1f");
        assert_eq!(hex(u64::MAX, &mut buf), b"ffffffffffffffff");
        assert_eq!(hex(0, &mut buf), b"0");
    }

    #[test]
    fn pipeline_ends_with_waitaof_when_asked() {
        let p = Pending {
            ask: ask(true),
            expire_at: 1,
            id: 0xabc,
            job: 0,
        };
        let wait = WaitAof {
            local: 1,
            replicas: 1,
            timeout: Duration::from_millis(250),
        };
        let plan = Plan::chunked(&[0]);
        let pipe = pipeline(std::slice::from_ref(&p), &plan, Some(wait));
        assert_eq!(pipe.len(), 2);
        let packed = String::from_utf8_lossy(&pipe.get_packed_pipeline()).into_owned();
        assert!(packed.contains("FCALL") && packed.contains("icaze_grant"));
        assert!(packed.ends_with("$7\r\nWAITAOF\r\n$1\r\n1\r\n$1\r\n1\r\n$3\r\n250\r\n"));
        assert_eq!(pipeline(std::slice::from_ref(&p), &plan, None).len(), 1);
    }

    #[test]
    fn plans_split_calls() {
        let todo: Vec<usize> = (0..150).collect();
        let plan = Plan::chunked(&todo);
        assert_eq!(plan.ends, [64, 128, 150]);
        assert_eq!(plan.asks, todo);
        assert_eq!(Plan::chunked(&[]), Plan::default());
        let lens: Vec<usize> = plan.calls().map(<[usize]>::len).collect();
        assert_eq!(lens, [64, 64, 22]);

        // Per slot, in the order asked within a slot; a long slot is split too.
        let mut asks = vec![(7, 0), (3, 1), (7, 2), (3, 3)];
        asks.extend((4..70).map(|i| (9, i)));
        let plan = Plan::by_slot(asks);
        let calls: Vec<&[usize]> = plan.calls().collect();
        assert_eq!(calls[0], [1, 3]);
        assert_eq!(calls[1], [0, 2]);
        assert_eq!(calls[2].len(), 64);
        assert_eq!(calls[3], [68, 69]);
        assert_eq!(Plan::by_slot(Vec::new()), Plan::default());
    }

    #[test]
    fn waitaof_replies_are_checked() {
        let wait = WaitAof {
            local: 1,
            replicas: 1,
            timeout: Duration::from_millis(10),
        };
        let reply = |l, r| Value::Array(vec![Value::Int(l), Value::Int(r)]);
        assert!(check_waitaof(wait, "n", reply(1, 1)).is_none());
        assert!(check_waitaof(wait, "n", reply(1, 2)).is_none());
        assert!(matches!(
            check_waitaof(wait, "n", reply(1, 0)),
            Some(Fault::NotDurable(RedisError::NotDurable {
                replicas: 0,
                ..
            }))
        ));
        assert!(matches!(
            check_waitaof(wait, "n", Value::Nil),
            Some(Fault::Redis { .. })
        ));
    }

    #[test]
    fn cluster_slots_parse() {
        let node = |port: i64, id: &str| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(id.as_bytes().to_vec()),
            ])
        };
        let range = |a: i64, b: i64, n: Value| Value::Array(vec![Value::Int(a), Value::Int(b), n]);
        let reply = Value::Array(vec![
            range(0, 5460, node(7000, "a")),
            range(5461, 10922, node(7001, "b")),
            range(10923, 16383, node(7002, "c")),
            range(100, 100, node(7000, "a")),
        ]);
        let map = parse_cluster_slots(&reply).unwrap();
        assert_eq!(map.nodes.len(), 3);
        assert_eq!(map.nodes[1].addr, "127.0.0.1:7001");
        assert_eq!(map.nodes[2].first_slot, 10923);
        assert_eq!(map.owner[0], 0);
        assert_eq!(map.owner[16383], 2);
        assert!(parse_cluster_slots(&Value::Nil).is_none());
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

    #[test]
    fn errors_say_whether_to_retry() {
        let io = Arc::new(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        )));
        let unreachable = RedisError::Unreachable {
            nodes: "127.0.0.1:1".into(),
            source: io.clone(),
        };
        assert!(unreachable.is_retryable() && unreachable.is_unreachable());
        assert!(unreachable.to_string().contains("cannot reach 127.0.0.1:1"));
        assert!(
            RedisError::Unavailable {
                node: "n".into(),
                waited: Duration::from_secs(5),
                attempts: 9,
                source: io
            }
            .is_retryable()
        );
        assert!(
            !RedisError::WaitAofUnsupported {
                node: "n".into(),
                reason: "old".into()
            }
            .is_retryable()
        );
        assert!(!RedisError::Closed.is_retryable());
    }
}
