//! A whole SMPP session driven through `icaze::smpp::session::Session` (the protocol state
//! machine, no socket): arbitrary sequences of peer PDUs (binds, MOs, answers to our
//! deliver_sm, keep-alives, unbinds, raw and split bytes), the gateway's answers, replies to
//! deliver, shutdown and time steps, as listener (MC) or connector (ESME). The harness
//! plays the connection loop the way `gateway/connection` does: decode what is buffered,
//! hand each event over, fill the delivery window, run the timers after every turn, stop
//! once the session closes.
//!
//! Protocol invariants checked:
//! - everything the session writes decodes cleanly;
//! - every request the peer sent is answered exactly once, with its sequence number and its
//!   own response type (or generic_nack); nothing else is answered;
//! - a bind is handed over only to an open listener session, a short message only on a
//!   bind whose kind lets the peer send it, never once closing;
//! - message parts go out only on a bind that may carry them, never after our unbind or
//!   once closing; after our unbind we send no request at all;
//! - our requests in flight never share a sequence number;
//! - a reply is settled (delivered or refused) at most once, only if it was started, and
//!   what the session still owes at the end is exactly what was started and not settled.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use icaze::smpp::codec::{self, DEFAULT_MAX_PDU_LEN, DecodeError, IncomingSm, ReplyPart};
use icaze::smpp::session::intake::Text;
use icaze::smpp::session::{
    Answer, BindKind, BindRequest, BindState, Event, Policy, Role, Session, Timers,
};
use icaze::smpp::status::Status;
use icaze_fuzz::{Sm, bind_body, pdu, sm_body, tlv, udh8};
use libfuzzer_sys::fuzz_target;
use rusmpp::CommandId;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Arbitrary, Debug)]
struct Input {
    connector: bool,
    window: u8,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// The peer binds (good or wrong credentials).
    Bind { kind: u8, good: bool, version: u8 },
    /// The peer sends a short message.
    Mo {
        command: u8,
        data_coding: u8,
        concat: Option<(u8, u8, u8)>,
        sar: bool,
        text: Vec<u8>,
    },
    /// The peer sends a request without body or one we do not serve.
    Request { which: u8 },
    /// The peer answers one of our requests in flight.
    Answer { pick: u8, status: u8, nack: bool },
    /// The peer sends a response to nothing (or to something long settled).
    Stray { which: u8, seq: u16, status: u8 },
    /// Any PDU, with any command_length (a wrong one leaves bytes buffered or breaks the
    /// stream).
    Raw {
        command_id: u32,
        status: u32,
        body: Vec<u8>,
        length: Option<u32>,
    },
    /// Bytes as they are.
    Bytes(Vec<u8>),
    /// The gateway decides one MO handed over.
    Decide { pick: u8, status: u8 },
    /// A reply for the operator's queue.
    Reply { parts: u8 },
    /// Connector mode: we send our bind.
    Dial { kind: u8 },
    /// Shutdown starts.
    Drain { grace_secs: u8 },
    /// Time passes.
    Wait { millis: u16, secs: u8 },
}

const STATUSES: [u32; 8] = [0, 0, 0x58, 0x14, 0x08, 0x0B, 0x45, 0x0D];

fn status(n: u8) -> Status {
    Status(STATUSES[usize::from(n) % STATUSES.len()])
}

fn bind_kind(n: u8) -> BindKind {
    match n % 3 {
        0 => BindKind::Transmitter,
        1 => BindKind::Receiver,
        _ => BindKind::Transceiver,
    }
}

fn bind_id(kind: BindKind) -> u32 {
    match kind {
        BindKind::Receiver => 0x01,
        BindKind::Transmitter => 0x02,
        BindKind::Transceiver => 0x09,
    }
}

/// Whether a request has a response type (outbind and alert_notification have none).
fn answered(id: CommandId) -> bool {
    id.is_operation() && !matches!(id, CommandId::Outbind | CommandId::AlertNotification)
}

fn is_message(id: u32) -> bool {
    matches!(id, 0x04 | 0x05 | 0x103)
}

