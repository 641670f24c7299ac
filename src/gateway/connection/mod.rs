//! One SMPP connection: bind, MO intake, MT delivery, keep-alive, drain.
//!
//! The same connection plays both sides. As the listener's (we are the MC), an operator's
//! client binds to us, sends MOs as submit_sm / data_sm (or deliver_sm) and takes replies as
//! deliver_sm. As a connector's (we are the ESME, see [`super::connector`]), we bind to an
//! operator's SMSC, MOs arrive as deliver_sm / data_sm and replies leave as submit_sm. The
//! role decides only which commands are admitted and which PDU carries a reply.
//!
//! One task owns the socket. Each turn it reads whatever is buffered, handles every complete
//! PDU in it (MOs of one read go to the gateway as one batch, so their grants share one
//! journal commit), and writes every response and reply of the turn in one write. Replies
//! are pulled from the operator's queue only while the bind's window has room, so a slow
//! peer holds them in the queue, where another bind (or a later one) can take them.
//!
//! The socket loop never waits on the peer alone: a write that the peer does not take is
//! one branch of the loop's select, so reading (the peer's deliver_sm_resp, enquire_link),
//! the timers and shutdown go on meanwhile. A peer that takes none of our bytes for
//! `[smpp] write_timeout` is dropped; while our unsent bytes pile up past `MAX_UNSENT` (1 MiB)
//! we stop reading from it, so a peer that stops reading cannot make us buffer without
//! bound. The protocol itself (dispatch of every PDU, bind states, unbind, keep-alive, the
//! drain, the delivery window and its retries) is [`crate::smpp::session::Session`]; this
//! file joins it to the socket and the gateway: it checks binds against the operators,
//! hands MOs to the gateway and replies from the operator's queue to the session.
//!
//! A reply is never thrown away while its operator exists: a peer that refuses one
//! transiently gets it again after a back-off (see [`outbound::policy`]); a peer that leaves
//! a reply unanswered for the response timeout is unresponsive, so the bind is closed and
//! every reply it still owed goes back to the front of the operator's queue, for the next
//! receiver bind.
//!
//! The same loop runs over plain TCP and over TLS ([`Stream`]): TLS takes our bytes into
//! rustls's own bounded buffer, so with TLS the loop also flushes that buffer once our own
//! is empty, and a peer that takes none of it for the write timeout is dropped as well.
//!
//! A batch handed to the gateway is not awaited in place: while its grants are being made
//! durable (a journal fsync, a Redis round trip) the connection goes on reading, delivering
//! replies and answering enquire_link. On Redis a read's MOs are split by lane (see
//! `gateway/lanes.rs`: texts answered from the text alone, status questions, one lane per
//! primary); on the journal there is one lane. Up to `MAX_BATCHES` (4) batches per lane are
//! under way at once, started in the order they were read and each answered as soon as it
//! is done (SMPP matches responses by sequence number): a primary that is away holds up
//! only the MOs of its own lane, not the other primaries' nor the texts that need no Redis.
//! (Two MOs of one document are still decided in the order read: they are in one lane, and
//! the later waits for the earlier's claim.) Past that, MOs read meanwhile are held per lane
//! (up to `MAX_HELD` in all) and go to the gateway as one batch when a slot of their lane
//! frees, while the connection keeps reading: the peer's deliver_sm_resp must keep
//! flowing, or a slow store would stall the replies too. Only with `MAX_HELD` MOs held
//! does the connection stop reading (backpressure on the peer). A held MO is not
//! acknowledged; if the connection ends first, the operator resends it.

mod bind;
mod intake;
mod replies;

use intake::Taken;
use replies::{Outgoing, pop};

