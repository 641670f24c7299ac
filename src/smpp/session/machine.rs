//! One SMPP session as a state machine: decoded PDUs, timer expiries and the gateway's
//! answers in; bytes to write and events to hand over out. No socket, no clock of its own:
//! every call takes the instant it happens at, so tests drive it with paused or made-up
//! time.
//!
//! What the session decides by itself: which commands the bind state admits (refusals
//! answered with the table's status), enquire_link and its answer, unbind in both
//! directions, `generic_nack` on a PDU it cannot use, our own bind as a connector (sent, its
//! answer, its timeout), the keep-alive, the delivery window's verdicts, and the drain (an
//! unbind once nothing is owed or the grace period is over, then a close when the peer
//! does not answer it). What it hands over ([`Event`]): a bind request to check against
//! the operators, a short message to decide, the peer's answers to our messages, and why
//! it is closing ([`Close`]), so the caller can log it and leave.

use std::time::Duration;

use bytes::BytesMut;
use rusmpp::{CommandId, Pdu};
use tokio::time::Instant;

use super::bind::{BindKind, BindRequest, BindState, Role};
use super::delivery::{Answer, Delivery, Policy};
use super::intake::Intake;
use super::keepalive::{Due, Keepalive};
use crate::smpp::codec::{self, DecodeError, Frame, ReplyPart};
use crate::smpp::response::Response;
use crate::smpp::status::Status;

/// How long to wait for the peer's unbind_resp before closing anyway.
pub const UNBIND_WAIT: Duration = Duration::from_secs(2);

/// The session's timers, from `[smpp]` config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Quiet time on a bound session after which we send enquire_link.
    pub enquire_link: Duration,
    /// Silence after which we unbind.
    pub inactivity: Duration,
    /// How long a request of ours (bind, enquire_link, a message part) may go unanswered.
    pub response: Duration,
    /// How long the parts of a concatenated MO may take to arrive.
    pub concat: Duration,
    /// How long the peer has to bind once connected (as MC; as ESME our own bind waits for
    /// `response`).
    pub bind: Duration,
    /// How long a PDU whose first bytes arrived has to arrive whole.
    pub pdu: Duration,
}

/// Why a session is closing: what the caller logs before it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// The peer unbound, or answered our unbind.
    Unbound,
    /// Our unbind went unanswered for [`UNBIND_WAIT`].
    UnbindUnanswered,
    /// The byte stream can no longer be split into PDUs.
    Framing,
    /// The SMSC refused our bind (connector mode), with its status.
    BindRefused(Status),
    /// The SMSC did not answer our bind within the response timeout.
    BindUnanswered,
    /// Our enquire_link went unanswered: the link is dead.
    EnquireUnanswered,
    /// A message part of ours went unanswered for the response timeout: the peer is
    /// unresponsive, and what it owed belongs on another bind.
    Unresponsive,
    /// Draining with no bind to unbind.
    Drained,
    /// Silent for the inactivity timeout without ever binding.
    Inactive,
    /// Connected for the bind timeout without binding.
    NotBound,
    /// We refused the peer's bind: the session ends after the answer, so every guess at a
    /// password costs a new connection.
    BindDenied,
    /// A PDU began to arrive and did not complete within the PDU timeout.
    PduIncomplete,
}

/// What a decoded PDU means for the caller.
#[derive(Debug)]
pub enum Event {
    /// Nothing to do: the session answered it (enquire_link, unbind, a refused or unknown
    /// command) or it settled something of the session's own (enquire_link_resp, a stray
    /// response).
    Handled,
    /// A bind request the session's state admits: check it, then answer with
    /// [`Session::accept_bind`] or [`Session::refuse_bind`].
    BindRequested {
        /// Which bind command (its response mirrors it).
        command_id: CommandId,
        /// Its sequence number.
        sequence_number: u32,
        /// The PDU, read with [`BindRequest::from_pdu`].
        pdu: Pdu,
    },
    /// The SMSC accepted our bind: the session is bound with this kind.
    Bound(BindKind),
    /// A short message (submit_sm, data_sm, deliver_sm) the bind state admits: decide it,
    /// then answer with [`Session::respond`].
    Message {
        /// Which command (its response mirrors it).
        command_id: CommandId,
        /// Its sequence number.
        sequence_number: u32,
        /// The PDU.
        pdu: Pdu,
    },
    /// The peer's answer to one of our message parts, as the delivery window reads it.
    Answered(Answer<u64>),
    /// The SMSC accepted one of our submit_sm parts and named it with a message_id (the id
    /// its delivery receipt will carry); otherwise as [`Event::Answered`].
    Accepted {
        /// What the answer means for the message, as for [`Event::Answered`].
        answer: Answer<u64>,
        /// The part it accepted.
        part: AcceptedPart,
    },
    /// The session is closing for this reason; nothing more will be admitted.
    Closing(Close),
}

