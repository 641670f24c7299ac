//! Connector mode against an SMSC played by the test: icaze binds out as an ESME, MOs go in
//! as deliver_sm, replies come back as submit_sm. The test's SMSC is the byte-level client
//! of tests/support/smpp.rs on an accepted socket, sharing no code with icaze's codec.

mod support;

use std::time::Duration;
use support::smpp::{self, Client};
use support::tls::TestCa;
use support::{TestGateway, config};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

const SUBMIT_SM_RESP: u32 = smpp::SUBMIT_SM | smpp::RESP;
const DELIVER_SM_RESP: u32 = smpp::DELIVER_SM | smpp::RESP;

/// A gateway whose only peer is one connector to `smsc`, with `extra` keys in its table.
async fn gateway_to(smsc: &TcpListener, extra: &str) -> TestGateway {
    gateway_in(tempfile::tempdir().unwrap(), smsc, extra).await
}

/// [`gateway_to`] with its config in `dir` (where a connector's `ca` file is).
async fn gateway_in(dir: tempfile::TempDir, smsc: &TcpListener, extra: &str) -> TestGateway {
    let port = smsc.local_addr().unwrap().port();
    let tables = format!(
        "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\n\
         [[connectors]]\nname = \"smsc1\"\naddress = \"127.0.0.1:{port}\"\nsystem_id = \"icaze\"\n\
         password = \"s3cret\"\nlanguage = \"en\"\nreconnect = \"100ms\"\n{extra}"
    );
    let config = config(dir.path(), "response_timeout = \"1s\"", &tables);
    TestGateway::start_with(config, dir).await
}

/// An SMSC listening on a free port and a gateway connected to it with `extra` keys.
async fn smsc_and_gateway(extra: &str) -> (TcpListener, TestGateway) {
    let smsc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gateway_to(&smsc, extra).await;
    (smsc, gw)
}

/// Answers icaze's submit_sm `seq` (a reply part) as delivered.
async fn answer_submit(c: &mut Client<impl AsyncRead + AsyncWrite + Unpin>, seq: u32) {
    c.send_raw(&smpp::pdu(SUBMIT_SM_RESP, 0, seq, b"mt-1\0"))
        .await;
}

/// A bound transceiver session with icaze.
async fn bound(smsc: &TcpListener) -> Client {
    let (mut c, bind) = smpp::accept_bind(smsc).await;
    assert_eq!(bind.command_id, smpp::BIND_TRANSCEIVER);
    smpp::answer_bind(&mut c, &bind, smpp::ESME_ROK).await;
    c
}

/// Injects an MO as deliver_sm; returns its sequence number.
async fn inject(
    c: &mut Client<impl AsyncRead + AsyncWrite + Unpin>,
    from: &str,
    to: &str,
    text: &str,
) -> u32 {
    c.send(
        smpp::DELIVER_SM,
        &smpp::sm_body(from, to, 0, 0, text.as_bytes(), &[]),
    )
    .await
}

/// Reads until the response to `seq` and one reply (submit_sm, acknowledged with a
/// message_id) have both arrived; returns the response status and the reply.
async fn exchange(
    c: &mut Client<impl AsyncRead + AsyncWrite + Unpin>,
    seq: u32,
) -> (u32, smpp::Sm) {
    let (mut status, mut reply) = (None, None);
    while status.is_none() || reply.is_none() {
        let p = c.read_skipping_enquire().await.expect("icaze answers");
        match p.command_id {
            DELIVER_SM_RESP if p.seq == seq => {
                assert_eq!(p.body, [0], "deliver_sm_resp carries a NULL message_id");
                status = Some(p.status);
            }
            smpp::SUBMIT_SM => {
                answer_submit(c, p.seq).await;
                // A long reply comes in parts (UDH); the whole of it counts.
                if let Some(whole) = c.assemble(&p.body) {
                    reply = Some(whole);
                }
            }
            other => panic!("unexpected {other:#x}: {p:?}"),
        }
    }
    (status.unwrap(), reply.unwrap())
}

