//! The session driven PDU by PDU with made-up instants: what it writes (decoded back with
//! the codec, as a peer would read it) and what it hands over.

use super::*;
use crate::smpp::codec::tests::{addr, raw_pdu, wire};
use crate::smpp::codec::{DEFAULT_MAX_PDU_LEN, decode};
use crate::smpp::mt::MtPart;
use bytes::Bytes;
use rusmpp::pdus::{DeliverSmResp, SubmitSmResp};

const S: Duration = Duration::from_secs(1);

fn timers() -> Timers {
    Timers {
        enquire_link: 30 * S,
        inactivity: 120 * S,
        response: 10 * S,
        concat: 60 * S,
        bind: 10 * S,
        pdu: 5 * S,
    }
}

fn policy(window: usize) -> Policy {
    Policy {
        window,
        response_timeout: 10 * S,
        backoff: S,
        max_backoff: 8 * S,
    }
}

fn frame(seq: u32, status: Status, pdu: &Pdu) -> Frame {
    decode(&mut wire(seq, status, pdu), DEFAULT_MAX_PDU_LEN)
        .unwrap()
        .unwrap()
}

/// Everything the session has written so far, as the peer decodes it.
fn sent(s: &mut Session) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Some(f) = decode(s.out(), DEFAULT_MAX_PDU_LEN).unwrap() {
        frames.push(f);
    }
    assert!(s.out().is_empty(), "a partial PDU was written");
    frames
}

fn one_sent(s: &mut Session) -> Frame {
    let mut f = sent(s);
    assert_eq!(f.len(), 1, "expected one PDU, got {f:?}");
    f.remove(0)
}

fn submit_sm() -> Pdu {
    MtPart {
        source: addr(1, 1, "994501234567"),
        destination: addr(0, 0, "8103"),
        data_coding: 0,
        udh: false,
        short_message: Bytes::from_static(b"2 AZE 11111111"),
    }
    .submit_sm()
}

fn reply_part() -> ReplyPart<'static> {
    ReplyPart {
        source: "8103",
        dest_ton: 1,
        dest_npi: 1,
        destination: "994501234567",
        data_coding: 0,
        udh: false,
        registered_delivery: 0,
        short_message: b"ICAZE VERILDI",
    }
}

/// A listener's session with an operator bound as transceiver at `t0`.
fn bound_mc(t0: Instant) -> Session {
    let mut s = Session::new(Role::Mc, timers(), t0);
    let bind = codec::bind_request(BindKind::Transceiver, "op", "pw", "", 0x34).unwrap();
    let Event::BindRequested {
        command_id,
        sequence_number,
        pdu,
    } = s.on_frame(frame(1, Status::ESME_ROK, &bind), t0)
    else {
        panic!("a bind on an open session is handed over");
    };
    let request = BindRequest::from_pdu(&pdu).unwrap();
    s.accept_bind(command_id, sequence_number, &request, "icaze", policy(4));
    let resp = one_sent(&mut s);
    assert_eq!(resp.command_id, CommandId::BindTransceiverResp);
    assert_eq!(resp.status, Status::ESME_ROK);
    s
}

#[test]
fn a_bind_is_handed_over_and_answered_as_the_gateway_says() {
    let t0 = Instant::now();
    let mut s = Session::new(Role::Mc, timers(), t0);
    let bind = codec::bind_request(BindKind::Receiver, "op", "bad", "", 0x34).unwrap();
    let Event::BindRequested {
        command_id,
        sequence_number,
        ..
    } = s.on_frame(frame(7, Status::ESME_ROK, &bind), t0)
    else {
        panic!("not handed over");
    };
    s.refuse_bind(command_id, sequence_number, Status::ESME_RINVPASWD);
    let resp = one_sent(&mut s);
    assert_eq!(
        (resp.command_id, resp.sequence_number, resp.status),
        (CommandId::BindReceiverResp, 7, Status::ESME_RINVPASWD)
    );
    // The answer goes out, then the session ends: another guess needs another connection.
    assert_eq!(s.closing(), Some(Close::BindDenied));
    assert!(matches!(
        s.on_frame(frame(8, Status::ESME_ROK, &bind), t0),
        Event::Handled
    ));
    assert_eq!(one_sent(&mut s).status, Status::ESME_RINVBNDSTS);
    let s = bound_mc(t0);
    assert_eq!(s.state(), BindState::Bound(BindKind::Transceiver));
    assert!(s.can_send(t0));
}

