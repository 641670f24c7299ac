//! The Redis store against real `redis-server`s: the engine's rules decided inside Redis,
//! limits held under concurrent gateway nodes (standalone and a 3-primary cluster), grants
//! that survive a Redis restart, idempotent retries, and faults that end in retryable
//! errors rather than wrong verdicts.
//!
//! Times are today's (Redis expires keys by the real clock, so a 2020 date would expire
//! every key at once).

#[path = "support/redis.rs"]
mod redis_support;

use icaze::permit::clock::Calendar;
use icaze::permit::document::Document;
use icaze::permit::engine::Validity;
use icaze::store::redis::{GrantAsk, RedisError, RedisOptions, RedisStore, RedisVerdict, WaitAof};
use redis_support::{RedisCluster, RedisServer, command, free_port};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest validity of the rules below.
const LONGEST: u32 = 3 * 3600;

/// The rules of the tests: (code, group tag, shared, limit, validity seconds). Codes 1 and
/// 2 share one permit a day (as in late April 2020); 3 is unlimited; 5 has two a day.
const RULES: &[(u8, u8, bool, Option<u32>, u32)] = &[
    (1, 1, true, Some(1), 3 * 3600),
    (2, 1, true, Some(1), 3 * 3600),
    (3, 3, false, None, 2 * 3600),
    (5, 5, false, Some(2), 3600),
];

fn calendar() -> Calendar {
    Calendar::new(chrono_tz::Asia::Baku)
}

/// 10:00 today in Baku (possibly in the past; the keys still live until tomorrow).
fn ten_am() -> i64 {
    let now = chrono::Utc::now().timestamp();
    calendar().moment(now).day_start + 10 * 3600
}

fn doc(s: &str) -> Document {
    Document::parse_canonical(s).expect("valid document")
}

fn ask(document: Document, code: u8, now: i64) -> GrantAsk {
    let &(code, group_tag, shared, limit, validity_secs) =
        RULES.iter().find(|r| r.0 == code).expect("code in RULES");
    let day_start = calendar().moment(now).day_start;
    GrantAsk {
        document,
        code,
        group_tag,
        shared,
        limit,
        validity_secs,
        now,
        day_start,
        expire_at: calendar().moment(day_start + 26 * 3600).day_start + i64::from(LONGEST),
    }
}

fn window(from: i64, validity: u32) -> Validity {
    Validity {
        from,
        until: from + i64::from(validity),
    }
}

async fn connect(options: RedisOptions) -> RedisStore {
    RedisStore::connect(options).await.expect("store connects")
}

/// `error` says no replica confirmed a pipeline that wanted one.
fn assert_unconfirmed_by_the_one_replica_wanted(error: &RedisError) {
    assert!(
        matches!(
            error,
            RedisError::NotDurable {
                replicas: 0,
                wanted_replicas: 1,
                ..
            }
        ),
        "{error}"
    );
}

