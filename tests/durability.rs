//! Durability of the embedded journal, end to end with the real binary: `kill -9` in the
//! middle of traffic, restart, and no acknowledged grant is forgotten.

mod support;

use support::process::Icaze;
use support::smpp::*;

/// Starts `icaze serve` on port 0 with its journal in `dir`; returns the child (killed with
/// SIGKILL when dropped) and its port.
fn start(dir: &std::path::Path) -> (Icaze, std::net::SocketAddr) {
    let mut child = Icaze::spawn(dir, "icaze", "", "");
    let addr = child.addr();
    (child, addr)
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
        .filter(|t| !t.starts_with("You already have a permit"))
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