fn bind_fields(body: &[u8]) -> (String, String, u8) {
    let mut parts = body.split(|&b| b == 0);
    let system_id = String::from_utf8(parts.next().unwrap().to_vec()).unwrap();
    let password = String::from_utf8(parts.next().unwrap().to_vec()).unwrap();
    let system_type_len = parts.next().unwrap().len();
    let version = body[system_id.len() + password.len() + system_type_len + 3];
    (system_id, password, version)
}

#[tokio::test]
async fn mo_as_deliver_sm_gets_its_permit_as_submit_sm() {
    let (smsc, gw) = smsc_and_gateway("").await;
    let (mut c, bind) = smpp::accept_bind(&smsc).await;
    assert_eq!(bind.command_id, smpp::BIND_TRANSCEIVER);
    assert_eq!(
        bind_fields(&bind.body),
        ("icaze".into(), "s3cret".into(), 0x34)
    );
    smpp::answer_bind(&mut c, &bind, smpp::ESME_ROK).await;

    let seq = inject(&mut c, "994501234567", "8103", "2 AZE 11111111").await;
    let (status, reply) = exchange(&mut c, seq).await;
    assert_eq!(status, smpp::ESME_ROK);
    assert_eq!(
        (reply.source.as_str(), reply.dest.as_str(), reply.esm_class),
        ("8103", "994501234567", 0)
    );
    let text = smpp::sm_text(&reply);
    assert!(text.starts_with("PERMIT GRANTED: code 2"), "{text}");
    assert!(text.contains("AZE 11111111"), "{text}");
    let permit = text
        .rsplit("Permit no. ")
        .next()
        .unwrap()
        .trim()
        .to_string();
    assert!(permit.len() >= 8, "{text}");

    // The same request again: the same permit, no second grant.
    let seq = inject(&mut c, "994501234567", "8103", "2 aze 1111 1111").await;
    let (status, again) = exchange(&mut c, seq).await;
    assert_eq!(status, smpp::ESME_ROK);
    let again = smpp::sm_text(&again);
    assert!(again.starts_with("You already have a permit"), "{again}");
    assert!(again.ends_with(&permit), "{again} should repeat {permit}");

    // An MO for another number is refused in its deliver_sm_resp, with no reply.
    let seq = inject(&mut c, "994501234567", "9999", "2 AZE 22222222").await;
    let p = c.read_skipping_enquire().await.unwrap();
    assert_eq!(
        (p.command_id, p.seq, p.status),
        (DELIVER_SM_RESP, seq, smpp::ESME_RINVDSTADR)
    );

    // The SMSC's enquire_link is answered.
    let seq = c.send(smpp::ENQUIRE_LINK, &[]).await;
    let p = c.read().await.unwrap();
    assert_eq!(
        (p.command_id, p.seq),
        (smpp::ENQUIRE_LINK | smpp::RESP, seq)
    );
    gw.shutdown.cancel();
}

#[tokio::test]
async fn a_refused_bind_is_retried_until_the_smsc_accepts() {
    let (smsc, gw) = smsc_and_gateway("").await;
    let (mut c, bind) = smpp::accept_bind(&smsc).await;
    smpp::answer_bind(&mut c, &bind, smpp::ESME_RINVPASWD).await;
    // icaze closes that connection and comes back after its back-off.
    assert!(c.read().await.is_none(), "icaze closes a refused bind");
    let mut c = bound(&smsc).await;
    let seq = inject(&mut c, "994507654321", "8103", "1 AA 1234567").await;
    let (status, reply) = exchange(&mut c, seq).await;
    assert_eq!(status, smpp::ESME_ROK);
    assert_eq!(reply.dest, "994507654321");
    gw.shutdown.cancel();
}

