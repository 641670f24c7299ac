//! The SMPP listener over real TCP on 127.0.0.1:0, driven by a client written from the spec
//! (tests/support/smpp.rs) that shares no code with icaze's codec.

mod support;

use std::time::Duration;
use support::smpp::*;
use support::{TestGateway, at};

#[tokio::test]
async fn bind_and_auth_failures() {
    let gw = TestGateway::start("", "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\nmax_binds = 1\n[[operators]]\nsystem_id = \"far\"\npassword = \"far\"\nallowed_ips = [\"10.9.9.9\"]\n").await;
    // Each refused bind is answered, then its connection is closed: a second guess needs a
    // second connection.
    for (system_id, password, status) in [
        ("nobody", "demo", ESME_RINVSYSID),
        ("demo", "wrong", ESME_RINVPASWD),
        // An operator allowed only from another address.
        ("far", "far", ESME_RBINDFAIL),
    ] {
        let mut c = Client::connect(gw.addr).await;
        assert_eq!(c.bind(BIND_TRANSCEIVER, system_id, password).await, status);
        assert!(
            c.closed_within(Duration::from_secs(5)).await,
            "connection closed after a refused bind"
        );
    }
    let mut c = Client::connect(gw.addr).await;
    // Before a bind, a submit_sm is in the wrong state.
    let seq = c.submit("994501234567", "8103", 0, b"2 AZE 11111111").await;
    let r = c.read().await.unwrap();
    assert_eq!(
        (r.command_id, r.status, r.seq),
        (SUBMIT_SM | RESP, ESME_RINVBNDSTS, seq)
    );
    assert_eq!(c.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_ROK);
    assert_eq!(c.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_RALYBND);
    // max_binds = 1: a second connection is refused.
    let mut d = Client::connect(gw.addr).await;
    assert_eq!(
        d.bind(BIND_TRANSMITTER, "demo", "demo").await,
        ESME_RBINDFAIL
    );
    // Unbind is answered.
    let seq = c.send(UNBIND, &[]).await;
    let r = c.read().await.unwrap();
    assert_eq!(
        (r.command_id, r.status, r.seq),
        (UNBIND | RESP, ESME_ROK, seq)
    );
    // Once the first bind is gone, the operator may bind again.
    let mut ok = false;
    for _ in 0..50 {
        let mut e = Client::connect(gw.addr).await;
        if e.bind(BIND_TRANSMITTER, "demo", "demo").await == ESME_ROK {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "bind slot freed after unbind");
}

async fn round_trip(c: &mut Client, data_coding: u8, text: &[u8]) -> (RawPdu, Sm) {
    let seq = c.submit("994501234567", "8103", data_coding, text).await;
    let mut delivered = Vec::new();
    let resp = c.expect_resp(seq, &mut delivered).await;
    let sm = match delivered.pop() {
        Some(sm) => sm,
        None => c.expect_deliver().await,
    };
    (resp, sm)
}

#[tokio::test]
async fn mo_to_mt_for_each_data_coding() {
    let gw = TestGateway::start("", "").await;
    let mut c = gw.trx().await;
    let cases: Vec<(u8, Vec<u8>, &str)> = vec![
        (0, b"2 AZE 11111111".to_vec(), "AZE 11111111"),
        (1, b"1 aa1234567".to_vec(), "AA 1234567"),
        (3, b"2 MYI 7654321".to_vec(), "MYİ 7654321"),
        (8, to_ucs2("2 DYİ 1112223"), "DYİ 1112223"),
        (8, to_ucs2("3 МОМ 5556667"), "MOM 5556667"),
    ];
    for (dc, text, doc) in cases {
        let (resp, sm) = round_trip(&mut c, dc, &text).await;
        assert_eq!(
            (resp.command_id, resp.status),
            (SUBMIT_SM | RESP, ESME_ROK),
            "data_coding {dc}"
        );
        assert!(resp.body.len() > 1, "a message_id is returned");
        assert_eq!(sm.source, "8103");
        assert_eq!(sm.dest, "994501234567");
        assert_eq!(sm.esm_class & !0x40, 0, "esm_class is set explicitly");
        let reply = sm_text(&sm);
        assert!(reply.contains("İCAZƏ VERİLDİ"), "data_coding {dc}: {reply}");
        assert!(
            reply.contains(doc),
            "data_coding {dc}: {reply} should name {doc}"
        );
        assert!(reply.contains("10:00\u{2013}13:00"), "{reply}");
    }
    // A repeat gets the same permit; a refusal says why.
    let (_, first) = round_trip(&mut c, 0, b"3 AZE 22222222").await;
    let (_, again) = round_trip(&mut c, 0, b"3 aze 2222 2222").await;
    let id = |s: &Sm| sm_text(s).rsplit(' ').next().unwrap().to_string();
    assert_eq!(id(&first), id(&again));
    let (_, invalid) = round_trip(&mut c, 0, b"hello").await;
    assert!(
        sm_text(&invalid).contains("2 AZE") || sm_text(&invalid).contains("AZE"),
        "{}",
        sm_text(&invalid)
    );
}

#[tokio::test]
async fn message_payload_data_sm_and_wrong_destination() {
    let gw = TestGateway::start("", "").await;
    let mut c = gw.trx().await;
    // Text in message_payload, short_message empty.
    let seq = c
        .send(
            SUBMIT_SM,
            &sm_body(
                "994551112233",
                "8103",
                0,
                0,
                &[],
                &[(0x0424, b"2 AA7654321".to_vec())],
            ),
        )
        .await;
    let mut delivered = Vec::new();
    let resp = c.expect_resp(seq, &mut delivered).await;
    assert_eq!(resp.status, ESME_ROK);
    let sm = delivered.pop().unwrap_or(c.expect_deliver().await);
    assert!(sm_text(&sm).contains("AA 7654321"), "{}", sm_text(&sm));
    // data_sm.
    let seq = c
        .send(
            DATA_SM,
            &data_sm_body("994551112244", "8103", 8, &to_ucs2("1 MOM 1234567")),
        )
        .await;
    let resp = c.expect_resp(seq, &mut delivered).await;
    assert_eq!((resp.command_id, resp.status), (DATA_SM | RESP, ESME_ROK));
    // Anything but the short number is refused.
    let seq = c.submit("994501234567", "9999", 0, b"2 AZE 11111111").await;
    let resp = c.expect_resp(seq, &mut delivered).await;
    assert_eq!(resp.status, ESME_RINVDSTADR);
}

#[tokio::test]
async fn concatenated_mo_is_reassembled() {
    let gw = TestGateway::start("", "").await;
    let mut c = gw.trx().await;
    // UDH 8-bit reference: parts 2 then 1.
    let part = |n: u8, text: &[u8]| {
        let mut sm = vec![5, 0, 3, 0x42, 2, n];
        sm.extend_from_slice(text);
        sm
    };
    let s2 = c
        .send(
            SUBMIT_SM,
            &sm_body("994509998877", "8103", 0x40, 0, &part(2, b"11111"), &[]),
        )
        .await;
    let s1 = c
        .send(
            SUBMIT_SM,
            &sm_body("994509998877", "8103", 0x40, 0, &part(1, b"2 AZE 333"), &[]),
        )
        .await;
    let mut delivered = Vec::new();
    assert_eq!(c.expect_resp(s2, &mut delivered).await.status, ESME_ROK);
    assert_eq!(c.expect_resp(s1, &mut delivered).await.status, ESME_ROK);
    let sm = match delivered.pop() {
        Some(s) => s,
        None => c.expect_deliver().await,
    };
    assert!(sm_text(&sm).contains("AZE 33311111"), "{}", sm_text(&sm));
    // sar_ TLVs with a 16-bit reference.
    let sar = |n: u8| {
        vec![
            (0x020C, 0x1234u16.to_be_bytes().to_vec()),
            (0x020E, vec![2]),
            (0x020F, vec![n]),
        ]
    };
    let a = c
        .send(
            SUBMIT_SM,
            &sm_body("994509998866", "8103", 0, 0, b"1 AA 12", &sar(1)),
        )
        .await;
    let b = c
        .send(
            SUBMIT_SM,
            &sm_body("994509998866", "8103", 0, 0, b"34567", &sar(2)),
        )
        .await;
    assert_eq!(c.expect_resp(a, &mut delivered).await.status, ESME_ROK);
    assert_eq!(c.expect_resp(b, &mut delivered).await.status, ESME_ROK);
    let sm = match delivered.pop() {
        Some(s) => s,
        None => c.expect_deliver().await,
    };
    assert!(sm_text(&sm).contains("AA 1234567"), "{}", sm_text(&sm));
}

#[tokio::test]
async fn malformed_pdus_leave_the_connection_usable() {
    let gw = TestGateway::start("", "").await;
    let mut c = gw.trx().await;
    // Unknown command id.
    let seq = c.next_seq();
    c.send_raw(&pdu(0x0000_0777, 0, seq, &[1, 2, 3])).await;
    let r = c.read().await.unwrap();
    assert_eq!(
        (r.command_id, r.status, r.seq),
        (GENERIC_NACK, ESME_RINVCMDID, seq)
    );
    // A submit_sm whose body is cut short (length consistent, fields not).
    let seq = c.next_seq();
    c.send_raw(&pdu(SUBMIT_SM, 0, seq, &[0, 1, 1, b'9', b'9']))
        .await;
    let r = c.read().await.unwrap();
    assert_eq!(r.seq, seq);
    assert_ne!(r.status, ESME_ROK, "{r:?}");
    // A command_length below the header size.
    let mut short = pdu(ENQUIRE_LINK, 0, 99, &[]);
    short[3] = 8;
    // ...is a framing failure only if we cannot resync; icaze closes on it, so test it last
    // on its own connection below. First, a good PDU still works here.
    let (resp, sm) = round_trip(&mut c, 0, b"2 AZE 44444444").await;
    assert_eq!(resp.status, ESME_ROK);
    assert!(sm_text(&sm).contains("AZE 44444444"));

    // A huge command_length closes that connection only.
    let mut d = gw.trx().await;
    d.send_raw(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1])
        .await;
    let mut closed = false;
    for _ in 0..3 {
        match d.read().await {
            None => {
                closed = true;
                break;
            }
            Some(p) => assert!(
                p.command_id == GENERIC_NACK || p.command_id == UNBIND,
                "{p:?}"
            ),
        }
    }
    assert!(closed, "connection closed after a huge length");
    let mut e = Client::connect(gw.addr).await;
    e.send_raw(&short).await;
    // The other connection is untouched.
    let (resp, _) = round_trip(&mut c, 0, b"2 AZE 55555555").await;
    assert_eq!(resp.status, ESME_ROK);
}