struct Harness {
    role: Role,
    session: Session,
    now: Instant,
    policy: Policy,
    /// Bytes the peer sent that are not decoded yet.
    inbuf: BytesMut,
    /// Stream broken: the connection stopped reading.
    broken: bool,
    next_peer_seq: u32,
    /// Peer requests owed an answer: sequence number -> command_ids still unanswered.
    owed_answers: HashMap<u32, Vec<u32>>,
    /// Our requests in flight: sequence number -> command_id.
    ours: BTreeMap<u32, u32>,
    unbind_sent: bool,
    dialed: Option<(u32, BindKind)>,
    /// Whether the gateway side has an operator on this bind (it pulls replies).
    operator: bool,
    /// MOs handed over, not yet decided: (command_id, sequence_number).
    undecided: VecDeque<(CommandId, u32)>,
    /// Replies waiting in the operator's queue: parts.
    queue: VecDeque<usize>,
    next_reply: u64,
    parts_of: HashMap<u64, usize>,
    started: BTreeSet<u64>,
    settled: BTreeSet<u64>,
}

impl Harness {
    fn new(role: Role, window: u8) -> Self {
        let now = Instant::now();
        let timers = Timers {
            enquire_link: Duration::from_secs(30),
            inactivity: Duration::from_secs(120),
            response: Duration::from_secs(10),
            concat: Duration::from_secs(60),
            bind: Duration::from_secs(10),
            pdu: Duration::from_secs(10),
        };
        Harness {
            role,
            session: Session::new(role, timers, now),
            now,
            policy: Policy {
                window: usize::from(window % 8) + 1,
                response_timeout: Duration::from_secs(10),
                backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(8),
            },
            inbuf: BytesMut::new(),
            broken: false,
            next_peer_seq: 1_000_000,
            owed_answers: HashMap::new(),
            ours: BTreeMap::new(),
            unbind_sent: false,
            dialed: None,
            operator: false,
            undecided: VecDeque::new(),
            queue: VecDeque::new(),
            next_reply: 1,
            parts_of: HashMap::new(),
            started: BTreeSet::new(),
            settled: BTreeSet::new(),
        }
    }

    fn peer_seq(&mut self) -> u32 {
        self.next_peer_seq += 1;
        self.next_peer_seq
    }

    /// Reads what the session wrote (as the socket would take it) and checks it.
    fn take_output(&mut self, sending_parts: bool) {
        let mut out = self.session.out().split();
        loop {
            match codec::decode(&mut out, DEFAULT_MAX_PDU_LEN) {
                Ok(None) => break,
                Ok(Some(f)) => {
                    self.check_written(u32::from(f.command_id), f.sequence_number, sending_parts)
                }
                Err(e) => panic!("the session wrote a PDU that does not decode: {e}"),
            }
        }
        assert!(out.is_empty(), "the session wrote a partial PDU");
    }

    fn check_written(&mut self, id: u32, seq: u32, sending_parts: bool) {
        if id & 0x8000_0000 != 0 {
            let list = self.owed_answers.get_mut(&seq);
            let pos = list.as_ref().and_then(|l| {
                l.iter()
                    .position(|&req| id == 0x8000_0000 || id == req | 0x8000_0000)
            });
            match (list, pos) {
                (Some(l), Some(p)) => {
                    l.swap_remove(p);
                }
                _ => panic!(
                    "answer {id:#x} seq {seq} to no request owed one (twice, or never asked)"
                ),
            }
            return;
        }
        assert!(!self.unbind_sent, "request {id:#x} sent after our unbind");
        if is_message(id) {
            assert!(sending_parts, "message part {id:#x} outside send_due");
        }
        if id == 0x06 {
            self.unbind_sent = true;
        }
        assert!(
            self.ours.insert(seq, id).is_none(),
            "two requests of ours in flight with seq {seq}"
        );
    }

    /// The peer's bytes arrive: decode every complete PDU and hand each over.
    fn read(&mut self, bytes: &[u8]) {
        if self.broken {
            return;
        }
        self.inbuf.extend_from_slice(bytes);
        loop {
            let closing_before = self.session.closing().is_some();
            let state_before = self.session.state();
            match codec::decode(&mut self.inbuf, DEFAULT_MAX_PDU_LEN) {
                Ok(None) => break,
                Ok(Some(frame)) => {
                    let (id, seq) = (frame.command_id, frame.sequence_number);
                    if answered(id) {
                        self.owed_answers
                            .entry(seq)
                            .or_default()
                            .push(u32::from(id));
                    }
                    let event = self.session.on_frame(frame, self.now);
                    self.on_event(event, state_before, closing_before);
                }
                Err(e) => {
                    if let Some(r) = e.response() {
                        let id = match &e {
                            DecodeError::Body(b) => u32::from(b.command_id),
                            DecodeError::Framing(_) => 0,
                        };
                        self.owed_answers
                            .entry(r.sequence_number)
                            .or_default()
                            .push(id);
                    }
                    if self.session.on_decode_error(&e, self.now) {
                        assert!(
                            self.session.closing().is_some(),
                            "framing error not closing"
                        );
                        self.inbuf.clear();
                        self.broken = true;
                        break;
                    }
                }
            }
        }
        self.session.buffered(self.now, !self.inbuf.is_empty());
        self.fill_window();
    }

