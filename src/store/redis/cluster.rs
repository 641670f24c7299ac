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
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Slots of a Redis Cluster.
const SLOTS: usize = 16_384;
/// A slot no primary serves, in [`SlotMap::owner`].
const NO_OWNER: u16 = u16::MAX;

/// How long an attempt keeps its place among the pipelines in flight (see
/// [`ClusterBackend::attempt`]): a hung primary (until the response timeout) must not take
/// every place from the healthy ones.
const STRAGGLER_GRACE: Duration = Duration::from_millis(50);

/// A Redis Cluster through [`RedisOptions::pipelines_in_flight`] redis-rs cluster
/// connections, with the store's own slot map to split batches by primary.
pub(super) struct ClusterBackend {
    pub(super) conns: Vec<ClusterConnection>,
    pub(super) next: AtomicUsize,
    /// The seed nodes, host:port, for logs.
    pub(super) seeds: String,
    pub(super) slots: RwLock<Arc<SlotMap>>,
    /// Per primary (host:port), its pipelines in flight: at most `pipelines_in_flight`.
    gates: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Permits of each gate.
    per_primary: usize,
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
            gates: Mutex::new(HashMap::new()),
            per_primary: options.pipelines_in_flight,
        };
        backend.refresh_slots().await?;
        Ok(backend)
    }

    /// The next connection, round robin, so pipelines in flight use different ones.
    pub(super) fn conn(&self) -> ClusterConnection {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.conns[n % self.conns.len()].clone()
    }

    /// The gate of the primary at `node` (host:port).
    fn gate(&self, node: &str) -> Arc<Semaphore> {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(gate) = gates.get(node) {
            return gate.clone();
        }
        let gate = Arc::new(Semaphore::new(self.per_primary));
        gates.insert(node.to_string(), gate.clone());
        gate
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
    /// node by the slot of its first ask; each sub-pipeline's outcomes go to `on` as soon as
    /// it answers, so a primary that is slow to fail holds up only its own asks. `place` is
    /// the batch's place among the pipelines in flight, given up after
    /// [`STRAGGLER_GRACE`]; each sub-pipeline waits for a turn at its primary's gate
    /// instead.
    pub(super) async fn attempt(
        &self,
        pending: &[Pending],
        todo: &[usize],
        waitaof: Option<WaitAof>,
        repairs: &mut Repairs,
        place: &mut Option<OwnedSemaphorePermit>,
        on: &mut (dyn FnMut(usize, AskOutcome) + Send),
    ) {
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
            // Waited for no longer than the first of its asks may wait.
            let give_up_at = asks
                .iter()
                .map(|&(_, i)| pending[i].give_up_at)
                .min()
                .unwrap_or_else(Instant::now);
            let plan = Plan::by_slot(asks);
            let pipe = pipeline(pending, &plan, waitaof);
            let route = SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master));
            let mut conn = self.conn();
            let gate = self.gate(&node);
            tasks.spawn(async move {
                let count = pipe.len();
                let Ok(Ok(_turn)) = tokio::time::timeout_at(give_up_at, gate.acquire_owned()).await
                else {
                    let busy = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "every pipeline to this primary is in flight and none came back",
                    );
                    return (plan, node, Err(redis::RedisError::from(busy)));
                };
                let result = conn.route_pipeline(pipe, 0, count, route).await;
                (plan, node, result)
            });
        }
        let mut answered = vec![false; pending.len()];
        let mut count = 0;
        let held_until = Instant::now() + STRAGGLER_GRACE;
        loop {
            // The batch's place is kept for STRAGGLER_GRACE: the time a healthy cluster
            // takes, so jobs gather into the next batch meanwhile. A primary slower than
            // that (away, hung) is waited for without it, and its gate (at most
            // `pipelines_in_flight` pipelines per primary) bounds what waits on it.
            let joined = if place.is_some() {
                match tokio::time::timeout_at(held_until, tasks.join_next()).await {
                    Ok(joined) => joined,
                    Err(_) => {
                        drop(place.take());
                        continue;
                    }
                }
            } else {
                tasks.join_next().await
            };
            let Some(joined) = joined else {
                break;
            };
            match joined {
                Ok((plan, node, result)) => {
                    for (i, outcome) in outcomes(pending, &plan, &node, result, waitaof, repairs) {
                        if !std::mem::replace(&mut answered[i], true) {
                            count += 1;
                        }
                        on(i, outcome);
                    }
                }
                Err(panic) => {
                    tracing::error!(error = %panic, "redis: a cluster sub-pipeline task failed");
                }
            }
        }
        if count < todo.len() {
            // A task failed: its asks get no verdict, and fail rather than wait forever.
            let error = RedisError::UnexpectedReply {
                action: "a pipeline of FCALLs",
                node: self.seeds.clone(),
                reply: "no reply (the task sending it failed)".into(),
            };
            for &i in todo {
                if !answered[i] {
                    on(i, AskOutcome::Failed(error.clone()));
                }
            }
        }
    }
}

/// Which primary decides a document's asks, as the store's slot map said when this was
/// taken: to keep MOs for different primaries apart, so one that is away holds up only its
/// own. A hint for scheduling only: the asks themselves are routed by the map of their
/// attempt.
pub struct Shards(Option<Arc<SlotMap>>);

impl Shards {
    /// Every document on one shard (a standalone Redis).
    pub(super) fn one() -> Shards {
        Shards(None)
    }

    pub(super) fn of(map: Arc<SlotMap>) -> Shards {
        Shards(Some(map))
    }

    /// The shard of `document`'s keys: the index of its slot's primary (the primaries
    /// known, for a slot none serves); 0 on a standalone Redis.
    pub fn shard_of(&self, document: crate::permit::document::Document) -> u16 {
        let Some(map) = &self.0 else {
            return 0;
        };
        let mut tag = [0u8; 32];
        let mut w = std::io::Cursor::new(&mut tag[..]);
        // A document's canonical form is at most 4 letters and 19 digits: it fits.
        let _ = std::io::Write::write_fmt(&mut w, format_args!("{document}"));
        let len = usize::try_from(w.position()).unwrap_or(0);
        match map.owner[usize::from(key_slot(&tag[..len]))] {
            NO_OWNER => u16::try_from(map.nodes.len()).unwrap_or(u16::MAX),
            owner => owner,
        }
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
