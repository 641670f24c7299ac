//! The gateway on the Redis store, end to end: real `icaze serve` processes, a real
//! `redis-server` (and a three-primary Redis Cluster), SMPP over TCP.
//!
//! - two gateway nodes on one Redis (and on a cluster) taking conflicting requests for the
//!   same documents at once never grant more than the daily limit;
//! - an operator re-sending an MO gets the same permit back, on either node;
//! - Redis killed and restarted in the middle of traffic: no acknowledged permit is lost,
//!   the gateway reconnects by itself, and the MOs that arrive while Redis is away get the
//!   "try again in a few minutes" reply after `[redis] retry_for`;
//! - a family (several documents in one SMS) on one node racing single requests for the
//!   same documents on the other: each document still gets exactly one permit;
//! - a gateway started while Redis is down says so, keeps trying, and serves once it is up;
//! - a cluster primary away for longer than `retry_for`: only the MOs of its slots get the
//!   "try again" reply, the grants the healthy primaries made in the same batch are grants;
//! - a hung primary (the outbox's own) with every pipeline in flight waiting on it: an MO
//!   for a healthy primary and a text that needs no Redis are answered before its MOs;
//! - a primary away for a while has its MOs answered "try again" at once, not after
//!   `retry_for`, and a family needing it does not hold up the healthy primary's MOs;
//! - while Redis stalls, a connection with MOs waiting on it still answers enquire_link and
//!   takes in more MOs, and every one is answered in order once Redis goes on.
//!
//! Without `redis-server` these tests say they are SKIPPED (and fail under `CI=true`).

mod support;

use std::collections::HashMap;
use std::time::Duration;
use support::process::Icaze;
use support::redis::{RedisCluster, RedisServer};
use support::smpp::*;

const GRANTED: &str = "PERMIT GRANTED";
const ACTIVE: &str = "You already have a permit";
const TRY_LATER: &str = "send it again in a few minutes";

/// The permit number in a reply, if it carries one.
fn permit_no(reply: &str) -> Option<&str> {
    reply.split("Permit no. ").nth(1).map(str::trim)
}

/// The one reply to an MO, checked to be accepted with exactly one reply.
fn only_reply((status, replies): &(u32, Vec<String>)) -> &str {
    assert_eq!(*status, ESME_ROK, "MO refused; replies {replies:?}");
    assert_eq!(replies.len(), 1, "expected exactly one reply: {replies:?}");
    &replies[0]
}

/// Reads until `resps` submit_sm_resp and `replies` whole replies came (answering every
/// deliver_sm): the responses' sequence numbers, in the order they came, and when.
async fn answers(c: &mut Client, resps: usize, replies: usize) -> Vec<(u32, std::time::Instant)> {
    let (mut answered, mut whole) = (Vec::new(), 0);
    while answered.len() < resps || whole < replies {
        let p = c
            .read_skipping_enquire()
            .await
            .expect("the gateway answers");
        if p.command_id == DELIVER_SM {
            c.send_raw(&pdu(DELIVER_SM | RESP, 0, p.seq, &[0])).await;
            // A reply of several parts counts once, when whole.
            whole += usize::from(c.assemble(&p.body).is_some());
        } else if p.command_id == SUBMIT_SM | RESP {
            answered.push((p.seq, std::time::Instant::now()));
        }
    }
    answered
}

/// The submit_sm of `mos` as one write (one read for the gateway), and their sequence
/// numbers.
fn one_write(c: &mut Client, mos: &[(String, String)]) -> (Vec<u8>, Vec<u32>) {
    let mut write = Vec::new();
    let mut seqs = Vec::new();
    for (source, text) in mos {
        let seq = c.next_seq();
        write.extend(pdu(
            SUBMIT_SM,
            0,
            seq,
            &sm_body(source, "8103", 0, 0, text.as_bytes(), &[]),
        ));
        seqs.push(seq);
    }
    (write, seqs)
}

