//! SIGHUP with a renewed certificate, against the real `icaze serve`: a session bound over
//! TLS stays up and is served, new handshakes (SMPP and HTTPS admin) get the new
//! certificate, and a broken renewal is refused by file and key while the one in use stays.

mod support;

use std::path::Path;
use std::time::Duration;
use support::process::Icaze;
use support::smpp::{BIND_TRANSCEIVER, Client, ESME_ROK};
use support::tls::{Leaf, TestCa, served};

/// Issues a certificate for `name` and puts it where the config points (`name.crt`,
/// `name.key`), each file replaced whole as a renewal would.
fn install(ca: &TestCa, dir: &Path, name: &str, cn: &str) -> Leaf {
    let fresh = ca.leaf(dir, &format!("{name}-new"), cn);
    let leaf = Leaf {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
        der: fresh.der,
    };
    std::fs::rename(&fresh.cert, &leaf.cert).unwrap();
    std::fs::rename(&fresh.key, &leaf.key).unwrap();
    leaf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_serves_a_new_certificate_to_new_handshakes_and_keeps_the_binds() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("icaze test CA");
    let first = install(&ca, dir.path(), "smpp", "first");
    let first_admin = install(&ca, dir.path(), "admin", "first admin");
    let mut icaze = Icaze::spawn(
        dir.path(),
        "gw",
        "",
        "[smpp.tls]\nlisten = \"127.0.0.1:0\"\ncert = \"smpp.crt\"\nkey = \"smpp.key\"\n\
         [admin.tls]\ncert = \"admin.crt\"\nkey = \"admin.key\"\n",
    );
    let (tls_addr, admin) = (icaze.tls_addr(), icaze.admin_addr());
    let stream = ca.connect(tls_addr).await.expect("TLS");
    assert_eq!(served(&stream), first.der);
    let mut bound = Client::over(stream);
    assert_eq!(bound.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_ROK);
    let (_, cert) = support::http::get_https(&ca, admin, "/healthz").await;
    assert_eq!(cert, first_admin.der);

    let second = install(&ca, dir.path(), "smpp", "second");
    let second_admin = install(&ca, dir.path(), "admin", "second admin");
    icaze.hangup();
    for table in ["table=\"smpp.tls\"", "table=\"admin.tls\""] {
        let needle = format!("TLS certificate reloaded {table}");
        icaze
            .wait_for_log(&needle, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("no {needle:?}; its log:\n{}", icaze.log_text()));
    }
    let fresh = ca.connect(tls_addr).await.expect("TLS after the reload");
    assert_eq!(
        served(&fresh),
        second.der,
        "a new handshake gets the new certificate"
    );
    let (answer, cert) = support::http::get_https(&ca, admin, "/healthz").await;
    assert_eq!((answer.status, cert), (200, second_admin.der));
    // The session bound before the reload goes on: its MO is decided and answered.
    let answers = bound
        .converse(&[("994501234567".into(), "2 AZE 11111111".into())])
        .await;
    assert_eq!(answers[0].0, ESME_ROK);
    assert!(answers[0].1[0].contains("AZE 11111111"), "{answers:?}");

    // A renewal half done (the key not there yet) is refused, naming file and key; the
    // certificate in use stays.
    std::fs::write(dir.path().join("smpp.key"), "").unwrap();
    icaze.hangup();
    let refused = icaze
        .wait_for_log("TLS reload refused", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no refusal; its log:\n{}", icaze.log_text()));
    assert!(refused.contains("smpp.tls.key"), "{refused}");
    assert!(refused.contains("gw.toml"), "{refused}");
    let still = ca
        .connect(tls_addr)
        .await
        .expect("TLS after a refused reload");
    assert_eq!(served(&still), second.der);
    let mut c = Client::over(still);
    assert_eq!(c.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_ROK);
}
