//! Who may call what: bearer tokens for the two roles, compared in constant time, and the
//! networks allowed to read.

use super::AdminState;
use super::error::ApiError;
use axum::http::{HeaderMap, StatusCode, header};
use sha2::Digest;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// A checkpoint: may verify permits, nothing else.
    Checkpoint,
    /// An official: may do everything.
    Official,
}

impl Role {
    /// The role's name in logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Role::Checkpoint => "checkpoint",
            Role::Official => "official",
        }
    }
}

/// Whether two digests are equal, in time that does not depend on where they differ.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Who calls: a role, and a short fingerprint of the token shown (never the token), so
/// the log says which official did what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's role.
    pub role: Role,
    /// The first 8 hex digits of a SHA-256 of the token, salted apart from the digest
    /// `[admin]` stores (so the log does not print a prefix of that).
    pub fingerprint: String,
}

impl Caller {
    /// The role's name.
    pub fn name(&self) -> &'static str {
        self.role.name()
    }
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.role.name(), self.fingerprint)
    }
}

/// The fingerprint of `token` (see [`Caller::fingerprint`]).
pub fn fingerprint(token: &str) -> String {
    let digest = sha2::Sha256::new()
        .chain_update(b"icaze token fingerprint\0")
        .chain_update(token.as_bytes())
        .finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The caller `token` makes, or 401 (counted and logged) for a missing or wrong one.
/// Tokens are hashed and compared with both roles' digests, so neither the time taken nor
/// the answer says which role a wrong token came close to.
pub fn caller_of_token(
    state: &AdminState,
    token: Option<&str>,
    peer: SocketAddr,
) -> Result<Caller, ApiError> {
    let digest: Option<[u8; 32]> = token.map(|t| sha2::Sha256::digest(t.as_bytes()).into());
    let admin = &state.gateway.config.admin;
    let matches = |configured: Option<[u8; 32]>| match (configured, digest) {
        (Some(c), Some(d)) => same_digest(&c, &d),
        _ => false,
    };
    let official = matches(admin.official_token);
    let checkpoint = matches(admin.checkpoint_token);
    let role = match (official, checkpoint, token) {
        (true, _, Some(_)) => Role::Official,
        (false, true, Some(_)) => Role::Checkpoint,
        _ => {
            let refused = state.refused_tokens.fetch_add(1, Ordering::Relaxed) + 1;
            state.gateway.metrics.unauthorized.inc();
            tracing::warn!(
                %peer,
                refused_total = refused,
                token = if token.is_some() { "wrong" } else { "missing" },
                "admin: request refused: no valid bearer token"
            );
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is needed (Authorization: Bearer TOKEN)",
            ));
        }
    };
    Ok(Caller {
        role,
        fingerprint: fingerprint(token.unwrap_or_default()),
    })
}

/// The caller of a request, if it is at least `needed`: the bearer token in `headers`, or
/// else the console session its cookie names (see [`super::console::session`]). A missing
/// or wrong token is 401 (and counted), a role too small 403.
pub fn authorize(
    state: &AdminState,
    headers: &HeaderMap,
    peer: SocketAddr,
    needed: Role,
) -> Result<Caller, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let session = match token {
        None => state.sessions.of_request(headers),
        Some(_) => None,
    };
    let caller = match session {
        Some(s) => s.caller,
        None => caller_of_token(state, token, peer)?,
    };
    if caller.role < needed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "the {} role may not do this; it needs the {} role",
                caller.role.name(),
                needed.name()
            ),
        ));
    }
    Ok(caller)
}

/// Refuses a read from a client outside `[admin] read_networks` (403).
pub fn read_allowed(state: &AdminState, peer: SocketAddr) -> Result<(), ApiError> {
    let networks = &state.gateway.config.admin.read_networks;
    if networks.is_empty() || networks.iter().any(|n| n.contains(peer.ip())) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "network",
        format!("{} is not in [admin] read_networks", peer.ip()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_whole() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(same_digest(&a, &b));
        b[31] ^= 1;
        assert!(!same_digest(&a, &b));
        assert!(Role::Official > Role::Checkpoint);
    }

    #[test]
    fn a_fingerprint_is_short_stable_and_not_the_stored_digest() {
        let f = fingerprint("official-token");
        assert_eq!(f.len(), 8);
        assert_eq!(f, fingerprint("official-token"));
        assert_ne!(f, fingerprint("official-tokeN"));
        let stored: String = sha2::Sha256::digest(b"official-token")[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_ne!(f, stored);
    }
}
