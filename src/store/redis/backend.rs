//! How the store reaches Redis: one standalone server, or a cluster (see `cluster`); loading
//! the function library, checking `WAITAOF`, health, and one attempt at a batch.

use super::LIBRARY;
use super::batch::{AskOutcome, Pending, Repairs};
use super::cluster::ClusterBackend;
use super::error::RedisError;
use super::options::{RedisOptions, WaitAof};
use super::pipeline::{Plan, outcomes, pipeline, recoverable};
use redis::Value;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// How long a cluster primary is unreachable before its asks fail at once (see
/// [`Backend::away_long`]).
pub(super) const AWAY_FOR: Duration = Duration::from_secs(1);

/// How long a connection attempt may take before it counts as failed.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a pipeline may wait for its replies (plus the `WAITAOF` timeout) before the
/// connection is considered broken; a partitioned server sends no reset, so this is what
/// notices it.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How the store reaches Redis.
pub(super) enum Backend {
    Single(SingleBackend),
    Cluster(Box<ClusterBackend>),
}

impl Backend {
    /// The nodes, for logs and errors.
    pub(super) fn label(&self) -> String {
        match self {
            Backend::Single(b) => b.node.clone(),
            Backend::Cluster(b) => b.seeds.clone(),
        }
    }

    /// Runs `cmd` on the server, or on every primary of a cluster: the node that failed
    /// first (or the nodes, for logs) and the result.
    async fn on_every_primary(&self, cmd: &redis::Cmd) -> (String, redis::RedisResult<Value>) {
        match self {
            Backend::Single(b) => (b.node.clone(), b.command(cmd).await),
            Backend::Cluster(b) => match b.on_every_primary(cmd).await {
                Ok(()) => (b.seeds.clone(), Ok(Value::Okay)),
                Err((node, error)) => (node, Err(error)),
            },
        }
    }

    /// Loads [`LIBRARY`] on every primary.
    pub(super) async fn load_library(&self) -> Result<(), RedisError> {
        let mut cmd = redis::cmd("FUNCTION");
        cmd.arg("LOAD").arg("REPLACE").arg(LIBRARY);
        let (node, result) = self.on_every_primary(&cmd).await;
        match result {
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
    pub(super) async fn probe_waitaof(&self, wait: WaitAof) -> Result<(), RedisError> {
        if wait.received_only {
            // `WAIT` is in every Redis.
            return Ok(());
        }
        let mut cmd = redis::cmd("WAITAOF");
        cmd.arg(wait.local).arg(0).arg(100);
        let (node, result) = self.on_every_primary(&cmd).await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if error.is_io_error() => Err(RedisError::Unreachable {
                nodes: node,
                source: Arc::new(error),
            }),
            Err(error) => {
                let detail = error.detail().unwrap_or_default().to_string();
                let reason = if detail.contains("unknown command") {
                    "the server has no WAITAOF command (it needs Redis or Valkey 7.2 or later); \
                     upgrade it or unset waitaof"
                        .to_string()
                } else {
                    error.to_string()
                };
                Err(RedisError::WaitAofUnsupported { node, reason })
            }
        }
    }

    pub(super) async fn ping(&self) -> Result<(), RedisError> {
        let cmd = redis::cmd("PING");
        let (node, result) = self.on_every_primary(&cmd).await;
        match result {
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
    /// outcome for each, handed to `on` as (index, outcome) as soon as its pipeline
    /// answered; `repairs` says what to fix before another attempt. `place` is the
    /// attempt's place among the pipelines in flight (a cluster may give it up early).
    pub(super) async fn attempt(
        &self,
        pending: &[Pending],
        todo: &[usize],
        waitaof: Option<WaitAof>,
        repairs: &mut Repairs,
        place: &mut Option<OwnedSemaphorePermit>,
        on: &mut (dyn FnMut(usize, AskOutcome) + Send),
    ) {
        match self {
            Backend::Single(b) => {
                let plan = Plan::chunked(todo);
                let pipe = pipeline(pending, &plan, waitaof);
                let result = b.conn().req_packed_commands(&pipe, 0, pipe.len()).await;
                for (i, outcome) in outcomes(pending, &plan, &b.node, result, waitaof, repairs) {
                    on(i, outcome);
                }
            }
            Backend::Cluster(b) => b.attempt(pending, todo, waitaof, repairs, place, on).await,
        }
    }

    /// Whether asks failing on `node` should stop being retried before their `retry_for`:
    /// a cluster primary unreachable for [`AWAY_FOR`] or longer (killed, or partitioned
    /// until its replica takes over). Its asks are then answered "try again" at their first
    /// failed attempt instead of each waiting `retry_for`: waiting MOs fill the operators'
    /// windows, and the healthy primaries' MOs could not be sent either (at 10,000 MO/s a
    /// quarter of the MOs waiting 5 s filled 12 windows of 1,024). A standalone Redis has no
    /// healthy part to protect: its asks wait `retry_for`, for a restart to end.
    pub(super) fn away_long(&self, node: &str) -> bool {
        match self {
            Backend::Single(_) => false,
            Backend::Cluster(b) => b.away_for(node).is_some_and(|d| d >= AWAY_FOR),
        }
    }

    /// Makes what an attempt found broken work again, as far as the store can.
    pub(super) async fn repair(&self, repairs: Repairs) {
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

/// A standalone Redis through [`RedisOptions::pipelines_in_flight`] multiplexed
/// connections that reconnect by themselves.
pub(super) struct SingleBackend {
    conns: Vec<ConnectionManager>,
    next: AtomicUsize,
    /// host:port, without credentials.
    pub(super) node: String,
}

impl SingleBackend {
    /// The next connection, round robin, so pipelines in flight use different ones.
    pub(super) fn conn(&self) -> ConnectionManager {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.conns[n % self.conns.len()].clone()
    }

    /// Runs one command; a server error in its reply is an error.
    pub(super) async fn command(&self, cmd: &redis::Cmd) -> redis::RedisResult<Value> {
        self.conn()
            .req_packed_command(cmd)
            .await
            .and_then(|v| v.extract_error())
    }

    pub(super) async fn connect(options: &RedisOptions) -> Result<SingleBackend, RedisError> {
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