#[tokio::test]
async fn inbound_rate_is_throttled() {
    let gw = TestGateway::start(
        "",
        "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\ntps = 5\n",
    )
    .await;
    let mut c = gw.trx().await;
    let mut seqs = Vec::new();
    let mut batch = Vec::new();
    for i in 0..20 {
        let seq = c.next_seq();
        seqs.push(seq);
        batch.extend(pdu(
            SUBMIT_SM,
            0,
            seq,
            &sm_body(
                "994501230000",
                "8103",
                0,
                0,
                format!("3 AZE {:08}", i).as_bytes(),
                &[],
            ),
        ));
    }
    c.send_raw(&batch).await;
    let mut ok = 0;
    let mut throttled = 0;
    let mut delivered = Vec::new();
    for seq in seqs {
        match c.expect_resp(seq, &mut delivered).await.status {
            ESME_ROK => ok += 1,
            ESME_RTHROTTLED => throttled += 1,
            s => panic!("status {s:#x}"),
        }
    }
    assert!((5..20).contains(&ok), "ok {ok}");
    assert_eq!(ok + throttled, 20);
}

#[tokio::test]
async fn a_silent_peer_is_dropped_after_enquire_link_goes_unanswered() {
    let gw = TestGateway::start(
        "enquire_link = \"1s\"\nresponse_timeout = \"1s\"\ninactivity_timeout = \"60s\"\n",
        "",
    )
    .await;
    let mut c = gw.trx().await;
    // The gateway asks...
    let p = c
        .read_within(Duration::from_secs(5))
        .await
        .expect("an enquire_link");
    assert_eq!(p.command_id, ENQUIRE_LINK);
    // ...we answer nothing, and it closes the bind (after an unbind, maybe).
    let mut closed = false;
    for _ in 0..3 {
        match c.read_within(Duration::from_secs(5)).await {
            None => {
                closed = true;
                break;
            }
            Some(p) => assert!(
                p.command_id == UNBIND || p.command_id == ENQUIRE_LINK,
                "{p:?}"
            ),
        }
    }
    assert!(closed);
    // The gateway answers enquire_link too.
    let mut d = gw.trx().await;
    let seq = d.send(ENQUIRE_LINK, &[]).await;
    let r = d.read().await.unwrap();
    assert_eq!((r.command_id, r.seq), (ENQUIRE_LINK | RESP, seq));
}

