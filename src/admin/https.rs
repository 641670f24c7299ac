//! HTTPS for the admin API (`[admin.tls]`): a listener that hands axum connections whose TLS
//! handshake is done. Handshakes run side by side (a slow client holds up no other), each
//! with a deadline, and at most [`MAX_HANDSHAKES`] at once, so a flood of clients that never
//! finish theirs costs a bounded set of tasks.

use crate::tls::Certs;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

/// Handshakes under way at once; past it, new connections wait in the kernel's backlog.
pub const MAX_HANDSHAKES: usize = 256;
/// How long a client has to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP listener whose connections come out with TLS, under the certificate in use when
/// each handshake starts (re-read on SIGHUP).
#[derive(Debug)]
pub struct TlsListener {
    tcp: TcpListener,
    certs: Arc<Certs>,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    /// TLS on `tcp` with `certs`.
    pub fn new(tcp: TcpListener, certs: Arc<Certs>) -> Self {
        TlsListener {
            tcp,
            certs,
            handshakes: JoinSet::new(),
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept(), if self.handshakes.len() < MAX_HANDSHAKES => {
                    match accepted {
                        Ok((stream, peer)) => {
                            let acceptor = self.certs.acceptor();
                            let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
                            self.handshakes.spawn(async move {
                                match crate::tls::accept(acceptor, stream, deadline).await {
                                    Ok(tls) => Some((tls, peer)),
                                    Err(e) => {
                                        tracing::debug!(%peer, error = %e, "admin: TLS connection closed");
                                        None
                                    }
                                }
                            });
                        }
                        Err(e) => {
                            // Out of file descriptors and the like: back off, don't spin.
                            tracing::warn!(error = %e, "admin: accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(ready)) = done {
                        return ready;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
