//! Durability of the embedded journal, end to end with the real binary: `kill -9` in the
//! middle of traffic, restart, and no acknowledged grant is forgotten.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use support::smpp::*;

/// A running `icaze serve`, killed when dropped (also when an assertion fails).
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `icaze serve` on port 0 with its journal in `dir`; returns the child and its port.
fn start(dir: &std::path::Path) -> (Gateway, SocketAddr) {
    let config = dir.join("icaze.toml");
    std::fs::write(
        &config,
        format!(
            "rules = {:?}\ndata_dir = \"data\"\n[permit]\nkey = \"durability-test-key\"\n[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\n",
            support::shipped_rules().display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_icaze"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("icaze starts");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("icaze logs its address").unwrap();
        if let Some(rest) = line.split("addr=").nth(1)
            && line.contains("SMPP listening")
        {
            break rest.trim().parse().expect("an address");
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Gateway(child), addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_forgets_no_acknowledged_grant() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = start(dir.path());
    let mut c = Client::connect(addr).await;
    assert_eq!(c.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_ROK);
    // 2,000 different citizens ask for a code 2 permit, all pipelined.
    const N: u32 = 2_000;
    let mut by_seq = std::collections::HashMap::new();
    let mut batch = Vec::new();
    for i in 0..N {
        let seq = c.next_seq();
        by_seq.insert(seq, i);
        batch.extend(pdu(
            SUBMIT_SM,
            0,
            seq,
            &sm_body(
                &format!("99450{i:07}"),
                "8103",
                0,
                0,
                format!("2 AZE {i:08}").as_bytes(),
                &[],
            ),
        ));
    }
    c.send_raw(&batch).await;
    // Read acknowledgements until a third of them are in, then kill -9.
    let mut acknowledged = Vec::new();
    while acknowledged.len() < (N / 3) as usize {
        let p = c.read().await.expect("the gateway answers");
        match p.command_id {
            x if x == SUBMIT_SM | RESP && p.status == ESME_ROK => acknowledged.push(by_seq[&p.seq]),
            DELIVER_SM => c.send_raw(&pdu(DELIVER_SM | RESP, 0, p.seq, &[0])).await,
            _ => {}
        }
    }
    drop(child); // kill -9
    drop(c);

    // Restart on the same journal: every acknowledged citizen asking again gets the same
    // permit back ("you already have a permit"), never a second one.
    let (child, addr) = start(dir.path());
    let mut c = Client::connect(addr).await;
    assert_eq!(c.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_ROK);
    let mut replies = Vec::new();
    for &i in &acknowledged {
        let seq = c
            .submit(
                &format!("99450{i:07}"),
                "8103",
                0,
                format!("2 AZE {i:08}").as_bytes(),
            )
            .await;
        let r = c.expect_resp(seq, &mut replies).await;
        assert_eq!(r.status, ESME_ROK);
    }
    while replies.len() < acknowledged.len() {
        replies.push(c.expect_deliver().await);
    }
    let granted_again: Vec<String> = replies
        .iter()
        .map(sm_text)
        .filter(|t| !t.starts_with("İcazəniz artıq var"))
        .collect();
    assert!(
        granted_again.is_empty(),
        "{} of {} acknowledged grants were forgotten, e.g. {:?}",
        granted_again.len(),
        acknowledged.len(),
        granted_again.first()
    );
    drop(child);
}