/// A part of ours the SMSC accepted, and the message_id it gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedPart {
    /// The message's key (the gateway's reply id).
    pub id: u64,
    /// Which part (0-based).
    pub part: usize,
    /// The SMSC's message_id, as it wrote it.
    pub message_id: String,
}

/// What a timer turn found, for the caller to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Nothing worth a line.
    Quiet,
    /// The peer has been silent for the inactivity timeout: we sent unbind.
    Inactive,
    /// The session started closing for this reason.
    Closing(Close),
}

/// One SMPP session: bind state, keep-alive, the intake of concatenated parts, the delivery
/// window, the drain, and the bytes owed to the peer.
#[derive(Debug)]
pub struct Session {
    role: Role,
    timers: Timers,
    state: BindState,
    next_seq: u32,
    out: BytesMut,
    keepalive: Keepalive,
    /// Concatenated MOs in progress.
    pub intake: Intake,
    delivery: Delivery<u64>,
    /// Our own bind (connector mode): its sequence number, kind and when it went.
    bind_sent: Option<(u32, BindKind, Instant)>,
    draining: Option<Instant>,
    unbind_sent: Option<Instant>,
    closing: Option<Close>,
    /// When the connection opened: the peer must bind by `opened + timers.bind`.
    opened: Instant,
    /// Since when a PDU has been partly read.
    partial_since: Option<Instant>,
}

impl Session {
    /// A new, unbound session playing `role`, its timers starting at `now`.
    pub fn new(role: Role, timers: Timers, now: Instant) -> Self {
        Session {
            role,
            timers,
            state: BindState::Open,
            next_seq: 0,
            out: BytesMut::with_capacity(16 * 1024),
            keepalive: Keepalive::new(timers.enquire_link, timers.inactivity, timers.response, now),
            intake: Intake::new(timers.concat),
            delivery: Delivery::new(Policy {
                window: 1,
                response_timeout: timers.response,
                backoff: timers.response,
                max_backoff: timers.response,
            }),
            bind_sent: None,
            draining: None,
            unbind_sent: None,
            closing: None,
            opened: now,
            partial_since: None,
        }
    }

    /// Which side we play.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The bind state.
    pub fn state(&self) -> BindState {
        self.state
    }

    /// Why the session is closing, once it is: the caller writes what is owed and leaves.
    pub fn closing(&self) -> Option<Close> {
        self.closing
    }

    /// Whether shutdown asked this session to drain.
    pub fn is_draining(&self) -> bool {
        self.draining.is_some()
    }

    /// The bytes to write to the peer; the caller takes them off the front as they go.
    pub fn out(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    /// The replies this bind still owes (started, not delivered), to go back to the queue
    /// when it closes.
    pub fn owed(&mut self) -> impl Iterator<Item = u64> + '_ {
        self.delivery.owed()
    }

    fn seq(&mut self) -> u32 {
        self.next_seq = self.next_seq % 0x7FFF_FFFF + 1;
        self.next_seq
    }

    fn close(&mut self, why: Close) -> Option<Close> {
        if self.closing.is_some() {
            return None;
        }
        self.closing = Some(why);
        Some(why)
    }

    /// Connector mode: sends our bind `request` of `kind` at `now`.
    pub fn dial(&mut self, kind: BindKind, request: &Pdu, now: Instant) {
        let seq = self.seq();
        codec::encode(&mut self.out, seq, Status::ESME_ROK, request);
        self.bind_sent = Some((seq, kind, now));
    }

    /// After a read at `now`: whether what is buffered ends in a partial PDU. One that stays
    /// partial for the PDU timeout closes the session, so a peer trickling bytes cannot hold
    /// a connection (only whole PDUs count as hearing from the peer).
    pub fn buffered(&mut self, now: Instant, partial: bool) {
        if !partial {
            self.partial_since = None;
        } else if self.partial_since.is_none() {
            self.partial_since = Some(now);
        }
    }