#[test]
fn commands_out_of_place_are_refused_by_the_session_itself() {
    let t0 = Instant::now();
    let mut s = Session::new(Role::Mc, timers(), t0);
    // A message before binding.
    assert!(matches!(
        s.on_frame(frame(2, Status::ESME_ROK, &submit_sm()), t0),
        Event::Handled
    ));
    let r = one_sent(&mut s);
    assert_eq!(
        (r.command_id, r.status),
        (CommandId::SubmitSmResp, Status::ESME_RINVBNDSTS)
    );
    // A second bind.
    let mut s = bound_mc(t0);
    let bind = codec::bind_request(BindKind::Transmitter, "op", "pw", "", 0x34).unwrap();
    assert!(matches!(
        s.on_frame(frame(3, Status::ESME_ROK, &bind), t0),
        Event::Handled
    ));
    let r = one_sent(&mut s);
    assert_eq!(
        (r.command_id, r.status),
        (CommandId::BindTransmitterResp, Status::ESME_RALYBND)
    );
    // A request we do not serve gets its own response with ESME_RINVCMDID.
    let query_sm = raw_pdu(0x0000_0003, 4, b"1\0\x01\x01994501234567\0");
    let f = decode(&mut BytesMut::from(&query_sm[..]), DEFAULT_MAX_PDU_LEN)
        .unwrap()
        .unwrap();
    assert!(matches!(s.on_frame(f, t0), Event::Handled));
    let r = one_sent(&mut s);
    assert_eq!(
        (r.command_id, r.sequence_number, r.status),
        (CommandId::QuerySmResp, 4, Status::ESME_RINVCMDID)
    );
}

#[test]
fn a_message_is_handed_over_and_answered_with_its_id() {
    let t0 = Instant::now();
    let mut s = bound_mc(t0);
    let Event::Message {
        command_id,
        sequence_number,
        pdu,
    } = s.on_frame(frame(9, Status::ESME_ROK, &submit_sm()), t0)
    else {
        panic!("not handed over");
    };
    assert!(matches!(pdu, Pdu::SubmitSm(_)));
    s.respond(command_id, sequence_number, Status::ESME_ROK, "95NF-JFQP");
    let r = one_sent(&mut s);
    assert_eq!(
        (r.command_id, r.sequence_number, r.status),
        (CommandId::SubmitSmResp, 9, Status::ESME_ROK)
    );
    let Pdu::SubmitSmResp(body) = r.pdu else {
        panic!("{:?}", r.pdu)
    };
    assert_eq!(body.message_id().to_string(), "95NF-JFQP");
}

#[test]
fn enquire_link_is_answered_and_a_quiet_bind_is_probed() {
    let t0 = Instant::now();
    let mut s = bound_mc(t0);
    s.on_frame(frame(5, Status::ESME_ROK, &Pdu::EnquireLink), t0);
    let r = one_sent(&mut s);
    assert_eq!(
        (r.command_id, r.sequence_number),
        (CommandId::EnquireLinkResp, 5)
    );
    // Quiet for the enquire_link interval: we probe, once.
    assert_eq!(s.deadline(t0), t0 + 30 * S);
    assert_eq!(s.tick(t0 + 29 * S, true), Tick::Quiet);
    assert!(sent(&mut s).is_empty());
    assert_eq!(s.tick(t0 + 30 * S, true), Tick::Quiet);
    let probe = one_sent(&mut s);
    assert_eq!(probe.command_id, CommandId::EnquireLink);
    assert_eq!(s.tick(t0 + 31 * S, true), Tick::Quiet);
    assert!(sent(&mut s).is_empty(), "one probe at a time");
    // Answered: the link lives on.
    s.on_frame(
        frame(
            probe.sequence_number,
            Status::ESME_ROK,
            &Pdu::EnquireLinkResp,
        ),
        t0 + 32 * S,
    );
    assert_eq!(s.tick(t0 + 41 * S, true), Tick::Quiet);
    assert_eq!(s.closing(), None);
}

#[test]
fn an_unanswered_enquire_link_closes_the_session() {
    let t0 = Instant::now();
    let mut s = bound_mc(t0);
    s.tick(t0 + 30 * S, true);
    assert_eq!(one_sent(&mut s).command_id, CommandId::EnquireLink);
    assert_eq!(s.deadline(t0 + 30 * S), t0 + 40 * S);
    assert_eq!(s.tick(t0 + 39 * S, true), Tick::Quiet);
    assert_eq!(
        s.tick(t0 + 40 * S, true),
        Tick::Closing(Close::EnquireUnanswered)
    );
    assert_eq!(s.closing(), Some(Close::EnquireUnanswered));
    assert!(!s.can_send(t0 + 40 * S));
}