    fn on_event(&mut self, event: Event, state: BindState, closing: bool) {
        match event {
            Event::Handled => {}
            Event::Closing(why) => {
                // The peer's unbind leaves the state Unbound; an unbind_resp leaves it as
                // it was.
                let stray_unbind_resp = why == icaze::smpp::session::Close::Unbound
                    && !self.unbind_sent
                    && self.session.state() != BindState::Unbound;
                assert!(
                    !stray_unbind_resp,
                    "closed by an unbind_resp to an unbind we never sent"
                );
            }
            Event::BindRequested {
                command_id,
                sequence_number,
                pdu,
            } => {
                assert_eq!(self.role, Role::Mc, "a bind handed over to a connector");
                assert_eq!(state, BindState::Open, "a bind handed over in {state:?}");
                assert!(!closing, "a bind handed over while closing");
                let request = BindRequest::from_pdu(&pdu).expect("a bind PDU reads as a bind");
                if request.system_id == "demo" && request.password == b"demo" {
                    self.session.accept_bind(
                        command_id,
                        sequence_number,
                        &request,
                        "icaze",
                        self.policy,
                    );
                    self.operator = self.session.state().is_bound();
                } else {
                    self.session
                        .refuse_bind(command_id, sequence_number, Status(0x0E));
                }
            }
            Event::Bound(kind) => {
                assert_eq!(self.role, Role::Esme, "a listener bound by a response");
                assert!(
                    self.dialed.is_some_and(|(_, k)| k == kind),
                    "bound without our bind"
                );
                self.session.deliver_with(self.policy);
                self.operator = true;
            }
            Event::Message {
                command_id,
                sequence_number,
                pdu,
            } => {
                assert!(!closing, "a message handed over while closing");
                let allowed = match (self.role, state) {
                    (Role::Mc, BindState::Bound(k)) => k.esme_transmits(),
                    (Role::Esme, BindState::Bound(k)) => k.esme_receives(),
                    _ => false,
                };
                assert!(
                    allowed,
                    "{command_id:?} handed over as {:?} in {state:?}",
                    self.role
                );
                let sm = IncomingSm::from_pdu(pdu).expect("a message PDU reads as one");
                match self.session.intake.text(&sm, self.now, |_| {}) {
                    Text::Whole(_) => self.undecided.push_back((command_id, sequence_number)),
                    Text::Held => {
                        self.session
                            .respond(command_id, sequence_number, Status::ESME_ROK, "")
                    }
                    Text::Refused(s) => self.session.respond(command_id, sequence_number, s, ""),
                }
            }
            Event::Accepted { answer, part } => {
                assert!(
                    self.started.contains(&part.id),
                    "part of reply {} accepted, never started",
                    part.id
                );
                assert!(!part.message_id.is_empty(), "accepted with no message_id");
                self.on_answer(answer);
            }
            Event::Answered(answer) => self.on_answer(answer),
        }
    }

    /// What the peer's answer to a part of ours settles.
    fn on_answer(&mut self, answer: Answer<u64>) {
        match answer {
            Answer::Stray | Answer::Part => {}
            Answer::Retry(id) => {
                assert!(
                    self.started.contains(&id),
                    "retry of reply {id} never started"
                );
                assert!(!self.settled.contains(&id), "retry of settled reply {id}");
            }
            Answer::Delivered(id) | Answer::Refused(id, _) => {
                assert!(
                    self.started.contains(&id),
                    "reply {id} settled, never started"
                );
                assert!(self.settled.insert(id), "reply {id} settled twice");
            }
        }
    }

    /// As the connection's `fill_window`: send what is due, then pull while there is room.
    fn fill_window(&mut self) {
        self.send_due();
        while self.operator && self.session.can_send(self.now) {
            let Some(parts) = self.queue.pop_front() else {
                break;
            };
            let id = self.next_reply;
            self.next_reply += 1;
            self.parts_of.insert(id, parts);
            self.started.insert(id);
            self.session.start(id, parts, self.now);
            self.send_due();
        }
    }

