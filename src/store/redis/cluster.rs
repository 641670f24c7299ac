//! A Redis Cluster: redis-rs cluster connections, and the store's own slot map to split a
//! batch into one sub-pipeline per primary.

use super::backend::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT};
use super::batch::{AskOutcome, Pending, Repairs};
use super::error::RedisError;
use super::options::{RedisOptions, WaitAof};
use super::pipeline::{Plan, abbreviate, keys, outcomes, pipeline};
use redis::Value;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Slots of a Redis Cluster.
const SLOTS: usize = 16_384;
/// A slot no primary serves, in [`SlotMap::owner`].
const NO_OWNER: u16 = u16::MAX;

/// A Redis Cluster through [`RedisOptions::pipelines_in_flight`] redis-rs cluster
/// connections, with the store's own slot map to split batches by primary.
pub(super) struct ClusterBackend {
    pub(super) conns: Vec<ClusterConnection>,
    pub(super) next: AtomicUsize,
    /// The seed nodes, host:port, for logs.
    pub(super) seeds: String,
    pub(super) slots: RwLock<Arc<SlotMap>>,
}

/// Which primary serves each slot, as `CLUSTER SLOTS` last said.
pub(super) struct SlotMap {
    /// Index into `nodes` per slot; [`NO_OWNER`] for a slot no primary serves.
    pub(super) owner: Vec<u16>,
    pub(super) nodes: Vec<SlotOwner>,
}

/// One primary.
pub(super) struct SlotOwner {
    /// host:port.
    pub(super) addr: String,
    /// A slot it serves, to route commands that name no key to it.
    pub(super) first_slot: u16,
}

impl ClusterBackend {
    pub(super) async fn connect(options: &RedisOptions) -> Result<ClusterBackend, RedisError> {
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
    pub(super) fn conn(&self) -> ClusterConnection {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.conns[n % self.conns.len()].clone()
    }

    pub(super) fn slots(&self) -> Arc<SlotMap> {
        self.slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reloads the slot map from `CLUSTER SLOTS` of any node.
    pub(super) async fn refresh_slots(&self) -> Result<(), RedisError> {
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
    pub(super) async fn attempt(
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
pub(super) fn key_slot(key: &[u8]) -> u16 {
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
}
