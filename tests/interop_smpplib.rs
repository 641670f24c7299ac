//! Interoperability: python smpplib (from PyPI, in the venv `.ci/run` creates) binds as a
//! transceiver, submits `2 AZE 11111111`, receives the permit as deliver_sm, acknowledges
//! it and unbinds.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smpplib_gets_its_permit() {
    let Some(python) = python() else {
        support::needs::missing(
            "python_smpplib_gets_its_permit",
            "python smpplib not found (run .ci/run, or set ICAZE_INTEROP_PYTHON)",
        );
        return;
    };
    let gw = TestGateway::start("", "").await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/smpplib_client.py");
    let port = gw.addr.port().to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args(["127.0.0.1", &port, "2 AZE 11111111"])
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
}
