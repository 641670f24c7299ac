//! The `[smpp]` section: the listener's settings.

use super::error::Errors;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// The SMPP listener's settings.
#[derive(Debug, Clone)]
pub struct Smpp {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Destination addresses citizens text (8103).
    pub short_numbers: Vec<String>,
    /// Largest PDU accepted; a longer command_length closes the connection.
    pub max_pdu_bytes: u32,
    /// Most simultaneous connections. Part of them is kept for the addresses operators bind
    /// from (see [`Smpp::reserved`]).
    pub max_connections: u32,
    /// Connections kept for operators' `allowed_ips`: the sum of their `max_binds` (filled in
    /// once the operators are read). A flood from elsewhere cannot take these.
    pub reserved: u32,
    /// How long a new connection has to bind before it is closed.
    pub bind_timeout: Duration,
    /// How long a PDU whose first bytes arrived has to arrive whole: a peer trickling bytes
    /// is closed instead of holding a connection.
    pub pdu_timeout: Duration,
    /// Most connections one address may hold open without having bound.
    pub max_unbound_per_address: u32,
    /// Failed binds from one address within `bind_failure_window` before it is locked out.
    pub bind_failures: u32,
    /// The window in which failed binds are counted.
    pub bind_failure_window: Duration,
    /// How long an address that failed too often is refused every bind.
    pub bind_lockout: Duration,
    /// How often to send enquire_link on a quiet bind.
    pub enquire_link: Duration,
    /// A bind silent for this long is closed.
    pub inactivity_timeout: Duration,
    /// How long to wait for a response to our request (deliver_sm, enquire_link).
    pub response_timeout: Duration,
    /// How long to hold parts of a concatenated MO.
    pub concat_timeout: Duration,
    /// A peer that accepts none of our bytes for this long is dropped (it stopped reading;
    /// its replies go back to its operator's queue).
    pub write_timeout: Duration,
    /// How long shutdown waits for in-flight work.
    pub shutdown_grace: Duration,
    /// This node's number (0 to 1023), part of every message_id: give each node of one
    /// deployment its own.
    pub node_id: u16,
    /// How message_ids are written: decimal (below 2^63) or 16 hex digits.
    pub message_ids: IdFormat,
    /// The TLS port (`[smpp.tls]`), when set: the same admission and sessions as `listen`.
    pub tls: Option<crate::tls::Listen>,
}

/// How message_ids are written in responses (`[smpp] message_ids`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdFormat {
    /// Decimal, up to 19 digits, below 2^63.
    #[default]
    Decimal,
    /// 16 lower-case hex digits.
    Hex,
}

/// `[smpp]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmpp {
    listen: Option<String>,
    short_numbers: Option<Vec<String>>,
    max_pdu_bytes: Option<u32>,
    max_connections: Option<u32>,
    bind_timeout: Option<String>,
    pdu_timeout: Option<String>,
    max_unbound_per_address: Option<u32>,
    bind_failures: Option<u32>,
    bind_failure_window: Option<String>,
    bind_lockout: Option<String>,
    enquire_link: Option<String>,
    inactivity_timeout: Option<String>,
    response_timeout: Option<String>,
    concat_timeout: Option<String>,
    write_timeout: Option<String>,
    shutdown_grace: Option<String>,
    node_id: Option<u32>,
    message_ids: Option<String>,
    tls: Option<super::tls::RawSmppTls>,
}

