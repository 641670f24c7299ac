//! One SMPP session of the simulated operator, on either side of SMPP: loadgen's ESME binds
//! to the gateway, sends citizens' MOs as submit_sm and answers the replies' deliver_sm;
//! smsc's sessions are the gateway's binds to it, carry MOs as deliver_sm and answer the
//! replies' submit_sm with a message_id. The [`Side`] says which; the loop is the same.
//!
//! A session is one task with one loop. Each turn it takes everything the socket has
//! buffered, handles every complete PDU (the MOs' acknowledgements, replies, enquire_link,
//! unbind), takes the ledger's lock once to book the turn's acknowledgements and replies and
//! to generate the turn's new MOs, and writes everything it owes (reply responses,
//! enquire_link_resp, MOs) in one write. So system calls grow with turns (at most one
//! per pacing tick or per read), not with messages, and the gateway keeps most of the
//! machine.
//!
//! While a write waits for room, the session keeps reading (into its buffer, without
//! handling): a gateway that blocks on writing to us while we block on writing to it would
//! otherwise deadlock once both socket buffers are full.
//!
//! The phones and their traffic belong to a [`Slot`], not to a session: a session that can
//! carry MOs takes a free slot when sending starts and gives it back when it ends, with the
//! MOs the gateway had not acknowledged. So when the gateway binds again after losing a
//! session (smsc), the new session carries on with the same citizens and sends those MOs
//! again, as an SMSC redelivers after a lost connection.

use crate::ledger::{AckOutcome, Reply, Ticket};
use crate::rng::IntMap;
use crate::run::{Phase, Settings, Shared};
use crate::traffic::Citizens;
use crate::wire::{self, Header};
use bytes::BytesMut;
use icaze::smpp::Status;
use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;

/// Which side of SMPP the simulator plays, and so which commands carry what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// An operator's ESME bound to the gateway (loadgen): MOs go out as submit_sm, replies
    /// come in as deliver_sm and are answered with an empty message_id.
    Esme,
    /// An operator's SMSC the gateway binds to (smsc): MOs go out as deliver_sm, replies come
    /// in as submit_sm and are answered with a message_id, as an SMSC accepts a message.
    Smsc,
}

impl Side {
    /// The command that carries a citizen's MO to the gateway.
    pub fn mo_command(self) -> u32 {
        match self {
            Side::Esme => wire::SUBMIT_SM,
            Side::Smsc => wire::DELIVER_SM,
        }
    }

    /// The command that carries the gateway's reply to the citizen.
    pub fn reply_command(self) -> u32 {
        match self {
            Side::Esme => wire::DELIVER_SM,
            Side::Smsc => wire::SUBMIT_SM,
        }
    }

    /// `loadgen` or `smsc`: the subcommand that plays this side, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Side::Esme => "loadgen",
            Side::Smsc => "smsc",
        }
    }
}

/// How the ESME of a session bound: loadgen's own bind, or the gateway's bind to smsc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends and receives.
    Transceiver,
    /// The ESME only sends (one half of a pair).
    Transmitter,
    /// The ESME only receives (the other half).
    Receiver,
}

impl Role {
    /// The bind command that asks for this role.
    pub fn bind_command(self) -> u32 {
        match self {
            Role::Transceiver => wire::BIND_TRANSCEIVER,
            Role::Transmitter => wire::BIND_TRANSMITTER,
            Role::Receiver => wire::BIND_RECEIVER,
        }
    }

    /// The role a bind command asks for; `None` if it is no bind.
    pub fn of_bind(command_id: u32) -> Option<Role> {
        match command_id {
            wire::BIND_TRANSCEIVER => Some(Role::Transceiver),
            wire::BIND_TRANSMITTER => Some(Role::Transmitter),
            wire::BIND_RECEIVER => Some(Role::Receiver),
            _ => None,
        }
    }

