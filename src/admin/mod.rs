//! The admin HTTP API (axum): health for the person on call, verification for checkpoints,
//! revocation and rules for officials. JSON in and out; errors are
//! `{"error": "...", "key": "..."}` with their status code.
//!
//! # Roles
//! A bearer token says who calls: `checkpoint` may verify permits, `official` may do
//! everything. Tokens come from `ICAZE_CHECKPOINT_TOKEN` / `ICAZE_OFFICIAL_TOKEN` or as
//! their SHA-256 in `[admin]`; a role without one is switched off (said at start). A missing
//! or wrong token is 401 and counted; a checkpoint token on a write is 403. The read
//! endpoints also answer only clients in `[admin] read_networks` (when set). Health needs
//! no token.
//!
//! # Endpoints
//! - `GET /healthz`, `GET /readyz` ([`health`]); `GET /metrics` ([`metrics`])
//! - `GET /v1/permits/{permit_id}[?document=D]`, `GET /v1/documents/{document}/permits`,
//!   `POST /v1/permits/{permit_id}/revoke` ([`permits`])
//! - `GET /v1/blocklist`, `PUT` and `DELETE /v1/blocklist/{document}` ([`blocklist`])
//! - `GET /v1/rules`, `PUT /v1/rules`, `POST /v1/rules/reload` ([`rules`])
//! - `GET /v1/stats?date=YYYY-MM-DD` ([`stats`])
//! - `GET /` the console page, `GET /v1/now`, `POST`/`DELETE /v1/session`,
//!   `POST /v1/rules/check` ([`console`])
//!
//! # Layout
//! - `auth`: roles, tokens, networks; `error`: the JSON error; `limit`: verification's
//!   per-client token bucket; `follow`: with Redis, the revocations other nodes made;
//!   `https`: the listener that serves the API over TLS with `[admin.tls]`.

pub mod auth;
pub mod blocklist;
pub mod cli;
pub mod client;
pub mod console;
pub mod error;
pub mod follow;
pub mod health;
pub mod https;
pub mod limit;
pub mod metrics;
pub mod permits;
pub mod rules;
pub mod stats;

use crate::gateway::Gateway;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the handlers share.
#[derive(Debug)]
pub struct AdminState {
    /// The running gateway.
    pub gateway: Arc<Gateway>,
    /// Cancelled when the process stops: readiness then says draining.
    pub shutdown: CancellationToken,
    /// Requests refused for a missing or wrong token since start.
    pub refused_tokens: AtomicU64,
    /// Verification's per-client rate limit.
    pub verify_limit: limit::RateLimit,
    /// One permit per request being served (see [`MAX_REQUESTS`]).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// The console's signed-in browsers.
    pub sessions: console::session::Sessions,
    /// The last ten minutes, second by second (the console's charts).
    pub history: Arc<console::history::History>,
}

/// The client's address (from the connection), for roles' logs, networks and rate limits.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
        Ok(Peer(addr))
    }
}

/// The API's routes over `state`.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::get))
        .route("/v1/permits/{permit_id}", get(permits::verify))
        .route("/v1/permits/{permit_id}/revoke", post(permits::revoke))
        .route(
            "/v1/documents/{document}/permits",
            get(permits::of_document),
        )
        .route("/v1/blocklist", get(blocklist::list))
        .route(
            "/v1/blocklist/{document}",
            axum::routing::put(blocklist::put).delete(blocklist::delete),
        )
        .route("/v1/stats", get(stats::get))
        .route("/v1/rules", get(rules::get).put(rules::put))
        .route("/v1/rules/reload", post(rules::reload))
        .route("/v1/rules/check", post(rules::check))
        .route("/v1/now", get(console::now::get))
        .route(
            "/v1/session",
            post(console::session::sign_in).delete(console::session::sign_out),
        )
        .route("/", get(console::index))
        .route("/console/{file}", get(console::asset))
        .fallback(no_such_endpoint)
        .method_not_allowed_fallback(no_such_method)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            console::session::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), bounded))
        .layer(axum::middleware::from_fn(access_log))
        .with_state(state)
}

/// Requests served at once; beyond it the API answers 503 at once instead of queueing.
pub const MAX_REQUESTS: usize = 256;

/// At most [`MAX_REQUESTS`] requests at once, so a flood of slow clients cannot pile up
/// tasks and memory.
async fn bounded(
    axum::extract::State(state): axum::extract::State<Arc<AdminState>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = state.in_flight.clone().try_acquire_owned() else {
        return axum::response::IntoResponse::into_response(error::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("{MAX_REQUESTS} requests are being served; try again"),
        ));
    };
    next.run(request).await
}

async fn no_such_endpoint() -> error::ApiError {
    error::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint (see README \"The admin API\")",
    )
}

async fn no_such_method() -> error::ApiError {
    error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method",
        "this endpoint does not take that method",
    )
}

/// One debug line per request, with digits in the path masked (a path can hold a document).
async fn access_log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = crate::telemetry::mask_text(request.uri().path());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let response = next.run(request).await;
    tracing::debug!(?peer, %method, %path, status = response.status().as_u16(), "admin: request");
    response
}

/// Says at start which roles are on, so an operator who forgot a token learns it at once.
fn log_roles(gateway: &Gateway, addr: SocketAddr, https: bool) {
    let admin = &gateway.config.admin;
    for (role, token, var) in [
        (
            "checkpoint",
            admin.checkpoint_token,
            crate::config::CHECKPOINT_TOKEN_ENV,
        ),
        (
            "official",
            admin.official_token,
            crate::config::OFFICIAL_TOKEN_ENV,
        ),
    ] {
        if token.is_none() {
            tracing::warn!(
                role,
                "admin: the {role} role is switched off (no token: set {var} or [admin] {role}_token_sha256)"
            );
        }
    }
    if https {
        tracing::info!(%addr, "admin API listening over HTTPS");
    } else {
        tracing::info!(%addr, "admin API listening");
    }
}

/// Serves the admin API on `listener` (HTTPS with `[admin.tls]`) until `shutdown` is
/// cancelled, then finishes the requests under way and returns.
pub async fn serve(gateway: Arc<Gateway>, listener: TcpListener, shutdown: CancellationToken) {
    let admin = &gateway.config.admin;
    let state = Arc::new(AdminState {
        verify_limit: limit::RateLimit::new(admin.verify_rate, admin.verify_burst),
        gateway: gateway.clone(),
        shutdown: shutdown.clone(),
        refused_tokens: AtomicU64::new(0),
        in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS)),
        sessions: console::session::Sessions::default(),
        history: Arc::new(console::history::History::default()),
    });
    let sampler = {
        let (history, gateway, shutdown) =
            (state.history.clone(), gateway.clone(), shutdown.clone());
        tokio::spawn(async move {
            let read = || {
                let reading = console::history::Reading {
                    mos: gateway.metrics.mos_total(),
                    replies: gateway.metrics.mo_to_mt_buckets(),
                };
                (gateway.clock.now().timestamp(), reading)
            };
            history.run(read, shutdown).await;
        })
    };
    let certs = gateway.tls.admin.clone();
    if let Ok(addr) = listener.local_addr() {
        log_roles(&gateway, addr, certs.is_some());
    }
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let stopped = match certs {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        }
        Some(certs) => {
            // tap_io: axum gives any listener's connections their peer address this way.
            use axum::serve::ListenerExt;
            let listener = https::TlsListener::new(listener, certs).tap_io(|_| {});
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        }
    };
    if let Err(e) = stopped {
        tracing::error!(error = %e, "admin API stopped");
    }
    sampler.abort();
    tracing::info!("admin API stopped");
}
