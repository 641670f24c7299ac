//! Checkpoint verification and revocation: `GET /v1/permits/{permit_id}`,
//! `GET /v1/documents/{document}/permits` and `POST /v1/permits/{permit_id}/revoke`.
//!
//! Answers come from the engine's permit book (see [`crate::permit::engine::permits`]): one
//! lookup by id, whatever the day's volume. A checkpoint sees the document with all but its
//! last three digits hidden; with `?document=` it learns whether the permit is that person's
//! without the API printing the number.

use super::auth::{Role, authorize, read_allowed};
use super::error::ApiError;
use super::{AdminState, Peer};
use crate::permit::decision::Validity;
use crate::permit::document::Document;
use crate::permit::engine::permits::{Issued, Permits, Revocation};
use crate::permit::id::PermitId;
use crate::permit::rules::Rules;
use crate::store::GrantRecord;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// `?document=` of a verification.
#[derive(Debug, Deserialize)]
pub struct VerifyQuery {
    document: Option<String>,
}

/// The body of a revocation.
#[derive(Debug, Deserialize)]
pub struct RevokeBody {
    reason: String,
}

/// A document as a checkpoint may see it: series, then all but the last three digits
/// hidden (`AZE *****111`).
pub fn masked(rules: &Rules, document: Document) -> String {
    let digits = document.number_string();
    let keep = digits.len().min(3);
    format!(
        "{} {}{}",
        rules.series_display(document),
        "*".repeat(digits.len() - keep),
        &digits[digits.len() - keep..]
    )
}

/// Reads a document in any spelling a citizen's SMS may use (`aze 1111 1111`, Cyrillic
/// look-alikes, the dotless i), with the same normalisation as the SMS parser.
pub fn parse_document(rules: &Rules, text: &str) -> Result<Document, ApiError> {
    let code = rules
        .codes()
        .next()
        .map(|c| c.code)
        .ok_or_else(|| ApiError::bad_request("document", "the rules define no code"))?;
    match crate::permit::answer::request_of(rules.parser().parse(&format!("{code} {text}"))) {
        Ok(request) => Ok(request.document),
        Err(crate::permit::answer::Verdict::Invalid(e)) => Err(ApiError::bad_request(
            "document",
            format!("{text:?} is not a document: {e}"),
        )),
        Err(_) => Err(ApiError::bad_request(
            "document",
            format!("{text:?} is not a document"),
        )),
    }
}

fn permit(permits: &Permits, rules: &Rules, p: &Issued, now: i64) -> Value {
    let calendar = &rules.calendar;
    let revocation = permits.revocation(p.id);
    let status = match (&revocation, p.validity) {
        (Some(_), _) => "revoked",
        (None, Validity { from, .. }) if now < from => "not_yet_valid",
        (None, Validity { until, .. }) if now >= until => "expired",
        (None, _) => "valid",
    };
    let mut body = json!({
        "status": status,
        "permit_id": p.id.to_string(),
        "code": p.code,
        "label": rules.code(p.code).map(|r| r.name.clone()),
        "window": format!(
            "{}\u{2013}{}",
            calendar.hh_mm(p.validity.from),
            calendar.hh_mm(p.validity.until)
        ),
        "valid_from": calendar.rfc3339(p.validity.from),
        "valid_until": calendar.rfc3339(p.validity.until),
        "issued_at": calendar.rfc3339(p.validity.from),
        "document": masked(rules, p.document),
    });
    if let Some(r) = revocation {
        body["revoked_at"] = Value::String(calendar.rfc3339(r.at));
        body["revocation_reason"] = Value::String(r.reason);
    }
    body
}

fn book(state: &AdminState) -> Result<&Permits, ApiError> {
    state.gateway.engine.permits().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_permit_book",
            "this gateway keeps no permit book",
        )
    })
}

/// The permit `id`, from this node's book or, with Redis, from the index every node writes
/// (then remembered here), with any revocation another node made marked in the book.
async fn find(
    state: &AdminState,
    permits: &Permits,
    id: PermitId,
) -> Result<Option<Issued>, ApiError> {
    let store = &state.gateway.store;
    if let Some(p) = permits.get(id) {
        if permits.revocation(id).is_none()
            && let Some((at, reason)) = store
                .revocation(id)
                .await
                .map_err(|e| ApiError::store(&e))?
        {
            permits.revoke(id, Revocation { reason, at });
        }
        return Ok(Some(p));
    }
    let Some((g, revocation)) = store.permit(id).await.map_err(|e| ApiError::store(&e))? else {
        return Ok(None);
    };
    let validity = Validity {
        from: g.from,
        until: g.until,
    };
    if permits.id_of(g.document, g.code, validity) != id {
        // Written under another permit key: not a permit of this deployment.
        return Ok(None);
    }
    permits.record(g.document, g.code, validity, g.phone);
    if let Some((at, reason)) = revocation {
        permits.revoke(id, Revocation { reason, at });
    }
    Ok(permits.get(id))
}

