//! `GET /v1/now` (official): what the person on call looks at, in one answer the console
//! polls every few seconds. The last ten minutes second by second (MOs per second, reply
//! time p50/p99: [`super::history`]), today's figures (as `GET /v1/stats`), binds per
//! operator and connector, reply queue depths, the store's health and the rules version.

use super::super::auth::{Role, authorize, read_allowed};
use super::super::error::ApiError;
use super::super::{AdminState, Peer};
use crate::gateway::OperatorState;
use crate::telemetry::metrics::BIND_KINDS;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn binds(op: &OperatorState) -> Value {
    let by_kind: Map<String, Value> = BIND_KINDS
        .iter()
        .zip(&op.metrics.binds)
        .map(|(kind, gauge)| (kind.to_string(), json!(gauge.get())))
        .collect();
    Value::Object(by_kind)
}

fn queue(op: &OperatorState) -> Value {
    json!({"depth": op.queue.len(), "capacity": op.config.queue})
}

/// The console's picture of now.
pub async fn get(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read_allowed(&state, peer)?;
    authorize(&state, &headers, peer, Role::Official)?;
    let gateway = &state.gateway;
    let rules = gateway.rules();
    let now = gateway.clock.now().timestamp();
    let today = super::super::stats::day(&state, rules.calendar.moment(now).day_start).await?;

    let seconds = state.history.seconds();
    let history = json!({
        "at": seconds.iter().map(|s| s.at).collect::<Vec<_>>(),
        "mos_per_s": seconds.iter().map(|s| s.mos_per_s).collect::<Vec<_>>(),
        "replies": seconds.iter().map(|s| s.replies).collect::<Vec<_>>(),
        "reply_p50_ms": seconds.iter().map(|s| s.p50_ms).collect::<Vec<_>>(),
        "reply_p99_ms": seconds.iter().map(|s| s.p99_ms).collect::<Vec<_>>(),
    });

    let mut operators: Vec<_> = gateway.operators.values().collect();
    operators.sort_by(|a, b| a.config.system_id.cmp(&b.config.system_id));
    let operators: Vec<Value> = operators
        .into_iter()
        .map(|op| {
            json!({
                "operator": op.config.system_id,
                "binds": binds(op),
                "queue": queue(op),
            })
        })
        .collect();
    let connectors: Vec<Value> = gateway
        .connectors
        .iter()
        .map(|(c, op)| {
            let up = op.binds.load(Ordering::Acquire);
            let state = match up {
                0 => "down",
                n if n >= c.binds => "up",
                _ => "partly up",
            };
            json!({
                "connector": c.name,
                "state": state,
                "binds_up": up,
                "binds_wanted": c.binds,
                "binds": binds(op),
                "queue": queue(op),
            })
        })
        .collect();

    let (kind, store) = super::super::health::store_state(gateway).await;
    let info = gateway.rules_info();
    Ok(Json(json!({
        "at": rules.calendar.rfc3339(now),
        "history": history,
        "today": today,
        "operators": operators,
        "connectors": connectors,
        "smpp": if gateway.smpp_listening.load(Ordering::Acquire) { "listening" } else { "not bound" },
        "store": {"kind": kind, "ok": store.is_ok(), "error": store.err()},
        "rules": {
            "version": info.version,
            "loaded_at": rules.calendar.rfc3339(info.loaded_at),
        },
    })))
}
