//! The `[admin]` section: the admin HTTP API's address, the two roles' tokens, which
//! networks may read, and the checkpoint rate limit.

use super::error::Errors;
use super::operators::{decode_hex32, sha256};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

/// Environment variable holding the checkpoint role's token (wins over the file's hash).
pub const CHECKPOINT_TOKEN_ENV: &str = "ICAZE_CHECKPOINT_TOKEN";
/// Environment variable holding the official role's token (wins over the file's hash).
pub const OFFICIAL_TOKEN_ENV: &str = "ICAZE_OFFICIAL_TOKEN";

/// The admin API's settings.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Whether `serve` starts the admin server at all.
    pub enabled: bool,
    /// Where it listens (default 127.0.0.1:9103).
    pub listen: SocketAddr,
    /// SHA-256 of the checkpoint role's token (verification only); `None` switches the role
    /// off.
    pub checkpoint_token: Option<[u8; 32]>,
    /// SHA-256 of the official role's token (everything); `None` switches the role off.
    pub official_token: Option<[u8; 32]>,
    /// Networks whose clients may use the read endpoints (verification, listings, rules);
    /// empty means any. Writes need the official token wherever they come from.
    pub read_networks: Vec<Network>,
    /// Verification requests a client address may make per second, after its burst.
    pub verify_rate: u32,
    /// Verification requests a client address may make at once.
    pub verify_burst: u32,
    /// `[admin.tls]`: serve HTTPS on `listen` with this certificate, when set.
    pub tls: Option<crate::tls::ServerTls>,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9103)),
            checkpoint_token: None,
            official_token: None,
            read_networks: Vec::new(),
            verify_rate: 10,
            verify_burst: 30,
            tls: None,
        }
    }
}

/// An IP network, `10.0.0.0/8` or `::1/128`; a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `ADDR/PREFIX` or a bare address.
    pub fn parse(text: &str) -> Option<Network> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Network { addr, prefix })
    }

    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// `[admin]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    enabled: Option<bool>,
    listen: Option<String>,
    checkpoint_token_sha256: Option<String>,
    official_token_sha256: Option<String>,
    read_networks: Option<Vec<String>>,
    verify_rate: Option<u32>,
    verify_burst: Option<u32>,
    tls: Option<super::tls::RawTls>,
}

/// Checks `[admin]`, filling defaults; a token in the environment wins over the file's hash.
pub(super) fn admin(
    errs: &mut Errors,
    raw: RawAdmin,
    env: &dyn Fn(&str) -> Option<String>,
    dir: &std::path::Path,
) -> Admin {
    let defaults = Admin::default();
    let listen = match raw.listen {
        None => defaults.listen,
        Some(text) => text.parse().unwrap_or_else(|_| {
            errs.push(
                "admin.listen",
                format!("{text:?} is not an address like \"127.0.0.1:9103\""),
            );
            defaults.listen
        }),
    };
    let mut token = |var: &str, hash: Option<String>, key: &str| -> Option<[u8; 32]> {
        if let Some(t) = env(var).filter(|t| !t.is_empty()) {
            if t.len() < 16 {
                errs.push(
                    key,
                    format!("the token in {var} is too short: use at least 16 characters"),
                );
            }
            return Some(sha256(t.as_bytes()));
        }
        let hex = hash?;
        decode_hex32(&hex).or_else(|| {
            errs.push(key, "must be 64 hex digits (SHA-256 of the token)");
            None
        })
    };
    let checkpoint_token = token(
        CHECKPOINT_TOKEN_ENV,
        raw.checkpoint_token_sha256,
        "admin.checkpoint_token_sha256",
    );
    let official_token = token(
        OFFICIAL_TOKEN_ENV,
        raw.official_token_sha256,
        "admin.official_token_sha256",
    );
    let mut read_networks = Vec::new();
    for (i, text) in raw.read_networks.unwrap_or_default().iter().enumerate() {
        match Network::parse(text) {
            Some(n) => read_networks.push(n),
            None => errs.push(
                format!("admin.read_networks[{i}]"),
                format!("{text:?} is not a network like \"10.0.0.0/8\" or an address"),
            ),
        }
    }
    Admin {
        tls: super::tls::admin(errs, dir, raw.tls),
        enabled: raw.enabled.unwrap_or(true),
        listen,
        checkpoint_token,
        official_token,
        read_networks,
        verify_rate: errs.at_least_one("admin.verify_rate", raw.verify_rate, defaults.verify_rate),
        verify_burst: errs.at_least_one(
            "admin.verify_burst",
            raw.verify_burst,
            defaults.verify_burst,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_match_their_addresses() {
        let n = Network::parse("10.1.0.0/16").unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one = Network::parse("::1").unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("127.0.0.1".parse().unwrap()));
        assert!(
            Network::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert_eq!(Network::parse("10.0.0.0/33"), None);
        assert_eq!(Network::parse("ten"), None);
    }
}