use crate::gateway::admission::Ticket;
use crate::gateway::lanes::{LANES, Lane};
use crate::gateway::outbound::{self, Mt};
use crate::gateway::stats::ReplyTimes;
use crate::gateway::{Gateway, Mo, MoResult, OperatorState};
use crate::permit::reply::Replier;
use crate::smpp::codec::{self, Address, IncomingSm, ReplyPart, Status};
use crate::smpp::session::intake::{Abandoned, Text};
use crate::smpp::session::{
    Answer, BindKind, BindRequest, Close, Event, Role, Session, Tick, Timers,
};
use crate::smpp::text;
use crate::telemetry::mask_msisdn;
use bytes::{Buf, BytesMut};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use rusmpp::{CommandId, Pdu};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Our system_id in bind responses.
const SYSTEM_ID: &str = "icaze";
/// Room for the next read on a bound connection: a read holds every PDU buffered, so MOs
/// of one read go to the gateway together.
const READ_BOUND: usize = 16 * 1024;
/// Room for the next read before a bind: enough for any bind PDU, small for a flood of
/// connections that never bind.
const READ_UNBOUND: usize = 512;
/// Unsent bytes at which we stop reading from the peer until it takes some.
const MAX_UNSENT: usize = 1 << 20;
/// MO batches of one connection and lane under way in the gateway at once.
const MAX_BATCHES: usize = 4;
/// MOs read while [`MAX_BATCHES`] are under way, held for the next batch; at this many the
/// connection stops reading.
const MAX_HELD: usize = 8_192;
/// Most held MOs handed over as one batch: a batch is decided and its replies rendered in
/// one go on one runtime thread, so a huge one would hold up the other connections there.
const MAX_HELD_BATCH: usize = 512;

/// A map keyed by our own ids and sequence numbers: no need for SipHash's DoS resistance.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Where a batch's answers go: each MO's command and sequence number, in batch order.
type Owed = Vec<(CommandId, u32)>;
/// A batch under way in the gateway; yields its MOs' answers and their results.
type Batch = Pin<Box<dyn Future<Output = (Lane, Owed, Vec<MoResult>)> + Send>>;

/// One connection's bytes: plain TCP, or TLS over it (the handshake done).
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, server or client side.
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => t.get_ref().0,
        }
    }
}

/// Runs one connection until the peer leaves, the bind fails, or shutdown drains it;
/// `opened` is when it was accepted (its bind deadline counts from then, TLS handshake
/// included).
pub async fn run(
    gateway: Arc<Gateway>,
    stream: Stream,
    peer: SocketAddr,
    shutdown: CancellationToken,
    ticket: Ticket,
    opened: Instant,
) {
    let _ = stream.tcp().set_nodelay(true);
    let mut conn = Connection::new(gateway, peer, Role::Mc, None, opened);
    conn.ticket = Some(ticket);
    if let Err(e) = conn.serve(stream, &shutdown).await {
        tracing::debug!(%peer, error = %e, "connection ended with an I/O error");
    }
    conn.release();
}

/// Writes some of `out` (`true`: the write half may hold them until flushed), or with
/// nothing left in `out`, flushes the write half (`false`). Cancel-safe, like both.
async fn send(wr: &mut (impl AsyncWrite + Unpin), out: &mut BytesMut) -> std::io::Result<bool> {
    if out.is_empty() {
        wr.flush().await?;
        return Ok(false);
    }
    if wr.write_buf(out).await? == 0 {
        return Err(std::io::ErrorKind::WriteZero.into());
    }
    Ok(true)
}

/// What a connector's connection binds with.
#[derive(Debug, Clone)]
pub struct Dial {
    /// The connector's name, for logs.
    pub name: String,
    /// The kind of bind to ask for.
    pub kind: BindKind,
    /// The bind request (built once per connector session).
    pub request: Pdu,
    /// The state its MOs and replies share with the connector's other binds.
    pub operator: Arc<OperatorState>,
}

/// Runs a connector's connection (we are the ESME): binds with `dial`, then carries MOs in
/// and replies out until the SMSC leaves, the link dies, or shutdown drains it. Returns
/// whether the SMSC accepted the bind (a refusal is logged here).
pub async fn run_dialled(
    gateway: Arc<Gateway>,
    stream: Stream,
    peer: SocketAddr,
    dial: Dial,
    shutdown: &CancellationToken,
) -> bool {
    let _ = stream.tcp().set_nodelay(true);
    let name = dial.name.clone();
    let mut conn = Connection::new(gateway, peer, Role::Esme, Some(dial), Instant::now());
    if let Err(e) = conn.serve(stream, shutdown).await {
        tracing::info!(connector = %name, %peer, error = %e, "connection to SMSC lost");
    }
    // A connector's connection has an operator only once the SMSC accepted its bind.
    let was_bound = conn.operator.is_some();
    conn.release();
    was_bound
}