#[test]
fn a_connection_that_never_binds_is_closed_at_the_bind_timeout() {
    let t0 = Instant::now();
    let mut s = Session::new(Role::Mc, timers(), t0);
    // Talking is not binding: enquire_link every second keeps the link alive but does
    // not move the bind deadline.
    for k in 1..10 {
        s.on_frame(frame(k, Status::ESME_ROK, &Pdu::EnquireLink), t0 + k * S);
        assert_eq!(s.tick(t0 + k * S, true), Tick::Quiet);
    }
    assert_eq!(s.deadline(t0 + 9 * S), t0 + 10 * S);
    assert_eq!(s.tick(t0 + 10 * S, true), Tick::Closing(Close::NotBound));
    assert_eq!(
        sent(&mut s).len(),
        9,
        "only the enquire_link_resps; nothing to unbind"
    );
    // Bound in time: the deadline is gone.
    let mut s = bound_mc(t0);
    assert_eq!(s.tick(t0 + 11 * S, true), Tick::Quiet);
    // As a connector our own bind has its deadline instead (the response timeout).
    let mut c = Session::new(Role::Esme, timers(), t0);
    assert_eq!(c.tick(t0 + 11 * S, true), Tick::Quiet);
}

#[test]
fn a_pdu_that_never_completes_closes_the_session() {
    let t0 = Instant::now();
    let mut s = bound_mc(t0);
    // Bytes of a PDU trickle in: the first read leaves a partial PDU, later reads add to
    // it without completing it. The clock starts at the first.
    s.buffered(t0 + S, true);
    s.buffered(t0 + 3 * S, true);
    assert_eq!(s.deadline(t0 + 3 * S), t0 + 6 * S);
    assert_eq!(s.tick(t0 + 5 * S, true), Tick::Quiet);
    assert_eq!(
        s.tick(t0 + 6 * S, true),
        Tick::Closing(Close::PduIncomplete)
    );
    // Completed in time: no deadline.
    let mut s = bound_mc(t0);
    s.buffered(t0 + S, true);
    s.buffered(t0 + 2 * S, false);
    assert_eq!(s.tick(t0 + 7 * S, true), Tick::Quiet);
}

#[test]
fn a_silent_bound_peer_is_unbound_then_closed_if_it_does_not_answer() {
    let t0 = Instant::now();
    // Probes rarer than the inactivity timeout, so silence is what ends the bind.
    let slow_probe = Timers {
        enquire_link: 300 * S,
        ..timers()
    };
    let mut s = Session::new(Role::Mc, slow_probe, t0);
    let bind = codec::bind_request(BindKind::Transceiver, "op", "pw", "", 0x34).unwrap();
    let Event::BindRequested { pdu, .. } = s.on_frame(frame(1, Status::ESME_ROK, &bind), t0) else {
        panic!("not handed over");
    };
    let request = BindRequest::from_pdu(&pdu).unwrap();
    s.accept_bind(CommandId::BindTransceiver, 1, &request, "icaze", policy(4));
    sent(&mut s);
    // Whole PDUs count as hearing from the peer; the deadline moves with them.
    s.on_frame(frame(2, Status::ESME_ROK, &Pdu::EnquireLink), t0 + 30 * S);
    sent(&mut s);
    assert_eq!(s.deadline(t0 + 30 * S), t0 + 150 * S);
    assert_eq!(s.tick(t0 + 149 * S, true), Tick::Quiet);
    assert_eq!(s.tick(t0 + 150 * S, true), Tick::Inactive);
    assert_eq!(one_sent(&mut s).command_id, CommandId::Unbind);
    assert_eq!(s.state(), BindState::Unbound);
    let t1 = t0 + 150 * S;
    assert_eq!(s.deadline(t1), t1 + UNBIND_WAIT);
    assert_eq!(
        s.tick(t1 + UNBIND_WAIT, true),
        Tick::Closing(Close::UnbindUnanswered)
    );
}