    fn send_due(&mut self) {
        self.take_output(false);
        let may_send = self.session.state().sends_messages(self.role)
            && self.session.closing().is_none()
            && !self.unbind_sent;
        let parts_of = &self.parts_of;
        self.session.send_due(self.now, |id, n| {
            let parts = *parts_of.get(&id)?;
            (n < parts).then_some(ReplyPart {
                source: "8103",
                dest_ton: 1,
                dest_npi: 1,
                destination: "994501234567",
                data_coding: 0,
                udh: parts > 1,
                registered_delivery: 0,
                short_message: b"\x05\x00\x03\x01\x02\x01icaze reply",
            })
        });
        let before = self.ours.len();
        self.take_output(true);
        let sent_parts = self.ours.len() > before
            && self
                .ours
                .values()
                .rev()
                .take(self.ours.len() - before)
                .any(|&id| is_message(id));
        assert!(
            !sent_parts || may_send,
            "message part sent in {:?} (closing {:?}, unbind sent {})",
            self.session.state(),
            self.session.closing(),
            self.unbind_sent
        );
    }

    /// As the connection's `on_timers`, after every turn.
    fn on_timers(&mut self) {
        let idle = self.undecided.is_empty()
            && !(self.operator
                && self.session.state().sends_messages(self.role)
                && !self.queue.is_empty());
        let tick = self.session.tick(self.now, idle);
        self.take_output(false);
        if matches!(tick, icaze::smpp::session::Tick::Closing(_)) {
            return;
        }
        let _ = self.session.intake.expire(self.now).count();
        self.fill_window();
    }

    fn decide(&mut self, pick: u8, status: Status) {
        if self.undecided.is_empty() {
            return;
        }
        let i = usize::from(pick) % self.undecided.len();
        if let Some((command_id, seq)) = self.undecided.remove(i) {
            self.session.respond(command_id, seq, status, "4a1b2c3d");
        }
    }

