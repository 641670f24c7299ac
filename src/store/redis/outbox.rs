//! The outbox on Redis: the replies a node owes, one hash per node
//! (`icaze:outbox:{NODE}`, field = reply id, value = [`crate::store::outbox::encode_body`]),
//! written after Redis decided the batch's grants and before its MOs are acknowledged,
//! settled (`HDEL`) in the background once delivered, and read back when the node starts
//! again with the same `[smpp] node_id`.

use super::pipeline::KEY_PREFIX;
use super::{RedisError, RedisStore};
use crate::store::outbox::{OwedReply, decode_body, encode_body};
use redis::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// The hash of the replies node `node` owes (its own slot in a cluster).
pub(super) fn outbox_key(node: u16) -> String {
    format!("{KEY_PREFIX}outbox:{{{node}}}")
}

/// How long the outbox is asked for at start before the node gives up (and exits).
const OWED_READ_FOR: std::time::Duration = std::time::Duration::from_secs(15);

/// How long a batch waits for its replies to be written to the outbox (see
/// [`RedisStore::owe`]).
const OWE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Settlements sent to Redis at most this many at a time.
const SETTLE_BATCH: usize = 4096;

/// Settlements Redis could not take yet (it is away), kept to be sent again: at most this
/// many (8 bytes each). Past it the oldest are let go, and their replies stay owed: they
/// go out once more after a restart (at least once, never lost).
const UNSETTLED_LIMIT: usize = 1 << 20;

