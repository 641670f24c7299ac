//! Interoperability: python smpplib (from PyPI, in the venv `.ci/run` creates) binds as a
//! transceiver, submits `2 AZE 11111111`, receives the permit as deliver_sm, acknowledges
//! it and unbinds; once in plain TCP, once inside python's `ssl` on the TLS port.

mod support;

use std::path::PathBuf;
use support::TestGateway;

/// The venv's python: `ICAZE_INTEROP_PYTHON`, else `target/interop-venv/bin/python`.
fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("ICAZE_INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python")
        });
    let ok = std::process::Command::new(&candidate)
        .args(["-c", "import smpplib"])
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(candidate)
}

/// Runs the smpplib client against `port` (over TLS trusting `ca` when given) and checks
/// what a citizen would: the MO acknowledged, the permit in the reply, the unbind.
async fn smpplib_gets_its_permit(name: &str, port: u16, ca: Option<PathBuf>) -> serde_json::Value {
    let Some(python) = python() else {
        support::needs::missing(
            name,
            "python smpplib not found (run .ci/run, or set ICAZE_INTEROP_PYTHON)",
        );
        return serde_json::Value::Null;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/smpplib_client.py");
    let port = port.to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args(["127.0.0.1", &port, "2 AZE 11111111"])
            .args(ca)
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "smpplib client failed:\n{}\n{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(result["submit_status"], 0, "{result}");
    assert!(
        !result["message_id"].as_str().unwrap_or("").is_empty(),
        "{result}"
    );
    assert_eq!(result["unbound"], true);
    let reply = result["reply"].as_str().unwrap();
    assert!(reply.contains("İCAZƏ VERİLDİ"), "{reply}");
    assert!(reply.contains("AZE 11111111"), "{reply}");
    assert!(reply.contains("10:00\u{2013}13:00"), "{reply}");
    let part = &result["parts"][0];
    assert_eq!(part["source"], "8103");
    assert_eq!(part["destination"], "994501234567");
    assert_eq!(part["esm_class"].as_u64().unwrap() & !0x40, 0);
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smpplib_gets_its_permit() {
    let gw = TestGateway::start("", "").await;
    smpplib_gets_its_permit("python_smpplib_gets_its_permit", gw.addr.port(), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smpplib_over_ssl_gets_its_permit_on_the_tls_port() {
    let tls = support::tls::TlsGateway::start("", "").await;
    let result = smpplib_gets_its_permit(
        "python_smpplib_over_ssl_gets_its_permit_on_the_tls_port",
        tls.tls_addr.port(),
        Some(tls.ca_file.clone()),
    )
    .await;
    if !result.is_null() {
        let version = result["tls"].as_str().unwrap_or("");
        assert!(version.starts_with("TLSv1."), "{result}");
    }
}
