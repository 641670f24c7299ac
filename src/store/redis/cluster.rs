//! A Redis Cluster: the store's own connections to each primary and its own slot map
//! (`CLUSTER SLOTS`), to split a batch into one sub-pipeline per primary.
//!
//! redis-rs's cluster client is not used: it repairs itself on the one task every request
//! goes through, so during a failover each request to the dead primary started another
//! repair and the requests for the healthy primaries waited behind them (three nodes at
//! 10,000 MO/s answered nothing for seconds, then a few thousand a second, long after the
//! replica had taken over). Here each node has its own connections, made when first needed
//! and again after one breaks; a node that refuses a connection is taken as down for
//! [`DOWN_FOR`]; and the slot map is reloaded (one reload at a time) when a primary fails
//! or answers `MOVED`.

use super::backend::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT};
use super::batch::{AskOutcome, Pending, Repairs};
use super::error::RedisError;
use super::options::{RedisOptions, WaitAof};
use super::pipeline::{Plan, abbreviate, keys, outcomes, pipeline};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{ConnectionAddr, ConnectionInfo, ErrorKind, ServerErrorKind, Value};
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

/// How long a node that refused a connection (or did not take one in time) is taken as down:
/// requests for it fail at once meanwhile, instead of each trying to connect.
const DOWN_FOR: Duration = Duration::from_millis(200);

/// The slot map is reloaded at most this often (a failover makes every request for the dead
/// primary ask for a reload).
const REFRESH_EVERY: Duration = Duration::from_millis(100);

/// A Redis Cluster through the store's own connections to each node
/// ([`RedisOptions::pipelines_in_flight`] per node), with its own slot map to split batches
/// by primary.
pub(super) struct ClusterBackend {
    /// The seed nodes, host:port, for logs.
    pub(super) seeds: String,
    /// The seeds' host:port, asked for the slot map when no known primary answers.
    seed_addrs: Vec<String>,
    /// How to connect (credentials, database, protocol): the first seed's, its address
    /// replaced per node.
    template: ConnectionInfo,
    config: redis::AsyncConnectionConfig,
    pub(super) slots: RwLock<Arc<SlotMap>>,
    /// Every node talked to, by host:port.
    nodes: Mutex<HashMap<String, Arc<Node>>>,
    /// Connections per node, and the permits of each primary's gate.
    per_node: usize,
    /// When the slot map was last reloaded; held while reloading (one reload at a time).
    refreshed: tokio::sync::Mutex<Option<Instant>>,
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
}