/// Checks `[smpp]`, filling defaults.
pub(super) fn smpp(errs: &mut Errors, s: RawSmpp, dir: &std::path::Path) -> Smpp {
    let listen_text = s.listen.as_deref().unwrap_or("127.0.0.1:2775");
    let listen = listen_text.parse().unwrap_or_else(|_| {
        errs.push(
            "smpp.listen",
            format!("{listen_text:?} is not an address like \"127.0.0.1:2775\""),
        );
        SocketAddr::from(([127, 0, 0, 1], 2775))
    });
    let short_numbers = s.short_numbers.unwrap_or_else(|| vec!["8103".into()]);
    if short_numbers.is_empty()
        || short_numbers.iter().any(|n| {
            n.is_empty()
                || n.len() > 20
                || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '+')
        })
    {
        errs.push(
            "smpp.short_numbers",
            "must list 1 or more addresses of up to 20 digits or letters, e.g. [\"8103\"]",
        );
    }
    let max_pdu_bytes = s.max_pdu_bytes.unwrap_or(65_536);
    if !(1_024..=16 * 1024 * 1024).contains(&max_pdu_bytes) {
        errs.push("smpp.max_pdu_bytes", "must be from 1024 to 16777216");
    }
    let max_connections = s.max_connections.unwrap_or(1_000);
    if max_connections == 0 {
        errs.push("smpp.max_connections", "must be 1 or more");
    }
    let max_unbound_per_address = s.max_unbound_per_address.unwrap_or(16);
    if max_unbound_per_address == 0 {
        errs.push("smpp.max_unbound_per_address", "must be 1 or more");
    }
    let bind_failures = s.bind_failures.unwrap_or(5);
    if bind_failures == 0 {
        errs.push("smpp.bind_failures", "must be 1 or more");
    }
    let node_id = s.node_id.unwrap_or(0);
    if node_id > 1023 {
        errs.push("smpp.node_id", "must be from 0 to 1023");
    }
    let message_ids = match s.message_ids.as_deref() {
        None | Some("decimal") => IdFormat::Decimal,
        Some("hex") => IdFormat::Hex,
        Some(other) => {
            errs.push(
                "smpp.message_ids",
                format!("{other:?} is neither \"decimal\" nor \"hex\""),
            );
            IdFormat::Decimal
        }
    };
    let tls = super::tls::smpp(errs, dir, s.tls, listen);
    Smpp {
        tls,
        node_id: node_id.min(1023) as u16,
        message_ids,
        listen,
        short_numbers,
        max_pdu_bytes,
        max_connections,
        reserved: 0,
        bind_timeout: errs.duration(
            "smpp.bind_timeout",
            s.bind_timeout.as_deref(),
            Duration::from_secs(10),
        ),
        pdu_timeout: errs.duration(
            "smpp.pdu_timeout",
            s.pdu_timeout.as_deref(),
            Duration::from_secs(10),
        ),
        max_unbound_per_address,
        bind_failures,
        bind_failure_window: errs.duration(
            "smpp.bind_failure_window",
            s.bind_failure_window.as_deref(),
            Duration::from_secs(60),
        ),
        bind_lockout: errs.duration(
            "smpp.bind_lockout",
            s.bind_lockout.as_deref(),
            Duration::from_secs(300),
        ),
        enquire_link: errs.duration(
            "smpp.enquire_link",
            s.enquire_link.as_deref(),
            Duration::from_secs(30),
        ),
        inactivity_timeout: errs.duration(
            "smpp.inactivity_timeout",
            s.inactivity_timeout.as_deref(),
            Duration::from_secs(120),
        ),
        response_timeout: errs.duration(
            "smpp.response_timeout",
            s.response_timeout.as_deref(),
            Duration::from_secs(10),
        ),
        concat_timeout: errs.duration(
            "smpp.concat_timeout",
            s.concat_timeout.as_deref(),
            Duration::from_secs(60),
        ),
        write_timeout: errs.duration(
            "smpp.write_timeout",
            s.write_timeout.as_deref(),
            Duration::from_secs(30),
        ),
        shutdown_grace: errs.duration(
            "smpp.shutdown_grace",
            s.shutdown_grace.as_deref(),
            Duration::from_secs(10),
        ),
    }
}

/// The connections kept for operators that bind from known addresses: each operator with
/// `allowed_ips` gets its `max_binds`. They must leave room for everyone else.
pub(super) fn reserve(errs: &mut Errors, smpp: &Smpp, operators: &[super::Operator]) -> u32 {
    let reserved: u32 = operators
        .iter()
        .filter(|o| !o.allowed_ips.is_empty())
        .map(|o| o.max_binds)
        .fold(0, u32::saturating_add);
    if smpp.max_connections > 0 && reserved >= smpp.max_connections {
        errs.push(
            "smpp.max_connections",
            format!(
                "must be more than the {reserved} connections kept for operators with \
                 allowed_ips (the sum of their max_binds)"
            ),
        );
    }
    reserved
}
