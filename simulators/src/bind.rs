//! One SMPP session of the simulated operator: bind, send citizens' MOs, answer the
//! gateway's deliver_sm, unbind.
//!
//! A session is one task with one loop. Each turn it takes everything the socket has
//! buffered, handles every complete PDU (submit_sm_resp, deliver_sm, enquire_link, unbind),
//! takes the ledger's lock once to book the turn's acknowledgements and replies and to
//! generate the turn's new MOs, and writes everything it owes (deliver_sm_resp,
//! enquire_link_resp, submit_sm) in one write. So system calls grow with turns (at most one
//! per pacing tick or per read), not with messages, and the gateway keeps most of the
//! machine.
//!
//! While a write waits for room, the session keeps reading (into its buffer, without
//! handling): a gateway that blocks on writing to us while we block on writing to it would
//! otherwise deadlock once both socket buffers are full.

use crate::ledger::{AckOutcome, Reply, Ticket};
use crate::loadgen::{Phase, Shared};
use crate::rng::IntMap;
use crate::traffic::Citizens;
use crate::wire::{self, Header};
use bytes::BytesMut;
use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;

/// What a session is bound as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends MOs and receives replies.
    Transceiver,
    /// Sends MOs only (one half of a pair).
    Transmitter,
    /// Receives replies only (the other half).
    Receiver,
}

impl Role {
    fn bind_command(self) -> u32 {
        match self {
            Role::Transceiver => wire::BIND_TRANSCEIVER,
            Role::Transmitter => wire::BIND_TRANSMITTER,
            Role::Receiver => wire::BIND_RECEIVER,
        }
    }
}

/// One session of a run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Index among the run's sessions, for messages.
    pub id: usize,
    /// How it binds.
    pub role: Role,
    /// Its index among the sessions that send MOs (its phones are those with
    /// `phone % senders == index`); `None` for a receiver.
    pub sender: Option<u32>,
}

