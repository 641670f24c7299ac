//! smsc: the simulator as an operator's SMSC that the gateway binds to as an ESME (connector
//! mode). It listens, answers the gateway's bind_transceiver (or bind_transmitter +
//! bind_receiver) after checking system_id and password, and then the shared
//! [`run`](crate::run) injects citizens' MOs as deliver_sm on the gateway's receiving binds,
//! takes deliver_sm_resp as their acknowledgement, and answers each reply's submit_sm with a
//! submit_sm_resp and a message_id. Measured, checked and reported exactly as loadgen is.
//!
//! Sending starts once `binds` sessions are up, at least one of them able to carry MOs
//! (receiver or transceiver) and one able to carry replies (transmitter or transceiver).
//! Sessions that bind later (the gateway reconnecting) are served as well: a new receiving
//! session takes over the phones of one that ended, and replies are booked whichever session
//! they come on.

use crate::bind::{self, Role, Side};
use crate::procstat;
use crate::report::Report;
use crate::run::{Arrival, Bound, Sessions};
pub use crate::run::{Rate, ReceiptSettings, Settings};
use crate::wire;
pub use crate::wire::ReceiptIds;
use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use icaze::smpp::Status;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};

/// The system_id the SMSC names itself with in bind responses.
pub const SYSTEM_ID: &str = "icaze-sim";

/// Listens on `settings.target` and runs: waits for the gateway's binds, sends for the
/// duration, drains, unbinds, and reports. An `Err` means the run could not start (address
/// in use, bad rules, not enough binds within `settings.bind_timeout`).
pub async fn run(settings: Settings) -> Result<Report> {
    let listener = TcpListener::bind(&settings.target)
        .await
        .with_context(|| format!("cannot listen on {}", settings.target))?;
    run_on(listener, settings).await
}

/// [`run`] on a listener already bound (a test binds port 0 and tells the gateway where).
pub async fn run_on(listener: TcpListener, mut settings: Settings) -> Result<Report> {
    if settings.binds == 0 {
        bail!("--binds must be at least 1");
    }
    let local = listener.local_addr().context("listening address")?;
    settings.target = local.to_string();
    let credentials = Arc::new(Credentials {
        system_id: settings.system_id.clone(),
        password: settings.password.clone(),
    });
    let (tx, rx) = mpsc::channel(64);
    let accepting = tokio::spawn(accept(listener, credentials, settings.bind_timeout, tx));
    let sessions = Listen {
        rx,
        accepting: accepting.abort_handle(),
        wanted: settings.binds,
        timeout: settings.bind_timeout,
        local,
        first_peer: None,
        bound: 0,
        carry_mo: 0,
        carry_replies: 0,
        refused: Vec::new(),
    };
    crate::run::run(settings, Side::Smsc, sessions).await
}

/// Who may bind.
#[derive(Debug)]
struct Credentials {
    system_id: String,
    password: String,
}

impl Credentials {
    /// The bind_resp status for a bind body: 0, ESME_RINVSYSID, ESME_RINVPASWD, or
    /// ESME_RBINDFAIL when the body cannot be read; and the system_id it gave.
    fn check(&self, body: &[u8]) -> (u32, String, u8) {
        let Some(bind) = wire::read_bind(body) else {
            return (Status::ESME_RBINDFAIL.code(), String::new(), 0x34);
        };
        let system_id = String::from_utf8_lossy(bind.system_id).into_owned();
        let status = if bind.system_id != self.system_id.as_bytes() {
            Status::ESME_RINVSYSID.code()
        } else if bind.password != self.password.as_bytes() {
            Status::ESME_RINVPASWD.code()
        } else {
            0
        };
        (status, system_id, bind.interface_version)
    }
}

/// Accepts connections until aborted; each one's bind is checked in its own task, so a
/// peer that connects and says nothing holds up no one.
async fn accept(
    listener: TcpListener,
    credentials: Arc<Credentials>,
    timeout: Duration,
    tx: mpsc::Sender<(Arrival, SocketAddr)>,
) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (credentials, tx) = (credentials.clone(), tx.clone());
                    handshakes.spawn(async move {
                        let arrival = handshake(stream, peer, &credentials, timeout).await;
                        let _ = tx.send((arrival, peer)).await;
                    });
                }
                // Out of descriptors or a connection reset before accept: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
        }
    }
}

