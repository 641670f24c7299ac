//! The `store` key and the `[redis]` section: where grants become durable.

use super::error::Errors;
use serde::Deserialize;
use std::time::Duration;

/// Where grants become durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded journal in `data_dir` (the default).
    Journal,
    /// Redis: one server, or the seed nodes of a Redis Cluster.
    Redis(RedisConfig),
}

/// The Redis store's settings (`store = "redis://…"` or a list of cluster nodes, and the
/// `[redis]` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://` URLs: one server, or cluster seed nodes.
    pub nodes: Vec<String>,
    /// Whether `nodes` are a Redis Cluster (a list in config means yes).
    pub cluster: bool,
    /// Most grants in one pipeline.
    pub batch_max: usize,
    /// Longest a grant waits for its pipeline to fill.
    pub flush_after: Duration,
    /// How long an MO waits for an unreachable Redis before the citizen is told to try
    /// again in a few minutes.
    pub retry_for: Duration,
    /// `WAITAOF local replicas timeout` after each pipeline (Redis/Valkey 7.2+): grants are
    /// fsynced (and replicated) before the MO is acknowledged.
    pub waitaof: Option<(u32, u32, Duration)>,
    /// `[redis] replicas = N`: `WAIT N timeout` after each pipeline (any Redis): N replicas
    /// have received the grants before the MO is acknowledged, so a failover to one of
    /// them keeps every acknowledged grant. With the wait's timeout.
    pub replicas: Option<(u32, Duration)>,
}

/// `store` as written: `"journal"`, one URL, or a list of cluster nodes.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawStore {
    One(String),
    Cluster(Vec<String>),
}

/// `[redis]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedis {
    batch_max: Option<usize>,
    flush_after: Option<String>,
    retry_for: Option<String>,
    waitaof: Option<RawWaitAof>,
    replicas: Option<u32>,
    replicas_timeout: Option<String>,
}

/// `[redis] waitaof` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaitAof {
    local: u32,
    #[serde(default)]
    replicas: u32,
    timeout: Option<String>,
}

/// Checks `store` and, when it names Redis, `[redis]` (ignored for the journal).
pub(super) fn store(errs: &mut Errors, store: Option<RawStore>, redis: RawRedis) -> StoreConfig {
    match store {
        None => StoreConfig::Journal,
        Some(RawStore::One(s)) if s == "journal" => StoreConfig::Journal,
        Some(RawStore::One(s)) => redis_config(errs, &redis, vec![s], false),
        Some(RawStore::Cluster(nodes)) if nodes.is_empty() => {
            errs.push(
                "store",
                "an empty list: give \"journal\", a redis:// URL, or cluster nodes",
            );
            StoreConfig::Journal
        }
        Some(RawStore::Cluster(nodes)) => redis_config(errs, &redis, nodes, true),
    }
}

fn redis_config(
    errs: &mut Errors,
    redis: &RawRedis,
    nodes: Vec<String>,
    cluster: bool,
) -> StoreConfig {
    for (i, n) in nodes.iter().enumerate() {
        if !(n.starts_with("redis://") || n.starts_with("rediss://")) {
            let key = if cluster {
                format!("store[{i}]")
            } else {
                "store".to_string()
            };
            errs.push(key, format!("{n:?} is not a redis:// URL"));
        }
    }
    let waitaof = redis.waitaof.as_ref().map(|w| {
        (
            w.local,
            w.replicas,
            errs.duration(
                "redis.waitaof.timeout",
                w.timeout.as_deref(),
                Duration::from_secs(1),
            ),
        )
    });
    let replicas = match (redis.replicas, &redis.waitaof) {
        (Some(0) | None, _) => None,
        (Some(_), Some(_)) => {
            errs.push(
                "redis.replicas",
                "set either replicas (WAIT) or waitaof.replicas (WAITAOF), not both",
            );
            None
        }
        (Some(n), None) => Some((
            n,
            errs.duration(
                "redis.replicas_timeout",
                redis.replicas_timeout.as_deref(),
                Duration::from_millis(500),
            ),
        )),
    };
    StoreConfig::Redis(RedisConfig {
        nodes,
        cluster,
        batch_max: redis.batch_max.unwrap_or(512).max(1),
        flush_after: errs.duration(
            "redis.flush_after",
            redis.flush_after.as_deref(),
            Duration::from_millis(1),
        ),
        retry_for: errs.duration(
            "redis.retry_for",
            redis.retry_for.as_deref(),
            Duration::from_secs(5),
        ),
        waitaof,
        replicas,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::tests::{beside_shipped_rules, key_only};

    #[test]
    fn store_settings() {
        let (_dir, path) = beside_shipped_rules();
        let env = key_only;
        let one = Config::from_toml(&path, "store = \"redis://127.0.0.1:7000\"\n[redis]\nflush_after = \"2ms\"\nwaitaof = { local = 1, timeout = \"500ms\" }\n", &env).unwrap();
        let StoreConfig::Redis(r) = one.store else {
            panic!("redis")
        };
        assert_eq!(
            (r.cluster, r.flush_after, r.waitaof),
            (
                false,
                Duration::from_millis(2),
                Some((1, 0, Duration::from_millis(500)))
            )
        );
        let cluster =
            Config::from_toml(&path, "store = [\"redis://a:1\", \"redis://b:2\"]\n", &env).unwrap();
        assert!(matches!(
            cluster.store,
            StoreConfig::Redis(RedisConfig { cluster: true, .. })
        ));
        let bad = Config::from_toml(
            &path,
            "store = \"postgres://x\"\n[redis]\nretry_for = \"soon\"\n",
            &env,
        )
        .unwrap_err()
        .0;
        let keys: Vec<&str> = bad.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["store", "redis.retry_for"]);
    }

    #[test]
    fn replicas_wait_for_a_replica_and_not_beside_waitaof() {
        let (_dir, path) = beside_shipped_rules();
        let redis = |extra: &str| {
            Config::from_toml(
                &path,
                &format!("store = \"redis://127.0.0.1:7000\"\n[redis]\n{extra}\n"),
                &key_only,
            )
        };
        let StoreConfig::Redis(r) = redis("replicas = 1").unwrap().store else {
            panic!("redis")
        };
        assert_eq!(r.replicas, Some((1, Duration::from_millis(500))));
        let StoreConfig::Redis(r) = redis("replicas = 2\nreplicas_timeout = \"2s\"")
            .unwrap()
            .store
        else {
            panic!("redis")
        };
        assert_eq!(r.replicas, Some((2, Duration::from_secs(2))));
        let StoreConfig::Redis(r) = redis("replicas = 0").unwrap().store else {
            panic!("redis")
        };
        assert_eq!(r.replicas, None);
        let both = redis("replicas = 1\nwaitaof = { local = 1 }")
            .unwrap_err()
            .0;
        assert_eq!(both[0].key, "redis.replicas");
        assert!(both[0].to_string().contains("not both"), "{}", both[0]);
    }
}