    fn op(&mut self, op: &Op) {
        match op {
            Op::Bind {
                kind,
                good,
                version,
            } => {
                let kind = bind_kind(*kind);
                let (id, pw): (&[u8], &[u8]) = if *good {
                    (b"demo", b"demo")
                } else {
                    (b"demo", b"wrong")
                };
                let seq = self.peer_seq();
                self.read(&pdu(bind_id(kind), 0, seq, &bind_body(id, pw, *version)));
            }
            Op::Mo {
                command,
                data_coding,
                concat,
                sar,
                text,
            } => {
                let id = [0x04, 0x05, 0x103][usize::from(*command) % 3];
                let (short_message, esm_class) = match concat {
                    Some((r, t, s)) if !sar => (udh8(*r, t % 4, s % 4, text), 0x40),
                    _ => (text.clone(), 0),
                };
                let mut tlvs = Vec::new();
                if let (Some((r, t, s)), true) = (concat, *sar) {
                    tlv(&mut tlvs, 0x020C, &u16::from(*r).to_be_bytes());
                    tlv(&mut tlvs, 0x020E, &[t % 4]);
                    tlv(&mut tlvs, 0x020F, &[s % 4]);
                }
                let body = if id == 0x103 {
                    // data_sm: no short_message; the text goes in message_payload.
                    let mut b = Vec::new();
                    icaze_fuzz::cstr(&mut b, b"", 6);
                    b.extend_from_slice(&[1, 1]);
                    icaze_fuzz::cstr(&mut b, b"994501234567", 21);
                    b.extend_from_slice(&[0, 0]);
                    icaze_fuzz::cstr(&mut b, b"8103", 21);
                    b.extend_from_slice(&[esm_class, 0, *data_coding]);
                    tlv(&mut b, 0x0424, &short_message);
                    b.extend_from_slice(&tlvs);
                    b
                } else {
                    sm_body(&Sm {
                        source: b"994501234567",
                        destination: b"8103",
                        esm_class,
                        data_coding: *data_coding,
                        short_message: &short_message,
                        tlvs: &tlvs,
                    })
                };
                let seq = self.peer_seq();
                self.read(&pdu(id, 0, seq, &body));
            }
            Op::Request { which } => {
                const IDS: [u32; 10] = [
                    0x15, 0x06, 0x03, 0x08, 0x07, 0x21, 0x111, 0x0B, 0x102, 0x113,
                ];
                let id = IDS[usize::from(*which) % IDS.len()];
                let seq = self.peer_seq();
                // Bodies that decode are not needed: a bad one is answered too.
                let body: &[u8] = if matches!(id, 0x15 | 0x06) {
                    &[]
                } else {
                    &[0; 8]
                };
                self.read(&pdu(id, 0, seq, body));
            }
            Op::Answer {
                pick,
                status: st,
                nack,
            } => {
                if self.ours.is_empty() {
                    return;
                }
                let i = usize::from(*pick) % self.ours.len();
                let Some((&seq, &id)) = self.ours.iter().nth(i) else {
                    return;
                };
                self.ours.remove(&seq);
                let st = status(*st).0;
                let bytes = if *nack {
                    pdu(0x8000_0000, st.max(1), seq, &[])
                } else {
                    let body: Vec<u8> = match id {
                        0x01 | 0x02 | 0x09 => b"smsc\0".to_vec(),
                        0x04 | 0x05 | 0x103 => b"\0".to_vec(),
                        _ => Vec::new(),
                    };
                    pdu(id | 0x8000_0000, st, seq, &body)
                };
                self.read(&bytes);
            }
            Op::Stray {
                which,
                seq,
                status: st,
            } => {
                const IDS: [u32; 6] = [
                    0x8000_0005,
                    0x8000_0004,
                    0x8000_0015,
                    0x8000_0006,
                    0x8000_0009,
                    0x8000_0000,
                ];
                let id = IDS[usize::from(*which) % IDS.len()];
                let body: &[u8] = if matches!(id, 0x8000_0005 | 0x8000_0004) {
                    b"\0"
                } else {
                    &[]
                };
                self.read(&pdu(id, status(*st).0, u32::from(*seq), body));
            }
            Op::Raw {
                command_id,
                status: st,
                body,
                length,
            } => {
                let seq = self.peer_seq();
                let mut bytes = pdu(*command_id, *st, seq, body);
                if let Some(l) = length {
                    bytes[..4].copy_from_slice(&(l % 0x1_0000).to_be_bytes());
                }
                self.read(&bytes);
            }
            Op::Bytes(b) => self.read(b),
            Op::Decide { pick, status: st } => self.decide(*pick, status(*st)),
            Op::Reply { parts } => {
                self.queue.push_back(usize::from(parts % 3) + 1);
                self.fill_window();
            }
            Op::Dial { kind } => {
                if self.role != Role::Esme || self.dialed.is_some() {
                    return;
                }
                let kind = bind_kind(*kind);
                let request = codec::bind_request(kind, "icaze", "secret", "", 0x34)
                    .expect("a valid bind request");
                let seq_before = self.ours.keys().copied().collect::<BTreeSet<_>>();
                self.session.dial(kind, &request, self.now);
                self.take_output(false);
                let seq = self.ours.keys().copied().find(|s| !seq_before.contains(s));
                self.dialed = seq.map(|s| (s, kind));
            }
            Op::Drain { grace_secs } => {
                self.session
                    .drain(self.now + Duration::from_secs(u64::from(*grace_secs % 20)));
            }
            Op::Wait { millis, secs } => {
                let until = self.now
                    + Duration::from_millis(u64::from(*millis))
                    + Duration::from_secs(u64::from(*secs % 130));
                // Wake at each deadline on the way, as the connection's sleep does.
                for _ in 0..64 {
                    let next = self.session.deadline(self.now);
                    if next > until || self.session.closing().is_some() {
                        break;
                    }
                    self.now = next.max(self.now);
                    self.on_timers();
                }
                self.now = until;
            }
        }
    }

    fn finish(&mut self) {
        // The connection answers every MO handed over before it leaves.
        while !self.undecided.is_empty() {
            self.decide(0, Status::ESME_ROK);
        }
        self.take_output(false);
        for (seq, ids) in &self.owed_answers {
            assert!(
                ids.is_empty(),
                "peer request(s) {ids:x?} seq {seq} never answered"
            );
        }
        let owed: BTreeSet<u64> = self.session.owed().collect();
        let expected: BTreeSet<u64> = self.started.difference(&self.settled).copied().collect();
        assert_eq!(
            owed, expected,
            "replies owed at close differ from those not settled"
        );
    }
}

fuzz_target!(|input: Input| {
    let role = if input.connector {
        Role::Esme
    } else {
        Role::Mc
    };
    let mut h = Harness::new(role, input.window);
    for op in input.ops.iter().take(256) {
        h.op(op);
        h.on_timers();
        if h.session.closing().is_some() {
            break;
        }
    }
    h.finish();
});
