//! The accept loop: admission (connection slots, unbound connections per address: see
//! [`super::admission`]), one task per connection, a drain on shutdown, and the
//! housekeeping that keeps memory bounded from day to day.

use crate::gateway::Gateway;
use crate::gateway::connection;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often dead engine state is swept and old journal days compacted.
const HOUSEKEEPING: Duration = Duration::from_secs(60);

/// Serves SMPP on `listener` until `shutdown` is cancelled, then drains: connections unbind
/// their peers and flush what they owe within the configured grace period.
pub async fn serve(gateway: Arc<Gateway>, listener: TcpListener, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    tracker.spawn(housekeeping(gateway.clone(), shutdown.clone()));
    // Connector sessions (icaze binding out to operators' SMSCs) live and drain with the
    // listener's connections.
    crate::gateway::connector::spawn_all(&gateway, &tracker, &shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "SMPP listening");
    }
    let mut last_refusal_log: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match gateway.admission.admit(peer.ip()) {
                    Ok(ticket) => {
                        tracker.spawn(connection::run(
                            gateway.clone(),
                            stream,
                            peer,
                            shutdown.clone(),
                            ticket,
                        ));
                    }
                    Err(refusal) => {
                        gateway.metrics.refused_connection(match refusal {
                            crate::gateway::admission::Refusal::Full => "full",
                            crate::gateway::admission::Refusal::UnboundLimit => "unbound_limit",
                        });
                        // Once per second at most: a flood must not become a flood of logs.
                        if last_refusal_log.is_none_or(|t: Instant| t.elapsed() >= Duration::from_secs(1)) {
                            last_refusal_log = Some(Instant::now());
                            tracing::warn!(ip = %peer.ip(), ?refusal, refused = gateway.admission.refused_connections(), "connection refused");
                        }
                        drop(stream);
                    }
                },
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    drop(listener);
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