/// One node: its connections, made when first needed and again after one breaks, and its
/// gate (at most `per_node` pipelines of asks in flight to it).
struct Node {
    client: redis::Client,
    conns: Vec<Mutex<Option<MultiplexedConnection>>>,
    next: AtomicUsize,
    /// After a failed connect: requests fail at once until then.
    down_until: Mutex<Option<Instant>>,
    /// Since when every request to it has failed for want of a connection (none since it
    /// last answered).
    away_since: Mutex<Option<Instant>>,
    gate: Arc<Semaphore>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The error of a slot no primary serves (a cluster still forming, or in failover).
fn no_owner(slot: u16) -> redis::RedisError {
    redis::RedisError::from((
        ErrorKind::Server(ServerErrorKind::ClusterDown),
        "no primary serves the slot",
        format!("slot {slot}"),
    ))
}

/// Whether `error` says the connection it came on is of no more use.
fn breaks_connection(error: &redis::RedisError) -> bool {
    error.is_io_error() || error.is_connection_dropped() || error.is_unrecoverable_error()
}

impl Node {
    /// A connection to this node: one of its own, or a new one.
    async fn conn(
        &self,
        config: &redis::AsyncConnectionConfig,
    ) -> redis::RedisResult<MultiplexedConnection> {
        let slot = &self.conns[self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len()];
        if let Some(conn) = lock(slot).clone() {
            return Ok(conn);
        }
        if lock(&self.down_until).is_some_and(|until| Instant::now() < until) {
            return Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "the node refused a connection a moment ago",
            )));
        }
        let made = tokio::time::timeout(
            CONNECT_TIMEOUT,
            self.client
                .get_multiplexed_async_connection_with_config(config),
        )
        .await
        .unwrap_or_else(|_| {
            Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connecting took longer than the connect timeout",
            )))
        });
        match made {
            Ok(conn) => {
                *lock(slot) = Some(conn.clone());
                *lock(&self.down_until) = None;
                Ok(conn)
            }
            Err(error) => {
                *lock(&self.down_until) = Some(Instant::now() + DOWN_FOR);
                Err(error)
            }
        }
    }

    /// Notes how a request ended: a connection-level failure starts (or continues) an
    /// absence, anything the node answered ends it.
    fn note<T>(&self, result: &redis::RedisResult<T>) {
        let mut away = lock(&self.away_since);
        match result {
            Err(error) if breaks_connection(error) => {
                away.get_or_insert_with(Instant::now);
            }
            _ => *away = None,
        }
    }

    /// Drops every connection after one broke: the next request connects again.
    fn forget(&self) {
        for slot in &self.conns {
            *lock(slot) = None;
        }
    }

    async fn pipeline(
        &self,
        config: &redis::AsyncConnectionConfig,
        pipe: &redis::Pipeline,
    ) -> redis::RedisResult<Vec<Value>> {
        let result = match self.conn(config).await {
            Ok(mut conn) => conn.req_packed_commands(pipe, 0, pipe.len()).await,
            Err(error) => Err(error),
        };
        self.note(&result);
        if let Err(error) = &result
            && breaks_connection(error)
        {
            self.forget();
        }
        result
    }

    async fn command(
        &self,
        config: &redis::AsyncConnectionConfig,
        cmd: &redis::Cmd,
    ) -> redis::RedisResult<Value> {
        let result = match self.conn(config).await {
            Ok(mut conn) => conn.req_packed_command(cmd).await,
            Err(error) => Err(error),
        };
        self.note(&result);
        let result = result.and_then(|v| v.extract_error());
        if let Err(error) = &result
            && breaks_connection(error)
        {
            self.forget();
        }
        result
    }
}

/// The slot of `cmd`'s first key: its first argument, or for `FCALL`/`EVAL`-like commands
/// the first of its keys (slot 0 for a command with no key). Computed on the command's own
/// bytes: this runs for every single command of the message path.
fn slot_of(cmd: &redis::Cmd) -> u16 {
    let mut args = cmd.args_iter().filter_map(|a| match a {
        redis::Arg::Simple(a) => Some(a),
        _ => None,
    });
    let script = args.next().is_some_and(|name| {
        [
            &b"FCALL"[..],
            b"FCALL_RO",
            b"EVAL",
            b"EVALSHA",
            b"EVAL_RO",
            b"EVALSHA_RO",
        ]
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s))
    });
    // FCALL name numkeys key ...: the key is two arguments further on.
    let key = if script { args.nth(2) } else { args.next() };
    key_slot(key.unwrap_or_default())
}

