//! Connector mode: icaze binds out to an operator's SMSC as an ESME. MOs arrive as
//! deliver_sm, replies leave as submit_sm; everything between (decide, make durable,
//! acknowledge, queue the reply) is the same gateway as for the listener.
//!
//! Each `[[connectors]]` table opens `binds` sessions (transceivers, or transmitter +
//! receiver pairs). Each session has its own task that connects, binds, runs the
//! connection until it ends, and reconnects after a back-off that starts at the
//! connector's `reconnect` and doubles to [`MAX_BACKOFF`]; a session that was bound starts
//! over at the short wait. A refused bind is logged as an error each time (wrong password,
//! unknown system_id) and retried at the back-off, so a fixed SMSC account needs no restart.
//! Replies owed while no transmitting bind is up wait in the connector's queue.
//!
//! With `tls = true` each session opens TLS over its TCP connection before binding, checking
//! the SMSC's certificate against the connector's `ca` (or the compiled-in Mozilla roots) for
//! its `tls_name`; a failed handshake is retried like a failed connect.

use crate::config::{Connector, ConnectorBind};
use crate::gateway::connection::{self, Dial, Stream};
use crate::gateway::{Gateway, OperatorState};
use crate::smpp::codec;
use crate::smpp::session::BindKind;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest wait between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long connecting may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The sessions one connector opens: its bind kind, `binds` times.
pub fn sessions(connector: &Connector) -> Vec<BindKind> {
    let per_bind: &[BindKind] = match connector.bind {
        ConnectorBind::Transceiver => &[BindKind::Transceiver],
        ConnectorBind::Pair => &[BindKind::Transmitter, BindKind::Receiver],
    };
    (0..connector.binds)
        .flat_map(|_| per_bind.iter().copied())
        .collect()
}

/// Starts every session of every configured connector on `tracker`; they run until
/// `shutdown`, then unbind and flush within the grace period like listener connections.
pub fn spawn_all(gateway: &Arc<Gateway>, tracker: &TaskTracker, shutdown: &CancellationToken) {
    for (connector, state) in &gateway.connectors {
        for kind in sessions(connector) {
            tracker.spawn(session(
                gateway.clone(),
                connector.clone(),
                state.clone(),
                kind,
                shutdown.clone(),
            ));
        }
    }
}

/// Connects to the connector's SMSC, over TLS when it says so.
async fn connect(connector: &Connector) -> std::io::Result<(Stream, std::net::SocketAddr)> {
    let tcp = TcpStream::connect(&connector.address).await?;
    let peer = tcp
        .peer_addr()
        .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let stream = match &connector.tls {
        None => Stream::Plain(tcp),
        Some(tls) => Stream::Tls(Box::new(tls.connect(tcp).await?.into())),
    };
    Ok((stream, peer))
}

/// One session of a connector: connect, bind, run, back off, again, until shutdown.
async fn session(
    gateway: Arc<Gateway>,
    connector: Connector,
    state: Arc<OperatorState>,
    kind: BindKind,
    shutdown: CancellationToken,
) {
    let Some(request) = codec::bind_request(
        kind,
        &connector.system_id,
        &connector.password,
        &connector.system_type,
        connector.interface_version,
    ) else {
        // Config validation keeps the fields in bounds; this is a bug if it happens.
        tracing::error!(connector = %connector.name, "bind request cannot be encoded: connector off");
        return;
    };
    let name = connector.name.clone();
    let mut backoff = connector.reconnect;
    let mut attempts: u32 = 0;
    while !shutdown.is_cancelled() {
        attempts += 1;
        let connected = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = tokio::time::timeout(CONNECT_TIMEOUT, connect(&connector)) => c,
        };
        let was_bound = match connected {
            Ok(Ok((stream, peer))) => {
                tracing::debug!(connector = %name, %peer, ?kind, "connected: binding");
                let dial = Dial {
                    name: name.clone(),
                    kind,
                    request: request.clone(),
                    operator: state.clone(),
                };
                connection::run_dialled(gateway.clone(), stream, peer, dial, &shutdown).await
            }
            Ok(Err(e)) => {
                tracing::warn!(connector = %name, address = %connector.address, error = %e, attempts, "cannot connect to the SMSC; retrying");
                false
            }
            Err(_) => {
                tracing::warn!(connector = %name, address = %connector.address, attempts, "connecting to the SMSC timed out; retrying");
                false
            }
        };
        if was_bound {
            attempts = 0;
            backoff = connector.reconnect;
            if !shutdown.is_cancelled() {
                tracing::info!(connector = %name, ?kind, "SMSC session ended: reconnecting");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        if !was_bound {
            backoff = (backoff * 2).min(MAX_BACKOFF.max(connector.reconnect));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Connector;
    use crate::permit::reply::Language;

    fn connector(bind: ConnectorBind, binds: u32) -> Connector {
        Connector {
            name: "smsc".into(),
            address: "127.0.0.1:1".into(),
            system_id: "icaze".into(),
            password: "pw".into(),
            system_type: String::new(),
            bind,
            binds,
            interface_version: 0x34,
            reconnect: Duration::from_secs(1),
            tps: 10,
            window: 10,
            queue: 10,
            language: crate::permit::reply::ReplyLanguage::Fixed(Language::En),
            tls: None,
            registered_delivery: 0,
            receipt_expiry: Duration::from_secs(48 * 3600),
            receipt_limit: 10,
        }
    }

    #[test]
    fn sessions_per_bind_kind() {
        assert_eq!(
            sessions(&connector(ConnectorBind::Transceiver, 2)),
            [BindKind::Transceiver, BindKind::Transceiver]
        );
        assert_eq!(
            sessions(&connector(ConnectorBind::Pair, 2)),
            [
                BindKind::Transmitter,
                BindKind::Receiver,
                BindKind::Transmitter,
                BindKind::Receiver
            ]
        );
    }
}
