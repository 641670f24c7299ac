//! The accept loop: admission (connection slots, unbound connections per address: see
//! [`super::admission`]), one task per connection, a drain on shutdown, and the
//! housekeeping that keeps memory bounded from day to day.
//!
//! With `[smpp.tls]` the loop also accepts on the TLS port: the same admission, then the TLS
//! handshake in the connection's own task, by the bind deadline (a peer that never finishes
//! it holds its slot, counted as unbound for its address, no longer than a silent plain
//! connection), then the same session as on the plain port.

use crate::gateway::Gateway;
use crate::gateway::admission::Refusal;
use crate::gateway::connection::{self, Stream};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often dead engine state is swept and old journal days compacted.
const HOUSEKEEPING: Duration = Duration::from_secs(60);

/// Serves SMPP on `listener` until `shutdown` is cancelled, then drains: connections unbind
/// their peers and flush what they owe within the configured grace period.
pub async fn serve(gateway: Arc<Gateway>, listener: TcpListener, shutdown: CancellationToken) {
    serve_with_tls(gateway, listener, None, shutdown).await
}

/// [`serve`], and TLS on `tls` (with the certificate of `gateway.tls.smpp`) when given.
pub async fn serve_with_tls(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    tls: Option<TcpListener>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    tracker.spawn(housekeeping(gateway.clone(), shutdown.clone()));
    // Connector sessions (icaze binding out to operators' SMSCs) live and drain with the
    // listener's connections.
    crate::gateway::connector::spawn_all(&gateway, &tracker, &shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "SMPP listening");
    }
    // A TLS port without a certificate cannot happen from config; say so if a caller did it.
    let tls = tls.filter(|_| {
        gateway.tls.smpp.is_some() || {
            tracing::error!("SMPP TLS port given without [smpp.tls]: not listening on it");
            false
        }
    });
    if let Some(addr) = tls.as_ref().and_then(|l| l.local_addr().ok()) {
        tracing::info!(%addr, "SMPP TLS listening");
    }
    let mut accept = Accept {
        gateway: &gateway,
        tracker: &tracker,
        shutdown: &shutdown,
        last_refusal_log: None,
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accept.accepted(accepted, false).await,
            accepted = accept_on(tls.as_ref()) => accept.accepted(accepted, true).await,
        }
    }
    drop(listener);
    drop(tls);
    tracker.close();
    let grace = gateway.config.smpp.shutdown_grace;
    // Connections stop at the grace period themselves; the extra second covers their unbind.
    if tokio::time::timeout(grace + Duration::from_secs(1), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over with connections still open");
    }
    let owed: usize = gateway
        .operators
        .values()
        .chain(gateway.connectors.iter().map(|(_, o)| o))
        .map(|o| o.queue.len())
        .sum();
    if owed > 0 {
        tracing::warn!(replies = owed, "replies still queued at exit");
    }
    tracing::info!("SMPP listener stopped");
}

/// Accepts on `listener`, or never without one.
async fn accept_on(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// What the accept loop needs for each new connection.
struct Accept<'a> {
    gateway: &'a Arc<Gateway>,
    tracker: &'a TaskTracker,
    shutdown: &'a CancellationToken,
    last_refusal_log: Option<Instant>,
}

impl Accept<'_> {
    /// Admits a new connection (TLS: handshake first, in its own task) or refuses it.
    async fn accepted(&mut self, accepted: std::io::Result<(TcpStream, SocketAddr)>, tls: bool) {
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                return;
            }
        };
        let gateway = self.gateway;
        let ticket = match gateway.admission.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(refusal) => {
                gateway.metrics.refused_connection(match refusal {
                    Refusal::Full => "full",
                    Refusal::UnboundLimit => "unbound_limit",
                });
                // Once per second at most: a flood must not become a flood of logs.
                if self
                    .last_refusal_log
                    .is_none_or(|t: Instant| t.elapsed() >= Duration::from_secs(1))
                {
                    self.last_refusal_log = Some(Instant::now());
                    tracing::warn!(ip = %peer.ip(), ?refusal, refused = gateway.admission.refused_connections(), "connection refused");
                }
                return;
            }
        };
        let opened = Instant::now();
        let (gateway, shutdown) = (gateway.clone(), self.shutdown.clone());
        let acceptor = match (&gateway.tls.smpp, tls) {
            (Some(certs), true) => Some(certs.acceptor()),
            _ => None,
        };
        self.tracker.spawn(async move {
            let stream = match acceptor {
                None => Stream::Plain(stream),
                Some(acceptor) => {
                    let _ = stream.set_nodelay(true);
                    let deadline = opened + gateway.config.smpp.bind_timeout;
                    let handshake = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        h = crate::tls::accept(acceptor, stream, deadline) => h,
                    };
                    match handshake {
                        Ok(tls) => Stream::Tls(Box::new(tls.into())),
                        Err(e) => {
                            // A flood's handshakes end this way by the thousand: counted,
                            // logged at debug.
                            gateway.metrics.refused_connection("tls_handshake");
                            tracing::debug!(%peer, error = %e, "TLS connection closed");
                            return;
                        }
                    }
                }
            };
            connection::run(gateway, stream, peer, shutdown, ticket, opened).await
        });
    }
}

async fn housekeeping(gateway: Arc<Gateway>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(HOUSEKEEPING);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = gateway.clock.now().timestamp();
        let rules = gateway.rules();
        let dropped = gateway.engine.sweep(&rules, now);
        if dropped > 0 {
            tracing::info!(dropped, "engine: swept expired state");
        }
        if let crate::store::Store::Journal(j) = &gateway.store
            && let Err(e) = j.compact(now).await
        {
            tracing::warn!(error = %e, "journal compaction failed");
        }
    }
}
