//! `GET /metrics`: every metric in the Prometheus (OpenMetrics) text format, for the
//! person on call's scraper. No token (a scraper holds none, and the figures name no
//! citizen), but only clients in `[admin] read_networks` when that is set.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::error::ApiError;
use super::{AdminState, Peer, auth};

/// The text format, queue depths read now.
pub async fn get(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
) -> Result<impl IntoResponse, ApiError> {
    auth::read_allowed(&state, peer)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.gateway.metrics_text(),
    ))
}
