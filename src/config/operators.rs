//! The `[[operators]]` tables: who may bind to our listener, and how their passwords are
//! checked.

use super::error::Errors;
use crate::permit::reply::Language;
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;

/// How an operator's password is checked.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    /// The password itself (from the file or the environment).
    Plain(String),
    /// The SHA-256 of the password, hex, so the file holds no secret.
    Sha256([u8; 32]),
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Password::Plain(_) => f.write_str("Password::Plain(..)"),
            Password::Sha256(_) => f.write_str("Password::Sha256(..)"),
        }
    }
}

impl Password {
    /// Compares in constant time, so the time taken does not tell how much was right.
    pub fn matches(&self, given: &[u8]) -> bool {
        match self {
            Password::Plain(p) => constant_time_eq(p.as_bytes(), given),
            Password::Sha256(h) => {
                let digest = sha256(given);
                constant_time_eq(h, &digest)
            }
        }
    }
}

pub(super) fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Length differences leak only the length, which SMPP's 9-octet limit makes moot.
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An operator (or aggregator) allowed to bind.
#[derive(Debug, Clone)]
pub struct Operator {
    /// SMPP system_id.
    pub system_id: String,
    /// How its password is checked.
    pub password: Password,
    /// Most simultaneous binds.
    pub max_binds: u32,
    /// Peer IP addresses allowed to bind as this operator; empty = any.
    pub allowed_ips: Vec<IpAddr>,
    /// Inbound MO per second across its binds, answered with ESME_RTHROTTLED above.
    pub tps: u32,
    /// Unanswered MT (deliver_sm) per bind.
    pub window: u32,
    /// Replies held for the operator while it has no receiver bind.
    pub queue: usize,
    /// Language of replies to its subscribers.
    pub language: Language,
}

/// One `[[operators]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOperator {
    system_id: String,
    password: Option<String>,
    password_env: Option<String>,
    password_sha256: Option<String>,
    max_binds: Option<u32>,
    #[serde(default)]
    allowed_ips: Vec<String>,
    tps: Option<u32>,
    window: Option<u32>,
    queue: Option<usize>,
    language: Option<String>,
}

/// Checks every `[[operators]]` table, in order; a wrong field pushes an error and takes
/// its default so later tables are still checked.
pub(super) fn operators(
    errs: &mut Errors,
    raw: Vec<RawOperator>,
    env: &dyn Fn(&str) -> Option<String>,
    default_language: Language,
) -> Vec<Operator> {
    let mut operators: Vec<Operator> = Vec::new();
    for (i, o) in raw.into_iter().enumerate() {
        let key = format!("operators[{i}]");
        errs.system_id(&format!("{key}.system_id"), &o.system_id);
        if operators.iter().any(|p| p.system_id == o.system_id) {
            errs.push(
                format!("{key}.system_id"),
                format!("{:?} is defined twice", o.system_id),
            );
        }
        let mut checked = false;
        let password = match (o.password, o.password_env, o.password_sha256) {
            (Some(p), None, None) => Password::Plain(p),
            (None, Some(var), None) => {
                // Reported there when unset or empty; checked for length only when set.
                let p = errs.env_password(&format!("{key}.password_env"), &var, env);
                checked = p.is_none();
                Password::Plain(p.unwrap_or_default())
            }
            (None, None, Some(hex)) => match decode_hex32(&hex) {
                Some(h) => Password::Sha256(h),
                None => {
                    errs.push(
                        format!("{key}.password_sha256"),
                        "must be 64 hex digits (SHA-256)",
                    );
                    Password::Plain(String::new())
                }
            },
            _ => {
                errs.push(
                    format!("{key}.password"),
                    "give exactly one of password, password_env, password_sha256",
                );
                Password::Plain(String::new())
            }
        };
        if let Password::Plain(p) = &password
            && !checked
        {
            errs.password_length(&format!("{key}.password"), p);
        }
        let mut allowed_ips = Vec::new();
        for (j, ip) in o.allowed_ips.iter().enumerate() {
            match ip.parse() {
                Ok(a) => allowed_ips.push(a),
                Err(_) => errs.push(
                    format!("{key}.allowed_ips[{j}]"),
                    format!("{ip:?} is not an IP address"),
                ),
            }
        }
        let language = errs.language(
            &format!("{key}.language"),
            o.language.as_deref(),
            default_language,
        );
        operators.push(Operator {
            max_binds: errs.at_least_one(&format!("{key}.max_binds"), o.max_binds, 8),
            tps: errs.at_least_one(&format!("{key}.tps"), o.tps, 1_000_000),
            window: errs.at_least_one(&format!("{key}.window"), o.window, 256),
            queue: match o.queue {
                Some(0) => {
                    errs.push(
                        format!("{key}.queue"),
                        "must be at least 1: with no room, every MO would be refused",
                    );
                    1
                }
                q => q.unwrap_or(100_000),
            },
            system_id: o.system_id,
            password,
            allowed_ips,
            language,
        });
    }
    operators
}

pub(super) fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_passwords() {
        let p = Password::Sha256(sha256(b"demo"));
        assert!(p.matches(b"demo") && !p.matches(b"demo2"));
        assert_eq!(decode_hex32(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(decode_hex32("abc"), None);
    }
}
