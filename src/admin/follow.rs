//! With Redis, every node follows the stream of revocations, so a permit revoked through
//! any node's admin API is refused on this node's next repeat SMS too (within
//! [`FOLLOW_EVERY`]): the grant is recorded in the engine if it did not know it, and marked
//! revoked in its permit book, where the decision path looks. The run-time blocklist
//! (`icaze:blocks`) is read whole at the same pace and replaces the engine's, and a rules
//! file published by another node (`icaze:rules`, see [`publish_rules`]) is written here
//! and swapped in once its version changes. This node's figures (`gateway/stats.rs`) are
//! added to the sums in `icaze:stats:{date}` at the same pace.

use crate::gateway::Gateway;
use crate::permit::decision::{Outcome, Validity};
use crate::permit::engine::permits::Revocation;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Publishes this node's rules for the others (with Redis; a no-op otherwise), after a
/// `PUT /v1/rules`, a reload or SIGHUP.
pub async fn publish_rules(gateway: &Gateway) {
    if let Store::Redis(redis) = &gateway.store {
        let info = gateway.rules_info();
        if let Err(error) = redis.publish_rules(&info.version, &info.text).await {
            tracing::error!(%error, version = %info.version, "rules: could not publish the new rules to the other nodes");
        }
    }
}

/// How often the stream is read.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// Follows the revocations stream until `shutdown`; returns at once for other stores.
pub async fn follow_revocations(gateway: Arc<Gateway>, shutdown: CancellationToken) {
    let (Store::Redis(redis), Some(permits)) = (&gateway.store, gateway.engine.permits()) else {
        return;
    };
    let mut cursor = "0".to_string();
    let mut failing = false;
    // Rules published before this node started are not forced on it; a later change is.
    let mut rules_seen = redis.rules_version().await.ok().flatten();
    if let Some(v) = &rules_seen
        && *v != gateway.rules_info().version
    {
        tracing::warn!(
            published = %v,
            local = %gateway.rules_info().version,
            "rules: this node's rules file differs from the version last published through Redis; \
             it keeps its own until the next change"
        );
    }
    let mut tick = tokio::time::interval(FOLLOW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                flush_stats(&gateway, redis).await;
                return;
            }
            _ = tick.tick() => {}
        }
        flush_stats(&gateway, redis).await;
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
        follow_rules(&gateway, redis, &mut rules_seen).await;
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
            permits.record(g.document, g.code, validity, g.phone);
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

/// The local date (YYYY-MM-DD) of a calendar day number (days since 1970-01-01).
pub fn date_of_day(day: i32) -> String {
    chrono::NaiveDate::from_num_days_from_ce_opt(day.saturating_add(719_163))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Adds what this node counted since the last flush to the sums in Redis; on failure the
/// figures are kept for the next try.
async fn flush_stats(gateway: &Gateway, redis: &crate::store::redis::RedisStore) {
    let deltas = gateway.stats.take_deltas();
    for (i, delta) in deltas.iter().enumerate() {
        if let Err(error) = redis.add_stats(&date_of_day(delta.day), delta).await {
            tracing::warn!(%error, "redis: could not add this node's figures; kept for the next try");
            gateway.stats.restore(deltas[i..].to_vec());
            return;
        }
    }
}

/// Takes in a rules file another node published, once its version changes.
async fn follow_rules(
    gateway: &Arc<Gateway>,
    redis: &crate::store::redis::RedisStore,
    seen: &mut Option<String>,
) {
    let Ok(Some(version)) = redis.rules_version().await else {
        return;
    };
    if seen.as_deref() == Some(version.as_str()) {
        return;
    }
    *seen = Some(version.clone());
    if gateway.rules_info().version == version {
        return;
    }
    let Ok(Some((_, text))) = redis.rules().await else {
        return;
    };
    let g = gateway.clone();
    match tokio::task::spawn_blocking(move || g.replace_rules(text)).await {
        Ok(Ok(info)) => {
            tracing::info!(version = %info.version, file = %info.path.display(), "rules: took in the rules another node published")
        }
        Ok(Err(errors)) => {
            tracing::error!(%version, "rules: the published rules are invalid here, old rules stay:\n{errors}")
        }
        Err(e) => {
            tracing::error!(error = %e, "rules: taking in the published rules did not finish")
        }
    }
}
