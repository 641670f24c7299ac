//! The run-time blocklist: `PUT` and `DELETE /v1/blocklist/{document}`, `GET
//! /v1/blocklist`. Blocks set here are durable in the store (journal `blocks.log`, Redis
//! `icaze:blocks`), in force for the next SMS (with Redis, on every node within a second),
//! and apply on top of the rules file's blocklist, which is listed too but changed only in
//! the file.

use super::auth::{Role, authorize, read_allowed};
use super::error::ApiError;
use super::permits::parse_document;
use super::{AdminState, Peer};
use crate::permit::engine::blocks::Block;
use crate::permit::rules::{CodeSet, Rules};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The body of a block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    /// The codes refused; all when absent.
    codes: Option<Vec<u8>>,
    /// Why (required).
    reason: String,
    /// When the block ends, RFC 3339; never when absent.
    until: Option<String>,
}

fn codes_json(rules: &Rules, codes: CodeSet) -> Value {
    if codes == CodeSet::ALL {
        return json!("all");
    }
    let listed: Vec<u8> = rules
        .codes()
        .map(|c| c.code)
        .filter(|&c| codes.contains(c))
        .collect();
    json!(listed)
}

fn entry(rules: &Rules, document: crate::permit::document::Document, b: &Block, now: i64) -> Value {
    let calendar = &rules.calendar;
    json!({
        "document": rules.document_display(document),
        "codes": codes_json(rules, b.codes),
        "reason": b.reason,
        "since": calendar.rfc3339(b.at),
        "until": b.until.map(|u| calendar.rfc3339(u)),
        "in_force": b.until.is_none_or(|u| now < u),
        "source": "api",
    })
}

/// Every block in force or set: the rules file's and the API's.
pub async fn list(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read_allowed(&state, peer)?;
    authorize(&state, &headers, peer, Role::Official)?;
    let rules = state.gateway.rules();
    let now = state.gateway.clock.now().timestamp();
    let mut from_file: Vec<_> = rules.blocklist().collect();
    from_file.sort_by_key(|(d, _)| *d);
    let mut entries: Vec<Value> = from_file
        .into_iter()
        .map(|(d, codes)| {
            json!({
                "document": rules.document_display(d),
                "codes": codes_json(&rules, codes),
                "source": "rules",
                "in_force": true,
            })
        })
        .collect();
    entries.extend(
        state
            .gateway
            .engine
            .blocks()
            .list()
            .iter()
            .map(|(d, b)| entry(&rules, *d, b, now)),
    );
    Ok(Json(json!({"entries": entries})))
}

/// Blocks a document for some codes or all, with a reason and an optional expiry.
pub async fn put(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Path(document): Path<String>,
    body: Result<Json<BlockBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&state, &headers, peer, Role::Official)?;
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(
            "body",
            format!(
                "expected {{\"reason\": \"...\", \"codes\": [3], \"until\": \"RFC 3339\"}}: {e}"
            ),
        )
    })?;
    let rules = state.gateway.rules();
    let document = parse_document(&rules, &document)?;
    let unprocessable =
        |key, message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, key, message);
    let reason = body.reason.trim();
    if reason.is_empty() || reason.len() > crate::store::journal::REASON_BYTES {
        return Err(unprocessable(
            "reason",
            format!(
                "a block needs a reason of 1 to {} bytes",
                crate::store::journal::REASON_BYTES
            ),
        ));
    }
    let codes = match &body.codes {
        None => CodeSet::ALL,
        Some(list) if list.is_empty() => {
            return Err(unprocessable(
                "codes",
                "give some codes, or leave codes out for all".into(),
            ));
        }
        Some(list) => {
            let mut set = CodeSet::default();
            for &c in list {
                if rules.code(c).is_none() {
                    return Err(unprocessable(
                        "codes",
                        format!("code {c} is not in the rules"),
                    ));
                }
                set.insert(c);
            }
            set
        }
    };
    let now = state.gateway.clock.now().timestamp();
    let until = match &body.until {
        None => None,
        Some(text) => {
            let t = chrono::DateTime::parse_from_rfc3339(text.trim())
                .map_err(|_| {
                    unprocessable(
                        "until",
                        format!("{text:?} is not an RFC 3339 time like 2020-04-20T00:00:00+04:00"),
                    )
                })?
                .timestamp();
            if t <= now {
                return Err(unprocessable(
                    "until",
                    "the block would already be over".into(),
                ));
            }
            Some(t)
        }
    };
    let block = Block {
        codes,
        reason: reason.to_string(),
        at: now,
        until,
    };
    state
        .gateway
        .store
        .block(document, Some(&block), now)
        .await
        .map_err(|e| ApiError::store(&e))?;
    state
        .gateway
        .engine
        .blocks()
        .set(document, Some(block.clone()));
    tracing::info!(%peer, %who, document = %document.masked(), reason, "admin: document blocked");
    Ok(Json(entry(&rules, document, &block, now)))
}

/// Lifts a document's run-time block.
pub async fn delete(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Path(document): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&state, &headers, peer, Role::Official)?;
    let rules = state.gateway.rules();
    let document = parse_document(&rules, &document)?;
    let blocks = state.gateway.engine.blocks();
    if blocks.get(document).is_none() {
        if rules.blocklist().any(|(d, _)| d == document) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "rules_file",
                "this document is blocked by the rules file: change it there (PUT /v1/rules)",
            ));
        }
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_blocked",
            "this document has no block set through the API",
        ));
    }
    let now = state.gateway.clock.now().timestamp();
    state
        .gateway
        .store
        .block(document, None, now)
        .await
        .map_err(|e| ApiError::store(&e))?;
    blocks.set(document, None);
    tracing::info!(%peer, %who, document = %document.masked(), "admin: document unblocked");
    Ok(Json(
        json!({"document": rules.document_display(document), "removed": true}),
    ))
}
