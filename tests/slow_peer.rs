//! Peers that hold the gateway up: a receiver that never answers deliver_sm, a client that
//! stops reading. Neither may lose a reply or hang a bind, and other operators go on being
//! served. The gateway's timeouts are short (config); the test's waits are generous.

mod support;

use std::time::{Duration, Instant};
use support::smpp::*;
use support::{TestGateway, config};
use tokio::net::TcpListener;

/// Two operators: `demo` (one bind at most, window 4) and `other`.
const OPERATORS: &str = "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\nmax_binds = 1\nwindow = 4\n\
                         [[operators]]\nsystem_id = \"other\"\npassword = \"other\"\n";

#[tokio::test]
async fn an_unresponsive_receiver_loses_its_bind_and_the_next_one_gets_every_reply() {
    let gw = TestGateway::start(
        "response_timeout = \"1s\"\nenquire_link = \"60s\"\n",
        "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\nwindow = 4\n",
    )
    .await;
    let mut tx = Client::connect(gw.addr).await;
    assert_eq!(tx.bind(BIND_TRANSMITTER, "demo", "demo").await, ESME_ROK);
    let citizens: Vec<String> = (0..6).map(|i| format!("99450111220{i}")).collect();
    let mut delivered = Vec::new();
    for (i, msisdn) in citizens.iter().enumerate() {
        let text = format!("2 AA 100000{i}");
        let seq = tx.submit(msisdn, "8103", 0, text.as_bytes()).await;
        assert_eq!(tx.expect_resp(seq, &mut delivered).await.status, ESME_ROK);
    }
    // A receiver that reads deliver_sm and never answers one.
    let mut mute = Client::connect(gw.addr).await;
    assert_eq!(mute.bind(BIND_RECEIVER, "demo", "demo").await, ESME_ROK);
    let started = Instant::now();
    let mut ignored = 0;
    while let Some(p) = mute.read_within(Duration::from_secs(30)).await {
        if p.command_id == DELIVER_SM {
            ignored += 1;
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the mute receiver's bind was closed"
    );
    assert!(
        (1..=4).contains(&ignored),
        "it got no more than its window: {ignored}"
    );
    // The next receiver gets every reply, the ones the mute one held included.
    let mut rx = Client::connect(gw.addr).await;
    assert_eq!(rx.bind(BIND_RECEIVER, "demo", "demo").await, ESME_ROK);
    let mut got: Vec<String> = Vec::new();
    while got.len() < citizens.len() {
        got.push(rx.expect_deliver().await.dest);
    }
    got.sort();
    assert_eq!(got, citizens);
    // Exactly once each: nothing more comes.
    assert!(
        rx.read_within(Duration::from_secs(2)).await.is_none(),
        "no reply twice"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_others_are_served() {
    let gw = TestGateway::start("write_timeout = \"1s\"\n", OPERATORS).await;
    // A client with a tiny receive buffer that asks a lot and reads nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(gw.addr).await.unwrap();
    let mut stuck = Client::from_stream(stream);
    assert_eq!(stuck.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_ROK);
    // demo allows one bind, and the stuck client holds it.
    let mut second = Client::connect(gw.addr).await;
    assert_eq!(
        second.bind(BIND_TRANSCEIVER, "demo", "demo").await,
        ESME_RBINDFAIL
    );
    drop(second);
    let Client { stream, .. } = stuck;
    let (_unread, mut write) = stream.into_split();
    let flood = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        // 16 MB of enquire_link: far more answers than the socket buffers hold.
        let chunk: Vec<u8> = (1..=4096u32)
            .flat_map(|seq| pdu(ENQUIRE_LINK, 0, seq, &[]))
            .collect();
        for _ in 0..256 {
            if write.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    // Another operator is served meanwhile.
    let mut other = Client::connect(gw.addr).await;
    assert_eq!(
        other.bind(BIND_TRANSCEIVER, "other", "other").await,
        ESME_ROK
    );
    let seq = other
        .submit("994502223300", "8103", 0, b"2 AA 2000000")
        .await;
    let mut delivered = Vec::new();
    assert_eq!(
        other.expect_resp(seq, &mut delivered).await.status,
        ESME_ROK
    );
    if delivered.is_empty() {
        delivered.push(other.expect_deliver().await);
    }
    assert_eq!(delivered[0].dest, "994502223300");
    // The stuck client is dropped after the write timeout: demo can bind again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut again = Client::connect(gw.addr).await;
        if again.bind(BIND_TRANSCEIVER, "demo", "demo").await == ESME_ROK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stuck client still holds its bind"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    flood.abort();
    // And the other operator's bind is still served.
    let seq = other
        .submit("994502223301", "8103", 0, b"2 AA 2000001")
        .await;
    let mut delivered = Vec::new();
    assert_eq!(
        other.expect_resp(seq, &mut delivered).await.status,
        ESME_ROK
    );
}

#[tokio::test]
async fn a_quiet_client_is_not_taken_for_one_that_stopped_reading() {
    let gw = TestGateway::start("write_timeout = \"1s\"\n", "").await;
    let mut c = gw.trx().await;
    // Quiet for longer than the write timeout, then asking: it is answered.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let seq = c.send(ENQUIRE_LINK, &[]).await;
    let r = c.read().await.expect("still connected");
    assert_eq!((r.command_id, r.seq), (ENQUIRE_LINK | RESP, seq));
    let seq = c.submit("994504445500", "8103", 0, b"2 AA 4000000").await;
    let mut delivered = Vec::new();
    assert_eq!(c.expect_resp(seq, &mut delivered).await.status, ESME_ROK);
}

/// Accepts icaze's next connection to the test's SMSC and binds it as a transceiver.
async fn smsc_session(smsc: &TcpListener) -> Client {
    let (mut c, bind) = accept_bind(smsc).await;
    assert_eq!(bind.command_id, BIND_TRANSCEIVER);
    answer_bind(&mut c, &bind, ESME_ROK).await;
    c
}

#[tokio::test]
async fn a_connector_whose_smsc_stops_answering_rebinds_and_delivers_the_reply() {
    let smsc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = smsc.local_addr().unwrap().port();
    let tables = format!(
        "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\n\
         [[connectors]]\nname = \"smsc1\"\naddress = \"127.0.0.1:{port}\"\nsystem_id = \"icaze\"\n\
         password = \"s3cret\"\nlanguage = \"en\"\nreconnect = \"100ms\"\n"
    );
    let config = config(dir.path(), "response_timeout = \"1s\"", &tables);
    let _gw = TestGateway::start_with(config, dir).await;
    let mut first = smsc_session(&smsc).await;
    let mo = first
        .send(
            DELIVER_SM,
            &sm_body("994503334400", "8103", 0, 0, b"2 AZE 33334444", &[]),
        )
        .await;
    // The SMSC acknowledges nothing icaze submits: the session is closed.
    let started = Instant::now();
    let (mut acked, mut ignored) = (false, 0);
    while let Some(p) = first.read_within(Duration::from_secs(30)).await {
        match p.command_id {
            c if c == DELIVER_SM | RESP && p.seq == mo => acked = p.status == ESME_ROK,
            SUBMIT_SM => ignored += 1,
            _ => {}
        }
    }
    assert!(acked, "the MO was acknowledged");
    assert!(ignored > 0, "the reply was submitted");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the unanswering session was closed"
    );
    // icaze binds again and the reply comes on the new session.
    let mut second = smsc_session(&smsc).await;
    let reply = loop {
        let p = second
            .read_skipping_enquire()
            .await
            .expect("the reply again");
        if p.command_id == SUBMIT_SM {
            second
                .send_raw(&pdu(SUBMIT_SM | RESP, 0, p.seq, b"mt-1\0"))
                .await;
            if let Some(whole) = second.assemble(&p.body) {
                break whole;
            }
        }
    };
    assert_eq!(reply.dest, "994503334400");
    assert!(
        sm_text(&reply).contains("AZE 33334444"),
        "{}",
        sm_text(&reply)
    );
}

#[tokio::test]
async fn the_reply_queue_limit_holds_with_many_batches_under_way() {
    const ESME_RMSGQFUL: u32 = 0x14;
    let gw = TestGateway::start(
        "",
        "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\nqueue = 20\n",
    )
    .await;
    // Four transmitters send 40 MOs each without waiting, while no receiver is bound: every
    // reply waits in the queue, so at most 20 MOs may be acknowledged.
    let mut binds = Vec::new();
    for _ in 0..4 {
        let mut c = Client::connect(gw.addr).await;
        assert_eq!(c.bind(BIND_TRANSMITTER, "demo", "demo").await, ESME_ROK);
        binds.push(c);
    }
    let mut sent = Vec::new();
    for (b, c) in binds.iter_mut().enumerate() {
        let mut seqs = Vec::new();
        for i in 0..40 {
            let text = format!("2 AA {}", 1_000_000 + b * 100 + i);
            seqs.push(
                c.submit(&format!("99450{b}{i:06}"), "8103", 0, text.as_bytes())
                    .await,
            );
        }
        sent.push(seqs);
    }
    let (mut ok, mut full) = (0, 0);
    for (c, seqs) in binds.iter_mut().zip(&sent) {
        for &seq in seqs {
            match c.expect_resp(seq, &mut Vec::new()).await.status {
                ESME_ROK => ok += 1,
                ESME_RMSGQFUL => full += 1,
                other => panic!("answered {other:#x}"),
            }
        }
    }
    assert_eq!(ok + full, 160);
    assert!(ok <= 20, "{ok} MOs acknowledged with room for 20 replies");
    assert!(ok > 0, "some MOs get in");
    let queued = gw.gateway.operators["demo"].queue.len();
    assert_eq!(queued, ok, "every acknowledged MO's reply is queued");
    // A receiver gets exactly those replies.
    let mut rx = Client::connect(gw.addr).await;
    assert_eq!(rx.bind(BIND_RECEIVER, "demo", "demo").await, ESME_ROK);
    for _ in 0..ok {
        rx.expect_deliver().await;
    }
    assert!(rx.read_within(Duration::from_millis(500)).await.is_none());
    // With the queue drained, room again.
    let seq = binds[0]
        .submit("994509999999", "8103", 0, b"2 AA 7777777")
        .await;
    assert_eq!(
        binds[0].expect_resp(seq, &mut Vec::new()).await.status,
        ESME_ROK
    );
}