    /// Whether a session bound so can carry citizens' MOs from the simulator: what the ESME
    /// sends when it is the ESME (loadgen), what it receives when the gateway is (smsc).
    pub fn carries_mo(self, side: Side) -> bool {
        match self {
            Role::Transceiver => true,
            Role::Transmitter => side == Side::Esme,
            Role::Receiver => side == Side::Smsc,
        }
    }

    /// Whether a session bound so can carry the gateway's replies.
    pub fn carries_replies(self, side: Side) -> bool {
        self == Role::Transceiver || !self.carries_mo(side)
    }
}

/// One session of a run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Index among the run's sessions, for messages.
    pub id: usize,
    /// How its ESME bound.
    pub role: Role,
}

/// A share of the population's phones (`phone % slots == index`) with its traffic state and
/// the MOs waiting to be sent again. Held by one MO-carrying session at a time, so every
/// request of a document reaches the gateway through one session, in order.
#[derive(Debug)]
pub struct Slot {
    citizens: Citizens,
    /// MOs the rate schedule has asked of this slot so far.
    scheduled: u64,
    /// MOs due but not yet sent (the window was full).
    owed: u64,
    /// MOs refused for now (or unacknowledged when their session ended), with when to send
    /// them again.
    retries: VecDeque<(Instant, Ticket)>,
}

impl Slot {
    /// A slot for these citizens.
    pub fn new(citizens: Citizens) -> Slot {
        Slot {
            citizens,
            scheduled: 0,
            owed: 0,
            retries: VecDeque::new(),
        }
    }
}

/// The run's slots not held by a session.
#[derive(Debug, Default)]
pub struct Slots {
    free: Mutex<Vec<Slot>>,
    /// How many are free: sessions without a slot look here, not at the lock, every turn.
    available: AtomicUsize,
    count: AtomicU32,
}

impl Slots {
    /// Sets the run's slots, once, before sending starts.
    pub fn fill(&self, slots: Vec<Slot>) {
        let mut free = self.lock();
        self.count.store(slots.len() as u32, Ordering::Release);
        self.available.store(slots.len(), Ordering::Release);
        // Reversed, so that sessions claim slot 0 first.
        *free = slots.into_iter().rev().collect();
    }

    /// Slots in the run: the MO-carrying sessions when sending started.
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn claim(&self) -> Option<Slot> {
        if self.available.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut free = self.lock();
        let slot = free.pop();
        self.available.store(free.len(), Ordering::Release);
        slot
    }

    fn release(&self, slot: Slot) {
        let mut free = self.lock();
        free.push(slot);
        self.available.store(free.len(), Ordering::Release);
    }

