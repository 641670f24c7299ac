//! [`RedisError`]: why the Redis store could not connect or decide, and whether a retry can
//! help.

use std::sync::Arc;
use std::time::Duration;

/// Why the Redis store could not connect or decide.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisError {
    /// The options cannot work (no node, a URL that does not parse, a zero batch).
    #[error("redis: bad options: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// No connection could be made at [`RedisStore::connect`](super::RedisStore::connect):
    /// Redis is down or not reachable from here. Retrying later can help.
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
    /// [`RedisOptions::retry_for`](super::RedisOptions::retry_for) ran out. The grants are in
    /// Redis's memory but not confirmed durable, so they are not acknowledged; a retry finds
    /// them.
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
    /// [`RedisOptions::waitaof`](super::RedisOptions::waitaof) is set but a primary cannot run
    /// `WAITAOF` (Redis before 7.2, or `appendonly no` with `local` > 0).
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

#[cfg(test)]
mod tests {
    use super::*;

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
