//! With Redis, every node follows the stream of revocations, so a permit revoked through
//! any node's admin API is refused on this node's next repeat SMS too (within
//! [`FOLLOW_EVERY`]): the grant is recorded in the engine if it did not know it, and marked
//! revoked in its permit book, where the decision path looks. The run-time blocklist
//! (`icaze:blocks`) is read whole at the same pace and replaces the engine's.

use crate::gateway::Gateway;
use crate::permit::decision::{Outcome, Validity};
use crate::permit::engine::permits::Revocation;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the stream is read.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// Follows the revocations stream until `shutdown`; returns at once for other stores.
pub async fn follow_revocations(gateway: Arc<Gateway>, shutdown: CancellationToken) {
    let (Store::Redis(redis), Some(permits)) = (&gateway.store, gateway.engine.permits()) else {
        return;
    };
    let mut cursor = "0".to_string();
    let mut failing = false;
    let mut tick = tokio::time::interval(FOLLOW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match redis.blocks().await {
            Ok(all) => gateway.engine.blocks().replace(all),
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "redis: cannot read the blocklist; retrying");
                }
                failing = true;
                continue;
            }
        }
        let (next, list) = match redis.revocations_after(&cursor).await {
            Ok(found) => found,
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "redis: cannot read the revocations stream; retrying");
                }
                failing = true;
                continue;
            }
        };
        failing = false;
        cursor = next;
        let rules = gateway.rules();
        let now = gateway.clock.now().timestamp();
        let moment = rules.calendar.moment(now);
        for r in list {
            let g = r.grant;
            let validity = Validity {
                from: g.from,
                until: g.until,
            };
            if g.until > now
                && gateway
                    .engine
                    .peek_at(&rules, g.code, g.document, &moment)
                    .outcome
                    != Outcome::Active(validity)
            {
                gateway
                    .engine
                    .record_grant(&rules, g.code, g.document, validity);
            }
            permits.record(g.document, g.code, validity);
            permits.revoke(
                r.id,
                Revocation {
                    reason: r.reason,
                    at: r.at,
                },
            );
        }
    }
}