#[tokio::test]
async fn replies_wait_for_a_receiver_and_spread_over_binds() {
    // A window of 2 deliver_sm: one two-part reply in flight per bind.
    let gw = TestGateway::start(
        "",
        "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\nwindow = 2\n",
    )
    .await;
    let mut tx = Client::connect(gw.addr).await;
    assert_eq!(tx.bind(BIND_TRANSMITTER, "demo", "demo").await, ESME_ROK);
    let mut delivered = Vec::new();
    for i in 0..6 {
        let seq = tx
            .submit(
                &format!("99450000000{i}"),
                "8103",
                0,
                format!("2 AA 000000{i}").as_bytes(),
            )
            .await;
        assert_eq!(tx.expect_resp(seq, &mut delivered).await.status, ESME_ROK);
    }
    assert!(delivered.is_empty(), "a transmitter gets no deliver_sm");
    assert_eq!(gw.gateway.operators["demo"].queue.len(), 6);
    // Two receivers bind; the six replies arrive, spread over them.
    let mut r1 = Client::connect(gw.addr).await;
    assert_eq!(r1.bind(BIND_RECEIVER, "demo", "demo").await, ESME_ROK);
    let mut r2 = Client::connect(gw.addr).await;
    assert_eq!(r2.bind(BIND_RECEIVER, "demo", "demo").await, ESME_ROK);
    let mut got = Vec::new();
    let (mut n1, mut n2) = (0, 0);
    while got.len() < 6 {
        tokio::select! {
            Some(p) = r1.read_within(Duration::from_secs(10)) => {
                assert_eq!(p.command_id, DELIVER_SM);
                r1.send_raw(&pdu(DELIVER_SM | RESP, 0, p.seq, &[0])).await;
                if let Some(sm) = r1.assemble(&p.body) { got.push(sm.dest); n1 += 1; }
            }
            Some(p) = r2.read_within(Duration::from_secs(10)) => {
                assert_eq!(p.command_id, DELIVER_SM);
                r2.send_raw(&pdu(DELIVER_SM | RESP, 0, p.seq, &[0])).await;
                if let Some(sm) = r2.assemble(&p.body) { got.push(sm.dest); n2 += 1; }
            }
            else => panic!("replies stopped at {}", got.len()),
        }
    }
    got.sort();
    assert_eq!(
        got,
        (0..6)
            .map(|i| format!("99450000000{i}"))
            .collect::<Vec<_>>()
    );
    assert!(
        n1 > 0 && n2 > 0,
        "replies spread over both receivers: {n1} and {n2}"
    );
}

