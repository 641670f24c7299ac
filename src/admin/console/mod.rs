//! The console: one web page served by the admin server at `/`, where officials and the
//! person on call see the gateway now, check a permit and change the day's rules.
//!
//! The page is rendered on the server ([`page`], maud); a small stylesheet and ~12 KB of
//! plain JavaScript ([`ASSETS`], compiled into the binary: nothing is fetched from
//! elsewhere, no front-end build) poll the JSON API the page shares with scripts:
//! `GET /v1/now` ([`now`], from the per-second [`history`]), verification, revocation, the
//! blocklist, `POST /v1/rules/check` (errors by key, or the [`diff`] from the rules in
//! force) and `PUT /v1/rules`. The token is typed once per browser session and traded for
//! a cookie ([`session`]), whose writes are guarded against cross-site requests.
//!
//! # Layout
//! - `page`: the HTML; `session`: sign-in, cookies, the CSRF guard; `now`: `GET /v1/now`;
//!   `history`: the ring of the last 600 seconds; `diff`: rules in force vs a new file.

pub mod diff;
pub mod history;
pub mod now;
pub mod page;
pub mod session;

use super::auth::{Role, read_allowed};
use super::error::ApiError;
use super::{AdminState, Peer};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The static files under `/console/`: name, content type, text.
pub const ASSETS: [(&str, &str, &str); 2] = [
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("console.js"),
    ),
];

/// Only this server's own scripts and styles, never framed by another site.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn with_headers(mut response: Response, cache: &'static str) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /`: the page for the browser's session, or the sign-in form.
pub async fn index(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    read_allowed(&state, peer)?;
    let session = state.sessions.of_request(&headers);
    let official = session
        .as_ref()
        .is_some_and(|s| s.caller.role == Role::Official);
    let info = state.gateway.rules_info();
    let (text, version) = if official {
        (info.text.as_str(), info.version.as_str())
    } else {
        ("", "")
    };
    let markup = page::render(session.as_ref(), text, version);
    Ok(with_headers(markup.into_response(), "no-store"))
}

/// `GET /console/{file}`: the stylesheet and the script.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, text)) => {
            let mut response = (*text).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            with_headers(response, "no-cache")
        }
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no console file {name:?}"),
        )
        .into_response(),
    }
}