/// Node "a" on `store` (a Redis URL, or a cluster's URLs) with `[redis] retry_for`, in a
/// fresh directory that lives as long as the returned guard.
fn node_a(store: impl std::fmt::Debug, retry_for: &str) -> (tempfile::TempDir, Icaze) {
    let dir = tempfile::tempdir().unwrap();
    let node = Icaze::spawn(
        dir.path(),
        "a",
        &format!("store = {store:?}"),
        &format!("[redis]\nretry_for = {retry_for:?}\n"),
    );
    (dir, node)
}

async fn bound(node: &mut Icaze) -> Client {
    let mut c = Client::connect(node.addr()).await;
    assert_eq!(c.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_ROK);
    c
}

/// `count` code-`code` requests for documents `AZE 7000000N`, each from its own phone (the
/// prefix tells the nodes' senders apart).
fn requests(prefix: &str, code: u8, docs: std::ops::Range<u32>) -> Vec<(String, String)> {
    docs.map(|i| {
        (
            format!("{prefix}{i:06}"),
            format!("{code} AZE {:08}", 70_000_000 + i),
        )
    })
    .collect()
}

/// Two nodes on one store take, at the same moment, the same code-2 requests for `N`
/// documents, and node B also code 1 for them (a quota group of its own). Per document
/// exactly one code-2 permit exists: one node grants it, the other re-sends it. Then an
/// operator re-sends an MO to the other node after a "lost" acknowledgement: the same
/// permit comes back.
async fn two_nodes_never_exceed_the_limit(store: &str, redis_keys: impl Fn(&str) -> String) {
    const N: u32 = 300;
    let dir = tempfile::tempdir().unwrap();
    let mut a = Icaze::spawn(dir.path(), "a", store, "");
    let mut b = Icaze::spawn(dir.path(), "b", store, "");
    let (mut ca, mut cb) = (bound(&mut a).await, bound(&mut b).await);
    // A walks the documents up, B down, ten MOs per write, so the two meet in the middle
    // and both decide some first.
    let via_a = requests("99450", 2, 0..N);
    let mut via_b = requests("99451", 2, 0..N);
    via_b.reverse();
    via_b.extend(requests("99452", 1, 0..N));
    let pace = Duration::from_millis(1);
    let (ra, mut rb) = tokio::join!(
        ca.converse_chunked(&via_a, 10, pace),
        cb.converse_chunked(&via_b, 10, pace)
    );
    rb[..N as usize].reverse();

    let mut granted_by = HashMap::new();
    for i in 0..N as usize {
        let (x, y) = (only_reply(&ra[i]), only_reply(&rb[i]));
        let grants = [x, y].iter().filter(|r| r.starts_with(GRANTED)).count();
        let actives = [x, y].iter().filter(|r| r.starts_with(ACTIVE)).count();
        assert_eq!(
            (grants, actives),
            (1, 1),
            "document {i}: one node grants, the other re-sends; got {x:?} / {y:?}"
        );
        assert_eq!(permit_no(x), permit_no(y), "document {i}: one permit");
        *granted_by
            .entry(if x.starts_with(GRANTED) { 'a' } else { 'b' })
            .or_insert(0) += 1;
        let code1 = only_reply(&rb[N as usize + i]);
        assert!(
            code1.starts_with(GRANTED),
            "code 1 is its own group: {code1:?}"
        );
        assert_ne!(permit_no(code1), permit_no(x));
        // Redis counted one code-2 grant for the day.
        let value = redis_keys(&format!("icaze:{{AZE{:08}}}:g:2", 70_000_000 + i));
        // A bulk string: `$LEN`, then `day count from until ask`.
        let count = value.lines().nth(1).and_then(|v| v.split(' ').nth(1));
        assert_eq!(count, Some("1"), "document {i}: Redis holds {value:?}");
    }
    // Both nodes really decided some: the race was real.
    assert!(
        granted_by.len() == 2,
        "one node granted everything ({granted_by:?}): the nodes did not race"
    );

    // A lost acknowledgement: the operator sends the MO again, this time through the node
    // that did not take it first. Same permit, no second one.
    let resend: Vec<(String, String)> = via_a[..50].to_vec();
    let again = cb.converse(&resend).await;
    for (i, r) in again.iter().enumerate() {
        let r = only_reply(r);
        assert!(r.starts_with(ACTIVE), "re-sent MO {i}: {r:?}");
        assert_eq!(permit_no(r), permit_no(only_reply(&ra[i])));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_redis_never_exceed_the_limit() {
    let Some(redis) = RedisServer::start("two_gateways_on_one_redis_never_exceed_the_limit") else {
        return;
    };
    let store = format!("store = {:?}", redis.url());
    two_nodes_never_exceed_the_limit(&store, |key| redis.command(&["GET", key]).expect("GET"))
        .await;
}

/// The line of a family reply naming `document`.
fn family_line<'r>(reply: &'r str, document: &str) -> &'r str {
    let lines: Vec<&str> = reply.lines().filter(|l| l.starts_with(document)).collect();
    assert_eq!(lines.len(), 1, "{document} once in {reply:?}");
    lines[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_family_racing_single_requests_on_another_node_gets_one_permit_per_document() {
    const N: u32 = 60;
    let Some(redis) = RedisServer::start("a_family_racing_single_requests") else {
        return;
    };
    let store = format!("store = {:?}", redis.url());
    let dir = tempfile::tempdir().unwrap();
    let mut a = Icaze::spawn(dir.path(), "a", &store, "");
    let mut b = Icaze::spawn(dir.path(), "b", &store, "");
    let (mut ca, mut cb) = (bound(&mut a).await, bound(&mut b).await);
    let aze = |i: u32| format!("AZE {:08}", 71_000_000 + i);
    let aa = |i: u32| format!("AA {:07}", 7_100_000 + i);
    let families: Vec<(String, String)> = (0..N)
        .map(|i| (format!("99450{i:06}"), format!("2 {} {}", aze(i), aa(i))))
        .collect();
    // B asks for the same documents one by one, walking down while A walks up.
    let mut singles: Vec<(String, String)> = (0..N)
        .flat_map(|i| {
            [
                (format!("99451{i:06}"), format!("2 {}", aze(i))),
                (format!("99452{i:06}"), format!("2 {}", aa(i))),
            ]
        })
        .collect();
    singles.reverse();
    let pace = Duration::from_millis(1);
    let (ra, mut rb) = tokio::join!(
        ca.converse_chunked(&families, 5, pace),
        cb.converse_chunked(&singles, 10, pace)
    );
    rb.reverse();
    for i in 0..N {
        let family = only_reply(&ra[i as usize]);
        assert!(family.starts_with("Code 2 ("), "{family}");
        for (k, document) in [aze(i), aa(i)].into_iter().enumerate() {
            let line = family_line(family, &document);
            let single = only_reply(&rb[2 * i as usize + k]);
            let in_family = line.contains(": GRANTED ");
            let alone = single.starts_with(GRANTED);
            assert!(
                in_family != alone,
                "{document}: exactly one permit granted; got {line:?} / {single:?}"
            );
            assert!(
                in_family || line.contains("already granted"),
                "{document}: {line:?}"
            );
            assert!(
                alone || single.starts_with(ACTIVE),
                "{document}: {single:?}"
            );
            let line_id = line.rsplit("no. ").next().map(str::trim);
            assert_eq!(line_id, permit_no(single), "{document}: one permit");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_a_redis_cluster_never_exceed_the_limit() {
    let Some(cluster) =
        RedisCluster::start("two_gateways_on_a_redis_cluster_never_exceed_the_limit")
    else {
        return;
    };
    let store = format!("store = {:?}", cluster.urls());
    // The key lives on one of the three primaries; the others answer MOVED.
    two_nodes_never_exceed_the_limit(&store, |key| {
        cluster
            .nodes
            .iter()
            .map(|n| n.command(&["GET", key]).expect("GET"))
            .find(|v| !v.starts_with("-MOVED"))
            .expect("one primary owns the key")
    })
    .await;
    // The documents really are spread over the three primaries.
    for node in &cluster.nodes {
        let keys = node.command(&["DBSIZE"]).expect("DBSIZE");
        assert_ne!(keys.trim(), ":0", "a primary holds no key");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_in_mid_traffic_loses_no_permit() {
    let Some(mut redis) = RedisServer::start("redis_restart_in_mid_traffic_loses_no_permit") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = format!("store = {:?}", redis.url());
    let mut a = Icaze::spawn(dir.path(), "a", &store, "[redis]\nretry_for = \"1s\"\n");
    let addr = a.addr();

    // A steady stream of new citizens, one MO every 4 ms, each acknowledged and answered.
    const N: u32 = 1_000;
    let sender = tokio::spawn(async move {
        let mut c = Client::connect(addr).await;
        assert_eq!(c.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_ROK);
        let mut out = Vec::new();
        for i in 0..N {
            let mo = requests("99453", 2, i..i + 1);
            let r = c.converse(&mo).await;
            out.push((mo[0].clone(), r.into_iter().next().unwrap()));
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
        out
    });
    // Redis dies (SIGKILL) in the middle of it, stays away for 2.5 s, comes back with its
    // AOF.
    tokio::time::sleep(Duration::from_millis(800)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    redis.start_again();
    let answered = sender.await.unwrap();

    let mut kinds = HashMap::new();
    let mut permits = Vec::new();
    for (mo, r) in &answered {
        assert!(
            r.0 == ESME_ROK && r.1.len() == 1,
            "{mo:?}: one acknowledged MO, one reply: {r:?}; the gateway's log:\n{}",
            a.log_text()
        );
        let reply = only_reply(r);
        let kind = if reply.starts_with(GRANTED) {
            permits.push((mo.clone(), permit_no(reply).unwrap().to_string()));
            "granted"
        } else if reply.contains(TRY_LATER) {
            "try_later"
        } else {
            panic!("{mo:?}: a new citizen gets a permit or try-later, not {reply:?}")
        };
        *kinds.entry(kind).or_insert(0) += 1;
    }
    assert!(kinds.get("try_later").is_some_and(|&n| n > 0), "{kinds:?}");
    // Granted after the restart too: the gateway reconnected by itself.
    let last = only_reply(&answered.last().unwrap().1);
    assert!(last.starts_with(GRANTED), "after the restart: {last:?}");

    // A new node that has seen nothing (a node of its own: its own outbox) asks Redis:
    // every permit acknowledged before, during or after the restart is there, the same one.
    let mut b = Icaze::spawn(
        dir.path(),
        "b",
        &format!("{store}\n[smpp]\nnode_id = 2"),
        "",
    );
    let mut cb = bound(&mut b).await;
    let asked: Vec<(String, String)> = permits.iter().map(|(mo, _)| mo.clone()).collect();
    let again = cb.converse(&asked).await;
    for ((mo, permit), r) in permits.iter().zip(&again) {
        assert!(
            r.0 == ESME_ROK && r.1.len() == 1,
            "{mo:?}: one acknowledged MO, one reply: {r:?}; A's log:\n{}\nB's log:\n{}",
            a.log_text(),
            b.log_text()
        );
        let r = only_reply(r);
        assert!(
            r.starts_with(ACTIVE),
            "{mo:?}: permit {permit} was lost: {r:?}"
        );
        assert_eq!(permit_no(r), Some(permit.as_str()), "{mo:?}");
    }
}

/// `retry_for` counts from when an MO was read: MOs held while all of a connection's batch
/// slots wait for an unreachable Redis get their answer `retry_for` after they were read,
/// not a whole `retry_for` after their own batch could start (issue 15 point 5: MOs queued
/// behind a stuck batch waited 8.6 s with `retry_for = 5s`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_for_counts_from_when_the_mo_was_read() {
    let Some(mut redis) = RedisServer::start("retry_for_counts_from_when_the_mo_was_read") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = format!("store = {:?}", redis.url());
    let mut a = Icaze::spawn(dir.path(), "a", &store, "[redis]\nretry_for = \"2s\"\n");
    let mut c = bound(&mut a).await;
    let warm = c.converse(&requests("99460", 2, 0..1)).await;
    assert!(only_reply(&warm[0]).starts_with(GRANTED), "{warm:?}");
    redis.kill();
    // Eight writes 30 ms apart: four batches take the connection's four slots, the last
    // writes' MOs are held until one frees (about 2 s later).
    let mut sent = Vec::new();
    for (phone, text) in requests("99461", 2, 0..8) {
        let seq = c.submit(&phone, "8103", 0, text.as_bytes()).await;
        sent.push((seq, std::time::Instant::now()));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let (last_seq, last_sent) = sent[7];
    let took = answers(&mut c, 8, 0)
        .await
        .into_iter()
        .find(|&(seq, _)| seq == last_seq)
        .map(|(_, at)| at - last_sent)
        .expect("the held MO is answered");
    assert!(
        took < Duration::from_millis(3_200),
        "the held MO was answered {took:?} after it was read: retry_for (2 s) counted from its batch, not from its read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_started_while_redis_is_down_says_so_and_keeps_trying() {
    let Some(mut redis) =
        RedisServer::start("a_gateway_started_while_redis_is_down_says_so_and_keeps_trying")
    else {
        return;
    };
    redis.kill();
    let dir = tempfile::tempdir().unwrap();
    let mut a = Icaze::spawn(dir.path(), "a", &format!("store = {:?}", redis.url()), "");
    let warning = a
        .wait_for_log("redis store unreachable", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no warning about Redis; log:\n{}", a.log_text()));
    assert!(
        warning.contains(&format!("127.0.0.1:{}", redis.port)),
        "the warning names the server: {warning}"
    );
    // It keeps trying, and does not take MOs it could not decide.
    assert!(
        a.wait_for_log("attempts=2", Duration::from_secs(5))
            .is_some(),
        "{}",
        a.log_text()
    );
    assert!(a.log_line("SMPP listening").is_none(), "{}", a.log_text());

    redis.start_again();
    let mut c = Client::connect(a.addr()).await;
    assert_eq!(c.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_ROK);
    let r = c.converse(&requests("99454", 2, 0..1)).await;
    assert!(only_reply(&r[0]).starts_with(GRANTED), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_mo_gets_the_same_permit_on_the_journal_store() {
    // The default store, with a restart between the MO and its re-send.
    let dir = tempfile::tempdir().unwrap();
    let mo = requests("99455", 1, 0..1);
    let first = {
        let mut a = Icaze::spawn(dir.path(), "a", "", "");
        let mut c = bound(&mut a).await;
        let first = c.converse(&mo).await;
        // Its delivery settled, or the restart would send the reply once more.
        a.wait_settled().await;
        first
    };
    let first = only_reply(&first[0]).to_string();
    assert!(first.starts_with(GRANTED), "{first}");
    let mut a = Icaze::spawn(dir.path(), "a", "", "");
    let mut c = bound(&mut a).await;
    let again = c.converse(&mo).await;
    let again = only_reply(&again[0]);
    assert!(again.starts_with(ACTIVE), "{again}");
    assert_eq!(permit_no(again), permit_no(&first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_does_not_stall_the_link() {
    let Some(redis) = RedisServer::start("a_stalled_redis_does_not_stall_the_link") else {
        return;
    };
    let (_dir, mut a) = node_a(redis.url(), "30s");
    let mut c = bound(&mut a).await;
    let warm = c.converse(&requests("99456", 2, 0..1)).await;
    assert!(only_reply(&warm[0]).starts_with(GRANTED), "{warm:?}");

    redis.pause();
    // Eight MOs in eight writes: more than the batches a connection keeps under way, so
    // the later ones wait in the connection while the earlier ones wait on Redis.
    let mos = requests("99457", 2, 1..9);
    let mut seqs = Vec::new();
    for (source, text) in &mos {
        seqs.push(c.submit(source, "8103", 0, text.as_bytes()).await);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    // The link is alive: enquire_link is answered while every MO is still undecided.
    let ping = c.send(ENQUIRE_LINK, &[]).await;
    let p = c
        .read_within(Duration::from_secs(2))
        .await
        .expect("enquire_link answered while Redis is stalled");
    assert_eq!((p.command_id, p.seq), (ENQUIRE_LINK | RESP, ping), "{p:?}");

    redis.resume();
    let mut delivered = Vec::new();
    let mut answered = Vec::new();
    for &seq in &seqs {
        let r = c.expect_resp(seq, &mut delivered).await;
        assert_eq!(r.status, ESME_ROK, "{r:?}");
        answered.push(r.seq);
    }
    assert_eq!(answered, seqs, "acknowledged in the order sent");
    while delivered.len() < mos.len() {
        delivered.push(c.expect_deliver().await);
    }
    // One granted permit per MO (replies may come in any order).
    delivered.sort_by(|x, y| x.dest.cmp(&y.dest));
    for ((source, _), sm) in mos.iter().zip(&delivered) {
        assert_eq!(&sm.dest, source);
        assert!(sm_text(sm).starts_with(GRANTED), "{}", sm_text(sm));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_away_fails_only_its_own_asks_and_the_healthy_shards_grants_stand() {
    let Some(mut cluster) = RedisCluster::start(
        "a_primary_away_fails_only_its_own_asks_and_the_healthy_shards_grants_stand",
    ) else {
        return;
    };
    let (_dir, mut a) = node_a(cluster.urls(), "1s");
    let mut c = bound(&mut a).await;
    let warm = c.converse(&requests("99458", 2, 0..1)).await;
    assert!(only_reply(&warm[0]).starts_with(GRANTED), "{warm:?}");

    cluster.nodes[1].kill();
    // 30 documents in one write: one batch, spread over the three primaries.
    let mos = requests("99459", 2, 1..31);
    let first = c.converse(&mos).await;
    let granted: Vec<usize> = (0..mos.len())
        .filter(|&i| only_reply(&first[i]).starts_with(GRANTED))
        .collect();
    let later: Vec<usize> = (0..mos.len())
        .filter(|&i| only_reply(&first[i]).contains(TRY_LATER))
        .collect();
    assert_eq!(
        granted.len() + later.len(),
        mos.len(),
        "granted or asked to try again: {first:?}"
    );
    assert!(
        !granted.is_empty(),
        "the healthy primaries' grants were answered as failures"
    );
    assert!(
        !later.is_empty(),
        "no document fell on the primary that is away"
    );

    // The primary has been away for over a second now: an MO for it, one for a healthy
    // primary and a text that needs no Redis, in one write, are all answered at once (the
    // first "try again" without waiting its retry_for; the order they come in is tested in
    // a_primary_away_for_a_while_is_answered_at_once and a_hung_primary_holds_up_only_its_own_mos).
    // (Code 1 this time: the same documents, so the same slots.)
    let code_1 = |i: usize| (format!("{}1", mos[i].0), mos[i].1.replacen("2 ", "1 ", 1));
    let read = [
        code_1(later[0]),
        code_1(granted[0]),
        ("994599".to_string(), "hello".to_string()),
    ];
    let now = c.converse(&read).await;
    assert!(only_reply(&now[0]).contains(TRY_LATER), "{now:?}");
    assert!(only_reply(&now[1]).starts_with(GRANTED), "{now:?}");
    assert!(!only_reply(&now[2]).contains(TRY_LATER), "{now:?}");

    // Back: a grant that was answered is the permit the citizen has (the re-send names
    // it); what was answered "try again" was never granted and is granted now.
    cluster.nodes[1].start_again();
    cluster.wait_ok();
    let again = c
        .converse(&granted.iter().map(|&i| mos[i].clone()).collect::<Vec<_>>())
        .await;
    for (r, &i) in again.iter().zip(&granted) {
        let reply = only_reply(r);
        assert!(reply.starts_with(ACTIVE), "{reply}");
        assert_eq!(
            permit_no(reply),
            permit_no(only_reply(&first[i])),
            "{reply}"
        );
    }
    // Each MO answered "try again" during the outage was never granted: its first re-send
    // that reaches the primary is granted. (A re-send answered "try again" while the
    // primary came back may have been granted with its answer lost: then the next one is
    // told of that permit.)
    let mut left = later.clone();
    let mut retried = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !left.is_empty() {
        let asked: Vec<_> = left.iter().map(|&i| mos[i].clone()).collect();
        let answers = c.converse(&asked).await;
        let mut still = Vec::new();
        for (r, &i) in answers.iter().zip(&left) {
            let reply = only_reply(r);
            if reply.contains(TRY_LATER) {
                still.push(i);
                retried.insert(i);
            } else {
                assert!(
                    reply.starts_with(GRANTED)
                        || (retried.contains(&i) && reply.starts_with(ACTIVE)),
                    "{reply}\n{}",
                    a.log_text()
                        .lines()
                        .filter(|l| l.contains("icaze"))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
        }
        assert!(
            still.is_empty() || std::time::Instant::now() < deadline,
            "the primary is back but asks still fail"
        );
        left = still;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The primary (0, 1 or 2, as `RedisCluster` assigns slots) that serves `key`.
fn primary_of(cluster: &RedisCluster, key: &str) -> usize {
    let reply = cluster.nodes[0]
        .command(&["CLUSTER", "KEYSLOT", key])
        .expect("CLUSTER KEYSLOT");
    let slot: u32 = reply
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap_or_else(|_| panic!("CLUSTER KEYSLOT answered {reply:?}"));
    match slot {
        0..=5460 => 0,
        5461..=10922 => 1,
        _ => 2,
    }
}

/// A primary that hangs (no answer and no error, as a machine gone from the network) holds
/// up only the MOs for its own slots. Here it is also the primary of this node's outbox, and
/// every pipeline the store keeps in flight is waiting on it: an MO for a healthy primary
/// and a text that needs no Redis, sent after, are still answered before the hung primary's
/// MOs get "try again" at their `retry_for`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_primary_holds_up_only_its_own_mos() {
    let Some(cluster) = RedisCluster::start("a_hung_primary_holds_up_only_its_own_mos") else {
        return;
    };
    let (_dir, mut a) = node_a(cluster.urls(), "4s");
    let hung = primary_of(&cluster, "icaze:outbox:{0}");
    let all = requests("99460", 2, 0..300);
    let on = |node: usize| {
        all.iter()
            .filter(|(_, text)| {
                let number = text.rsplit(' ').next().unwrap();
                primary_of(&cluster, &format!("AZE{number}")) == node
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let stuck = on(hung);
    let healthy = on((hung + 1) % 3);
    assert!(stuck.len() >= 12 && !healthy.is_empty());

    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(bound(&mut a).await);
    }
    let mut last = clients.pop().unwrap();
    let warm = last.converse(&healthy[..1]).await;
    assert!(only_reply(&warm[0]).starts_with(GRANTED), "{warm:?}");

    cluster.nodes[hung].pause();
    // Three binds, four writes each: as many batches as a bind keeps under way for one
    // primary, 12 in all, each apart (the store gathers what comes within 1 ms), more than
    // the store's pipelines in flight (8).
    for round in 0..4 {
        for (k, c) in clients.iter_mut().enumerate() {
            let (source, text) = &stuck[round * 3 + k];
            c.submit(source, "8103", 0, text.as_bytes()).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let read = [
        healthy[1].clone(),
        ("994609".to_string(), "hello".to_string()),
    ];
    let (write, _) = one_write(&mut last, &read);
    last.send_raw(&write).await;

    let (first, stuck_answers) = tokio::join!(
        answers(&mut last, 2, 0),
        // (Replies go out on any bind of the operator: only responses are counted.)
        futures_util::future::join_all(clients.iter_mut().map(|c| answers(c, 4, 0)))
    );
    let answered_by = first.iter().map(|(_, at)| *at).max().unwrap();
    let stuck_from = stuck_answers
        .iter()
        .flatten()
        .map(|(_, at)| *at)
        .min()
        .unwrap();
    assert!(
        answered_by < stuck_from,
        "the healthy primary's MO and the text that needs no Redis waited for the hung primary"
    );
    cluster.nodes[hung].resume();
}

/// A primary that has been away for a while (killed, its replica not yet promoted) has its
/// MOs answered "try again" at their first failed attempt, long before `retry_for` (here
/// 10 s): MOs each waiting `retry_for` filled the operators' windows, so the healthy
/// primaries' MOs could not be sent either. And a family with documents on that primary and
/// a healthy one does not hold up a single MO of the healthy primary read with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_away_for_a_while_is_answered_at_once() {
    let Some(mut cluster) = RedisCluster::start("a_primary_away_for_a_while_is_answered_at_once")
    else {
        return;
    };
    let (_dir, mut a) = node_a(cluster.urls(), "10s");
    let away = (primary_of(&cluster, "icaze:outbox:{0}") + 1) % 3;
    let healthy = (away + 1) % 3;
    let docs: Vec<u32> = (0..300).collect();
    let on = |node: usize| -> Vec<u32> {
        docs.iter()
            .copied()
            .filter(|i| primary_of(&cluster, &format!("AZE{:08}", 71_000_000 + i)) == node)
            .collect()
    };
    let (dead, alive) = (on(away), on(healthy));
    // An MO from `phone` for code 2 and these documents (a family when several).
    let mo = |phone: &str, of: &[u32]| -> (String, String) {
        let named: Vec<String> = of
            .iter()
            .map(|i| format!("AZE {}", 71_000_000 + i))
            .collect();
        (phone.to_string(), format!("2 {}", named.join(" ")))
    };
    let mut c = bound(&mut a).await;
    let warm = c.converse(&[mo("99461000000", &[alive[0]])]).await;
    assert!(only_reply(&warm[0]).starts_with(GRANTED), "{warm:?}");

    cluster.nodes[away].kill();
    // Right away (the store still retries the primary that is away): a family needing it
    // and a healthy primary's MO in one write; the single MO is answered first.
    let read = [
        mo("99461000002", &[alive[1], dead[1]]),
        mo("99461000003", &[alive[2]]),
    ];
    let (write, seqs) = one_write(&mut c, &read);
    c.send_raw(&write).await;
    let order: Vec<u32> = answers(&mut c, 2, 2)
        .await
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(
        order,
        [seqs[1], seqs[0]],
        "the healthy primary's MO waited for a family that needs the primary that is away"
    );
    // Away for a while now: its MOs are answered at once, not after retry_for.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let sent = std::time::Instant::now();
    let late = c.converse(&[mo("99461000004", &[dead[2]])]).await;
    assert!(only_reply(&late[0]).contains(TRY_LATER), "{late:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "an MO for the primary that is away waited {:?}, as if for retry_for (10 s)",
        sent.elapsed()
    );
}