    /// MOs still owed by free slots: the schedule asked for them and no session sent them.
    /// Taken once, at the end of the run, when every session has given its slot back.
    pub fn take_owed(&self) -> u64 {
        self.lock()
            .iter_mut()
            .map(|s| std::mem::take(&mut s.owed))
            .sum()
    }
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
/// Read buffer beyond which a blocked writer stops reading ahead.
const MAX_INBUF: usize = 8 << 20;
/// A concatenated reply whose parts stop coming is forgotten after this.
const PARTS_TIMEOUT: Duration = Duration::from_secs(60);

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Connects to the gateway and binds as `plan` says (loadgen); what the socket already holds
/// after the bind_resp is returned too. Each step may take `settings.bind_timeout`.
pub async fn connect(s: &Settings, plan: &Plan) -> anyhow::Result<(TcpStream, BytesMut)> {
    let wait_for = s.bind_timeout;
    let stream = tokio::time::timeout(wait_for, TcpStream::connect(&s.target))
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
    tokio::time::timeout(wait_for, wait)
        .await
        .map_err(|_| anyhow::anyhow!("bind {} got no answer in time", plan.id))??;
    Ok((stream, inbuf))
}

/// Writes all of `out`, reading ahead into `inbuf` while the socket is full.
pub async fn write_all(
    stream: &TcpStream,
    out: &[u8],
    inbuf: &mut BytesMut,
) -> std::io::Result<()> {
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
    side: Side,
    /// Whether this session can carry MOs (it then takes a slot when one is free).
    carries_mo: bool,
    /// The phones it sends for, while it holds them.
    slot: Option<Slot>,
    seq: u32,
    /// MOs awaiting their acknowledgement, by sequence number: the window.
    pending: IntMap<u32, Ticket>,
    parts: HashMap<(Vec<u8>, u16, u8), Partial>,
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

/// Runs a bound session until the run stops it (or the gateway closes or unbinds it).
pub async fn serve(
    shared: Arc<Shared>,
    plan: Plan,
    stream: TcpStream,
    inbuf: BytesMut,
) -> anyhow::Result<()> {
    let cwnd = f64::from(shared.settings.window.max(1));
    let side = shared.side;
    let mut session = Session {
        shared,
        plan,
        side,
        carries_mo: plan.role.carries_mo(side),
        slot: None,
        seq: 1,
        pending: IntMap::default(),
        parts: HashMap::new(),
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

/// The next sequence number (1 to 0x7FFFFFFF, then around again).
fn next_seq(seq: &mut u32) -> u32 {
    *seq = *seq % 0x7FFF_FFFF + 1;
    *seq
}

impl Drop for Session {
    /// However the session ends (unbind, a closed socket, an error, the run aborting it),
    /// its slot goes back to the run with the MOs the gateway never acknowledged: their fate
    /// is unknown, so the next session to take the slot sends them again.
    fn drop(&mut self) {
        let Some(mut slot) = self.slot.take() else {
            return;
        };
        let mut unacked: Vec<(u32, Ticket)> = self.pending.drain().collect();
        if !unacked.is_empty() {
            unacked.sort_unstable_by_key(|&(seq, _)| seq);
            let now = Instant::now();
            let mut ledger = self.shared.ledger();
            for (_, t) in unacked {
                ledger.unacknowledged(t);
                slot.retries.push_back((now, t));
            }
        }
        self.shared.slots.release(slot);
    }
}

impl Session {
    async fn run(&mut self, stream: TcpStream, mut inbuf: BytesMut) -> anyhow::Result<()> {
        let tick_every = if self.carries_mo {
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
                let seq = next_seq(&mut self.seq);
                wire::put_plain(&mut self.out, wire::UNBIND, seq);
                self.unbind_sent = Some(now);
            }
            if self.slot.is_none()
                && self.enquire_sent.is_none()
                && now.duration_since(self.last_write) > ENQUIRE_AFTER
            {
                let seq = next_seq(&mut self.seq);
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
        let sending = self.carries_mo && matches!(phase, Phase::Sending | Phase::Draining);
        if sending && self.slot.is_none() {
            self.slot = shared.slots.claim();
        }
        if let Some(slot) = self.slot.as_mut()
            && phase != Phase::Sending
            && slot.owed > 0
        {
            shared.behind.fetch_add(slot.owed, Ordering::Relaxed);
            slot.owed = 0;
        }
        let sending = sending && self.slot.is_some();
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
                    // Only a slot's holder has MOs to be acknowledged, so the slot is here.
                    if let Some(slot) = self.slot.as_mut() {
                        slot.retries.push_back((due, t));
                    }
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
        let Some(slot) = self.slot.as_mut() else {
            return Ok(());
        };
        let mo_command = self.side.mo_command();
        let mut room = (self.cwnd as u64).saturating_sub(self.pending.len() as u64);
        while room > 0 {
            let Some(&(due, t)) = slot.retries.front() else {
                break;
            };
            if due > now {
                break;
            }
            slot.retries.pop_front();
            let Some((text, phone)) = ledger.text_of(t) else {
                continue;
            };
            let msisdn = shared.pop.msisdn(phone);
            let dc = wire::encode_text(text, &mut self.text);
            let seq = next_seq(&mut self.seq);
            wire::put_mo(
                &mut self.out,
                mo_command,
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
        let rate = settings.rate_per_sender(shared.slots.count());
        let new = match rate {
            Some(rate) => {
                let start = shared.start().unwrap_or(now);
                let due = (now.duration_since(start).as_secs_f64() * rate) as u64;
                if due > slot.scheduled {
                    slot.owed += due - slot.scheduled;
                    slot.scheduled = due;
                }
                slot.owed.min(room).min(MAX_BATCH)
            }
            None => room.min(MAX_BATCH),
        };
        if !slot.citizens.has_phones() {
            return Ok(());
        }
        for _ in 0..new {
            let sms = {
                let l = &*ledger;
                slot.citizens
                    .next(&shared.pop, &shared.rules, &|p, d, c| l.busy(p, d, c))
            };
            let msisdn = shared.pop.msisdn(sms.phone);
            let dc = wire::encode_text(&sms.text, &mut self.text);
            let seq = next_seq(&mut self.seq);
            wire::put_mo(
                &mut self.out,
                mo_command,
                seq,
                &msisdn,
                &settings.short_number,
                dc,
                &self.text,
            );
            let t = ledger.register(sms, now, unix);
            self.pending.insert(seq, t);
        }
        if rate.is_some() {
            slot.owed -= new;
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
        let (mo, reply) = (self.side.mo_command(), self.side.reply_command());
        match h.command_id {
            id if id == mo | wire::RESP || id == wire::GENERIC_NACK => {
                if let Some(t) = self.pending.remove(&h.sequence) {
                    acks.push((t, h.status));
                }
            }
            id if id == reply => {
                match self.side {
                    Side::Esme => wire::put_resp(&mut self.out, reply, h.sequence, true),
                    Side::Smsc => {
                        let id = self.shared.message_ids.fetch_add(1, Ordering::Relaxed);
                        wire::put_resp_with_id(&mut self.out, reply, h.sequence, id);
                        self.receipt(body, id);
                    }
                }
                if let Some(reply) = self.on_reply_sm(body, now) {
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
            id if Role::of_bind(id).is_some() => {
                wire::put_nack(&mut self.out, h.sequence, Status::ESME_RINVBNDSTS.code())
            }
            _ => wire::put_nack(&mut self.out, h.sequence, Status::ESME_RINVCMDID.code()),
        }
    }

    /// smsc with receipts on: a receipt for the submit_sm `body` accepted as `id`, when it
    /// asked for one and this session can carry it (a transceiver; a transmitter cannot
    /// send deliver_sm).
    fn receipt(&mut self, body: &[u8], id: u64) {
        let Some(r) = &self.shared.settings.receipts else {
            return;
        };
        let Some(sm) = wire::read_deliver_sm(body) else {
            return;
        };
        if sm.registered_delivery & 0x03 == 0 || !self.carries_mo {
            return;
        }
        if sm.registered_delivery & 0x03 == 2 && r.stat == "DELIVRD" {
            // Asked for a receipt on failure only.
            return;
        }
        let msisdn = String::from_utf8_lossy(sm.destination).into_owned();
        let seq = next_seq(&mut self.seq);
        wire::put_receipt(
            &mut self.out,
            seq,
            &msisdn,
            &self.shared.settings.short_number,
            &r.ids.render(id),
            &r.stat,
            r.tlvs,
        );
    }

    /// A reply's text (from a deliver_sm, or a submit_sm on the SMSC side), once all its
    /// parts are here.
    fn on_reply_sm(&mut self, body: &[u8], now: Instant) -> Option<Reply> {
        let Some(d) = wire::read_deliver_sm(body) else {
            let what = match self.side {
                Side::Esme => "<malformed deliver_sm>",
                Side::Smsc => "<malformed submit_sm>",
            };
            return Some(self.reply(b"?", what.into(), now));
        };
        let (concat, user_data) = if d.esm_class & wire::UDHI != 0 {
            crate::text::split_udh(d.message).unwrap_or((None, d.message))
        } else {
            (d.sar, d.message)
        };
        let text = crate::text::decode(d.data_coding, user_data)
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
