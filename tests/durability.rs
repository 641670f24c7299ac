//! Durability end to end with the real binary, on the embedded journal and on Redis:
//! `kill -9` in the middle of traffic, restart, and no acknowledged grant is forgotten, no
//! reply owed is lost, none delivered and settled comes twice.

mod support;

use support::process::Icaze;
use support::smpp::*;

/// Starts `icaze serve` on port 0 with its journal in `dir` and `top` at the top of the
/// config (e.g. a Redis `store`); returns the child (killed with SIGKILL when dropped) and
/// its port.
fn start_on(dir: &std::path::Path, top: &str) -> (Icaze, std::net::SocketAddr) {
    let mut child = Icaze::spawn(dir, "icaze", top, "");
    let addr = child.addr();
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_forgets_no_acknowledged_grant() {
    kill_9_under_load("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_forgets_no_acknowledged_grant_on_redis() {
    let Some(redis) = support::redis::RedisServer::start("kill_9_under_load_on_redis") else {
        return;
    };
    kill_9_under_load(&format!("store = {:?}", redis.url())).await;
}

/// 2,000 citizens pipelined, kill -9 once a third are acknowledged, restart on the same data
/// directory (or Redis): every citizen acknowledged with status 0 keeps his permit (a
/// re-send is told he already has one, with the same permit id as his first reply), none is
/// granted twice.
async fn kill_9_under_load(top: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = start_on(dir.path(), top);
    let mut c = Client::connect(addr).await;
    assert_eq!(c.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_ROK);
    const N: u32 = 2_000;
    let phone = |i: u32| format!("99450{i:07}");
    let text = |i: u32| format!("2 AZE {i:08}");
    let mut by_seq = std::collections::HashMap::new();
    let mut batch = Vec::new();
    for i in 0..N {
        let seq = c.next_seq();
        by_seq.insert(seq, i);
        batch.extend(pdu(
            SUBMIT_SM,
            0,
            seq,
            &sm_body(&phone(i), "8103", 0, 0, text(i).as_bytes(), &[]),
        ));
    }
    c.send_raw(&batch).await;
    // Read acknowledgements (and replies) until a third of them are in, then kill -9.
    let mut acknowledged = Vec::new();
    let mut replies: Vec<Sm> = Vec::new();
    while acknowledged.len() < (N / 3) as usize {
        let p = c.read().await.expect("the gateway answers");
        match p.command_id {
            x if x == SUBMIT_SM | RESP && p.status == ESME_ROK => acknowledged.push(by_seq[&p.seq]),
            DELIVER_SM => {
                c.send_raw(&pdu(DELIVER_SM | RESP, 0, p.seq, &[0])).await;
                replies.extend(c.assemble(&p.body));
            }
            _ => {}
        }
    }
    child.kill_9();
    drop(c);

    // Restart: replies owed from before the kill come first, then each acknowledged citizen
    // asks again.
    let (child, addr) = start_on(dir.path(), top);
    let mut c = Client::connect(addr).await;
    assert_eq!(c.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_ROK);
    for &i in &acknowledged {
        let seq = c.submit(&phone(i), "8103", 0, text(i).as_bytes()).await;
        let r = c.expect_resp(seq, &mut replies).await;
        assert_eq!(r.status, ESME_ROK);
    }
    replies.extend(receive(&mut c, 0, std::time::Duration::from_secs(1)).await);
    let mut by_citizen: std::collections::HashMap<String, Vec<String>> = Default::default();
    for sm in &replies {
        by_citizen
            .entry(sm.dest.clone())
            .or_default()
            .push(sm_text(sm));
    }
    let mut forgotten = Vec::new();
    for &i in &acknowledged {
        let texts = by_citizen.get(&phone(i)).map_or(&[][..], |t| &t[..]);
        // The first reply (delivered before the kill, or owed and delivered after), then
        // the answer to the re-send; a reply whose answer was lost in the kill may come
        // twice (at least once).
        let first = texts.first().filter(|t| t.starts_with("PERMIT GRANTED"));
        let last = texts
            .last()
            .filter(|t| t.starts_with("You already have a permit"));
        let same_id = match (first, last) {
            (Some(a), Some(b)) => permit_id(a) == permit_id(b),
            _ => false,
        };
        if !same_id || texts.len() > 3 {
            forgotten.push((phone(i), texts.to_vec()));
        }
    }
    assert!(
        forgotten.is_empty(),
        "{} of {} acknowledged grants were forgotten, granted twice or answered oddly, e.g. {:?}",
        forgotten.len(),
        acknowledged.len(),
        forgotten.first()
    );
    drop(child);
}

/// Sends `texts` (citizen `99450iiiiiii` sends text `i`) pipelined and returns how many were
/// acknowledged with status 0.
async fn send_all(c: &mut Client, texts: &[String]) -> usize {
    let mut batch = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let seq = c.next_seq();
        batch.extend(pdu(
            SUBMIT_SM,
            0,
            seq,
            &sm_body(&format!("99450{i:07}"), "8103", 0, 0, text.as_bytes(), &[]),
        ));
    }
    c.send_raw(&batch).await;
    let mut ok = 0;
    for _ in texts {
        let p = c.read().await.expect("an acknowledgement");
        assert_eq!(p.command_id, SUBMIT_SM | RESP);
        if p.status == ESME_ROK {
            ok += 1;
        }
    }
    ok
}

/// Reads deliver_sm (answering each with status 0) until `n` have come, then `quiet` more
/// without one; returns them.
async fn receive(c: &mut Client, n: usize, quiet: std::time::Duration) -> Vec<Sm> {
    let mut got = Vec::new();
    while got.len() < n {
        got.push(c.expect_deliver().await);
    }
    while let Some(p) = c.read_within(quiet).await {
        if p.command_id == DELIVER_SM {
            c.send_raw(&pdu(DELIVER_SM | RESP, 0, p.seq, &[0])).await;
            got.extend(c.assemble(&p.body));
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_owed_at_kill_9_are_delivered_after_restart_and_only_once() {
    replies_owed_survive_kill_9("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_owed_at_kill_9_are_delivered_after_restart_on_redis() {
    let Some(redis) = support::redis::RedisServer::start("replies_owed_on_redis") else {
        return;
    };
    replies_owed_survive_kill_9(&format!("store = {:?}", redis.url())).await;
}

/// Replies delivered while Redis is away are settled once it is back: a restart does not
/// send them again. (Before, the `HDEL` that failed during the outage was dropped, so every
/// reply delivered then stayed owed and went out a second time at the next start.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_delivered_while_redis_is_away_are_not_sent_again_after_a_restart() {
    let Some(mut redis) = support::redis::RedisServer::start("replies_settled_after_outage") else {
        return;
    };
    let top = format!("store = {:?}", redis.url());
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = start_on(dir.path(), &top);
    // Granted and owed while no receiver is bound.
    let mut tx = Client::connect(addr).await;
    assert_eq!(tx.bind(BIND_TRANSMITTER, "demo", "demo").await, ESME_ROK);
    let texts: Vec<String> = (0..20)
        .map(|i| format!("2 AZE {:08}", 40_000_000 + i))
        .collect();
    assert_eq!(send_all(&mut tx, &texts).await, texts.len());
    // Redis goes away; a receiver binds and every reply is delivered and answered.
    redis.kill();
    let mut rx = Client::connect(addr).await;
    assert_eq!(rx.bind(BIND_RECEIVER, "demo", "demo").await, ESME_ROK);
    let got = receive(&mut rx, texts.len(), std::time::Duration::from_millis(300)).await;
    assert_eq!(got.len(), texts.len());
    // Redis is back: the settlements it missed reach it.
    redis.start_again();
    child.wait_settled().await;
    child.kill_9();
    drop((tx, rx));
    let (child, addr) = start_on(dir.path(), &top);
    let mut rx = Client::connect(addr).await;
    assert_eq!(rx.bind(BIND_RECEIVER, "demo", "demo").await, ESME_ROK);
    let again = receive(&mut rx, 0, std::time::Duration::from_secs(1)).await;
    assert!(
        again.is_empty(),
        "{} replies delivered during the outage came again",
        again.len()
    );
    drop(child);
}

/// Replies queued while no receiver is bound, kill -9, restart, bind a receiver: every
/// owed reply arrives; once they are delivered and settled, a second kill -9 and restart
/// sends none of them again.
async fn replies_owed_survive_kill_9(top: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = start_on(dir.path(), top);
    // A transmitter only: every reply waits in the queue, none can be delivered.
    let mut tx = Client::connect(addr).await;
    assert_eq!(tx.bind(BIND_TRANSMITTER, "demo", "demo").await, ESME_ROK);
    // Grants, a bad text and a help request: every one of them is owed a reply.
    let mut texts: Vec<String> = (0..200).map(|i| format!("2 AZE {i:08}")).collect();
    texts.push("hello".into());
    texts.push("help".into());
    assert_eq!(send_all(&mut tx, &texts).await, texts.len());
    child.kill_9();
    drop(tx);

    // Restarted on the same data directory: a receiver gets every reply owed.
    let (mut child, addr) = start_on(dir.path(), top);
    let mut rx = Client::connect(addr).await;
    assert_eq!(rx.bind(BIND_RECEIVER, "demo", "demo").await, ESME_ROK);
    let got = receive(&mut rx, texts.len(), std::time::Duration::from_millis(500)).await;
    assert_eq!(got.len(), texts.len(), "every owed reply, none twice");
    let mut to: Vec<String> = got.iter().map(|sm| sm.dest.clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), texts.len(), "one reply per citizen");
    for sm in &got {
        let i: usize = sm.dest[5..].parse().unwrap();
        let text = sm_text(sm);
        if i < 200 {
            assert!(
                text.starts_with("PERMIT GRANTED"),
                "a grant's reply: {text}"
            );
        } else {
            assert!(!text.contains("Permit "), "not a grant: {text}");
        }
    }
    // Once delivered they are settled: after another kill -9 nothing comes again.
    child.wait_settled().await;
    child.kill_9();
    drop(rx);
    let (child, addr) = start_on(dir.path(), top);
    let mut rx = Client::connect(addr).await;
    assert_eq!(rx.bind(BIND_RECEIVER, "demo", "demo").await, ESME_ROK);
    let again = receive(&mut rx, 0, std::time::Duration::from_secs(1)).await;
    assert!(
        again.is_empty(),
        "{} delivered replies came again",
        again.len()
    );
    drop(child);
}