/// Most MOs generated in one turn, so one turn never holds the ledger for long.
const MAX_BATCH: u64 = 2048;
/// First back-off after ESME_RTHROTTLED; doubles while it lasts.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// Longest back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Silence after which we send enquire_link.
const ENQUIRE_AFTER: Duration = Duration::from_secs(30);
/// How long to wait for unbind_resp.
const UNBIND_WAIT: Duration = Duration::from_secs(2);
/// How long connecting and binding may take.
const BIND_WAIT: Duration = Duration::from_secs(10);
/// Read buffer beyond which a blocked writer stops reading ahead.
const MAX_INBUF: usize = 8 << 20;
/// A concatenated reply whose parts stop coming is forgotten after this.
const PARTS_TIMEOUT: Duration = Duration::from_secs(60);

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Connects and binds; what the socket already holds after the bind_resp is returned too.
pub async fn connect(shared: &Shared, plan: &Plan) -> anyhow::Result<(TcpStream, BytesMut)> {
    let s = &shared.settings;
    let stream = tokio::time::timeout(BIND_WAIT, TcpStream::connect(&s.target))
        .await
        .map_err(|_| anyhow::anyhow!("connecting to {} timed out", s.target))?
        .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", s.target))?;
    stream.set_nodelay(true)?;
    let mut out = BytesMut::new();
    let command = plan.role.bind_command();
    wire::put_bind(&mut out, command, 1, &s.system_id, &s.password);
    write_all(&stream, &out, &mut BytesMut::new()).await?;
    let mut inbuf = BytesMut::with_capacity(64 * 1024);
    let wait = async {
        loop {
            while let Some((h, _)) = wire::next_pdu(&mut inbuf)? {
                if h.command_id == command | wire::RESP || h.command_id == wire::GENERIC_NACK {
                    if h.status != 0 {
                        anyhow::bail!(
                            "bind {} refused: {}",
                            plan.id,
                            crate::ledger::status_name(h.status)
                        );
                    }
                    return Ok(());
                }
            }
            stream.readable().await?;
            match stream.try_read_buf(&mut inbuf) {
                Ok(0) => anyhow::bail!("the gateway closed the connection during bind"),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
    };
    tokio::time::timeout(BIND_WAIT, wait)
        .await
        .map_err(|_| anyhow::anyhow!("bind {} got no answer in time", plan.id))??;
    Ok((stream, inbuf))
}

/// Writes all of `out`, reading ahead into `inbuf` while the socket is full.
async fn write_all(stream: &TcpStream, out: &[u8], inbuf: &mut BytesMut) -> std::io::Result<()> {
    let mut written = 0;
    while written < out.len() {
        match stream.try_write(&out[written..]) {
            Ok(n) => {
                written += n;
                continue;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        tokio::select! {
            r = stream.writable() => r?,
            r = stream.readable(), if inbuf.len() < MAX_INBUF => {
                r?;
                inbuf.reserve(64 * 1024);
                match stream.try_read_buf(inbuf) {
                    Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

/// Parts of a concatenated reply received so far.
#[derive(Debug)]
struct Partial {
    parts: Vec<Option<String>>,
    got: usize,
    first: Instant,
}

/// A bound session's state.
struct Session {
    shared: Arc<Shared>,
    plan: Plan,
    citizens: Option<Citizens>,
    seq: u32,
    /// submit_sm awaiting their response, by sequence number: the window.
    pending: IntMap<u32, Ticket>,
    /// MOs refused for now, with when to send them again.
    retries: VecDeque<(Instant, Ticket)>,
    parts: HashMap<(Vec<u8>, u16, u8), Partial>,
    /// MOs the rate schedule has asked for so far.
    scheduled: u64,
    /// MOs due but not yet sent (the window was full).
    owed: u64,
    paused_until: Option<Instant>,
    backoff: Duration,
    /// The send window in force: the configured window, halved on each transient refusal
    /// and grown back by one per window of accepted MOs.
    cwnd: f64,
    out: BytesMut,
    text: Vec<u8>,
    last_write: Instant,
    enquire_sent: Option<Instant>,
    unbind_sent: Option<Instant>,
    unbound: bool,
    peer_unbound: bool,
}

/// Runs a bound session until the run stops it (or the gateway closes it).
pub async fn serve(
    shared: Arc<Shared>,
    plan: Plan,
    stream: TcpStream,
    inbuf: BytesMut,
) -> anyhow::Result<()> {
    let citizens = plan.sender.map(|i| {
        Citizens::new(
            &shared.pop,
            &shared.rules,
            shared.settings.seed,
            i,
            shared.senders,
            shared.settings.mix,
        )
    });
    let cwnd = f64::from(shared.settings.window.max(1));
    let mut session = Session {
        shared,
        plan,
        citizens,
        seq: 1,
        pending: IntMap::default(),
        retries: VecDeque::new(),
        parts: HashMap::new(),
        scheduled: 0,
        owed: 0,
        paused_until: None,
        backoff: MIN_BACKOFF,
        cwnd,
        out: BytesMut::with_capacity(64 * 1024),
        text: Vec::with_capacity(256),
        last_write: Instant::now(),
        enquire_sent: None,
        unbind_sent: None,
        unbound: false,
        peer_unbound: false,
    };
    session.run(stream, inbuf).await
}

impl Session {
    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq % 0x7FFF_FFFF + 1;
        self.seq
    }

    async fn run(&mut self, stream: TcpStream, mut inbuf: BytesMut) -> anyhow::Result<()> {
        let tick_every = if self.plan.sender.is_some() {
            self.shared.settings.tick
        } else {
            Duration::from_millis(20)
        };
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let mut closed = false;
            if inbuf.is_empty() {
                tokio::select! {
                    biased;
                    r = stream.readable() => r?,
                    _ = tick.tick() => {}
                }
            }
            loop {
                if inbuf.capacity() - inbuf.len() < 16 * 1024 {
                    inbuf.reserve(64 * 1024);
                }
                match stream.try_read_buf(&mut inbuf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(_) if inbuf.len() < MAX_INBUF => {}
                    Ok(_) => break,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                }
            }
            let now = Instant::now();
            self.turn(&mut inbuf, now)?;
            let phase = self.shared.phase();
            if phase == Phase::Stopping && self.unbind_sent.is_none() && !self.peer_unbound {
                let seq = self.next_seq();
                wire::put_plain(&mut self.out, wire::UNBIND, seq);
                self.unbind_sent = Some(now);
            }
            if self.plan.sender.is_none()
                && self.enquire_sent.is_none()
                && now.duration_since(self.last_write) > ENQUIRE_AFTER
            {
                let seq = self.next_seq();
                wire::put_plain(&mut self.out, wire::ENQUIRE_LINK, seq);
                self.enquire_sent = Some(now);
            }
            if !self.out.is_empty() {
                write_all(&stream, &self.out, &mut inbuf).await?;
                self.out.clear();
                self.last_write = now;
            }
            if self.unbound
                || self.peer_unbound
                || self
                    .unbind_sent
                    .is_some_and(|t| now.duration_since(t) > UNBIND_WAIT)
            {
                return Ok(());
            }
            if closed {
                if phase == Phase::Stopping {
                    return Ok(());
                }
                anyhow::bail!(
                    "session {}: the gateway closed the connection",
                    self.plan.id
                );
            }
        }
    }

    /// Handles every complete PDU in `inbuf`, books the turn in the ledger, and queues the
    /// turn's MOs.
    fn turn(&mut self, inbuf: &mut BytesMut, now: Instant) -> anyhow::Result<()> {
        let mut acks: Vec<(Ticket, u32)> = Vec::new();
        let mut replies: Vec<Reply> = Vec::new();
        while let Some((h, body)) =
            wire::next_pdu(inbuf).map_err(|e| anyhow::anyhow!("session {}: {e}", self.plan.id))?
        {
            self.on_pdu(h, &body, now, &mut acks, &mut replies);
        }
        let shared = self.shared.clone();
        let phase = shared.phase();
        if phase != Phase::Sending && self.owed > 0 {
            shared
                .behind
                .fetch_add(self.owed, std::sync::atomic::Ordering::Relaxed);
            self.owed = 0;
        }
        let sending =
            self.plan.sender.is_some() && matches!(phase, Phase::Sending | Phase::Draining);
        if acks.is_empty() && replies.is_empty() && !sending {
            return Ok(());
        }
        let unix = unix_now();
        let settings = &shared.settings;
        let mut ledger = shared.ledger();
        let mut refused = false;
        for (t, status) in acks {
            match ledger.on_ack(t, status, now, unix) {
                AckOutcome::Retry => {
                    // Throttled, queue full, or a passing failure: the whole bind pauses
                    // and backs off, and its send window halves (once per pause), so
                    // refusals do not become a storm of resends.
                    if self.paused_until.is_none_or(|p| p <= now) {
                        self.paused_until = Some(now + self.backoff);
                        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                        self.cwnd = (self.cwnd / 2.0).max(1.0);
                    }
                    let due = self.paused_until.unwrap_or(now).max(now + MIN_BACKOFF);
                    self.retries.push_back((due, t));
                    refused = true;
                }
                AckOutcome::Accepted => {
                    // Additive increase: one more MO in flight per window's worth accepted.
                    self.cwnd = (self.cwnd + 1.0 / self.cwnd).min(f64::from(settings.window));
                }
                AckOutcome::Dropped | AckOutcome::Unknown => {}
            }
        }
        for r in replies {
            ledger.on_reply(r);
        }
        if !refused && self.paused_until.is_some_and(|t| t <= now) {
            self.paused_until = None;
            self.backoff = MIN_BACKOFF;
        }
        if !sending || self.paused_until.is_some_and(|t| t > now) {
            return Ok(());
        }
        let mut room = (self.cwnd as u64).saturating_sub(self.pending.len() as u64);
        while room > 0 {
            let Some(&(due, t)) = self.retries.front() else {
                break;
            };
            if due > now {
                break;
            }
            self.retries.pop_front();
            let Some((text, phone)) = ledger.text_of(t) else {
                continue;
            };
            let msisdn = shared.pop.msisdn(phone);
            let dc = wire::encode_text(text, &mut self.text);
            let seq = self.next_seq();
            wire::put_submit_sm(
                &mut self.out,
                seq,
                &msisdn,
                &settings.short_number,
                dc,
                &self.text,
            );
            ledger.resent(t, now, unix);
            self.pending.insert(seq, t);
            room -= 1;
        }
        if phase != Phase::Sending {
            return Ok(());
        }
        let awaiting = ledger.outstanding() as u64;
        let room = room.min(settings.max_in_flight.saturating_sub(awaiting));
        let new = match settings.rate_per_sender(shared.senders) {
            Some(rate) => {
                let start = shared.start().unwrap_or(now);
                let due = (now.duration_since(start).as_secs_f64() * rate) as u64;
                if due > self.scheduled {
                    self.owed += due - self.scheduled;
                    self.scheduled = due;
                }
                self.owed.min(room).min(MAX_BATCH)
            }
            None => room.min(MAX_BATCH),
        };
        let Some(citizens) = self.citizens.as_mut() else {
            return Ok(());
        };
        if !citizens.has_phones() {
            return Ok(());
        }
        for _ in 0..new {
            let sms = {
                let l = &*ledger;
                citizens.next(&shared.pop, &shared.rules, &|p, d, c| l.busy(p, d, c))
            };
            let msisdn = shared.pop.msisdn(sms.phone);
            let dc = wire::encode_text(&sms.text, &mut self.text);
            self.seq = self.seq % 0x7FFF_FFFF + 1;
            let seq = self.seq;
            wire::put_submit_sm(
                &mut self.out,
                seq,
                &msisdn,
                &settings.short_number,
                dc,
                &self.text,
            );
            let t = ledger.register(sms, now, unix);
            self.pending.insert(seq, t);
        }
        if settings.rate_per_sender(shared.senders).is_some() {
            self.owed -= new;
        }
        Ok(())
    }

    fn on_pdu(
        &mut self,
        h: Header,
        body: &[u8],
        now: Instant,
        acks: &mut Vec<(Ticket, u32)>,
        replies: &mut Vec<Reply>,
    ) {
        match h.command_id {
            id if id == wire::SUBMIT_SM | wire::RESP || id == wire::GENERIC_NACK => {
                if let Some(t) = self.pending.remove(&h.sequence) {
                    acks.push((t, h.status));
                }
            }
            wire::DELIVER_SM => {
                wire::put_resp(&mut self.out, wire::DELIVER_SM, h.sequence, true);
                if let Some(reply) = self.on_deliver_sm(body, now) {
                    replies.push(reply);
                }
            }
            wire::ENQUIRE_LINK => {
                wire::put_resp(&mut self.out, wire::ENQUIRE_LINK, h.sequence, false)
            }
            id if id == wire::ENQUIRE_LINK | wire::RESP => self.enquire_sent = None,
            wire::UNBIND => {
                wire::put_resp(&mut self.out, wire::UNBIND, h.sequence, false);
                self.peer_unbound = true;
            }
            id if id == wire::UNBIND | wire::RESP => self.unbound = true,
            id if id & wire::RESP != 0 => {}
            _ => {
                // A request we do not serve: generic_nack with ESME_RINVCMDID.
                let mut nack = BytesMut::new();
                wire::put_plain(&mut nack, wire::GENERIC_NACK, h.sequence);
                nack[11] = 0x03;
                self.out.extend_from_slice(&nack);
            }
        }
    }

    /// A deliver_sm's text, once all its parts are here.
    fn on_deliver_sm(&mut self, body: &[u8], now: Instant) -> Option<Reply> {
        let Some(d) = wire::read_deliver_sm(body) else {
            return Some(self.reply(b"?", "<malformed deliver_sm>".into(), now));
        };
        let (concat, user_data) = if d.esm_class & wire::UDHI != 0 {
            match icaze::smpp::text::parse_udh(d.message) {
                Ok(udh) => (
                    udh.concat.map(|c| (c.reference, c.total, c.seq)),
                    udh.user_data,
                ),
                Err(_) => (None, d.message),
            }
        } else {
            (d.sar, d.message)
        };
        let text = icaze::smpp::text::decode(d.data_coding, user_data)
            .unwrap_or_else(|e| format!("<undecodable: {e}>"));
        let Some((reference, total, seq)) = concat.filter(|c| c.1 > 1) else {
            return Some(self.reply(d.destination, text, now));
        };
        if self.parts.len() > 10_000 {
            self.parts
                .retain(|_, p| now.duration_since(p.first) < PARTS_TIMEOUT);
        }
        let key = (d.destination.to_vec(), reference, total);
        let partial = self.parts.entry(key.clone()).or_insert_with(|| Partial {
            parts: vec![None; usize::from(total)],
            got: 0,
            first: now,
        });
        let slot = partial.parts.get_mut(usize::from(seq).checked_sub(1)?)?;
        if slot.is_none() {
            partial.got += 1;
        }
        *slot = Some(text);
        if partial.got < usize::from(total) {
            return None;
        }
        let done = self.parts.remove(&key)?;
        let text: String = done.parts.into_iter().flatten().collect();
        Some(self.reply(&key.0, text, now))
    }

    fn reply(&self, destination: &[u8], text: String, now: Instant) -> Reply {
        Reply {
            msisdn: String::from_utf8_lossy(destination).into_owned(),
            phone: self.shared.pop.phone_of(destination),
            classified: self.shared.classifier.classify(&text),
            text,
            arrived: now,
        }
    }
}
