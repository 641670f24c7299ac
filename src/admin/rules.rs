//! `GET /v1/rules`, `PUT /v1/rules` and `POST /v1/rules/reload`: the rules in force, a new
//! rules file validated like `check-config` and swapped in without a restart, or the file
//! re-read as SIGHUP does.

use super::auth::{Role, authorize, read_allowed};
use super::error::ApiError;
use super::{AdminState, Peer};
use crate::config::ConfigErrors;
use crate::gateway::RulesInfo;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

/// A rules file larger than this is refused before it is parsed.
pub const MAX_RULES_BYTES: usize = 1 << 20;

fn info_json(state: &AdminState, info: &RulesInfo) -> Value {
    let calendar = &state.gateway.rules().calendar;
    json!({
        "version": info.version,
        "loaded_at": calendar.rfc3339(info.loaded_at),
        "path": info.path.display().to_string(),
    })
}

fn refused(errors: ConfigErrors) -> ApiError {
    let list: Vec<Value> = errors
        .0
        .iter()
        .map(|e| json!({"file": e.file.display().to_string(), "key": e.key, "message": e.message}))
        .collect();
    let mut error = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_rules",
        format!(
            "the rules file has {} error(s); nothing changed",
            list.len()
        ),
    );
    error.details = Some(json!({"errors": list}));
    error
}

/// The header of a `PUT` that names the version the new file was checked against: the
/// upload is refused (409 `rules_changed`) if another change came in between.
pub const BASE_HEADER: &str = "x-rules-base";

fn size_allowed(body: &str) -> Result<(), ApiError> {
    if body.len() > MAX_RULES_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a rules file is at most {MAX_RULES_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Validates a rules file and changes nothing: every error by file and key (422, as
/// `PUT` would answer), or the version the file would have and its difference from the
/// rules in force, line by line, for the official to confirm.
pub async fn check(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: String,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, peer, Role::Official)?;
    size_allowed(&body)?;
    let path = state.gateway.config.rules_path.clone();
    let (body, checked) = tokio::task::spawn_blocking(move || {
        let checked = crate::config::rules_from_text(&path, &body).map(|_| ());
        (body, checked)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the check did not finish: {e}"),
        )
    })?;
    checked.map_err(refused)?;
    let in_force = state.gateway.rules_info();
    let version = RulesInfo::new(&in_force.path, body.clone(), 0).version;
    Ok(Json(json!({
        "valid": true,
        "version": version,
        "in_force": in_force.version,
        "changed": version != in_force.version,
        "diff": super::console::diff::lines(&in_force.text, &body),
    })))
}

/// The rules in force: version, when and where loaded, and the file's text.
pub async fn get(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read_allowed(&state, peer)?;
    authorize(&state, &headers, peer, Role::Official)?;
    let info = state.gateway.rules_info();
    let mut body = info_json(&state, &info);
    body["text"] = Value::String(info.text.clone());
    Ok(Json(body))
}

/// Replaces the rules file with the request body and swaps the new rules in.
pub async fn put(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: String,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&state, &headers, peer, Role::Official)?;
    size_allowed(&body)?;
    if let Some(base) = headers.get(BASE_HEADER).and_then(|v| v.to_str().ok()) {
        let in_force = state.gateway.rules_info().version.clone();
        if base != in_force {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "rules_changed",
                format!(
                    "the rules changed since they were checked (now {in_force}, checked against {base}); check again"
                ),
            ));
        }
    }
    let gateway = state.gateway.clone();
    let result = tokio::task::spawn_blocking(move || gateway.replace_rules(body)).await;
    let info = match result {
        Ok(Ok(info)) => info,
        Ok(Err(errors)) => {
            tracing::warn!(%peer, %who, errors = errors.0.len(), "admin: rules upload refused, old rules stay");
            return Err(refused(errors));
        }
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the rules change did not finish: {e}"),
            ));
        }
    };
    tracing::info!(%peer, %who, version = %info.version, file = %info.path.display(), "admin: rules replaced");
    super::follow::publish_rules(&state.gateway).await;
    Ok(Json(info_json(&state, &info)))
}

/// Re-reads the rules file, as SIGHUP does.
pub async fn reload(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&state, &headers, peer, Role::Official)?;
    let gateway = state.gateway.clone();
    match tokio::task::spawn_blocking(move || gateway.reload_rules()).await {
        Ok(Ok(info)) => {
            tracing::info!(%peer, %who, version = %info.version, "admin: rules reloaded");
            super::follow::publish_rules(&state.gateway).await;
            Ok(Json(info_json(&state, &info)))
        }
        Ok(Err(errors)) => {
            tracing::warn!(%peer, %who, "admin: rules reload refused, old rules stay:\n{errors}");
            Err(refused(errors))
        }
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the reload did not finish: {e}"),
        )),
    }
}