#[tokio::test]
async fn throttled_deliveries_are_retried() {
    let gw = TestGateway::start("", "").await;
    let mut c = gw.trx().await;
    let seq = c.submit("994501112200", "8103", 0, b"2 AZE 66666666").await;
    // Answer the first deliver_sm with ESME_RTHROTTLED: it comes again.
    let first;
    loop {
        let p = c.read().await.expect("pdu");
        if p.command_id == DELIVER_SM {
            c.send_raw(&pdu(DELIVER_SM | RESP, ESME_RTHROTTLED, p.seq, &[0]))
                .await;
            first = Some(parse_sm(&p.body));
            break;
        }
        assert_eq!(p.seq, seq);
    }
    // The whole reply arrives, the throttled part included.
    let again = c.expect_deliver().await;
    let first = first.unwrap();
    assert_eq!(
        (again.source.as_str(), again.dest.as_str()),
        (first.source.as_str(), first.dest.as_str())
    );
    assert!(
        sm_text(&again).contains("AZE 66666666"),
        "{}",
        sm_text(&again)
    );
}

#[tokio::test]
async fn shutdown_flushes_replies_and_unbinds() {
    let gw = TestGateway::start("shutdown_grace = \"5s\"\n", "").await;
    let mut c = gw.trx().await;
    // Submit several without reading, then signal shutdown.
    let mut seqs = Vec::new();
    for i in 0..5 {
        seqs.push(
            c.submit(
                &format!("99470000000{i}"),
                "8103",
                0,
                format!("2 AZE 7777777{i}").as_bytes(),
            )
            .await,
        );
    }
    let mut delivered = Vec::new();
    for s in &seqs {
        assert_eq!(c.expect_resp(*s, &mut delivered).await.status, ESME_ROK);
    }
    gw.shutdown.cancel();
    let mut unbound = false;
    while let Some(p) = c.read().await {
        match p.command_id {
            DELIVER_SM => {
                c.send_raw(&pdu(DELIVER_SM | RESP, 0, p.seq, &[0])).await;
                if let Some(sm) = c.assemble(&p.body) {
                    delivered.push(sm);
                }
            }
            UNBIND => {
                c.send_raw(&pdu(UNBIND | RESP, 0, p.seq, &[])).await;
                unbound = true;
            }
            ENQUIRE_LINK => c.send_raw(&pdu(ENQUIRE_LINK | RESP, 0, p.seq, &[])).await,
            other => panic!("{other:#x}"),
        }
    }
    assert!(unbound, "the gateway unbinds its peers");
    assert_eq!(
        delivered.len(),
        5,
        "every reply was flushed before the unbind"
    );
    tokio::time::timeout(Duration::from_secs(10), gw.done)
        .await
        .expect("listener stops")
        .unwrap();
    let _ = at;
}