struct Connection {
    gw: Arc<Gateway>,
    peer: SocketAddr,
    /// A connector's bind: what to send, and for which operator.
    dial: Option<Dial>,
    /// The protocol: what to write, bind state, timers, the delivery window.
    session: Session,
    operator: Option<Arc<OperatorState>>,
    /// Since when the peer has had bytes of ours to take and taken none.
    stalled_since: Instant,
    /// Replies being delivered on this bind, by id.
    outgoing: FastMap<u64, Outgoing>,
    /// MO batches being decided and made durable, answered as each is done.
    batches: FuturesUnordered<Batch>,
    /// MOs read while every batch slot of their lane was taken, per lane, in order, for
    /// the lane's next batch.
    held: [Vec<Taken>; LANES],
    /// How many MOs `held` holds in all.
    held_count: usize,
    /// Batches under way, per lane.
    in_flight: [usize; LANES],
    /// The time of this turn of the loop, read once per wake-up rather than per PDU.
    now: Instant,
    /// The listener's connection slot and this address's unbound share (none for a
    /// connector's connection).
    ticket: Option<Ticket>,
    /// A failed bind is answered no earlier than this (the slow-down for guessing).
    answer_after: Option<Instant>,
    /// The kind this connection bound with, for the bind gauges.
    bound_kind: Option<BindKind>,
    /// Reply times since the last hand-over to the day's figures.
    replied: ReplyTimes,
}

impl Connection {
    fn new(
        gw: Arc<Gateway>,
        peer: SocketAddr,
        role: Role,
        dial: Option<Dial>,
        now: Instant,
    ) -> Self {
        let smpp = &gw.config.smpp;
        let timers = Timers {
            enquire_link: smpp.enquire_link,
            inactivity: smpp.inactivity_timeout,
            response: smpp.response_timeout,
            concat: smpp.concat_timeout,
            bind: smpp.bind_timeout,
            pdu: smpp.pdu_timeout,
        };
        Connection {
            session: Session::new(role, timers, now),
            gw,
            peer,
            dial,
            operator: None,
            stalled_since: now,
            outgoing: FastMap::default(),
            batches: FuturesUnordered::new(),
            held: Default::default(),
            held_count: 0,
            in_flight: [0; LANES],
            now,
            ticket: None,
            answer_after: None,
            bound_kind: None,
            replied: ReplyTimes::default(),
        }
    }

    async fn serve(&mut self, stream: Stream, shutdown: &CancellationToken) -> std::io::Result<()> {
        match stream {
            Stream::Plain(mut tcp) => {
                let (rd, wr) = tcp.split();
                self.serve_on(rd, wr, false, shutdown).await
            }
            Stream::Tls(tls) => {
                let (rd, wr) = tokio::io::split(tls);
                self.serve_on(rd, wr, true, shutdown).await
            }
        }
    }