#[tokio::test]
async fn pairs_take_mo_on_the_receiver_and_send_replies_on_the_transmitter() {
    let (smsc, gw) = smsc_and_gateway("bind = \"pair\"\n").await;
    let (a, bind_a) = smpp::accept_bind(&smsc).await;
    let (b, bind_b) = smpp::accept_bind(&smsc).await;
    let ((mut rx, bind_rx), (mut tx, bind_tx)) = if bind_a.command_id == smpp::BIND_RECEIVER {
        ((a, bind_a), (b, bind_b))
    } else {
        ((b, bind_b), (a, bind_a))
    };
    assert_eq!(
        (bind_rx.command_id, bind_tx.command_id),
        (smpp::BIND_RECEIVER, smpp::BIND_TRANSMITTER)
    );
    // Only the receiver is bound: the MO is decided and acknowledged, its reply waits.
    smpp::answer_bind(&mut rx, &bind_rx, smpp::ESME_ROK).await;
    let seq = inject(&mut rx, "994551112233", "8103", "3 MYİ 7654321").await;
    let p = rx.read_skipping_enquire().await.unwrap();
    assert_eq!(
        (p.command_id, p.seq, p.status),
        (DELIVER_SM_RESP, seq, smpp::ESME_ROK)
    );
    assert!(
        rx.read_within(Duration::from_millis(300)).await.is_none(),
        "no reply on a receiver bind"
    );
    // The transmitter binds: the reply goes out on it.
    smpp::answer_bind(&mut tx, &bind_tx, smpp::ESME_ROK).await;
    let p = tx.read_skipping_enquire().await.expect("the reply");
    assert_eq!(p.command_id, smpp::SUBMIT_SM);
    let reply = smpp::parse_sm(&p.body);
    assert_eq!(reply.dest, "994551112233");
    assert!(smpp::sm_text(&reply).contains("7654321"));
    answer_submit(&mut tx, p.seq).await;
    gw.shutdown.cancel();
}

#[tokio::test]
async fn a_reply_unanswered_when_the_link_drops_goes_out_again_after_reconnect() {
    let (smsc, gw) = smsc_and_gateway("").await;
    let mut c = bound(&smsc).await;
    inject(&mut c, "994709998877", "8103", "2 DYI 1112223").await;
    let first = loop {
        let p = c.read_skipping_enquire().await.expect("reply");
        if p.command_id == smpp::SUBMIT_SM {
            break smpp::parse_sm(&p.body);
        }
    };
    // The link dies before the SMSC answers the submit_sm.
    drop(c);
    let mut c = bound(&smsc).await;
    let p = c.read_skipping_enquire().await.expect("the reply again");
    assert_eq!(p.command_id, smpp::SUBMIT_SM);
    let again = smpp::parse_sm(&p.body);
    assert_eq!(
        (again.dest.as_str(), smpp::sm_text(&again)),
        (first.dest.as_str(), smpp::sm_text(&first))
    );
    answer_submit(&mut c, p.seq).await;
    gw.shutdown.cancel();
}

#[tokio::test]
async fn shutdown_unbinds_from_the_smsc_and_does_not_reconnect() {
    let (smsc, gw) = smsc_and_gateway("").await;
    let mut c = bound(&smsc).await;
    // Once icaze has taken the bind (it answers our enquire_link after it), stop it.
    let seq = c.send(smpp::ENQUIRE_LINK, &[]).await;
    assert_eq!(c.read().await.unwrap().seq, seq);
    gw.shutdown.cancel();
    let p = c.read_skipping_enquire().await.expect("an unbind");
    assert_eq!(p.command_id, smpp::UNBIND);
    c.send_raw(&smpp::pdu(smpp::UNBIND | smpp::RESP, 0, p.seq, &[]))
        .await;
    assert!(c.read().await.is_none(), "icaze closes after unbind_resp");
    tokio::time::timeout(Duration::from_secs(5), gw.done)
        .await
        .expect("the gateway stops within its grace period")
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), smsc.accept())
            .await
            .is_err(),
        "no reconnection after shutdown"
    );
}

