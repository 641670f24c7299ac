//! The TLS tables: `[smpp.tls]` (`listen`, `cert`, `key`), `[admin.tls]` (`cert`, `key`) and a
//! connector's `tls`, `ca`, `tls_name`. Paths are relative to the config file; the files are
//! read and checked here, so `check-config` names a missing file, an unreadable PEM or a key
//! that is not the certificate's before anything listens.

use super::error::Errors;
use crate::tls::{Dialling, Identity, Listen, ServerTls, TlsError};
use rustls_pki_types::ServerName;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;

/// `[smpp.tls]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmppTls {
    listen: Option<String>,
    cert: Option<String>,
    key: Option<String>,
}

/// `[admin.tls]` as written: the admin API serves HTTPS on `admin.listen`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    cert: Option<String>,
    key: Option<String>,
}

/// Pushes a TLS file's problem under `table.cert` / `.key` / `.ca`.
fn push(errs: &mut Errors, table: &str, e: TlsError) {
    errs.push(format!("{table}.{}", e.file.key()), e.to_string());
}

/// Checks a server's `cert` and `key` under `table`, reading both.
pub(super) fn server(
    errs: &mut Errors,
    dir: &Path,
    table: &str,
    cert: Option<String>,
    key: Option<String>,
) -> Option<ServerTls> {
    let mut path = |name: &str, value: Option<String>| {
        let found = value.filter(|v| !v.is_empty()).map(|v| dir.join(v));
        if found.is_none() {
            errs.push(
                format!("{table}.{name}"),
                format!(
                    "missing: the PEM file of the {}",
                    match name {
                        "cert" => "certificate chain (leaf first)",
                        _ => "certificate's private key",
                    }
                ),
            );
        }
        found
    };
    let (cert, key) = (path("cert", cert), path("key", key));
    let files = Identity {
        cert: cert?,
        key: key?,
    };
    match files.load() {
        Ok(config) => Some(ServerTls { files, config }),
        Err(e) => {
            push(errs, table, e);
            None
        }
    }
}

/// Checks `[smpp.tls]`: its own port (not the plain listener's), certificate and key.
pub(super) fn smpp(
    errs: &mut Errors,
    dir: &Path,
    raw: Option<RawSmppTls>,
    plain: SocketAddr,
) -> Option<Listen> {
    let raw = raw?;
    let text = raw.listen.as_deref().unwrap_or("127.0.0.1:3550");
    let listen: Option<SocketAddr> = match text.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            errs.push(
                "smpp.tls.listen",
                format!("{text:?} is not an address like \"127.0.0.1:3550\""),
            );
            None
        }
    };
    // Port 0 picks a free port each time: two of them are never the same.
    if let Some(addr) = listen
        && addr == plain
        && addr.port() != 0
    {
        errs.push(
            "smpp.tls.listen",
            format!("{addr} is smpp.listen too: TLS needs a port of its own (3550 by convention)"),
        );
    }
    let server = server(errs, dir, "smpp.tls", raw.cert, raw.key);
    Some(Listen {
        listen: listen?,
        server: server?,
    })
}

/// Checks `[admin.tls]`.
pub(super) fn admin(errs: &mut Errors, dir: &Path, raw: Option<RawTls>) -> Option<ServerTls> {
    let raw = raw?;
    server(errs, dir, "admin.tls", raw.cert, raw.key)
}

/// Checks a connector's `tls`, `ca` and `tls_name` (under `table`, e.g. `connectors[0]`);
/// `address` is its `host:port`, whose host is the default name.
pub(super) fn connector(
    errs: &mut Errors,
    dir: &Path,
    table: &str,
    address: &str,
    tls: Option<bool>,
    ca: Option<String>,
    tls_name: Option<String>,
) -> Option<Dialling> {
    if tls != Some(true) {
        for (key, given) in [("ca", ca.is_some()), ("tls_name", tls_name.is_some())] {
            if given {
                errs.push(format!("{table}.{key}"), "is for TLS: set tls = true too");
            }
        }
        return None;
    }
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name_text = tls_name.unwrap_or_else(|| host.to_string());
    let name = ServerName::try_from(name_text.clone()).ok();
    if name.is_none() {
        errs.push(
            format!("{table}.tls_name"),
            format!("{name_text:?} is neither a DNS name nor an IP address"),
        );
    }
    let ca = ca.map(|c| dir.join(c));
    // The `ca` file is checked even when the name is wrong, so both are reported at once.
    let checked_as = name
        .clone()
        .unwrap_or(ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let dialling = Dialling::new(checked_as, ca)
        .map_err(|e| push(errs, table, e))
        .ok()?;
    name.map(|_| dialling)
}
