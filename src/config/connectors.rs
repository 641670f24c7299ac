//! The `[[connectors]]` tables: operators' SMSCs that icaze binds to as an ESME.

use super::error::Errors;
use super::operators::{Operator, Password};
use crate::permit::reply::ReplyLanguage;
use serde::Deserialize;
use std::time::Duration;

/// How a connector binds to an operator's SMSC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorBind {
    /// Each bind a transceiver: MOs in and replies out on the same session.
    Transceiver,
    /// Each bind a transmitter (replies out) plus a receiver (MOs in).
    Pair,
}

/// An operator's SMSC that icaze binds to as an ESME (connector mode): MOs arrive as
/// deliver_sm, replies leave as submit_sm.
#[derive(Debug, Clone)]
pub struct Connector {
    /// Its name in logs (1 to 15 characters, unique among connectors).
    pub name: String,
    /// The SMSC's `host:port`.
    pub address: String,
    /// The system_id we bind with.
    pub system_id: String,
    /// The password we bind with (from the file or the environment).
    pub password: String,
    /// The system_type we bind with (often empty).
    pub system_type: String,
    /// Transceivers, or transmitter + receiver pairs.
    pub bind: ConnectorBind,
    /// How many binds (pairs count one).
    pub binds: u32,
    /// interface_version of our binds: 0x34 (SMPP 3.4) or 0x50 (SMPP 5.0).
    pub interface_version: u8,
    /// First wait before reconnecting after a lost or refused bind; doubles up to 30 s.
    pub reconnect: Duration,
    /// Inbound MO per second across its binds; above it, deliver_sm is answered with
    /// ESME_RTHROTTLED.
    pub tps: u32,
    /// Unanswered submit_sm per bind.
    pub window: u32,
    /// Replies held while no transmitting bind is up.
    pub queue: usize,
    /// Language of replies to its subscribers.
    /// `auto`: the language of the text, else the rules file's default.
    pub language: ReplyLanguage,
    /// `tls = true`: dial the SMSC over TLS, checking its certificate as this says.
    pub tls: Option<crate::tls::Dialling>,
    /// registered_delivery on every submit_sm part: 0 no receipt, 1 a receipt whatever
    /// happens, 2 a receipt on failure only.
    pub registered_delivery: u8,
    /// How long an accepted part waits for its receipt before it is forgotten.
    pub receipt_expiry: Duration,
    /// Most parts waiting for a receipt at once (the oldest goes first past it); about 450
    /// bytes each.
    pub receipt_limit: usize,
}

impl Connector {
    /// The operator-shaped settings its MOs and replies are handled with (rate limit,
    /// window, queue, language). The password is one no bind can match: a connector's
    /// state is never reachable by binding to our listener.
    pub fn as_operator(&self) -> Operator {
        Operator {
            system_id: self.name.clone(),
            password: Password::Sha256([0; 32]),
            max_binds: self.binds.saturating_mul(2),
            allowed_ips: Vec::new(),
            tps: self.tps,
            window: self.window,
            queue: self.queue,
            language: self.language,
        }
    }
}

/// One `[[connectors]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConnector {
    name: String,
    address: String,
    system_id: String,
    password: Option<String>,
    password_env: Option<String>,
    #[serde(default)]
    system_type: String,
    bind: Option<String>,
    binds: Option<u32>,
    interface_version: Option<String>,
    reconnect: Option<String>,
    tps: Option<u32>,
    window: Option<u32>,
    queue: Option<usize>,
    language: Option<String>,
    tls: Option<bool>,
    ca: Option<String>,
    tls_name: Option<String>,
    registered_delivery: Option<i64>,
    receipt_expiry: Option<String>,
    receipt_limit: Option<usize>,
}

/// Checks every `[[connectors]]` table, in order, keeping the usable ones.
pub(super) fn connectors(
    errs: &mut Errors,
    raw: Vec<RawConnector>,
    env: &dyn Fn(&str) -> Option<String>,
    default_language: ReplyLanguage,
    dir: &std::path::Path,
) -> Vec<Connector> {
    let mut connectors: Vec<Connector> = Vec::new();
    for (i, c) in raw.into_iter().enumerate() {
        let key = format!("connectors[{i}]");
        if let Some(conn) = connector(errs, &key, c, env, &connectors, default_language, dir) {
            connectors.push(conn);
        }
    }
    connectors
}