/// An SMSC speaking TLS with a certificate from a new test CA (written to `dir/CA_FILE`).
fn tls_smsc(dir: &std::path::Path, ca_file: &str) -> tokio_rustls::TlsAcceptor {
    let ca = TestCa::new("icaze SMSC CA");
    ca.write(dir, ca_file);
    let leaf = ca.leaf(dir, "smsc", "icaze smsc test");
    let identity = icaze::tls::Identity {
        cert: leaf.cert,
        key: leaf.key,
    };
    tokio_rustls::TlsAcceptor::from(identity.load().expect("the SMSC's certificate"))
}

/// Accepts icaze's next TCP connection on `smsc` and the TLS handshake over it.
async fn accept_tls(
    smsc: &TcpListener,
    acceptor: &tokio_rustls::TlsAcceptor,
) -> std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let (stream, _) = tokio::time::timeout(Duration::from_secs(10), smsc.accept())
        .await
        .expect("icaze connects to the SMSC")
        .unwrap();
    acceptor.accept(stream).await
}

#[tokio::test]
async fn a_connector_dials_a_tls_smsc_it_trusts_and_carries_mo_and_replies() {
    let smsc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let acceptor = tls_smsc(dir.path(), "smsc-ca.crt");
    // The address is 127.0.0.1; the certificate names localhost too: tls_name picks it.
    let _gw = gateway_in(
        dir,
        &smsc,
        "tls = true\nca = \"smsc-ca.crt\"\ntls_name = \"localhost\"\n",
    )
    .await;
    let tls = accept_tls(&smsc, &acceptor)
        .await
        .expect("icaze's handshake");
    assert_eq!(tls.get_ref().1.server_name(), Some("localhost"));
    let mut c = Client::over(tls);
    let bind = c.read().await.expect("a bind request over TLS");
    assert_eq!(bind.command_id, smpp::BIND_TRANSCEIVER);
    smpp::answer_bind(&mut c, &bind, smpp::ESME_ROK).await;
    let seq = inject(&mut c, "994501234567", "8103", "2 AZE 11111111").await;
    let (status, reply) = exchange(&mut c, seq).await;
    assert_eq!(status, smpp::ESME_ROK);
    assert_eq!(reply.dest, "994501234567");
    let text = smpp::sm_text(&reply);
    assert!(text.contains("AZE 11111111"), "{text}");
}

#[tokio::test]
async fn a_connector_refuses_an_smsc_certificate_it_does_not_trust_and_tries_again() {
    let smsc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let acceptor = tls_smsc(dir.path(), "smsc-ca.crt");
    // No `ca`: the compiled-in public roots, which never signed a test CA.
    let _gw = gateway_in(dir, &smsc, "tls = true\n").await;
    for attempt in 0..2 {
        let refused = accept_tls(&smsc, &acceptor).await;
        assert!(
            refused.is_err(),
            "attempt {attempt}: icaze must refuse the certificate and send no bind"
        );
    }
}

#[tokio::test]
async fn a_connector_trusts_a_renewed_ca_file_after_a_reload() {
    let smsc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    tls_smsc(&path, "smsc-ca.crt");
    // The SMSC moved to a certificate from another CA, not yet in the connector's file.
    let acceptor = tls_smsc(&path, "new-ca.crt");
    let gw = gateway_in(
        dir,
        &smsc,
        "tls = true\nca = \"smsc-ca.crt\"\ntls_name = \"localhost\"\n",
    )
    .await;
    assert!(
        accept_tls(&smsc, &acceptor).await.is_err(),
        "not trusted yet"
    );
    std::fs::copy(path.join("new-ca.crt"), path.join("smsc-ca.crt")).unwrap();
    icaze::tls::reload(&gw.gateway);
    // Attempts already under way may still use the old file; a later one binds.
    let mut c = loop {
        if let Ok(tls) = accept_tls(&smsc, &acceptor).await {
            break Client::over(tls);
        }
    };
    let bind = c.read().await.expect("a bind request over TLS");
    assert_eq!(bind.command_id, smpp::BIND_TRANSCEIVER);
}