    /// A PDU that could not be decoded arrived at `now`: answers it (generic_nack or its own
    /// response) and, when the stream is broken, starts closing. Returns whether the
    /// connection must stop reading.
    pub fn on_decode_error(&mut self, error: &DecodeError, now: Instant) -> bool {
        self.keepalive.heard(now);
        if let Some(r) = error.response() {
            r.encode(&mut self.out);
        }
        if error.is_fatal() {
            self.close(Close::Framing);
        }
        error.is_fatal()
    }

    /// A decoded PDU arrived at `now`.
    pub fn on_frame(&mut self, frame: Frame, now: Instant) -> Event {
        self.keepalive.heard(now);
        let (command_id, seq) = (frame.command_id, frame.sequence_number);
        let answers_ours = matches!(
            frame.pdu,
            Pdu::DeliverSmResp(_) | Pdu::SubmitSmResp(_) | Pdu::GenericNack
        ) && self.bind_sent.is_none();
        if self.closing.is_some() || self.state == BindState::Unbound {
            // Past unbind: an answer to one of our parts still settles it (so it is not
            // delivered twice), requests are refused.
            if answers_ours {
                return Event::Answered(self.delivery.answer(seq, frame.status, now));
            }
            if !matches!(frame.pdu, Pdu::UnbindResp | Pdu::Unbind | Pdu::EnquireLink) {
                self.refuse(command_id, seq, Status::ESME_RINVBNDSTS);
                return Event::Handled;
            }
        }
        if let Err(status) = self.state.admit(self.role, command_id) {
            self.refuse(command_id, seq, status);
            return Event::Handled;
        }
        match frame.pdu {
            Pdu::BindTransmitter(_) | Pdu::BindReceiver(_) | Pdu::BindTransceiver(_) => {
                Event::BindRequested {
                    command_id,
                    sequence_number: seq,
                    pdu: frame.pdu,
                }
            }
            Pdu::SubmitSm(_) | Pdu::DataSm(_) | Pdu::DeliverSm(_) => Event::Message {
                command_id,
                sequence_number: seq,
                pdu: frame.pdu,
            },
            Pdu::BindTransmitterResp(_)
            | Pdu::BindReceiverResp(_)
            | Pdu::BindTransceiverResp(_) => self.on_bind_resp(seq, frame.status),
            Pdu::SubmitSmResp(resp) if frame.status.is_ok() && !resp.message_id().is_empty() => {
                let sent = self.delivery.part_of(seq);
                let answer = self.delivery.answer(seq, frame.status, now);
                match sent {
                    Some((id, part)) => Event::Accepted {
                        answer,
                        part: AcceptedPart {
                            id,
                            part,
                            message_id: resp.message_id().as_str().to_string(),
                        },
                    },
                    None => Event::Answered(answer),
                }
            }
            Pdu::DeliverSmResp(_) | Pdu::SubmitSmResp(_) | Pdu::DataSmResp(_) => {
                Event::Answered(self.delivery.answer(seq, frame.status, now))
            }
            Pdu::GenericNack => {
                if self.bind_sent.is_some_and(|(s, _, _)| s == seq) {
                    self.on_bind_resp(seq, frame.status)
                } else {
                    Event::Answered(self.delivery.answer(seq, frame.status, now))
                }
            }
            Pdu::EnquireLink => {
                codec::encode(&mut self.out, seq, Status::ESME_ROK, &Pdu::EnquireLinkResp);
                Event::Handled
            }
            Pdu::EnquireLinkResp => {
                self.keepalive.answered(seq);
                Event::Handled
            }
            Pdu::Unbind => {
                codec::encode(&mut self.out, seq, Status::ESME_ROK, &Pdu::UnbindResp);
                self.state = BindState::Unbound;
                self.close(Close::Unbound);
                Event::Closing(Close::Unbound)
            }
            // Only an answer to our own unbind ends the session: a stray one (found by
            // fuzzing: a bound peer sending unbind_resp to nothing closed its bind) is ignored.
            Pdu::UnbindResp if self.unbind_sent.is_some() => {
                self.close(Close::Unbound);
                Event::Closing(Close::Unbound)
            }
            Pdu::UnbindResp => Event::Handled,
            other => {
                // Requests we do not serve (query_sm, cancel_sm, replace_sm, submit_multi,
                // broadcast_sm): their own response with ESME_RINVCMDID. Stray responses
                // (and outbind, alert_notification): ignored.
                self.refuse(other.command_id(), seq, Status::ESME_RINVCMDID);
                Event::Handled
            }
        }
    }