/// First pause before settlements that failed are sent again; it doubles up to
/// [`RETRY_MAX`].
const RETRY_MIN: std::time::Duration = std::time::Duration::from_millis(50);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes settlements as they come, batched per node. A failed `HDEL` (Redis away) is kept
/// and sent again with backoff until Redis takes it, so a reply delivered during an outage
/// is not delivered once more at the next start; logged once per outage.
pub(super) async fn settle_loop(
    backend: Arc<super::Backend>,
    mut settled: mpsc::UnboundedReceiver<(u16, u64)>,
    owed: Arc<AtomicU64>,
) {
    let mut batch = Vec::with_capacity(SETTLE_BATCH);
    let mut unsettled: BTreeMap<u16, Vec<u64>> = BTreeMap::new();
    let mut held = 0usize;
    let mut pause = RETRY_MIN;
    let mut failing = false;
    loop {
        if held == 0 {
            if settled.recv_many(&mut batch, SETTLE_BATCH).await == 0 {
                return;
            }
        } else {
            // Redis was away: new settlements as they come, and the held ones again after
            // the pause (together, so one HDEL per node carries both).
            tokio::select! {
                n = settled.recv_many(&mut batch, SETTLE_BATCH) => if n == 0 {
                    tokio::time::sleep(pause).await;
                },
                _ = tokio::time::sleep(pause) => {}
            }
        }
        for (node, id) in batch.drain(..) {
            unsettled.entry(node).or_default().push(id);
            held += 1;
        }
        let mut failed = None;
        for (&node, ids) in unsettled.iter_mut() {
            while !ids.is_empty() {
                let n = ids.len().min(SETTLE_BATCH);
                let mut del = redis::cmd("HDEL");
                del.arg(outbox_key(node)).arg(&ids[..n]);
                match backend.command("HDEL of settled replies", del).await {
                    Ok(reply) => {
                        if let Value::Int(n) = reply {
                            let n = n.max(0) as u64;
                            let _ = owed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                                Some(o.saturating_sub(n))
                            });
                        }
                        ids.drain(..n);
                        held -= n;
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        unsettled.retain(|_, ids| !ids.is_empty());
        match failed {
            None => {
                if failing {
                    tracing::info!("redis: settled replies are marked again");
                }
                failing = false;
                pause = RETRY_MIN;
            }
            Some(e) => {
                if !failing {
                    tracing::warn!(error = %e, replies = held,
                        "redis: settled replies could not be marked; kept and sent again until Redis takes them");
                }
                failing = true;
                pause = (pause * 2).min(RETRY_MAX);
                if held > UNSETTLED_LIMIT {
                    let mut over = held - UNSETTLED_LIMIT;
                    tracing::warn!(
                        replies = over,
                        "redis: too many settlements held while Redis is away; the oldest let go (their replies go out once more after a restart)"
                    );
                    for ids in unsettled.values_mut() {
                        let k = over.min(ids.len());
                        ids.drain(..k);
                        held -= k;
                        over -= k;
                    }
                    unsettled.retain(|_, ids| !ids.is_empty());
                }
            }
        }
    }
}

impl RedisStore {
    /// Makes `replies` owed by node `node` durable (as durable as the server's
    /// `appendfsync` makes a write).
    pub async fn owe(&self, node: u16, replies: &[&OwedReply]) -> Result<(), RedisError> {
        if replies.is_empty() {
            return Ok(());
        }
        let mut set = redis::cmd("HSET");
        set.arg(outbox_key(node));
        let mut body = Vec::new();
        for r in replies {
            body.clear();
            encode_body(&mut body, r);
            set.arg(r.id).arg(&body[..]);
        }
        // Waited for only so long: when the outbox's primary is away (hung, failing over),
        // every batch of this node would wait on it, for whatever primary its own asks went
        // to. The gateway then keeps the replies in memory, as for an outbox that failed.
        let added = tokio::time::timeout(
            OWE_WAIT,
            self.inner.backend.command("HSET of replies owed", set),
        )
        .await
        .map_err(|_| RedisError::Unavailable {
            node: format!("the primary of {}", outbox_key(node)),
            waited: OWE_WAIT,
            attempts: 1,
            source: Arc::new(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the outbox write was not answered in time",
            ))),
        })??;
        if let Value::Int(n) = added {
            self.inner
                .owed
                .fetch_add(n.max(0) as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Replies this node's outbox holds, as far as this node wrote and removed them
    /// since it started.
    pub fn owed_now(&self) -> u64 {
        self.inner.owed.load(Ordering::Relaxed)
    }

    /// Node `node` no longer owes reply `id`: removed in the background.
    pub fn settle(&self, node: u16, id: u64) {
        let _ = self.inner.settled.send((node, id));
    }

    /// Every reply node `node` owes, oldest first. Asked at start, when a cluster that has
    /// just formed (or is failing over) may still redirect the question (`MOVED`) or not
    /// answer: asked again, with the slot map reloaded, for up to 15 s.
    pub async fn owed(&self, node: u16) -> Result<Vec<OwedReply>, RedisError> {
        let mut all = redis::cmd("HGETALL");
        all.arg(outbox_key(node));
        let backend = &self.inner.backend;
        let started = tokio::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(50);
        let reply = loop {
            match backend
                .command("HGETALL of replies owed", all.clone())
                .await
            {
                Ok(reply) => break reply,
                Err(error) if started.elapsed() < OWED_READ_FOR => {
                    tracing::warn!(%error, "redis: reading the replies owed failed; asking again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(1));
                    backend
                        .repair(super::batch::Repairs {
                            reload_library: false,
                            refresh_slots: true,
                        })
                        .await;
                }
                Err(error) => return Err(error),
            }
        };
        let mut owed = Vec::new();
        let fields: Vec<&Value> = match &reply {
            Value::Array(items) => items.iter().collect(),
            Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
            other => return Err(self.unexpected("HGETALL of replies owed", other)),
        };
        for pair in fields.chunks(2) {
            if let [_, Value::BulkString(body)] = pair {
                match decode_body(body) {
                    Some(r) => owed.push(r),
                    None => tracing::warn!("redis: an unreadable reply in the outbox was skipped"),
                }
            }
        }
        owed.sort_unstable_by_key(|r| r.id);
        self.inner
            .owed
            .fetch_add(owed.len() as u64, Ordering::Relaxed);
        Ok(owed)
    }
}