async fn one(store: &RedisStore, ask: GrantAsk) -> RedisVerdict {
    store.decide(&[ask]).await.expect("decided")[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_active_limit_and_next_day() {
    let Some(server) = RedisServer::start("grant_active_limit_and_next_day") else {
        return;
    };
    let store = connect(RedisOptions::standalone(server.url())).await;
    let d = doc("AZE11111111");
    let t = ten_am();

    assert_eq!(
        one(&store, ask(d, 5, t)).await,
        RedisVerdict::Granted(window(t, 3600))
    );
    assert_eq!(
        one(&store, ask(d, 5, t + 60)).await,
        RedisVerdict::Active(window(t, 3600)),
        "a repeat while active is the same permit"
    );
    assert_eq!(
        one(&store, ask(d, 5, t + 3600)).await,
        RedisVerdict::Granted(window(t + 3600, 3600)),
        "ended at until: the second permit of the day"
    );
    assert_eq!(
        one(&store, ask(d, 5, t + 7300)).await,
        RedisVerdict::DailyLimit { limit: 2 }
    );
    let tomorrow = t + 86_400;
    assert_eq!(
        one(&store, ask(d, 5, tomorrow)).await,
        RedisVerdict::Granted(window(tomorrow, 3600)),
        "a new day starts with nothing used"
    );
    assert_eq!(
        one(&store, ask(doc("AA1234567"), 5, t + 7300)).await,
        RedisVerdict::Granted(window(t + 7300, 3600)),
        "another document has its own quota"
    );

    // The key layout and expiry the module docs promise.
    let key = "icaze:{AZE11111111}:g:5";
    let value = command(server.port, &["GET", key]).unwrap();
    let tomorrow_start = calendar().moment(tomorrow).day_start;
    assert!(
        value.contains(&format!(
            "{tomorrow_start} 1 {tomorrow} {}",
            tomorrow + 3600
        )),
        "{value}"
    );
    let a = ask(d, 5, tomorrow);
    let expires: i64 = command(server.port, &["EXPIRETIME", key]).unwrap()[1..]
        .trim()
        .parse()
        .unwrap();
    assert!(
        (a.expire_at..=a.expire_at + 600).contains(&expires),
        "EXAT {expires} is expire_at {} plus up to 10 min of jitter",
        a.expire_at
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_group_counts_codes_together() {
    let Some(server) = RedisServer::start("shared_group_counts_codes_together") else {
        return;
    };
    let store = connect(RedisOptions::standalone(server.url())).await;
    let d = doc("MYI1234567");
    let t = ten_am();
    let three_h = 3 * 3600;

    // In one call, in order: code 2 takes the day's permit, code 1 finds the limit used,
    // code 2 again is the same permit.
    let verdicts = store
        .decide(&[ask(d, 2, t), ask(d, 1, t + 1), ask(d, 2, t + 2)])
        .await
        .unwrap();
    assert_eq!(
        verdicts,
        [
            RedisVerdict::Granted(window(t, three_h)),
            RedisVerdict::DailyLimit { limit: 1 },
            RedisVerdict::Active(window(t, three_h)),
        ]
    );
    assert_eq!(
        one(&store, ask(d, 2, t + i64::from(three_h) + 1)).await,
        RedisVerdict::DailyLimit { limit: 1 },
        "once the permit ends, the day's one permit is still used"
    );
    assert_eq!(
        command(server.port, &["EXISTS", "icaze:{MYI1234567}:c:2"]).unwrap(),
        ":1\r\n",
        "a shared group's permit has its own key"
    );
    let tomorrow = t + 86_400;
    assert_eq!(
        one(&store, ask(d, 1, tomorrow)).await,
        RedisVerdict::Granted(window(tomorrow, three_h))
    );
    assert_eq!(
        one(&store, ask(d, 2, tomorrow + 5)).await,
        RedisVerdict::DailyLimit { limit: 1 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlimited_code_grants_after_each_permit_ends() {
    let Some(server) = RedisServer::start("unlimited_code_grants_after_each_permit_ends") else {
        return;
    };
    let store = connect(RedisOptions::standalone(server.url())).await;
    let d = doc("AZE22222222");
    let t = ten_am() - 9 * 3600;
    let two_h = 2 * 3600;
    for n in 0..6 {
        let at = t + n * i64::from(two_h);
        assert_eq!(
            one(&store, ask(d, 3, at)).await,
            RedisVerdict::Granted(window(at, two_h))
        );
        assert_eq!(
            one(&store, ask(d, 3, at + 100)).await,
            RedisVerdict::Active(window(at, two_h))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_through_another_gateway_node_gets_the_same_permit() {
    let Some(server) =
        RedisServer::start("a_retry_through_another_gateway_node_gets_the_same_permit")
    else {
        return;
    };
    let first = connect(RedisOptions::standalone(server.url())).await;
    let second = connect(RedisOptions::standalone(server.url())).await;
    let d = doc("DYI7654321");
    let t = ten_am();
    let a = ask(d, 2, t);
    let granted = one(&first, a).await;
    assert_eq!(granted, RedisVerdict::Granted(window(t, 3 * 3600)));
    // The operator re-sends the same MO after a lost acknowledgement, to the other node.
    assert_eq!(
        one(&second, a).await,
        RedisVerdict::Active(window(t, 3 * 3600))
    );
    assert_eq!(
        one(&second, ask(d, 2, t + 30)).await,
        RedisVerdict::Active(window(t, 3 * 3600))
    );
    assert_eq!(
        one(&first, a).await,
        RedisVerdict::Active(window(t, 3 * 3600))
    );
}

/// Every verdict of a hammer run: (document index, code, now, verdict).
type Log = Vec<(usize, u8, i64, RedisVerdict)>;

/// `tasks` tasks per store, each sending `rounds` calls of 8 asks for `docs` documents with
/// the codes of [`RULES`], times moving forward through today; returns every verdict.
async fn hammer(stores: &[RedisStore], docs: usize, tasks: usize, rounds: usize) -> Log {
    let documents: Arc<Vec<Document>> = Arc::new(
        (0..docs)
            .map(|i| doc(&format!("AZE{:08}", 40_000_000 + i)))
            .collect(),
    );
    let start = calendar().moment(ten_am()).day_start + 3600;
    let mut handles = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for task in 0..tasks {
            let store = store.clone();
            let documents = documents.clone();
            let seed = (s * 1000 + task) as u64;
            handles.push(tokio::spawn(async move {
                let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut next = move |n: usize| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    (rng % n as u64) as usize
                };
                let mut log = Log::new();
                for round in 0..rounds {
                    let now = start + (round as i64) * 600 + next(60) as i64;
                    let picks: Vec<(usize, u8)> = (0..8)
                        .map(|_| (next(documents.len()), RULES[next(RULES.len())].0))
                        .collect();
                    let asks: Vec<GrantAsk> = picks
                        .iter()
                        .map(|&(d, code)| ask(documents[d], code, now))
                        .collect();
                    let verdicts = store.decide(&asks).await.expect("decided");
                    for ((d, code), v) in picks.into_iter().zip(verdicts) {
                        log.push((d, code, now, v));
                    }
                }
                log
            }));
        }
    }
    let mut log = Log::new();
    for h in handles {
        log.extend(h.await.expect("task"));
    }
    log
}

/// The limits held: per (document, quota group) at most `limit` grants today; per
/// (document, code) no two permits overlap; every "active" permit is one that was granted.
fn check_limits(log: &Log) {
    let mut grants: HashMap<(usize, u8), u32> = HashMap::new();
    let mut windows: HashMap<(usize, u8), Vec<Validity>> = HashMap::new();
    for &(d, code, _, v) in log {
        if let RedisVerdict::Granted(w) = v {
            let rule = RULES.iter().find(|r| r.0 == code).unwrap();
            *grants.entry((d, rule.1)).or_default() += 1;
            windows.entry((d, code)).or_default().push(w);
        }
    }
    for (&(d, tag), &n) in &grants {
        let limit = RULES.iter().find(|r| r.1 == tag).unwrap().3;
        if let Some(limit) = limit {
            assert!(
                n <= limit,
                "document {d} group {tag}: {n} grants, limit {limit}"
            );
        }
    }
    for ((d, code), ws) in &mut windows {
        ws.sort_by_key(|w| w.from);
        for pair in ws.windows(2) {
            assert!(
                pair[0].until <= pair[1].from,
                "document {d} code {code}: overlapping permits {pair:?}"
            );
        }
    }
    for &(d, code, now, v) in log {
        if let RedisVerdict::Active(w) = v {
            assert!(
                windows.get(&(d, code)).is_some_and(|ws| ws.contains(&w)),
                "document {d} code {code} at {now}: active permit {w:?} was never granted"
            );
        }
    }
    let limited: Vec<_> = grants.iter().filter(|((_, tag), _)| *tag != 3).collect();
    assert!(!limited.is_empty(), "the run granted nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_nodes_never_exceed_the_limit() {
    let Some(server) = RedisServer::start("two_gateway_nodes_never_exceed_the_limit") else {
        return;
    };
    let stores = [
        connect(RedisOptions::standalone(server.url())).await,
        connect(RedisOptions::standalone(server.url())).await,
    ];
    let log = hammer(&stores, 40, 16, 40).await;
    assert_eq!(log.len(), 2 * 16 * 40 * 8);
    check_limits(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_never_exceeds_the_limit() {
    let Some(cluster) = RedisCluster::start("a_cluster_never_exceeds_the_limit") else {
        return;
    };
    let stores = [
        connect(RedisOptions::cluster(cluster.urls())).await,
        connect(RedisOptions::cluster(cluster.urls()[1..].to_vec())).await,
    ];
    let log = hammer(&stores, 60, 16, 30).await;
    assert_eq!(log.len(), 2 * 16 * 30 * 8);
    check_limits(&log);
    for node in &cluster.nodes {
        let keys = node.command(&["DBSIZE"]).unwrap();
        assert_ne!(keys, ":0\r\n", "every primary holds some documents");
        let functions = node.command(&["FUNCTION", "LIST"]).unwrap();
        assert!(
            functions.contains("icaze_grant"),
            "library loaded on every primary"
        );
    }
    assert!(stores[0].health().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_survive_a_redis_restart() {
    let Some(mut server) = RedisServer::start("grants_survive_a_redis_restart") else {
        return;
    };
    let store = connect(RedisOptions::standalone(server.url())).await;
    let t = ten_am();
    let asks: Vec<GrantAsk> = (0..200)
        .map(|i| ask(doc(&format!("AA{:07}", i)), [1, 2, 3, 5][i % 4], t))
        .collect();
    let granted = store.decide(&asks).await.unwrap();
    assert!(
        granted
            .iter()
            .all(|v| matches!(v, RedisVerdict::Granted(_)))
    );

    server.restart(); // SIGKILL, then the same dir and port

    let again = store.decide(&asks).await.expect("the store reconnects");
    let fresh = connect(RedisOptions::standalone(server.url())).await;
    let from_fresh = fresh.decide(&asks).await.unwrap();
    for ((g, a), f) in granted.iter().zip(&again).zip(&from_fresh) {
        let w = g.validity().unwrap();
        assert_eq!(*a, RedisVerdict::Active(w));
        assert_eq!(*f, RedisVerdict::Active(w));
    }
}

/// Traffic of fresh documents from 8 tasks through `store` while `server` is killed and,
/// 1 s later, started again: every call succeeds or fails retryably, every acknowledged
/// grant is still there afterwards, and calls in flight during the outage waited for Redis
/// rather than failing.
async fn traffic_through_an_outage(store: RedisStore, server: &mut RedisServer) {
    let t = ten_am();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for task in 0..8u32 {
        let store = store.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let asks: Vec<GrantAsk> = (0..4)
                    .map(|i| {
                        let number = task * 100_000 + n * 4 + i;
                        ask(doc(&format!("MOM{number:07}")), 5, t)
                    })
                    .collect();
                n += 1;
                let started = Instant::now();
                let result = store.decide(&asks).await;
                results.push((asks, result, started, Instant::now()));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            results
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| server.kill());
    let down_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down_until = Instant::now();
    tokio::task::block_in_place(|| server.start_again());
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);

    let (mut ok, mut failed, mut during_outage_ok) = (0, 0, 0);
    let mut acknowledged = Vec::new();
    for task in tasks {
        for (asks, result, started, ended) in task.await.unwrap() {
            match result {
                Ok(verdicts) => {
                    ok += 1;
                    if started < down_until && ended > down_from {
                        during_outage_ok += 1;
                    }
                    for (a, v) in asks.into_iter().zip(verdicts) {
                        // Fresh documents: a new permit each, never a wrong verdict.
                        assert_eq!(v, RedisVerdict::Granted(window(t, 3600)));
                        acknowledged.push((a, v));
                    }
                }
                Err(e) => {
                    failed += 1;
                    assert!(e.is_retryable(), "not retryable: {e}");
                }
            }
        }
    }
    eprintln!("calls ok {ok} (in flight during the outage: {during_outage_ok}), failed {failed}");
    assert!(
        during_outage_ok > 0,
        "asks made while Redis was down waited for it"
    );
    assert_eq!(failed, 0, "a 1 s outage is within retry_for");
    let asks: Vec<GrantAsk> = acknowledged.iter().map(|(a, _)| *a).collect();
    let again = store.decide(&asks).await.unwrap();
    for ((_, v), a) in acknowledged.iter().zip(again) {
        assert_eq!(
            a,
            RedisVerdict::Active(v.validity().unwrap()),
            "an acknowledged grant was lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_traffic_loses_no_grant() {
    let Some(mut server) = RedisServer::start("a_restart_in_the_middle_of_traffic_loses_no_grant")
    else {
        return;
    };
    let store = connect(RedisOptions::standalone(server.url())).await;
    traffic_through_an_outage(store, &mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_restart_in_the_middle_of_traffic_loses_no_grant() {
    let Some(mut cluster) =
        RedisCluster::start("a_cluster_node_restart_in_the_middle_of_traffic_loses_no_grant")
    else {
        return;
    };
    let store = connect(RedisOptions::cluster(cluster.urls())).await;
    traffic_through_an_outage(store, &mut cluster.nodes[1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_retry_for_fails_retryably() {
    let Some(mut server) = RedisServer::start("an_outage_longer_than_retry_for_fails_retryably")
    else {
        return;
    };
    let store = connect(RedisOptions {
        retry_for: Duration::from_millis(400),
        ..RedisOptions::standalone(server.url())
    })
    .await;
    let t = ten_am();
    let a = ask(doc("AZE33333333"), 2, t);
    server.kill();
    let started = Instant::now();
    let error = store.decide(&[a]).await.unwrap_err();
    let took = started.elapsed();
    assert!(error.is_retryable(), "{error}");
    assert!(error.is_unreachable(), "{error}");
    assert!(matches!(error, RedisError::Unavailable { .. }), "{error}");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "gave up after {took:?}"
    );
    eprintln!("while down: {error}");
    server.start_again();
    // The store's connection reconnects with its own back-off, which on a loaded machine can
    // outlast one `retry_for`: ask again (as the operator's retry would) until it answers.
    let deadline = Instant::now() + Duration::from_secs(20);
    let verdict = loop {
        match store.decide(&[a]).await {
            Ok(v) => break v[0],
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("not back to work once Redis is: {e}"),
        }
    };
    assert_eq!(
        verdict,
        RedisVerdict::Granted(window(t, 3 * 3600)),
        "back to work once Redis is"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_redis_that_is_down_says_so() {
    let port = free_port();
    let started = Instant::now();
    let error = RedisStore::connect(RedisOptions::standalone(format!(
        "redis://127.0.0.1:{port}"
    )))
    .await
    .unwrap_err();
    assert!(matches!(error, RedisError::Unreachable { .. }), "{error}");
    assert!(error.is_retryable());
    let text = error.to_string();
    assert!(
        text.contains(&format!("cannot reach 127.0.0.1:{port}")),
        "{text}"
    );
    let cluster = RedisStore::connect(RedisOptions::cluster([format!("redis://127.0.0.1:{port}")]))
        .await
        .unwrap_err();
    assert!(
        matches!(cluster, RedisError::Unreachable { .. }),
        "{cluster}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    eprintln!("{text}\n{cluster}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_function_library_is_loaded_again() {
    let Some(server) = RedisServer::start("a_flushed_function_library_is_loaded_again") else {
        return;
    };
    let store = connect(RedisOptions::standalone(server.url())).await;
    assert_eq!(server.command(&["FUNCTION", "FLUSH"]).unwrap(), "+OK\r\n");
    let t = ten_am();
    assert_eq!(
        one(&store, ask(doc("AZE44444444"), 3, t)).await,
        RedisVerdict::Granted(window(t, 2 * 3600))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_values_are_refused_without_the_whole_number() {
    let Some(server) = RedisServer::start("foreign_values_are_refused_without_the_whole_number")
    else {
        return;
    };
    let store = connect(RedisOptions::standalone(server.url())).await;
    server
        .command(&["SET", "icaze:{AZE55555555}:g:5", "garbage"])
        .unwrap();
    let error = store
        .decide(&[ask(doc("AZE55555555"), 5, ten_am())])
        .await
        .unwrap_err();
    assert!(matches!(error, RedisError::CorruptState { .. }), "{error}");
    assert!(!error.is_retryable());
    assert!(!error.to_string().contains("55555555"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waitaof_on_a_server_without_it_is_refused_at_connect() {
    let Some(server) = RedisServer::start("waitaof_on_a_server_without_it_is_refused_at_connect")
    else {
        return;
    };
    let version = server.command(&["INFO", "server"]).unwrap();
    let options = RedisOptions {
        waitaof: Some(WaitAof {
            local: 1,
            replicas: 0,
            timeout: Duration::from_millis(100),
            received_only: false,
        }),
        ..RedisOptions::standalone(server.url())
    };
    let result = RedisStore::connect(options).await;
    if version.contains("redis_version:7.0") || version.contains("redis_version:6.") {
        let error = result.unwrap_err();
        assert!(
            matches!(error, RedisError::WaitAofUnsupported { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("7.2"), "{error}");
        assert!(!error.is_retryable());
        eprintln!("{error}");
    } else {
        assert!(result.is_ok(), "a 7.2+ server runs WAITAOF");
    }
}

/// `[redis] replicas = 1` (`WAIT`, any Redis): a grant is acknowledged only once a replica
/// has received it, so a failover to that replica keeps it. With no replica it never is
/// (retried until `retry_for`, then refused); once a replica follows, a re-send is told of
/// the permit the unconfirmed attempts made, not granted a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_replica_confirms_or_refuses_acknowledgement() {
    let Some(primary) =
        RedisServer::start("waiting_for_a_replica_confirms_or_refuses_acknowledgement")
    else {
        return;
    };
    let store = connect(RedisOptions {
        waitaof: Some(WaitAof {
            local: 0,
            replicas: 1,
            timeout: Duration::from_millis(50),
            received_only: true,
        }),
        retry_for: Duration::from_millis(300),
        ..RedisOptions::standalone(primary.url())
    })
    .await;
    let t = ten_am();
    let a = ask(doc("AZE88888888"), 2, t);
    let error = store.decide(&[a]).await.unwrap_err();
    assert_unconfirmed_by_the_one_replica_wanted(&error);
    // A replica follows the primary: asked again (a re-send), the permit the unconfirmed
    // attempts made is acknowledged now, the same window, not a second grant.
    let replica = RedisServer::start("waiting_for_a_replica (replica)").expect("a second server");
    replica
        .command(&["REPLICAOF", "127.0.0.1", &primary.port.to_string()])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replica
        .command(&["INFO", "replication"])
        .unwrap()
        .contains("master_link_status:up")
    {
        assert!(Instant::now() < deadline, "the replica never synced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        one(&store, a).await,
        RedisVerdict::Active(window(t, 3 * 3600))
    );
    // And the replica has it.
    assert!(
        !replica
            .command(&["KEYS", "icaze:*AZE88888888*"])
            .unwrap()
            .trim()
            .is_empty(),
        "the grant is on the replica"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waitaof_confirms_or_refuses_acknowledgement() {
    let Some(binary) = redis_support::waitaof_server("waitaof_confirms_or_refuses_acknowledgement")
    else {
        return;
    };
    let server = RedisServer::start_binary(binary, &[]);
    let wait = |replicas| {
        Some(WaitAof {
            local: 1,
            replicas,
            timeout: Duration::from_millis(50),
            received_only: false,
        })
    };
    let durable = connect(RedisOptions {
        waitaof: wait(0),
        ..RedisOptions::standalone(server.url())
    })
    .await;
    let t = ten_am();
    let a = ask(doc("AZE66666666"), 2, t);
    assert_eq!(
        one(&durable, a).await,
        RedisVerdict::Granted(window(t, 3 * 3600))
    );

    // One replica's AOF is required and there is none: never acknowledged.
    let unconfirmed = connect(RedisOptions {
        waitaof: wait(1),
        retry_for: Duration::from_millis(300),
        ..RedisOptions::standalone(server.url())
    })
    .await;
    let b = ask(doc("AZE77777777"), 2, t);
    let error = unconfirmed.decide(&[b]).await.unwrap_err();
    assert_unconfirmed_by_the_one_replica_wanted(&error);
    assert!(error.is_retryable());
    // The grant was made in memory; a retry that can be confirmed finds it, not a new one.
    assert_eq!(
        one(&durable, b).await,
        RedisVerdict::Active(window(t, 3 * 3600))
    );
}

/// The shipped rules with codes 1 and 2 sharing two permits a day (tag 1), code 3
/// unlimited for 1 h, and code 4 once a day for 2 h.
fn model_rules() -> icaze::permit::rules::Rules {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/rules.toml"))
            .expect("shipped rules");
    let codes_start = shipped.find("[codes.1]").expect("codes section");
    let codes_end = shipped.find("# Later in 2020").expect("after the codes");
    let label = r#"label = { az = "x", en = "x", ru = "x" }"#;
    let codes = format!(
        "[codes.1]\nname = \"medical\"\nvalidity = \"3h\"\ngroup = \"daily\"\n{label}\n\n\
         [codes.2]\nname = \"errands\"\nvalidity = \"3h\"\ngroup = \"daily\"\n{label}\n\n\
         [codes.3]\nname = \"funeral\"\nvalidity = \"1h\"\ndaily_limit = \"unlimited\"\n{label}\n\n\
         [codes.4]\nname = \"walk\"\nvalidity = \"2h\"\ndaily_limit = 1\n{label}\n\n\
         [groups.daily]\ndaily_limit = 2\n\n"
    );
    let text = format!(
        "{}{codes}{}",
        &shipped[..codes_start],
        &shipped[codes_end..]
    );
    icaze::permit::rules::Rules::from_toml(&text).expect("model rules are valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_decides_as_the_engine_does() {
    use icaze::permit::engine::{Denial, Outcome, QuotaEngine};
    let Some(server) = RedisServer::start("redis_decides_as_the_engine_does") else {
        return;
    };
    let store = connect(RedisOptions::standalone(server.url())).await;
    let rules = model_rules();
    let engine = QuotaEngine::new();
    let documents: Vec<Document> = (0..8)
        .map(|i| doc(&format!("AA{:07}", 7_000_000 + i)))
        .collect();
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    // Two and a half days from this morning, in steps of up to 20 minutes.
    let mut now = calendar().moment(ten_am()).day_start + 6 * 3600;
    let mut asks = Vec::new();
    let mut expected = Vec::new();
    for _ in 0..1500 {
        now += next(1200) as i64;
        let document = documents[next(documents.len() as u64) as usize];
        let code = [1, 2, 3, 4][next(4) as usize];
        let rule = rules.code(code).expect("code");
        let m = rules.calendar.moment(now);
        let outcome = engine.decide_at(&rules, code, document, &m).outcome;
        expected.push(match outcome {
            Outcome::Granted(v) => RedisVerdict::Granted(v),
            Outcome::Active(v) => RedisVerdict::Active(v),
            Outcome::Denied(Denial::DailyLimit { limit }) => RedisVerdict::DailyLimit { limit },
            other => panic!("the model rules refuse nothing else: {other:?}"),
        });
        asks.push(GrantAsk::for_rule(
            document,
            rule,
            &rules.calendar,
            now,
            rules.longest_validity_secs,
        ));
    }
    let mut got = Vec::new();
    for chunk in asks.chunks(50) {
        got.extend(store.decide(chunk).await.expect("decided"));
    }
    for (n, ((a, e), g)) in asks.iter().zip(&expected).zip(&got).enumerate() {
        assert_eq!(
            g, e,
            "ask {n}: code {} for {:?} at {}: Redis and the engine disagree",
            a.code, a.document, a.now
        );
    }
    let kinds = |f: fn(&RedisVerdict) -> bool| got.iter().filter(|v| f(v)).count();
    assert!(kinds(|v| matches!(v, RedisVerdict::Granted(_))) > 50);
    assert!(kinds(|v| matches!(v, RedisVerdict::Active(_))) > 50);
    assert!(kinds(|v| matches!(v, RedisVerdict::DailyLimit { .. })) > 50);
}

/// A command of the store's own (here: is this permit revoked?) that reaches a primary
/// which no longer serves its slot follows the cluster's `MOVED` instead of failing, as
/// right after a cluster formed, a slot moved or a failover (a checkpoint was once told
/// "the store could not make it durable: ... Moved" by a node that had just started).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_for_a_slot_that_moved_follows_the_redirect() {
    let Some(cluster) = RedisCluster::start("a_command_for_a_slot_that_moved_follows_the_redirect")
    else {
        return;
    };
    let store = connect(RedisOptions::cluster(cluster.urls())).await;
    let key = icaze::permit::id::PermitKey::from_secret(b"moved");
    let id = key.permit_id(doc("AZE11111111"), 2, ten_am(), ten_am() + 3600);
    // Asked once, so redis-rs has its connections and slot map.
    assert!(matches!(store.revocation(id).await, Ok(None)));

    let slot_reply = cluster.nodes[0]
        .command(&["CLUSTER", "KEYSLOT", &format!("icaze:revoked:{{{id}}}")])
        .unwrap();
    let slot: u32 = slot_reply.trim().trim_start_matches(':').parse().unwrap();
    let owner = match slot {
        0..=5460 => 0,
        5461..=10922 => 1,
        _ => 2,
    };
    let to = (owner + 1) % 3;
    let to_id = cluster.nodes[to].command(&["CLUSTER", "MYID"]).unwrap();
    let to_id = to_id.lines().nth(1).unwrap().trim().to_string();
    for node in &cluster.nodes {
        let reply = node
            .command(&["CLUSTER", "SETSLOT", &slot.to_string(), "NODE", &to_id])
            .unwrap();
        assert!(reply.starts_with("+OK"), "SETSLOT: {reply}");
    }
    match store.revocation(id).await {
        Ok(None) => {}
        other => panic!("the moved slot was not followed: {other:?}"),
    }
}
