//! [`RedisOptions`]: where Redis is and how the store uses it, and their checks.

use super::error::RedisError;
use std::time::Duration;

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
    /// `WAIT replicas timeout` instead (`[redis] replicas`, any Redis): the replicas have
    /// received the writes, not necessarily fsynced them; `local` is then 0.
    pub received_only: bool,
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
    /// Calls to [`RedisStore::decide`](super::RedisStore::decide) queued for the batcher before
    /// further callers wait (default 4096): the backpressure bound.
    pub queue_depth: usize,
    /// With a key, each grant also writes `icaze:permit:{ID}` (the permit id this key gives
    /// it), so any node can verify the id: in the same function call on a standalone Redis;
    /// in a cluster, where that key is in another slot than the document's, by a `SET` of
    /// its own after the verdict, before the MO is acknowledged.
    pub permit_key: Option<crate::permit::id::PermitKey>,
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
            permit_key: None,
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

/// Checks the options that would otherwise fail obscurely later.
pub(super) fn validate(options: &RedisOptions) -> Result<(), RedisError> {
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
