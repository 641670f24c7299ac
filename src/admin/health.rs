//! `GET /healthz` (the process answers) and `GET /readyz` (it can serve citizens: the SMPP
//! listener is bound, the store takes writes, rules are loaded).

use super::AdminState;
use super::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long readiness waits for the store's answer.
const STORE_CHECK: Duration = Duration::from_secs(2);

/// Alive: the process runs and answers HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "alive"}))
}

/// The store's kind and whether it takes writes now (waiting at most 2 s for it), with
/// what is wrong if not.
pub async fn store_state(gateway: &crate::gateway::Gateway) -> (&'static str, Result<(), String>) {
    let kind = gateway.store.kind();
    let state = match tokio::time::timeout(STORE_CHECK, gateway.store.check()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {STORE_CHECK:?}")),
    };
    (kind, state)
}

/// Ready, or 503 naming every check that failed.
pub async fn readyz(State(state): State<Arc<AdminState>>) -> Result<Json<Value>, ApiError> {
    let gateway = &state.gateway;
    let mut failed = Vec::new();
    let smpp = if state.shutdown.is_cancelled() {
        failed.push("smpp: draining for shutdown".to_string());
        "draining"
    } else if gateway.smpp_listening.load(Ordering::Acquire) {
        "listening"
    } else {
        failed.push("smpp: listener not bound".to_string());
        "not bound"
    };
    let (kind, store) = store_state(gateway).await;
    let store = match store {
        Ok(()) => "ok".to_string(),
        Err(e) => {
            failed.push(format!("store ({kind}): {e}"));
            e
        }
    };
    let rules = gateway.rules_info();
    let checks = json!({
        "smpp": smpp,
        "store": {"kind": kind, "state": store},
        "rules": {"version": rules.version, "codes": gateway.rules().codes().count()},
    });
    if failed.is_empty() {
        return Ok(Json(json!({"status": "ready", "checks": checks})));
    }
    let mut error = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        format!("not ready: {}", failed.join("; ")),
    );
    error.details = Some(json!({"checks": checks}));
    Err(error)
}