#[test]
fn the_peers_unbind_is_answered_and_closes() {
    let t0 = Instant::now();
    let mut s = bound_mc(t0);
    assert!(matches!(
        s.on_frame(frame(11, Status::ESME_ROK, &Pdu::Unbind), t0),
        Event::Closing(Close::Unbound)
    ));
    let r = one_sent(&mut s);
    assert_eq!(
        (r.command_id, r.sequence_number, r.status),
        (CommandId::UnbindResp, 11, Status::ESME_ROK)
    );
    // What follows in the same read is refused, never handed over.
    assert!(matches!(
        s.on_frame(frame(12, Status::ESME_ROK, &submit_sm()), t0),
        Event::Handled
    ));
    let r = one_sent(&mut s);
    assert_eq!(
        (r.command_id, r.status),
        (CommandId::SubmitSmResp, Status::ESME_RINVBNDSTS)
    );
}

#[test]
fn a_bad_pdu_gets_generic_nack_and_a_broken_stream_closes() {
    let t0 = Instant::now();
    let mut s = bound_mc(t0);
    // An unknown command id: answered, the session goes on.
    let mut buf = BytesMut::from(&raw_pdu(0x0000_7777, 21, b"")[..]);
    let e = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap_err();
    assert!(!s.on_decode_error(&e, t0));
    let r = one_sent(&mut s);
    assert_eq!(
        (r.command_id, r.sequence_number, r.status),
        (CommandId::GenericNack, 21, Status::ESME_RINVCMDID)
    );
    assert_eq!(s.closing(), None);
    // A command_length below the header: the stream is lost.
    let mut buf = BytesMut::from(&[0u8, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1][..]);
    let e = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap_err();
    assert!(s.on_decode_error(&e, t0));
    assert_eq!(s.closing(), Some(Close::Framing));
}

#[test]
fn a_connector_binds_and_takes_the_smscs_answer() {
    let t0 = Instant::now();
    let request = codec::bind_request(BindKind::Transceiver, "us", "pw", "", 0x34).unwrap();
    let mut s = Session::new(Role::Esme, timers(), t0);
    s.dial(BindKind::Transceiver, &request, t0);
    let bind = one_sent(&mut s);
    assert_eq!(bind.command_id, CommandId::BindTransceiver);
    assert!(!s.can_send(t0));
    // A response to something else settles nothing.
    let other = Response::bind_resp(
        CommandId::BindTransceiver,
        bind.sequence_number + 1,
        Status::ESME_ROK,
        "smsc",
        0x34,
    )
    .unwrap();
    assert!(matches!(
        s.on_frame(frame(other.sequence_number, other.status, &other.pdu), t0),
        Event::Handled
    ));
    assert_eq!(s.state(), BindState::Open);
    let ok = Response::bind_resp(
        CommandId::BindTransceiver,
        bind.sequence_number,
        Status::ESME_ROK,
        "smsc",
        0x34,
    )
    .unwrap();
    assert!(matches!(
        s.on_frame(frame(ok.sequence_number, ok.status, &ok.pdu), t0 + S),
        Event::Bound(BindKind::Transceiver)
    ));
    s.deliver_with(policy(4));
    assert!(s.can_send(t0 + S));
    // Past the response timeout nothing fires: the bind was answered.
    assert_eq!(s.tick(t0 + 11 * S, true), Tick::Quiet);
}

#[test]
fn a_connectors_bind_refused_or_unanswered_closes() {
    let t0 = Instant::now();
    let request = codec::bind_request(BindKind::Receiver, "us", "pw", "", 0x34).unwrap();
    let mut s = Session::new(Role::Esme, timers(), t0);
    s.dial(BindKind::Receiver, &request, t0);
    let bind = one_sent(&mut s);
    // Some SMSCs answer a bind they dislike with generic_nack.
    assert!(matches!(
        s.on_frame(
            frame(
                bind.sequence_number,
                Status::ESME_RINVPASWD,
                &Pdu::GenericNack
            ),
            t0
        ),
        Event::Closing(Close::BindRefused(Status::ESME_RINVPASWD))
    ));

    let mut s = Session::new(Role::Esme, timers(), t0);
    s.dial(BindKind::Receiver, &request, t0);
    sent(&mut s);
    assert_eq!(s.deadline(t0), t0 + 10 * S);
    assert_eq!(s.tick(t0 + 9 * S, true), Tick::Quiet);
    assert_eq!(
        s.tick(t0 + 10 * S, true),
        Tick::Closing(Close::BindUnanswered)
    );
}