impl ClusterBackend {
    pub(super) async fn connect(options: &RedisOptions) -> Result<ClusterBackend, RedisError> {
        let mut seed_addrs = Vec::new();
        let mut template = None;
        for url in &options.nodes {
            let client = redis::Client::open(url.as_str()).map_err(|e| RedisError::Config {
                reason: format!("cluster node URL is not a Redis URL: {e}"),
            })?;
            let info = client.get_connection_info().clone();
            seed_addrs.push(info.addr().to_string());
            template.get_or_insert(info);
        }
        let Some(template) = template else {
            return Err(RedisError::Config {
                reason: "a cluster needs at least one node URL".into(),
            });
        };
        let wait = options.waitaof.map_or(Duration::ZERO, |w| w.timeout);
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT + wait));
        let backend = ClusterBackend {
            seeds: seed_addrs.join(","),
            seed_addrs,
            template,
            config,
            slots: RwLock::new(Arc::new(SlotMap {
                owner: vec![NO_OWNER; SLOTS],
                nodes: Vec::new(),
            })),
            nodes: Mutex::new(HashMap::new()),
            per_node: options.pipelines_in_flight.max(1),
            refreshed: tokio::sync::Mutex::new(None),
        };
        backend.refresh_slots().await?;
        Ok(backend)
    }

    /// The node at `addr` (host:port), known from now on.
    fn node(&self, addr: &str) -> Result<Arc<Node>, redis::RedisError> {
        if let Some(node) = lock(&self.nodes).get(addr) {
            return Ok(node.clone());
        }
        let bad = || {
            redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the cluster named a node address that is not host:port: {addr}"),
            ))
        };
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let mut at = self.template.addr().clone();
        match &mut at {
            ConnectionAddr::Tcp(h, p)
            | ConnectionAddr::TcpTls {
                host: h, port: p, ..
            } => {
                *h = host.to_string();
                *p = port;
            }
            _ => at = ConnectionAddr::Tcp(host.to_string(), port),
        }
        let client = redis::Client::open(self.template.clone().set_addr(at))?;
        let node = Arc::new(Node {
            client,
            conns: (0..self.per_node).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            down_until: Mutex::new(None),
            away_since: Mutex::new(None),
            gate: Arc::new(Semaphore::new(self.per_node)),
        });
        Ok(lock(&self.nodes)
            .entry(addr.to_string())
            .or_insert(node)
            .clone())
    }

    pub(super) fn slots(&self) -> Arc<SlotMap> {
        self.slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reloads the slot map from `CLUSTER SLOTS` of the first node that answers (the
    /// primaries known, then the seeds), unless it was reloaded less than
    /// [`REFRESH_EVERY`] ago (or is being reloaded: then this waits for that).
    pub(super) async fn refresh_slots(&self) -> Result<(), RedisError> {
        let mut last = self.refreshed.lock().await;
        if last.is_some_and(|at| at.elapsed() < REFRESH_EVERY) {
            return Ok(());
        }
        let mut asked: Vec<String> = self.slots().nodes.iter().map(|n| n.addr.clone()).collect();
        for seed in &self.seed_addrs {
            if !asked.contains(seed) {
                asked.push(seed.clone());
            }
        }
        let cmd = redis::cmd("CLUSTER").arg("SLOTS").clone();
        let mut failure = None;
        for addr in &asked {
            let reply = match self.command_on(addr, &cmd).await {
                Ok(reply) => reply,
                Err(e) => {
                    failure = Some(e);
                    continue;
                }
            };
            let Some(map) = parse_cluster_slots(&reply).filter(|m| !m.nodes.is_empty()) else {
                return Err(RedisError::UnexpectedReply {
                    action: "CLUSTER SLOTS",
                    node: addr.clone(),
                    reply: abbreviate(&reply),
                });
            };
            *self.slots.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(map);
            *last = Some(Instant::now());
            return Ok(());
        }
        *last = Some(Instant::now());
        let source = failure.unwrap_or_else(|| {
            redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "no node to ask",
            ))
        });
        Err(RedisError::Unreachable {
            nodes: self.seeds.clone(),
            source: Arc::new(source),
        })
    }

    /// The node serving `slot`, by the slot map; `Err` if none does.
    fn node_of(&self, slot: u16) -> redis::RedisResult<(String, Arc<Node>)> {
        let map = self.slots();
        match map.owner[usize::from(slot)] {
            NO_OWNER => Err(no_owner(slot)),
            owner => {
                let addr = map.nodes[usize::from(owner)].addr.clone();
                let node = self.node(&addr)?;
                Ok((addr, node))
            }
        }
    }

    /// Runs one command on the primary of its first key's slot, following one `MOVED` (the
    /// slot map is reloaded behind it). The node is named in the result.
    pub(super) async fn command(&self, cmd: &redis::Cmd) -> (String, redis::RedisResult<Value>) {
        let (addr, result) = match self.node_of(slot_of(cmd)) {
            Ok((addr, node)) => (addr, node.command(&self.config, cmd).await),
            Err(e) => (self.seeds.clone(), Err(e)),
        };
        let Err(error) = &result else {
            return (addr, result);
        };
        if breaks_connection(error)
            || error.kind() == ErrorKind::Server(ServerErrorKind::ClusterDown)
        {
            let _ = self.refresh_slots().await;
            return (addr, result);
        }
        let Some((to, _)) = error.redirect_node() else {
            return (addr, result);
        };
        let to = to.to_string();
        let _ = self.refresh_slots().await;
        let result = self.command_on(&to, cmd).await;
        (to, result)
    }

    /// Runs a pipeline whose keys share one slot on that slot's primary (no redirect
    /// followed: the caller retries).
    pub(super) async fn pipeline(
        &self,
        pipe: &redis::Pipeline,
    ) -> (String, redis::RedisResult<Vec<Value>>) {
        let slot = pipe.cmd_iter().next().map_or(0, slot_of);
        match self.node_of(slot) {
            Ok((addr, node)) => {
                let result = node.pipeline(&self.config, pipe).await;
                if result.as_ref().is_err_and(breaks_connection) {
                    let _ = self.refresh_slots().await;
                }
                (addr, result)
            }
            Err(e) => (self.seeds.clone(), Err(e)),
        }
    }

    /// Runs `cmd` on every primary; the first failure, naming its node.
    pub(super) async fn on_every_primary(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<(), (String, redis::RedisError)> {
        let map = self.slots();
        let runs = map.nodes.iter().map(|n| async move {
            self.command_on(&n.addr, cmd)
                .await
                .map(|_| ())
                .map_err(|e| (n.addr.clone(), e))
        });
        for result in futures_util::future::join_all(runs).await {
            result?;
        }
        Ok(())
    }

    /// How long the node at `addr` has been unreachable (every request failing for want of
    /// a connection); `None` if it answered its last request.
    pub(super) fn away_for(&self, addr: &str) -> Option<Duration> {
        let node = lock(&self.nodes).get(addr).cloned()?;
        lock(&node.away_since).map(|since| since.elapsed())
    }

    /// Runs `cmd` on the primary at `addr`.
    pub(super) async fn command_on(
        &self,
        addr: &str,
        cmd: &redis::Cmd,
    ) -> redis::RedisResult<Value> {
        self.node(addr)?.command(&self.config, cmd).await
    }

    /// One attempt: one sub-pipeline per primary, sent concurrently on its own connection,
    /// each outcome handed to `on` as soon as its sub-pipeline answers, so a primary that is
    /// slow to fail holds up only its own asks. `place` is the batch's place among the
    /// pipelines in flight, given up after [`STRAGGLER_GRACE`]; each sub-pipeline waits
    /// for a turn at its primary's gate instead.
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
            // Waited for no longer than the first of its asks may wait.
            let give_up_at = asks
                .iter()
                .map(|&(_, i)| pending[i].give_up_at)
                .min()
                .unwrap_or_else(Instant::now);
            let plan = Plan::by_slot(asks);
            let pipe = pipeline(pending, &plan, waitaof);
            let target = match map.nodes.get(g) {
                Some(n) => self.node(&n.addr).map(|node| (n.addr.clone(), node)),
                None => Err(no_owner(slot)),
            };
            let config = self.config.clone();
            tasks.spawn(async move {
                let (addr, node) = match target {
                    Ok(target) => target,
                    Err(e) => return (plan, format!("the node of slot {slot}"), Err(e)),
                };
                let gate = node.gate.clone();
                let Ok(Ok(_turn)) = tokio::time::timeout_at(give_up_at, gate.acquire_owned()).await
                else {
                    let busy = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "every pipeline to this primary is in flight and none came back",
                    );
                    return (plan, addr, Err(redis::RedisError::from(busy)));
                };
                let result = node.pipeline(&config, &pipe).await;
                (plan, addr, result)
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
                nodes.push(SlotOwner { addr });
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
    fn a_command_is_routed_by_its_first_key() {
        let get = redis::cmd("GET").arg("{user1000}.x").clone();
        assert_eq!(slot_of(&get), key_slot(b"user1000"));
        let call = redis::cmd("fcall")
            .arg("icaze_note")
            .arg(1)
            .arg("icaze:{AZE1}:s")
            .arg("v")
            .clone();
        assert_eq!(slot_of(&call), key_slot(b"AZE1"));
        assert_eq!(slot_of(&redis::cmd("PING")), key_slot(b""));
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
        // Node c's range starts at 10923.
        assert_eq!((map.owner[10922], map.owner[10923]), (1, 2));
        assert_eq!(map.owner[0], 0);
        assert_eq!(map.owner[16383], 2);
        assert!(parse_cluster_slots(&Value::Nil).is_none());
    }
}