    fn refuse(&mut self, command_id: CommandId, seq: u32, status: Status) {
        if let Some(r) = Response::error_for(command_id, seq, status) {
            r.encode(&mut self.out);
        }
    }

    /// The SMSC's answer to our bind (connector mode).
    fn on_bind_resp(&mut self, seq: u32, status: Status) -> Event {
        let Some((sent, kind, _)) = self.bind_sent else {
            return Event::Handled;
        };
        if sent != seq {
            return Event::Handled;
        }
        self.bind_sent = None;
        if !status.is_ok() {
            self.close(Close::BindRefused(status));
            return Event::Closing(Close::BindRefused(status));
        }
        self.state = BindState::Bound(kind);
        Event::Bound(kind)
    }

    /// Accepts the bind request [`Event::BindRequested`] handed over: bound with `kind`,
    /// delivering with `policy`; answered in the peer's `interface_version` with our
    /// `system_id`.
    pub fn accept_bind(
        &mut self,
        command_id: CommandId,
        seq: u32,
        request: &BindRequest<'_>,
        system_id: &str,
        policy: Policy,
    ) {
        match self.state.bind(request.kind) {
            Ok(state) => self.state = state,
            Err(status) => return self.refuse(command_id, seq, status),
        }
        self.delivery = Delivery::new(policy);
        if let Some(r) = Response::bind_resp(
            command_id,
            seq,
            Status::ESME_ROK,
            system_id,
            request.interface_version,
        ) {
            r.encode(&mut self.out);
        }
    }

    /// Refuses a bind request with `status` (unknown system_id, wrong password, too many
    /// binds, draining) and closes the session after the answer.
    pub fn refuse_bind(&mut self, command_id: CommandId, seq: u32, status: Status) {
        self.refuse(command_id, seq, status);
        self.close(Close::BindDenied);
    }

    /// Connector mode: the SMSC accepted our bind; deliver with `policy`.
    pub fn deliver_with(&mut self, policy: Policy) {
        self.delivery = Delivery::new(policy);
    }

    /// Answers a short message handed over as [`Event::Message`]: submit_sm_resp,
    /// data_sm_resp or deliver_sm_resp with `status` and our `message_id`.
    pub fn respond(&mut self, command_id: CommandId, seq: u32, status: Status, message_id: &str) {
        let (resp, message_id) = match command_id {
            CommandId::DataSm => (CommandId::DataSmResp, message_id),
            // deliver_sm_resp's message_id is unused (NULL) in SMPP 3.4, whoever sent it: an
            // SMSC in connector mode, or an aggregator sending MOs as deliver_sm.
            CommandId::DeliverSm => (CommandId::DeliverSmResp, ""),
            _ => (CommandId::SubmitSmResp, message_id),
        };
        codec::encode_message_id_resp(&mut self.out, resp, seq, status, message_id);
    }

    /// Whether this session should take another message to send now: bound to send
    /// messages, not unbinding or closing, and the window has room.
    pub fn can_send(&self, now: Instant) -> bool {
        self.state.sends_messages(self.role)
            && self.unbind_sent.is_none()
            && self.closing.is_none()
            && self.delivery.has_room(now)
    }

    /// Takes message `id` of `parts` parts to deliver, all due at `now`.
    pub fn start(&mut self, id: u64, parts: usize, now: Instant) {
        self.delivery.start(id, parts, now);
    }