/// Checks one `[[connectors]]` table; `None` (with errors pushed) when it is unusable.
fn connector(
    errs: &mut Errors,
    key: &str,
    c: RawConnector,
    env: &dyn Fn(&str) -> Option<String>,
    earlier: &[Connector],
    default_language: ReplyLanguage,
    dir: &std::path::Path,
) -> Option<Connector> {
    let before = errs.list.len();
    if c.name.is_empty() || c.name.len() > 15 {
        errs.push(format!("{key}.name"), "must be 1 to 15 characters");
    }
    if earlier.iter().any(|e| e.name == c.name) {
        errs.push(
            format!("{key}.name"),
            format!("{:?} is defined twice", c.name),
        );
    }
    let port_ok = c
        .address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok {
        errs.push(
            format!("{key}.address"),
            format!("{:?} is not a host:port like \"10.0.0.5:2775\"", c.address),
        );
    }
    errs.system_id(&format!("{key}.system_id"), &c.system_id);
    if c.system_type.len() > 12 {
        errs.push(format!("{key}.system_type"), "at most 12 characters");
    }
    let password = match (c.password, c.password_env) {
        (Some(p), None) => p,
        (None, Some(var)) => errs
            .env_password(&format!("{key}.password_env"), &var, env)
            .unwrap_or_default(),
        _ => {
            errs.push(
                format!("{key}.password"),
                "give exactly one of password, password_env",
            );
            String::new()
        }
    };
    errs.password_length(&format!("{key}.password"), &password);
    let bind = match c.bind.as_deref() {
        None | Some("transceiver") => ConnectorBind::Transceiver,
        Some("pair") => ConnectorBind::Pair,
        Some(other) => {
            errs.push(
                format!("{key}.bind"),
                format!(
                    "{other:?}: use \"transceiver\" or \"pair\" (a transmitter and a receiver)"
                ),
            );
            ConnectorBind::Transceiver
        }
    };
    let interface_version = match c.interface_version.as_deref() {
        None | Some("3.4") => 0x34,
        Some("5.0") => 0x50,
        Some(other) => {
            errs.push(
                format!("{key}.interface_version"),
                format!("{other:?}: use \"3.4\" or \"5.0\""),
            );
            0x34
        }
    };
    let reconnect = errs.duration(
        &format!("{key}.reconnect"),
        c.reconnect.as_deref(),
        Duration::from_secs(1),
    );
    let language = errs.language(
        &format!("{key}.language"),
        c.language.as_deref(),
        default_language,
    );
    let binds = errs.at_least_one(&format!("{key}.binds"), c.binds, 1);
    let tps = errs.at_least_one(&format!("{key}.tps"), c.tps, 1_000_000);
    let window = errs.at_least_one(&format!("{key}.window"), c.window, 256);
    let tls = super::tls::connector(errs, dir, key, &c.address, c.tls, c.ca, c.tls_name);
    let registered_delivery = match c.registered_delivery {
        None => 0,
        Some(n @ 0..=2) => n as u8,
        Some(other) => {
            errs.push(
                format!("{key}.registered_delivery"),
                format!("{other}: use 0 (no receipt), 1 (always) or 2 (on failure only)"),
            );
            0
        }
    };
    let receipt_expiry = errs.duration(
        &format!("{key}.receipt_expiry"),
        c.receipt_expiry.as_deref(),
        Duration::from_secs(48 * 3600),
    );
    let receipt_limit = match c.receipt_limit {
        Some(0) => {
            errs.push(format!("{key}.receipt_limit"), "must be at least 1");
            1
        }
        Some(n) => n,
        None => 250_000,
    };
    (errs.list.len() == before).then(|| Connector {
        name: c.name,
        address: c.address,
        system_id: c.system_id,
        password,
        system_type: c.system_type,
        bind,
        binds,
        interface_version,
        reconnect,
        tps,
        window,
        queue: c.queue.unwrap_or(100_000),
        language,
        tls,
        registered_delivery,
        receipt_expiry,
        receipt_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::beside_shipped_rules;
    use crate::config::{Config, PERMIT_KEY_ENV};

    #[test]
    fn connectors() {
        let (_dir, path) = beside_shipped_rules();
        let env = |k: &str| match k {
            "SMSC_PW" => Some("s3cret".to_string()),
            PERMIT_KEY_ENV => Some("a long enough permit secret".to_string()),
            _ => None,
        };
        let ok = Config::from_toml(
            &path,
            "[[connectors]]\nname = \"azercell\"\naddress = \"smsc.example:2775\"\nsystem_id = \"icaze\"\n\
             password_env = \"SMSC_PW\"\nbind = \"pair\"\nbinds = 2\ninterface_version = \"5.0\"\n\
             reconnect = \"500ms\"\nlanguage = \"ru\"\nregistered_delivery = 1\nreceipt_expiry = \"24h\"\n",
            &env,
        )
        .unwrap();
        let c = &ok.connectors[0];
        assert_eq!(
            (c.registered_delivery, c.receipt_expiry, c.receipt_limit),
            (1, Duration::from_secs(24 * 3600), 250_000)
        );
        assert_eq!(
            (
                c.name.as_str(),
                c.address.as_str(),
                c.password.as_str(),
                c.bind,
                c.binds,
                c.interface_version,
                c.reconnect,
                c.language,
                c.window
            ),
            (
                "azercell",
                "smsc.example:2775",
                "s3cret",
                ConnectorBind::Pair,
                2,
                0x50,
                Duration::from_millis(500),
                ReplyLanguage::Fixed(crate::permit::reply::Language::Ru),
                256
            )
        );
        // Its operator-shaped state can never be bound to from outside.
        assert!(!c.as_operator().password.matches(b""));
        assert!(!c.as_operator().password.matches(b"s3cret"));
        let bad = Config::from_toml(
            &path,
            "[[connectors]]\nname = \"a\"\naddress = \"nowhere\"\nsystem_id = \"icaze\"\npassword = \"x\"\n\
             bind = \"both\"\nbinds = 0\n\
             [[connectors]]\nname = \"a\"\naddress = \"h:1\"\nsystem_id = \"icaze\"\npassword = \"too long a password\"\n\
             interface_version = \"4\"\nregistered_delivery = 3\nreceipt_limit = 0\n",
            &env,
        )
        .unwrap_err()
        .0;
        let keys: Vec<&str> = bad.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "connectors[0].address",
                "connectors[0].bind",
                "connectors[0].binds",
                "connectors[1].password",
                "connectors[1].interface_version",
                "connectors[1].registered_delivery",
                "connectors[1].receipt_limit",
            ]
        );
    }
}