#[test]
fn replies_go_out_within_the_window_and_their_answers_come_back() {
    let t0 = Instant::now();
    let mut s = bound_mc(t0);
    s.start(1, 2, t0);
    s.send_due(t0, |id, _| (id == 1).then(reply_part));
    let parts = sent(&mut s);
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(|p| p.command_id == CommandId::DeliverSm));
    let resp = Pdu::DeliverSmResp(DeliverSmResp::default());
    assert!(matches!(
        s.on_frame(frame(parts[0].sequence_number, Status::ESME_ROK, &resp), t0),
        Event::Answered(Answer::Part)
    ));
    assert!(matches!(
        s.on_frame(frame(parts[1].sequence_number, Status::ESME_ROK, &resp), t0),
        Event::Answered(Answer::Delivered(1))
    ));
    assert_eq!(s.owed().count(), 0);
    // As a connector the reply is a submit_sm.
    let request = codec::bind_request(BindKind::Transmitter, "us", "pw", "", 0x34).unwrap();
    let mut c = Session::new(Role::Esme, timers(), t0);
    c.dial(BindKind::Transmitter, &request, t0);
    let bind = one_sent(&mut c);
    let ok = Response::bind_resp(
        CommandId::BindTransmitter,
        bind.sequence_number,
        Status::ESME_ROK,
        "smsc",
        0x34,
    )
    .unwrap();
    c.on_frame(frame(ok.sequence_number, ok.status, &ok.pdu), t0);
    c.deliver_with(policy(4));
    c.start(2, 1, t0);
    c.send_due(t0, |_, _| Some(reply_part()));
    let part = one_sent(&mut c);
    assert_eq!(part.command_id, CommandId::SubmitSm);
    let resp = Pdu::SubmitSmResp(SubmitSmResp::default());
    assert!(matches!(
        c.on_frame(frame(part.sequence_number, Status::ESME_ROK, &resp), t0),
        Event::Answered(Answer::Delivered(2))
    ));
    // A submit_sm_resp naming the part hands its message_id over, for its receipt.
    c.start(3, 2, t0);
    c.send_due(t0, |_, _| Some(reply_part()));
    let parts = sent(&mut c);
    let named = |id: &str| {
        Pdu::SubmitSmResp(
            SubmitSmResp::builder()
                .message_id(id.parse().unwrap())
                .build(),
        )
    };
    let second = c.on_frame(
        frame(parts[1].sequence_number, Status::ESME_ROK, &named("00AB")),
        t0,
    );
    let Event::Accepted { answer, part } = second else {
        panic!("not accepted: {second:?}");
    };
    assert_eq!(answer, Answer::Part);
    assert_eq!(
        part,
        AcceptedPart {
            id: 3,
            part: 1,
            message_id: "00AB".into()
        }
    );
    assert!(matches!(
        c.on_frame(
            frame(parts[0].sequence_number, Status::ESME_ROK, &named("7")),
            t0
        ),
        Event::Accepted {
            answer: Answer::Delivered(3),
            part: AcceptedPart { part: 0, .. }
        }
    ));
}

#[test]
fn an_unanswered_reply_makes_the_bind_unresponsive_and_its_replies_owed() {
    let t0 = Instant::now();
    let mut s = bound_mc(t0);
    s.start(1, 1, t0);
    s.start(2, 1, t0);
    s.send_due(t0, |_, _| Some(reply_part()));
    assert_eq!(sent(&mut s).len(), 2);
    assert_eq!(s.tick(t0 + 9 * S, true), Tick::Quiet);
    assert_eq!(
        s.tick(t0 + 10 * S, true),
        Tick::Closing(Close::Unresponsive)
    );
    let mut owed: Vec<u64> = s.owed().collect();
    owed.sort();
    assert_eq!(owed, [1, 2]);
}

#[test]
fn a_drain_waits_for_what_is_owed_then_unbinds() {
    let t0 = Instant::now();
    let mut s = bound_mc(t0);
    s.start(1, 1, t0);
    s.send_due(t0, |_, _| Some(reply_part()));
    let part = one_sent(&mut s);
    let grace = t0 + 10 * S;
    s.drain(grace);
    assert!(s.is_draining());
    // A reply in flight: no unbind yet, whatever the caller says.
    assert_eq!(s.tick(t0 + S, true), Tick::Quiet);
    assert!(sent(&mut s).is_empty());
    let resp = Pdu::DeliverSmResp(DeliverSmResp::default());
    s.on_frame(
        frame(part.sequence_number, Status::ESME_ROK, &resp),
        t0 + 2 * S,
    );
    // The caller still has a batch under way: still no unbind.
    assert_eq!(s.tick(t0 + 2 * S, false), Tick::Quiet);
    assert!(sent(&mut s).is_empty());
    assert_eq!(s.tick(t0 + 3 * S, true), Tick::Quiet);
    let unbind = one_sent(&mut s);
    assert_eq!(unbind.command_id, CommandId::Unbind);
    assert!(!s.can_send(t0 + 3 * S));
    assert!(matches!(
        s.on_frame(
            frame(unbind.sequence_number, Status::ESME_ROK, &Pdu::UnbindResp),
            t0 + 3 * S
        ),
        Event::Closing(Close::Unbound)
    ));
}