/// Reads PDUs until the peer binds (answering enquire_link, refusing anything else with
/// ESME_RINVBNDSTS), and answers the bind.
async fn handshake(
    stream: TcpStream,
    peer: SocketAddr,
    credentials: &Credentials,
    timeout: Duration,
) -> Arrival {
    let _ = stream.set_nodelay(true);
    let mut inbuf = BytesMut::with_capacity(64 * 1024);
    let answered =
        tokio::time::timeout(timeout, answer_bind(&stream, &mut inbuf, credentials)).await;
    match answered {
        Ok(Ok((role, 0, _))) => Arrival::Session(Bound {
            role,
            stream,
            inbuf,
        }),
        Ok(Ok((role, status, system_id))) => Arrival::Refused(format!(
            "{} from {peer} as {system_id:?} refused: {}",
            bind_name(role),
            crate::ledger::status_name(status)
        )),
        Ok(Err(e)) => Arrival::Refused(format!("{peer} did not bind: {e}")),
        Err(_) => Arrival::Refused(format!("{peer} did not bind within {timeout:?}")),
    }
}

fn bind_name(role: Role) -> &'static str {
    match role {
        Role::Transceiver => "bind_transceiver",
        Role::Transmitter => "bind_transmitter",
        Role::Receiver => "bind_receiver",
    }
}