fn permit_id(text: &str) -> Result<PermitId, ApiError> {
    PermitId::parse(text).ok_or_else(|| {
        ApiError::bad_request(
            "permit_id",
            format!("{text:?} is not a permit id like K7QM-4RTX"),
        )
    })
}

fn rate_limited(state: &AdminState, peer: std::net::SocketAddr) -> Result<(), ApiError> {
    if state.verify_limit.take(peer.ip()) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many verifications from this address; try again in a moment",
    ))
}

/// Whether a permit id is real and valid now; with `?document=`, whether it is that
/// document's.
pub async fn verify(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<VerifyQuery>,
) -> Result<Json<Value>, ApiError> {
    read_allowed(&state, peer)?;
    authorize(&state, &headers, peer, Role::Checkpoint)?;
    rate_limited(&state, peer)?;
    let rules = state.gateway.rules();
    let id = permit_id(&id)?;
    let asked = match &query.document {
        Some(text) => Some(parse_document(&rules, text)?),
        None => None,
    };
    let permits = book(&state)?;
    let now = state.gateway.clock.now().timestamp();
    let mut body = match find(&state, permits, id).await? {
        Some(p) => {
            let mut body = permit(permits, &rules, &p, now);
            if let Some(d) = asked {
                body["document_matches"] = Value::Bool(d == p.document);
            }
            body
        }
        None => {
            let mut body = json!({"status": "unknown", "permit_id": id.to_string()});
            if asked.is_some() {
                body["document_matches"] = Value::Bool(false);
            }
            body
        }
    };
    body["checked_at"] = Value::String(rules.calendar.rfc3339(now));
    Ok(Json(body))
}

/// The permits of a document issued today and yesterday (Baku days), oldest first.
pub async fn of_document(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Path(document): Path<String>,
) -> Result<Json<Value>, ApiError> {
    read_allowed(&state, peer)?;
    authorize(&state, &headers, peer, Role::Checkpoint)?;
    rate_limited(&state, peer)?;
    let rules = state.gateway.rules();
    let document = parse_document(&rules, &document)?;
    let permits = book(&state)?;
    let now = state.gateway.clock.now().timestamp();
    let today = rules.calendar.moment(now).day_start;
    let yesterday = rules.calendar.moment(today - 1).day_start;
    let list: Vec<Value> = permits
        .of_document(document)
        .iter()
        .filter(|p| p.validity.from >= yesterday)
        .map(|p| permit(permits, &rules, p, now))
        .collect();
    Ok(Json(json!({
        "document": masked(&rules, document),
        "permits": list,
    })))
}

/// Revokes a permit: durable in the store before the answer, then verification says
/// revoked and the citizen's repeat SMS is answered `revoked`.
pub async fn revoke(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<RevokeBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let who = authorize(&state, &headers, peer, Role::Official)?;
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request("body", format!("expected {{\"reason\": \"...\"}}: {e}"))
    })?;
    let reason = body.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason",
            "a revocation needs a reason",
        ));
    }
    if reason.len() > crate::store::journal::REASON_BYTES {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason",
            format!(
                "a reason is at most {} bytes",
                crate::store::journal::REASON_BYTES
            ),
        ));
    }
    let id = permit_id(&id)?;
    let rules = state.gateway.rules();
    let permits = book(&state)?;
    let Some(p) = find(&state, permits, id).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_permit",
            format!("no permit {id} is known here"),
        ));
    };
    let now = state.gateway.clock.now().timestamp();
    if permits.revocation(id).is_none() {
        let grant = GrantRecord {
            document: p.document,
            code: p.code,
            from: p.validity.from,
            until: p.validity.until,
            phone: p.phone,
        };
        state
            .gateway
            .store
            .revoke(id, grant, now, reason)
            .await
            .map_err(|e| ApiError::store(&e))?;
        permits.revoke(
            id,
            Revocation {
                reason: reason.to_string(),
                at: now,
            },
        );
        tracing::info!(
            %peer,
            %who,
            permit = %id,
            document = %p.document.masked(),
            code = p.code,
            reason,
            "admin: permit revoked"
        );
    }
    Ok((StatusCode::OK, Json(permit(permits, &rules, &p, now))))
}