#[tokio::test]
async fn smpp_3_4_and_5_0_binds_are_answered_in_kind() {
    let gw = TestGateway::start("", "").await;
    for (version, tlv_expected) in [(0x34u8, true), (0x50, true), (0x33, false)] {
        let mut c = Client::connect(gw.addr).await;
        let mut body = bind_body("demo", "demo");
        // bind_body writes interface_version 0x34 after system_type's NUL.
        let at = body.len() - 4;
        body[at] = version;
        let seq = c.send(BIND_TRANSCEIVER, &body).await;
        let r = c.read().await.unwrap();
        assert_eq!(
            (r.command_id, r.status, r.seq),
            (BIND_TRANSCEIVER | RESP, ESME_ROK, seq)
        );
        // system_id "icaze", then the sc_interface_version TLV (0x0210) for 3.4 and later.
        assert!(r.body.starts_with(b"icaze\0"), "{r:?}");
        let tlv = &r.body[6..];
        assert_eq!(
            tlv.starts_with(&[0x02, 0x10]),
            tlv_expected,
            "version {version:#x}: {r:?}"
        );
        let (resp, sm) = round_trip(&mut c, 0, format!("3 AA {:07}", version).as_bytes()).await;
        assert_eq!(resp.status, ESME_ROK);
        assert!(sm_text(&sm).contains("AA"), "{}", sm_text(&sm));
    }
}

#[tokio::test]
async fn message_ids_never_collide_across_nodes_and_restarts() {
    // Two nodes started in the same second, and the first one restarted.
    let ids_of = |gw: TestGateway| async move {
        let mut c = gw.trx().await;
        let mut ids = Vec::new();
        for i in 0..50 {
            let text = format!("2 AA {}", 2_000_000 + i);
            let seq = c.submit("994501234567", "8103", 0, text.as_bytes()).await;
            let resp = c.expect_resp(seq, &mut Vec::new()).await;
            assert_eq!(resp.status, ESME_ROK);
            let id = std::str::from_utf8(&resp.body[..resp.body.len() - 1]).unwrap();
            // Decimal below 2^63: what Kannel's msg-id-type 0x00 and every ESME parse.
            ids.push(id.parse::<i64>().expect("a decimal id below 2^63"));
        }
        ids
    };
    let one = ids_of(TestGateway::start("node_id = 1", "").await).await;
    let two = ids_of(TestGateway::start("node_id = 2", "").await).await;
    let again = ids_of(TestGateway::start("node_id = 1", "").await).await;
    let all: std::collections::HashSet<i64> =
        one.iter().chain(&two).chain(&again).copied().collect();
    assert_eq!(all.len(), 150, "an id was handed out twice");
    assert!(
        again[0] > *one.last().unwrap(),
        "a restarted node starts above its old ids"
    );
    // Hex by config: 16 digits.
    let gw = TestGateway::start("message_ids = \"hex\"", "").await;
    let mut c = gw.trx().await;
    let seq = c.submit("994501234567", "8103", 0, b"2 AA 2999999").await;
    let resp = c.expect_resp(seq, &mut Vec::new()).await;
    let id = std::str::from_utf8(&resp.body[..resp.body.len() - 1]).unwrap();
    assert!(
        id.len() == 16 && u64::from_str_radix(id, 16).is_ok(),
        "{id}"
    );
}
