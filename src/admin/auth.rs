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

/// The role of the bearer token in `headers`, if it is at least `needed`; a missing or wrong
/// token is 401 (and counted), a role too small 403. Tokens are hashed and compared with
/// both roles' digests, so neither the time taken nor the answer says which role a wrong
/// token came close to.
pub fn authorize(
    state: &AdminState,
    headers: &HeaderMap,
    peer: SocketAddr,
    needed: Role,
) -> Result<Role, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let digest: Option<[u8; 32]> = token.map(|t| sha2::Sha256::digest(t.as_bytes()).into());
    let admin = &state.gateway.config.admin;
    let matches = |configured: Option<[u8; 32]>| match (configured, digest) {
        (Some(c), Some(d)) => same_digest(&c, &d),
        _ => false,
    };
    let official = matches(admin.official_token);
    let checkpoint = matches(admin.checkpoint_token);
    let role = if official {
        Role::Official
    } else if checkpoint {
        Role::Checkpoint
    } else {
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
    };
    if role < needed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "the {} role may not do this; it needs the {} role",
                role.name(),
                needed.name()
            ),
        ));
    }
    Ok(role)
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
}
