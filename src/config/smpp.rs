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
    /// Most simultaneous connections.
    pub max_connections: u32,
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
}

/// `[smpp]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmpp {
    listen: Option<String>,
    short_numbers: Option<Vec<String>>,
    max_pdu_bytes: Option<u32>,
    max_connections: Option<u32>,
    enquire_link: Option<String>,
    inactivity_timeout: Option<String>,
    response_timeout: Option<String>,
    concat_timeout: Option<String>,
    write_timeout: Option<String>,
    shutdown_grace: Option<String>,
}

/// Checks `[smpp]`, filling defaults.
pub(super) fn smpp(errs: &mut Errors, s: RawSmpp) -> Smpp {
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
    Smpp {
        listen,
        short_numbers,
        max_pdu_bytes,
        max_connections: s.max_connections.unwrap_or(1_000),
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