/// The bind exchange: the role asked for, the status answered, the system_id given.
async fn answer_bind(
    stream: &TcpStream,
    inbuf: &mut BytesMut,
    credentials: &Credentials,
) -> Result<(Role, u32, String)> {
    let mut out = BytesMut::new();
    loop {
        while let Some((h, body)) = wire::next_pdu(inbuf)? {
            if let Some(role) = Role::of_bind(h.command_id) {
                let (status, system_id, version) = credentials.check(&body);
                wire::put_bind_resp(
                    &mut out,
                    h.command_id,
                    h.sequence,
                    status,
                    SYSTEM_ID,
                    version,
                );
                bind::write_all(stream, &out, inbuf).await?;
                return Ok((role, status, system_id));
            }
            match h.command_id {
                wire::ENQUIRE_LINK => {
                    wire::put_resp(&mut out, wire::ENQUIRE_LINK, h.sequence, false)
                }
                id if id & wire::RESP != 0 => {}
                _ => wire::put_nack(&mut out, h.sequence, Status::ESME_RINVBNDSTS.code()),
            }
        }
        if !out.is_empty() {
            bind::write_all(stream, &out, inbuf).await?;
            out.clear();
        }
        stream.readable().await?;
        match stream.try_read_buf(inbuf) {
            Ok(0) => bail!("it closed the connection"),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// smsc's sessions: the gateway's binds, as the accept task hands them over.
struct Listen {
    rx: mpsc::Receiver<(Arrival, SocketAddr)>,
    accepting: AbortHandle,
    wanted: u32,
    timeout: Duration,
    local: SocketAddr,
    first_peer: Option<SocketAddr>,
    bound: u32,
    carry_mo: u32,
    carry_replies: u32,
    refused: Vec<String>,
}

impl Drop for Listen {
    /// Stops listening (and drops binds half done), so the gateway cannot bind while the run
    /// unbinds its sessions.
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl Listen {
    fn ready(&self) -> bool {
        self.bound >= self.wanted && self.carry_mo > 0 && self.carry_replies > 0
    }

    fn count(&mut self, arrival: &Arrival, peer: SocketAddr) {
        match arrival {
            Arrival::Session(b) => {
                self.first_peer.get_or_insert(peer);
                self.bound += 1;
                self.carry_mo += u32::from(b.role.carries_mo(Side::Smsc));
                self.carry_replies += u32::from(b.role.carries_replies(Side::Smsc));
            }
            Arrival::Refused(why) => self.refused.push(why.clone()),
        }
    }

    /// Why the run cannot start: what did bind, what was refused.
    fn not_ready(&self) -> String {
        let mut why = format!(
            "the gateway did not bind to {} within {:?}: {} session(s) of the {} asked for, {} able to carry MOs (receiver or transceiver), {} able to carry replies (transmitter or transceiver)",
            self.local, self.timeout, self.bound, self.wanted, self.carry_mo, self.carry_replies
        );
        if !self.refused.is_empty() {
            why.push_str(&format!(
                "; {} refused, e.g. {}",
                self.refused.len(),
                self.refused[0]
            ));
        }
        why
    }
}

impl Sessions for Listen {
    async fn first(&mut self, arrive: &mut impl FnMut(Arrival)) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        while !self.ready() {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => bail!(self.not_ready()),
                Ok(None) => bail!("stopped listening on {}", self.local),
                Ok(Some((arrival, peer))) => {
                    self.count(&arrival, peer);
                    arrive(arrival);
                }
            }
        }
        Ok(())
    }

    async fn later(&mut self) -> Arrival {
        match self.rx.recv().await {
            Some((arrival, _)) => arrival,
            None => std::future::pending().await,
        }
    }

    fn gateway_pid(&self) -> Option<u32> {
        procstat::peer_pid(self.first_peer?.port(), self.local.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind_body(system_id: &str, password: &str) -> BytesMut {
        let mut out = BytesMut::new();
        wire::put_bind(&mut out, wire::BIND_TRANSCEIVER, 1, system_id, password);
        let (_, body) = wire::next_pdu(&mut out).unwrap().unwrap();
        body
    }

    #[test]
    fn credentials_are_checked_system_id_first() {
        let c = Credentials {
            system_id: "icaze".into(),
            password: "secret".into(),
        };
        assert_eq!(c.check(&bind_body("icaze", "secret")).0, 0);
        assert_eq!(
            c.check(&bind_body("icaze", "nope")).0,
            Status::ESME_RINVPASWD.code()
        );
        assert_eq!(
            c.check(&bind_body("other", "nope")),
            (Status::ESME_RINVSYSID.code(), "other".into(), 0x34)
        );
        assert_eq!(c.check(b"icaze\0").0, Status::ESME_RBINDFAIL.code());
    }

    #[test]
    fn roles_carry_mo_and_replies_from_the_smsc_side() {
        let side = Side::Smsc;
        assert!(Role::Receiver.carries_mo(side) && !Role::Receiver.carries_replies(side));
        assert!(!Role::Transmitter.carries_mo(side) && Role::Transmitter.carries_replies(side));
        assert!(Role::Transceiver.carries_mo(side) && Role::Transceiver.carries_replies(side));
        // And the other way round for loadgen.
        assert!(Role::Transmitter.carries_mo(Side::Esme));
        assert!(Role::Receiver.carries_replies(Side::Esme));
    }

    fn listen(wanted: u32) -> Listen {
        let (_tx, rx) = mpsc::channel(1);
        Listen {
            rx,
            accepting: tokio::spawn(async {}).abort_handle(),
            wanted,
            timeout: Duration::from_secs(1),
            local: "127.0.0.1:2776".parse().unwrap(),
            first_peer: None,
            bound: 0,
            carry_mo: 0,
            carry_replies: 0,
            refused: Vec::new(),
        }
    }

    #[tokio::test]
    async fn sending_waits_for_enough_binds_that_can_carry_both_ways() {
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let mut l = listen(2);
        l.count(&Arrival::Refused("bind refused".into()), peer);
        assert!(!l.ready());
        l.bound = 2;
        l.carry_mo = 2;
        assert!(!l.ready(), "two receivers and no transmitter");
        l.carry_replies = 1;
        assert!(l.ready());
        let text = listen(1).not_ready();
        assert!(text.contains("0 session(s) of the 1 asked for"), "{text}");
        assert!(l.not_ready().contains("1 refused, e.g. bind refused"));
    }
}
