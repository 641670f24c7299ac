//! Console sessions: the token is typed once per browser session and traded for a cookie
//! that holds only a random session id (`HttpOnly`, `SameSite=Strict`, no `Max-Age`: gone
//! when the browser closes). The server keeps, per session, the role, the token's
//! fingerprint for the logs, the expiry and a CSRF token.
//!
//! A write that a cookie authorizes needs that CSRF token in `x-csrf-token` and, when the
//! browser names an `Origin`, this server's own; bearer-token callers are not browsers
//! sending ambient credentials and are not asked ([`guard`]).
//!
//! - `POST /v1/session` `{"token": "…"}`: a session for that token's role (401 for a wrong
//!   token, counted like any other; rate-limited per address like verification).
//! - `DELETE /v1/session`: signs out.

use super::super::auth::{Caller, caller_of_token};
use super::super::error::ApiError;
use super::super::{AdminState, Peer};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// The cookie's name.
pub const COOKIE: &str = "icaze_session";
/// The header a cookie-authorized write carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts at most, used or not.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; beyond it the oldest is dropped (its browser signs in again).
pub const MAX_SESSIONS: usize = 1024;

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who signed in.
    pub caller: Caller,
    /// Sent back with every write.
    pub csrf: String,
    /// When it ends.
    pub expires: Instant,
}

/// The sessions, by the SHA-256 of their id (so a lookup's timing says nothing about the
/// id). Bounded by [`MAX_SESSIONS`].
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<[u8; 32], Session>>,
}

/// 32 bytes from the OS's generator, in hex; none if it does not answer.
fn random_hex() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn key(id: &str) -> [u8; 32] {
    sha2::Sha256::digest(id.as_bytes()).into()
}

/// Whether two strings are equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y))) == 0
}

impl Sessions {
    /// A new session for `caller`: its id (for the cookie) and the session; none if the
    /// OS gives no random numbers.
    pub fn open(&self, caller: Caller) -> Option<(String, Session)> {
        let id = random_hex()?;
        let session = Session {
            caller,
            csrf: random_hex()?,
            expires: Instant::now() + LIFETIME,
        };
        let mut all = self.by_id.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        all.retain(|_, s| s.expires > now);
        if all.len() >= MAX_SESSIONS
            && let Some(oldest) = all.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            all.remove(&oldest);
        }
        all.insert(key(&id), session.clone());
        Some((id, session))
    }

    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let all = self.by_id.lock().unwrap_or_else(PoisonError::into_inner);
        all.get(&key(id))
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    /// Ends the session with this id.
    pub fn close(&self, id: &str) -> bool {
        let mut all = self.by_id.lock().unwrap_or_else(PoisonError::into_inner);
        all.remove(&key(id)).is_some()
    }

    /// The live session the request's cookie names.
    pub fn of_request(&self, headers: &HeaderMap) -> Option<Session> {
        self.get(&cookie(headers)?)
    }
}

/// The session id in the request's `Cookie` header(s).
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

fn csrf_refused(message: &str) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, "csrf", message).into_response()
}

/// Whether the browser says the request comes from another site: an `Origin` that is not
/// this host's, or `Sec-Fetch-Site` other than same-origin or none (typed by the user).
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    match (text("origin"), text("host")) {
        (None, _) => false,
        (Some(origin), Some(host)) => {
            origin != format!("http://{host}") && origin != format!("https://{host}")
        }
        (Some(_), None) => true,
    }
}

/// Refuses a write from a browser that another site may have caused: one with no bearer
/// token but a session cookie needs the session's CSRF token, and none may come from
/// another origin (the sign-in included).
pub async fn guard(State(state): State<Arc<AdminState>>, request: Request, next: Next) -> Response {
    let method = request.method();
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let headers = request.headers();
    if safe || headers.contains_key(header::AUTHORIZATION) {
        return next.run(request).await;
    }
    if cross_site(headers) {
        return csrf_refused("a write from another site is refused");
    }
    if let Some(session) = state.sessions.of_request(headers) {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !same(sent, &session.csrf) {
            return csrf_refused(
                "a write signed in by cookie needs the page's CSRF token (x-csrf-token)",
            );
        }
    }
    next.run(request).await
}

/// The body of a sign-in.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    token: String,
}

fn set_cookie(value: &str, clear: bool) -> HeaderValue {
    let age = if clear { "; Max-Age=0" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("icaze_session=; Max-Age=0"))
}

/// Signs a browser in: the token's role for this browser session, as a cookie.
pub async fn sign_in(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    body: Result<Json<SignIn>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request("body", format!("expected {{\"token\": \"...\"}}: {e}"))
    })?;
    if !state.verify_limit.take(peer.ip()) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many attempts from this address; try again in a moment",
        ));
    }
    let caller = caller_of_token(&state, Some(body.token.trim()), peer)?;
    let (id, session) = state.sessions.open(caller.clone()).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "random",
            "the system's random number generator did not answer; try again",
        )
    })?;
    tracing::info!(%peer, who = %caller, "admin: console signed in");
    let mut response = Json(json!({
        "role": caller.role.name(),
        "who": caller.to_string(),
        "expires_in_s": LIFETIME.as_secs(),
        "csrf": session.csrf,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&id, false));
    Ok(response)
}

/// Signs the browser out.
pub async fn sign_out(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = cookie(&headers)
        && let Some(session) = state.sessions.get(&id)
    {
        state.sessions.close(&id);
        tracing::info!(%peer, who = %session.caller, "admin: console signed out");
    }
    let mut response = Json(json!({"signed_out": true})).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie("", true));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::auth::Role;

    fn caller() -> Caller {
        Caller {
            role: Role::Official,
            fingerprint: "0123abcd".into(),
        }
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_when_closed() {
        let sessions = Sessions::default();
        let (id, session) = sessions.open(caller()).unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(session.csrf, id);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {COOKIE}={id}")).unwrap(),
        );
        assert_eq!(sessions.of_request(&headers).unwrap().csrf, session.csrf);
        assert!(sessions.get("not-a-session").is_none());
        assert!(sessions.close(&id));
        assert!(sessions.of_request(&headers).is_none());
    }

    #[test]
    fn sessions_are_bounded() {
        let sessions = Sessions::default();
        let (first, _) = sessions.open(caller()).unwrap();
        for _ in 0..MAX_SESSIONS {
            sessions.open(caller()).unwrap();
        }
        assert_eq!(sessions.by_id.lock().unwrap().len(), MAX_SESSIONS);
        assert!(sessions.get(&first).is_none(), "the oldest made room");
    }

    #[test]
    fn another_origin_is_cross_site() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:9103"));
        assert!(
            !cross_site(&h),
            "no Origin: not a browser's cross-site request"
        );
        h.insert("origin", HeaderValue::from_static("http://127.0.0.1:9103"));
        assert!(!cross_site(&h));
        h.insert("origin", HeaderValue::from_static("http://evil.example"));
        assert!(cross_site(&h));
        h.insert("origin", HeaderValue::from_static("http://127.0.0.1:9103"));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h));
    }
}