    /// The socket loop over a read half and a write half; `buffered` says the write half
    /// may hold bytes it took until it is flushed (TLS).
    async fn serve_on(
        &mut self,
        mut rd: impl AsyncRead + Unpin,
        mut wr: impl AsyncWrite + Unpin,
        buffered: bool,
        shutdown: &CancellationToken,
    ) -> std::io::Result<()> {
        let max_pdu = self.gw.config.smpp.max_pdu_bytes as usize;
        let write_timeout = self.gw.config.smpp.write_timeout;
        // The read buffer grows with what arrives, never with what a header announces: a
        // connection that has not bound reads into a small buffer.
        let mut inbuf = BytesMut::new();
        // Bytes the write half took that may still wait in it (TLS) until a flush.
        let mut unflushed = false;
        if let Some(dial) = &self.dial {
            self.session.dial(dial.kind, &dial.request, Instant::now());
        }
        loop {
            let now = Instant::now();
            let unsent = !self.session.out().is_empty() || unflushed;
            let deadline = self.session.deadline(now);
            let deadline = if unsent {
                deadline.min(self.stalled_since + write_timeout)
            } else {
                deadline
            };
            let operator = self.operator.clone();
            let pull = self.can_pull(now);
            let read_more = self.held_count < MAX_HELD && self.session.out().len() < MAX_UNSENT;
            let draining = self.session.is_draining();
            inbuf.reserve(if self.operator.is_some() {
                READ_BOUND
            } else {
                READ_UNBOUND
            });
            tokio::select! {
                biased;
                _ = shutdown.cancelled(), if !draining => {
                    self.session.drain(now + self.gw.config.smpp.shutdown_grace);
                }
                // One write of everything the last turns produced; cancel-safe (a write
                // that did not happen wrote nothing), so the loop can read meanwhile.
                written = send(&mut wr, self.session.out()), if unsent => {
                    // A write leaves bytes to flush; a flush (`false`) leaves none.
                    unflushed = buffered && written?;
                    self.stalled_since = Instant::now();
                }
                Some((lane, owed, results)) = self.batches.next(), if !self.batches.is_empty() => {
                    self.now = Instant::now();
                    self.answer_batch(lane, owed, results);
                    self.take_held();
                }
                read = rd.read_buf(&mut inbuf), if read_more => {
                    if read? == 0 {
                        // The MOs under way were handed over: let them finish (their
                        // replies are queued) though nobody is left to acknowledge them.
                        while self.batches.next().await.is_some() {}
                        return Ok(());
                    }
                    self.now = Instant::now();
                    self.on_read(&mut inbuf, max_pdu);
                }
                mt = pop(&operator), if pull => {
                    self.now = Instant::now();
                    self.start_mt(mt);
                    self.fill_window();
                }
                _ = tokio::time::sleep_until(deadline) => {}
            }
            self.now = Instant::now();
            if !unsent {
                // Bytes made this turn: the peer's time to take them starts now.
                self.stalled_since = self.now;
            }
            if (!self.session.out().is_empty() || unflushed)
                && self.now >= self.stalled_since + write_timeout
            {
                tracing::warn!(peer = %self.peer, unsent = self.session.out().len(), "peer took none of our bytes for the write timeout: dropped");
                return Ok(());
            }
            self.on_timers(self.now);
            // Write what this turn produced at once (one system call, as before the loop
            // goes round); what the peer does not take now is left to the select.
            let out = self.session.out();
            // A failed bind's answer waits for its slow-down (in the close below).
            if !out.is_empty() && self.answer_after.is_none() {
                // One poll of a write: what the socket (or rustls) takes now, no waiting.
                match wr.write(out).now_or_never() {
                    None => {}
                    Some(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
                    Some(Ok(n)) => {
                        out.advance(n);
                        unflushed = buffered;
                        self.stalled_since = self.now;
                    }
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Some(Err(e)) => return Err(e),
                }
            }
            if self.session.closing().is_some() {
                // Acknowledge what was handed to the gateway before leaving.
                while let Some((lane, owed, results)) = self.batches.next().await {
                    self.answer_batch(lane, owed, results);
                }
                if let Some(at) = self.answer_after {
                    tokio::time::sleep_until(at).await;
                }
                let out = self.session.out();
                match tokio::time::timeout(write_timeout, wr.write_all(out)).await {
                    Ok(written) => written?,
                    Err(_) => {
                        tracing::warn!(peer = %self.peer, "peer took none of our last bytes for the write timeout: dropped");
                        return Ok(());
                    }
                }
                out.clear();
                let _ = tokio::time::timeout(write_timeout, wr.shutdown()).await;
                return Ok(());
            }
        }
    }

    /// Handles every complete PDU in `inbuf`, then the read's MOs as one batch.
    fn on_read(&mut self, inbuf: &mut BytesMut, max_pdu: usize) {
        let mut intake: Vec<Taken> = Vec::new();
        loop {
            match codec::decode(inbuf, max_pdu) {
                Ok(None) => break,
                Ok(Some(frame)) => {
                    let event = self.session.on_frame(frame, self.now);
                    self.on_event(event, &mut intake);
                }
                Err(e) => {
                    if self.session.on_decode_error(&e, self.now) {
                        tracing::warn!(peer = %self.peer, error = %e, "framing error: connection closed");
                        inbuf.clear();
                        break;
                    }
                    tracing::debug!(peer = %self.peer, error = %e, "bad PDU answered");
                }
            }
        }
        self.session.buffered(self.now, !inbuf.is_empty());
        if !intake.is_empty() {
            self.admit(intake);
        }
        self.fill_window();
        self.hand_over_reply_times();
    }

    /// Adds the reply times gathered since the last call to the day's figures.
    fn hand_over_reply_times(&mut self) {
        if !self.replied.is_empty() {
            let day = self
                .gw
                .rules()
                .calendar
                .moment(self.gw.clock.now().timestamp())
                .day;
            self.gw.stats.replied(day, &mut self.replied);
        }
    }

    /// What the session handed over from one PDU.
    fn on_event(&mut self, event: Event, intake: &mut Vec<Taken>) {
        match event {
            Event::Handled => {}
            Event::BindRequested {
                command_id,
                sequence_number,
                pdu,
            } => self.on_bind(command_id, sequence_number, &pdu),
            Event::Bound(kind) => self.on_bound(kind),
            Event::Message {
                command_id,
                sequence_number,
                pdu,
            } => self.on_mo(command_id, sequence_number, pdu, intake),
            Event::Answered(answer) => self.on_mt_resp(answer),
            Event::Accepted { answer, part } => {
                // Booked before the answer settles the reply and forgets its parts.
                self.on_accepted(&part);
                self.on_mt_resp(answer)
            }
            Event::Closing(why) => self.closing(why),
        }
    }

    /// Logs why the session is closing.
    fn closing(&self, why: Close) {
        let peer = self.peer;
        match why {
            Close::Unbound => {
                let operator = self.operator.as_ref().map(|o| o.config.system_id.as_str());
                tracing::info!(%peer, operator = operator.unwrap_or(""), "unbound")
            }
            Close::Drained | Close::BindDenied => {
                tracing::debug!(%peer, ?why, "session closing")
            }
            Close::Inactive => tracing::info!(%peer, "inactive before binding: closing"),
            // A flood's connections end this way by the thousand: counted, logged at debug.
            Close::NotBound => {
                self.gw.metrics.refused_connection("bind_timeout");
                tracing::debug!(%peer, "did not bind within the bind timeout: closed")
            }
            Close::PduIncomplete => {
                self.gw.metrics.refused_connection("pdu_timeout");
                tracing::debug!(%peer, "a PDU did not arrive whole within the PDU timeout: closed")
            }
            Close::UnbindUnanswered => {
                tracing::info!(%peer, "our unbind went unanswered: closing")
            }
            Close::Framing => {}
            Close::BindRefused(status) => {
                let name = self.dial.as_ref().map(|d| d.name.as_str()).unwrap_or("");
                tracing::error!(connector = %name, %peer, %status, "bind refused by the SMSC");
            }
            Close::BindUnanswered => {
                tracing::warn!(%peer, "the SMSC did not answer our bind in time: closing")
            }
            Close::EnquireUnanswered => {
                tracing::info!(%peer, "enquire_link unanswered: closing")
            }
            Close::Unresponsive => {
                // Another bind (or the next one) delivers what it owed.
                tracing::warn!(%peer, owed = self.outgoing.len(), "a reply went unanswered for the response timeout: closing the bind, its replies go back to the queue");
            }
        }
    }

    fn on_timers(&mut self, now: Instant) {
        let idle = self.batches.is_empty()
            && self.held_count == 0
            && !self.operator.as_ref().is_some_and(|o| {
                self.session.state().sends_messages(self.session.role()) && !o.queue.is_empty()
            });
        match self.session.tick(now, idle) {
            Tick::Quiet => {}
            Tick::Inactive => tracing::info!(peer = %self.peer, "inactive: unbinding"),
            Tick::Closing(why) => {
                self.closing(why);
                return;
            }
        }
        let abandoned: Vec<Abandoned> = self.session.intake.expire(now).collect();
        for a in abandoned {
            self.incomplete(a);
        }
        self.fill_window();
    }

    /// Leaves the operator's books: bind counts down, replies not yet delivered back to the
    /// front of its queue, oldest first.
    fn release(&mut self) {
        self.hand_over_reply_times();
        let Some(op) = self.operator.take() else {
            return;
        };
        op.binds.fetch_sub(1, Ordering::AcqRel);
        if let Some(kind) = self.bound_kind.take() {
            op.metrics.binds[bind::kind_index(kind)].dec();
        }
        if let Some(dial) = &self.dial {
            self.gw.metrics.connector(&dial.name, -1);
        }
        // MOs held for a batch that never started: unacknowledged, the operator resends
        // them; their places in the queue go back.
        op.queue.release(std::mem::take(&mut self.held_count));
        self.held = Default::default();
        let owed: Vec<Mt> = self
            .session
            .owed()
            .filter_map(|id| self.outgoing.remove(&id))
            .map(|o| o.mt)
            .collect();
        if !owed.is_empty() {
            tracing::info!(peer = %self.peer, replies = owed.len(), "bind closed: undelivered replies requeued");
            op.queue.give_back(owed);
        }
    }
}
