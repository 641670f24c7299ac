//! TLS on the SMPP listener's own port and on the admin API, with certificates made in the
//! test (rcgen) and real TLS clients: rustls (tests/support/tls.rs), `openssl s_client`,
//! and (in tests/interop_smpplib.rs) python's `ssl` around smpplib. Connectors dialling a
//! TLS SMSC are in tests/connector.rs; a SIGHUP with a new certificate in tests/tls_reload.rs.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use support::TestGateway;
use support::smpp::{BIND_TRANSCEIVER, Client, ESME_RBINDFAIL, ESME_ROK};
use support::tls::{TestCa, TlsGateway, served};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `addr` from the loopback address `from` (127.0.0.0/8 is all local).
async fn connect_from(addr: SocketAddr, from: Ipv4Addr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_binds_on_the_tls_port_and_gets_its_permit() {
    let tls = TlsGateway::start("", "").await;
    let stream = tls.ca.connect(tls.tls_addr).await.expect("a TLS handshake");
    assert_eq!(served(&stream), tls.leaf.der, "the configured certificate");
    let mut c = Client::over(stream);
    let reply = c.gets_its_permit("AZE 11111111").await;
    assert!(reply.contains("10:00\u{2013}13:00"), "{reply}");
    // The plain port still speaks plain SMPP beside it.
    let mut plain = Client::connect(tls.gw.addr).await;
    plain.gets_its_permit("AA 7654321").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_never_finished_is_dropped_at_the_bind_deadline_and_locks_nobody_out() {
    let tls = TlsGateway::start("bind_timeout = \"2s\"\nmax_unbound_per_address = 2", "").await;
    let flood = Ipv4Addr::new(127, 0, 0, 2);
    // Two connections that never finish a handshake: one silent, one that sends the first
    // bytes of a ClientHello and stops.
    let silent = connect_from(tls.tls_addr, flood).await;
    let mut partial = connect_from(tls.tls_addr, flood).await;
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    let mut stuck = [Client::over(silent), Client::over(partial)];
    // A handshake under way counts as unbound: a third from that host is turned away.
    let mut third = Client::over(connect_from(tls.tls_addr, flood).await);
    assert!(
        third.closed_within(Duration::from_secs(5)).await,
        "a third unbound connection from one host is closed at once"
    );
    // A good client from elsewhere is not held up meanwhile, over TLS or plain.
    let mut good = Client::over(tls.ca.connect(tls.tls_addr).await.expect("TLS"));
    good.gets_its_permit("AZE 11111111").await;
    tls.gw.trx().await;
    // At the bind deadline both are closed, and the host can connect again.
    for c in &mut stuck {
        assert!(
            c.closed_within(Duration::from_secs(10)).await,
            "an unfinished handshake is closed at the bind deadline"
        );
    }
    let metrics = tls.gw.gateway.metrics.encode(|| {});
    assert!(
        metrics.contains("icaze_refused_connections_total{reason=\"tls_handshake\"} 2"),
        "both counted: {metrics}"
    );
    let stream = tls
        .ca
        .handshake(connect_from(tls.tls_addr, flood).await)
        .await
        .expect("the host may try again once its handshakes are gone");
    Client::over(stream).gets_its_permit("AA 1234567").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_sees_the_served_certificate_and_a_verified_chain() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        support::needs::missing(
            "openssl_s_client_sees_the_served_certificate_and_a_verified_chain",
            "openssl not found (.ci/run installs it)",
        );
        return;
    }
    let tls = TlsGateway::start("", "").await;
    let (port, ca) = (tls.tls_addr.port(), tls.ca_file.clone());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-servername", "localhost", "-verify_hostname", "localhost"])
            .arg("-CAfile")
            .arg(&ca)
            .args(["-verify_return_error", "-showcerts"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl runs")
    })
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "openssl s_client failed:\n{out}\n{err}"
    );
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(out.contains("CN = icaze smpp test"), "{out}");
    assert!(out.contains("CN = icaze test CA"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_serves_https() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("icaze admin CA");
    let leaf = ca.leaf(dir.path(), "admin", "icaze admin test");
    let tables = "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\n\
                  [admin.tls]\ncert = \"admin.crt\"\nkey = \"admin.key\"\n";
    let config = support::config(dir.path(), "", tables);
    let gw = TestGateway::start_with(config, dir).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(icaze::admin::serve(
        gw.gateway.clone(),
        listener,
        gw.shutdown.clone(),
    ));
    let (answer, cert) = support::http::get_https(&ca, addr, "/healthz").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json["status"], "alive");
    assert_eq!(cert, leaf.der);
    // Plain HTTP on the HTTPS port gets no answer.
    let plain = tokio::time::timeout(
        Duration::from_secs(10),
        support::http::try_call(addr, "GET", "/healthz"),
    )
    .await
    .expect("the server closes a plain HTTP connection");
    assert!(plain.is_err(), "{plain:?}");
}

#[test]
fn tls_config_errors_name_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("icaze test CA");
    ca.write(dir.path(), "ca.crt");
    ca.leaf(dir.path(), "a", "a");
    ca.leaf(dir.path(), "b", "b");
    std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").unwrap();
    std::fs::write(
        dir.path().join("torn.key"),
        "-----BEGIN PRIVATE KEY-----\nMIIE\n",
    )
    .unwrap();
    let errors = |smpp: &str, tables: &str| -> Vec<(String, String)> {
        let text = format!(
            "rules = {:?}\n[permit]\nkey = \"integration-test-key\"\n[smpp]\nlisten = \"127.0.0.1:2775\"\n{smpp}\n\
             [[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\n{tables}",
            support::shipped_rules().display().to_string()
        );
        let path = dir.path().join("icaze.toml");
        icaze::config::Config::from_toml(&path, &text, &|_| None)
            .err()
            .map(|e| e.0)
            .unwrap_or_default()
            .into_iter()
            .inspect(|e| assert_eq!(e.file, path, "{e}"))
            .map(|e| (e.key, e.message))
            .collect()
    };
    let smpp = |body: &str| format!("[smpp.tls]\nlisten = \"127.0.0.1:3550\"\n{body}");
    let only = |found: Vec<(String, String)>, key: &str, says: &[&str]| {
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, key, "{found:?}");
        for s in says {
            assert!(
                found[0].1.contains(s),
                "{key}: {:?} lacks {s:?}",
                found[0].1
            );
        }
    };
    assert!(errors(&smpp("cert = \"a.crt\"\nkey = \"a.key\""), "").is_empty());
    // (the [smpp.tls] body, or a table of its own; the key named; what its message says)
    let cases: [(String, &str, &str, &[&str]); 7] = [
        (
            smpp("cert = \"gone.crt\"\nkey = \"a.key\""),
            "",
            "smpp.tls.cert",
            &["gone.crt", "cannot read"],
        ),
        (
            smpp("cert = \"junk.pem\"\nkey = \"a.key\""),
            "",
            "smpp.tls.cert",
            &["junk.pem", "no certificate"],
        ),
        (
            smpp("cert = \"a.crt\"\nkey = \"torn.key\""),
            "",
            "smpp.tls.key",
            &["torn.key", "not readable as PEM"],
        ),
        (
            smpp("cert = \"a.crt\"\nkey = \"b.key\""),
            "",
            "smpp.tls.key",
            &["b.key", "is not the key of the certificate in", "a.crt"],
        ),
        (smpp("key = \"a.key\""), "", "smpp.tls.cert", &["missing"]),
        (
            "[smpp.tls]\nlisten = \"127.0.0.1:2775\"\ncert = \"a.crt\"\nkey = \"a.key\"".into(),
            "",
            "smpp.tls.listen",
            &["smpp.listen", "port of its own"],
        ),
        (
            String::new(),
            "[admin.tls]\ncert = \"b.crt\"\nkey = \"a.key\"\n",
            "admin.tls.key",
            &["a.key", "b.crt"],
        ),
    ];
    for (smpp, tables, key, says) in cases {
        only(errors(&smpp, tables), key, says);
    }
    let connector = |extra: &str| {
        format!(
            "[[connectors]]\nname = \"smsc\"\naddress = \"127.0.0.1:2775\"\nsystem_id = \"icaze\"\n\
             password = \"pw\"\n{extra}\n"
        )
    };
    assert!(errors("", &connector("tls = true\nca = \"ca.crt\"")).is_empty());
    assert!(errors("", &connector("tls = true")).is_empty());
    only(
        errors("", &connector("tls = true\nca = \"gone.crt\"")),
        "connectors[0].ca",
        &["gone.crt", "cannot read"],
    );
    only(
        errors("", &connector("ca = \"ca.crt\"")),
        "connectors[0].ca",
        &["tls = true"],
    );
    only(
        errors("", &connector("tls = true\ntls_name = \"not a name\"")),
        "connectors[0].tls_name",
        &["not a name"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_that_stops_reading_is_dropped_at_the_write_timeout() {
    let operators = "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\nmax_binds = 1\n";
    let tls = TlsGateway::start("write_timeout = \"1s\"", operators).await;
    // A client with a tiny receive buffer that asks a lot and reads nothing.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = tls
        .ca
        .handshake(socket.connect(tls.tls_addr).await.unwrap())
        .await
        .expect("TLS");
    let mut stuck = Client::over(stream);
    assert_eq!(stuck.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_ROK);
    let mut second = Client::over(tls.ca.connect(tls.tls_addr).await.expect("TLS"));
    assert_eq!(
        second.bind(BIND_TRANSCEIVER, "demo", "demo").await,
        ESME_RBINDFAIL,
        "demo's one bind is taken"
    );
    let (_unread, mut write) = tokio::io::split(stuck.stream);
    let flood = tokio::spawn(async move {
        // 16 MB of enquire_link: far more answers than the socket and rustls buffer.
        let chunk: Vec<u8> = (1..=4096u32)
            .flat_map(|seq| support::smpp::pdu(support::smpp::ENQUIRE_LINK, 0, seq, &[]))
            .collect();
        for _ in 0..256 {
            if write.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    // demo's one bind is held until the stuck client is dropped; then a new one binds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut again = Client::over(tls.ca.connect(tls.tls_addr).await.expect("TLS"));
        match again.bind(BIND_TRANSCEIVER, "demo", "demo").await {
            ESME_ROK => break,
            status => assert_eq!(status, ESME_RBINDFAIL),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stuck TLS client still holds its bind"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    flood.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_rustls_still_holds_go_out_once_the_peer_reads_again() {
    // No timer writes anything for a minute: only the loop's own flush can send what
    // rustls still holds once our buffer is empty.
    let tls = TlsGateway::start("enquire_link = \"60s\"\ninactivity_timeout = \"300s\"", "").await;
    // The gateway's side of the connection gets a small send buffer (inherited from the
    // listening socket), so a few kilobytes fill it and rustls holds the rest.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(8).unwrap();
    let addr = listener.local_addr().unwrap();
    let gateway = tls.gw.gateway.clone();
    let shutdown = tls.gw.shutdown.clone();
    tokio::spawn(async move {
        let (tcp, peer) = listener.accept().await.unwrap();
        let ticket = gateway.admission.admit(peer.ip()).unwrap();
        let acceptor = gateway.tls.smpp.as_ref().unwrap().acceptor();
        let stream = acceptor.accept(tcp).await.unwrap();
        icaze::gateway::connection::run(
            gateway,
            icaze::gateway::connection::Stream::Tls(Box::new(stream.into())),
            peer,
            shutdown,
            ticket,
            tokio::time::Instant::now(),
        )
        .await;
    });
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = tls
        .ca
        .handshake(socket.connect(addr).await.unwrap())
        .await
        .expect("TLS");
    let mut c = Client::over(stream);
    assert_eq!(c.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_ROK);
    // Answers of 16 bytes: from less than the socket buffers hold to more than rustls does.
    for n in (500..=6000).step_by(500) {
        // Asked in one write, then nothing read for a while.
        let burst: Vec<u8> = (1..=n)
            .flat_map(|seq| support::smpp::pdu(support::smpp::ENQUIRE_LINK, 0, seq, &[]))
            .collect();
        c.send_raw(&burst).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        for seq in 1..=n {
            let p = c
                .read_within(Duration::from_secs(3))
                .await
                .unwrap_or_else(|| panic!("{n} asked: answer {seq} never came"));
            assert_eq!(
                (p.command_id, p.seq),
                (support::smpp::ENQUIRE_LINK | support::smpp::RESP, seq)
            );
        }
    }
}

/// `icaze verify` against the real binary's HTTPS admin API: trusting a `--ca` file, refused
/// without it (the compiled-in roots do not know the test CA), and by the config alone
/// (`[admin.tls]` set: HTTPS to admin.listen, trusting the served chain).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_cli_verifies_over_https() {
    use support::process::Icaze;
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("icaze admin CA");
    let leaf = ca.leaf(dir.path(), "admin", "icaze admin test");
    let ca_file = ca.write(dir.path(), "ca.crt");
    let leaf_pem = std::fs::read_to_string(&leaf.cert).unwrap();
    std::fs::write(
        dir.path().join("admin-chain.crt"),
        format!("{leaf_pem}{}", ca.pem),
    )
    .unwrap();
    let token = "checkpoint-token-for-tls";
    let mut gw = Icaze::spawn_with_env(
        dir.path(),
        "icaze",
        "",
        "[admin.tls]\ncert = \"admin-chain.crt\"\nkey = \"admin.key\"\n",
        &[("ICAZE_CHECKPOINT_TOKEN", token)],
    );
    let smpp = gw.addr();
    let admin = gw.admin_addr();
    let reply = support::smpp::sms(smpp, "994501234567", "2 AZE 11111111").await;
    let id = support::smpp::permit_id(&reply);
    let url = format!("https://127.0.0.1:{}", admin.port());
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_icaze"))
            .args(args)
            .env_remove("ICAZE_CHECKPOINT_TOKEN")
            .env_remove("ICAZE_OFFICIAL_TOKEN")
            .output()
            .expect("icaze runs");
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let ca_arg = ca_file.to_str().unwrap();
    let (code, out) = cli(&[
        "verify", &id, "--admin", &url, "--ca", ca_arg, "--token", token,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("VALID"), "{out}");
    // The Mozilla roots do not trust the test CA: no answer, and it says why.
    let (code, out) = cli(&["verify", &id, "--admin", &url, "--token", token]);
    assert_eq!(code, 69, "{out}");
    assert!(out.contains("TLS handshake"), "{out}");
    // From the config: [admin.tls] makes it HTTPS, the served chain is trusted.
    let config = dir.path().join("icaze.toml");
    let cli_config = dir.path().join("cli.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &cli_config,
        format!("{text}\n[admin]\nlisten = \"127.0.0.1:{}\"\n", admin.port()),
    )
    .unwrap();
    let (code, out) = cli(&[
        "--config",
        cli_config.to_str().unwrap(),
        "verify",
        &id,
        "--token",
        token,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("VALID"), "{out}");
}