#[test]
fn a_drain_unbinds_at_the_grace_period_and_late_answers_still_settle() {
    let t0 = Instant::now();
    let mut s = bound_mc(t0);
    s.start(1, 1, t0);
    s.send_due(t0, |_, _| Some(reply_part()));
    let part = one_sent(&mut s);
    let grace = t0 + 5 * S;
    s.drain(grace);
    assert_eq!(
        s.deadline(t0 + 4 * S),
        t0 + 4 * S + Duration::from_millis(50)
    );
    assert_eq!(s.tick(t0 + 4 * S, true), Tick::Quiet);
    assert_eq!(s.tick(grace, false), Tick::Quiet);
    assert_eq!(one_sent(&mut s).command_id, CommandId::Unbind);
    // The peer answers the reply after our unbind: it is delivered, not owed again.
    let resp = Pdu::DeliverSmResp(DeliverSmResp::default());
    assert!(matches!(
        s.on_frame(frame(part.sequence_number, Status::ESME_ROK, &resp), grace),
        Event::Answered(Answer::Delivered(1))
    ));
    assert_eq!(s.owed().count(), 0);
}

#[test]
fn a_drain_closes_an_unbound_connection_at_once() {
    let t0 = Instant::now();
    let mut s = Session::new(Role::Mc, timers(), t0);
    s.drain(t0 + 10 * S);
    assert_eq!(s.tick(t0, true), Tick::Closing(Close::Drained));
}

#[test]
fn a_stray_unbind_resp_does_not_end_a_bound_session() {
    let t0 = Instant::now();
    let mut s = bound_mc(t0);
    assert!(matches!(
        s.on_frame(frame(40, Status::ESME_ROK, &Pdu::UnbindResp), t0),
        Event::Handled
    ));
    assert_eq!(s.closing(), None);
    assert_eq!(s.state(), BindState::Bound(BindKind::Transceiver));
    assert!(sent(&mut s).is_empty(), "responses are never answered");
    // Messages still flow.
    assert!(matches!(
        s.on_frame(frame(41, Status::ESME_ROK, &submit_sm()), t0),
        Event::Message { .. }
    ));
}

#[test]
fn nothing_is_sent_after_our_unbind_and_the_rest_stays_owed() {
    // Found by fuzzing (fuzz/smpp_session): window 1, a two-part reply, a drain whose grace
    // is over; the first part's answer after our unbind must not let the second go out.
    let t0 = Instant::now();
    let mut s = Session::new(Role::Mc, timers(), t0);
    let bind = codec::bind_request(BindKind::Transceiver, "op", "pw", "", 0x34).unwrap();
    let Event::BindRequested { pdu, .. } = s.on_frame(frame(1, Status::ESME_ROK, &bind), t0) else {
        panic!("not handed over");
    };
    let request = BindRequest::from_pdu(&pdu).unwrap();
    s.accept_bind(CommandId::BindTransceiver, 1, &request, "icaze", policy(1));
    sent(&mut s);
    s.start(7, 2, t0);
    s.send_due(t0, |_, _| Some(reply_part()));
    let first = one_sent(&mut s);
    s.drain(t0);
    assert_eq!(s.tick(t0, false), Tick::Quiet);
    assert_eq!(one_sent(&mut s).command_id, CommandId::Unbind);
    let resp = Pdu::DeliverSmResp(DeliverSmResp::default());
    assert!(matches!(
        s.on_frame(frame(first.sequence_number, Status::ESME_ROK, &resp), t0),
        Event::Answered(Answer::Part)
    ));
    s.send_due(t0, |_, _| Some(reply_part()));
    assert!(sent(&mut s).is_empty(), "a part went out after our unbind");
    assert_eq!(s.owed().collect::<Vec<_>>(), [7]);
}