    /// Sends the parts whose time has come, within the window: `part(id, n)` gives part `n`
    /// of message `id` (deliver_sm as MC, submit_sm as ESME).
    pub fn send_due<'a>(
        &mut self,
        now: Instant,
        mut part: impl FnMut(u64, usize) -> Option<ReplyPart<'a>>,
    ) {
        // Nothing goes out after our unbind or once closing (found by fuzzing: a part that
        // fell due after a drain's unbind went out, the peer refused it ESME_RINVBNDSTS
        // for good, and an owed reply was dropped); what is not sent stays owed and goes
        // back to the queue when the session ends.
        if self.unbind_sent.is_some()
            || self.closing.is_some()
            || !self.state.sends_messages(self.role)
        {
            return;
        }
        let Session {
            delivery,
            out,
            next_seq,
            role,
            ..
        } = self;
        let command = role.message_command();
        delivery.send_due(now, |id, n| {
            *next_seq = *next_seq % 0x7FFF_FFFF + 1;
            let seq = *next_seq;
            if let Some(p) = part(id, n) {
                p.encode(out, command, seq);
            }
            seq
        });
    }

    /// Shutdown: unbind once nothing is owed (the caller says so at each [`Session::tick`]),
    /// or at `grace` at the latest.
    pub fn drain(&mut self, grace: Instant) {
        if self.draining.is_none() {
            self.draining = Some(grace);
        }
    }

    /// When [`Session::tick`] next has something to do.
    pub fn deadline(&self, now: Instant) -> Instant {
        // Once we unbound, the keep-alive has had its say: only the unbind wait is left.
        let mut next = match self.unbind_sent {
            Some(sent) => sent + UNBIND_WAIT,
            None => self.keepalive.deadline(self.state.is_bound()),
        };
        let mut at = |t: Instant| next = next.min(t);
        if let Some(t) = self.delivery.deadline() {
            at(t);
        }
        if let Some(t) = self.intake.deadline() {
            at(t);
        }
        if let Some(grace) = self.draining {
            // Check the drain often; it ends at the grace period at the latest.
            at((now + Duration::from_millis(50)).min(grace));
        }
        if let Some((_, _, sent)) = self.bind_sent {
            at(sent + self.timers.response);
        }
        if self.awaits_bind() {
            at(self.opened + self.timers.bind);
        }
        if let Some(since) = self.partial_since {
            at(since + self.timers.pdu);
        }
        next.max(now)
    }

    /// The timers at `now`: our bind's answer, keep-alive, the delivery window's response
    /// timeout, the drain (`idle`: the caller owes the peer nothing more: no batch under way,
    /// nothing queued for this bind), the unbind wait. Expired concatenations are the
    /// caller's to collect from [`Session::intake`].
    pub fn tick(&mut self, now: Instant, idle: bool) -> Tick {
        if self.closing.is_some() {
            return Tick::Quiet;
        }
        if self
            .bind_sent
            .is_some_and(|(_, _, sent)| now >= sent + self.timers.response)
        {
            self.bind_sent = None;
            return self.closed(Close::BindUnanswered);
        }
        if self.awaits_bind() && now >= self.opened + self.timers.bind {
            return self.closed(Close::NotBound);
        }
        if self
            .partial_since
            .is_some_and(|since| now >= since + self.timers.pdu)
        {
            return self.closed(Close::PduIncomplete);
        }
        let mut tick = Tick::Quiet;
        let due = match self.unbind_sent {
            Some(_) => Due::Nothing,
            None => self.keepalive.due(now, self.state.is_bound()),
        };
        match due {
            Due::Nothing => {}
            Due::Enquire => {
                let seq = self.seq();
                codec::encode(&mut self.out, seq, Status::ESME_ROK, &Pdu::EnquireLink);
                self.keepalive.sent(seq, now);
            }
            Due::Close => return self.closed(Close::EnquireUnanswered),
            Due::Unbind => {
                if let Some(t) = self.unbind(now, Close::Inactive) {
                    return t;
                }
                tick = Tick::Inactive;
            }
        }
        if self.delivery.timed_out(now) {
            return self.closed(Close::Unresponsive);
        }
        if let Some(grace) = self.draining
            && ((idle && self.delivery.is_idle()) || now >= grace)
            && let Some(t) = self.unbind(now, Close::Drained)
        {
            return t;
        }
        if self.unbind_sent.is_some_and(|t| now >= t + UNBIND_WAIT) {
            return self.closed(Close::UnbindUnanswered);
        }
        tick
    }

    /// Whether the peer still has to bind to us (as MC, not yet bound or unbound).
    fn awaits_bind(&self) -> bool {
        self.role == Role::Mc && self.state == BindState::Open
    }

    fn closed(&mut self, why: Close) -> Tick {
        self.close(why);
        Tick::Closing(why)
    }

    /// Sends unbind (once); a session that is not bound just closes, for `unbound`.
    fn unbind(&mut self, now: Instant, unbound: Close) -> Option<Tick> {
        if self.unbind_sent.is_some() {
            return None;
        }
        if !self.state.is_bound() {
            return Some(self.closed(unbound));
        }
        let seq = self.seq();
        codec::encode(&mut self.out, seq, Status::ESME_ROK, &Pdu::Unbind);
        self.unbind_sent = Some(now);
        self.state = BindState::Unbound;
        None
    }
}

#[cfg(test)]
mod tests;
