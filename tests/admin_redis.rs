//! The admin API on the Redis store, with real `icaze serve` processes and a real
//! `redis-server`: a permit issued through one node is verified and revoked through
//! another, the first node then answers the citizen's very next repeat `revoked`, and a node killed
//! with `kill -9` and started again still does.
//!
//! Without `redis-server` these tests say they are SKIPPED (and fail under `CI=true`).

mod support;

use std::net::SocketAddr;
use std::time::Duration;
use support::http::{call, get};
use support::process::Icaze;
use support::redis::RedisServer;
use support::smpp::*;

const CHECKPOINT: &str = "checkpoint-token-for-tests";
const OFFICIAL: &str = "official-token-for-tests";
const TOKENS: &[(&str, &str)] = &[
    ("ICAZE_CHECKPOINT_TOKEN", CHECKPOINT),
    ("ICAZE_OFFICIAL_TOKEN", OFFICIAL),
];

fn node(dir: &std::path::Path, name: &str, store: &str) -> (Icaze, SocketAddr, SocketAddr) {
    let mut child = Icaze::spawn_with_env(dir, name, store, "", TOKENS);
    let smpp = child.addr();
    let admin = child.admin_addr();
    (child, smpp, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permit_from_one_node_is_verified_and_revoked_on_another() {
    let Some(redis) =
        RedisServer::start("a_permit_from_one_node_is_verified_and_revoked_on_another")
    else {
        return;
    };
    let store = format!("store = {:?}", redis.url());
    let dir = tempfile::tempdir().unwrap();
    let (mut a, smpp_a, admin_a) = node(dir.path(), "a", &store);
    let (_b, _smpp_b, admin_b) = node(dir.path(), "b", &store);

    let reply = sms(smpp_a, "994501234567", "2 AZE 11111111").await;
    assert!(reply.starts_with("PERMIT GRANTED"), "{reply}");
    let id = reply.rsplit(' ').next().unwrap().to_string();
    let path = format!("/v1/permits/{id}");

    // Node B never saw the SMS: it finds the permit in Redis.
    let v = get(
        admin_b,
        &format!("{path}?document=AZE11111111"),
        Some(CHECKPOINT),
    )
    .await;
    assert_eq!(v.status, 200, "{:?}", v.json);
    assert_eq!(v.json["status"], "valid", "{:?}", v.json);
    assert_eq!(v.json["document_matches"], true);
    assert_eq!(v.json["document"], "AZE *****111");
    let unknown = get(admin_b, "/v1/permits/2222-2222", Some(CHECKPOINT)).await;
    assert_eq!(unknown.json["status"], "unknown");

    // Revoked through B: A's checkpoint sees it at once, A's citizen within a second.
    let revoked = call(
        admin_b,
        "POST",
        &format!("{path}/revoke"),
        Some(OFFICIAL),
        Some(r#"{"reason": "forged"}"#),
    )
    .await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.json);
    assert_eq!(revoked.json["status"], "revoked");
    // At once: A checks a repeat's permit in Redis before it answers "active".
    let again = sms(smpp_a, "994501234567", "2 AZE 11111111").await;
    assert!(again.starts_with("Your permit with code 2"), "{again}");
    let v = get(admin_a, &path, Some(CHECKPOINT)).await;
    assert_eq!(v.json["status"], "revoked", "{:?}", v.json);
    assert_eq!(v.json["revocation_reason"], "forged");

    // A block set through B is in force on A within a second.
    let put = call(
        admin_b,
        "PUT",
        "/v1/blocklist/AZE44444444",
        Some(OFFICIAL),
        Some(r#"{"codes": [2], "reason": "quarantine"}"#),
    )
    .await;
    assert_eq!(put.status, 200, "{:?}", put.json);
    let mut reply = String::new();
    for _ in 0..20 {
        reply = sms(smpp_a, "994501234567", "2 AZE 44444444").await;
        if reply.starts_with("Refused") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        reply.starts_with("Refused: no permit with code 2"),
        "{reply}"
    );

    // A lockdown uploaded to B reaches A: its file is rewritten and code 3 refused.
    let rules = get(admin_b, "/v1/rules", Some(OFFICIAL)).await;
    let lockdown = rules.json["text"].as_str().unwrap().replacen(
        "[codes.3]\nname = \"funeral\"\nenabled = true",
        "[codes.3]\nname = \"funeral\"\nenabled = false",
        1,
    );
    let put = call(admin_b, "PUT", "/v1/rules", Some(OFFICIAL), Some(&lockdown)).await;
    assert_eq!(put.status, 200, "{:?}", put.json);
    let mut reply = String::new();
    for _ in 0..20 {
        reply = sms(smpp_a, "994501234567", "3 AZE 66666666").await;
        if reply.starts_with("Refused") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(reply.starts_with("Refused: code 3"), "{reply}");
    let on_a = get(admin_a, "/v1/rules", Some(OFFICIAL)).await;
    assert_eq!(on_a.json["version"], put.json["version"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a-rules.toml")).unwrap(),
        lockdown
    );

    // The day's figures on B are every node's: the MOs above all went to A.
    let mut figures = serde_json::Value::Null;
    for _ in 0..20 {
        figures = get(admin_b, "/v1/stats", Some(OFFICIAL)).await.json;
        if figures["mos"].as_u64().unwrap_or(0) >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(figures["scope"], "all nodes", "{figures}");
    assert!(figures["mos"].as_u64().unwrap_or(0) >= 4, "{figures}");
    assert!(
        figures["by_code"]["2"]["granted"].as_u64().unwrap_or(0) >= 1,
        "{figures}"
    );
    assert_eq!(figures["by_code"]["2"]["denied"]["revoked"], 1, "{figures}");
    assert!(
        figures["distinct_phones"].as_u64().unwrap_or(0) >= 1,
        "{figures}"
    );

    // kill -9 node A and start it again: Redis still says revoked, to both.
    a.wait_settled().await;
    a.kill_9();
    let (_a, smpp_a, admin_a) = node(dir.path(), "a", &store);
    let v = get(admin_a, &path, Some(CHECKPOINT)).await;
    assert_eq!(v.json["status"], "revoked", "{:?}", v.json);
    let again = sms(smpp_a, "994501234567", "2 aze 1111 1111").await;
    assert!(again.contains("revoked"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_a_permit_from_one_node_is_verified_and_revoked_on_another() {
    let Some(cluster) = support::redis::RedisCluster::start(
        "on_a_redis_cluster_a_permit_from_one_node_is_verified_and_revoked_on_another",
    ) else {
        return;
    };
    let store = format!("store = {:?}", cluster.urls());
    let dir = tempfile::tempdir().unwrap();
    let (_a, smpp_a, admin_a) = node(dir.path(), "a", &store);
    let (_b, _smpp_b, admin_b) = node(dir.path(), "b", &store);

    // Several permits, so their index entries land on different primaries.
    let mut ids = Vec::new();
    for n in 0..6 {
        let reply = sms(smpp_a, "994501234567", &format!("2 AZE 1111111{n}")).await;
        assert!(reply.starts_with("PERMIT GRANTED"), "{reply}");
        ids.push(reply.rsplit(' ').next().unwrap().to_string());
    }
    // Node B never saw the SMS: it finds each permit by its id alone.
    for (n, id) in ids.iter().enumerate() {
        let v = get(
            admin_b,
            &format!("/v1/permits/{id}?document=AZE1111111{n}"),
            Some(CHECKPOINT),
        )
        .await;
        assert_eq!(v.status, 200, "{:?}", v.json);
        assert_eq!(v.json["status"], "valid", "{id}: {:?}", v.json);
        assert_eq!(v.json["document_matches"], true, "{:?}", v.json);
    }
    // Revoked through B: A's checkpoint sees it, and A's citizen is told so.
    let path = format!("/v1/permits/{}", ids[0]);
    let revoked = call(
        admin_b,
        "POST",
        &format!("{path}/revoke"),
        Some(OFFICIAL),
        Some(r#"{"reason": "forged"}"#),
    )
    .await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.json);
    let v = get(admin_a, &path, Some(CHECKPOINT)).await;
    assert_eq!(v.json["status"], "revoked", "{:?}", v.json);
    let again = sms(smpp_a, "994501234567", "2 AZE 11111110").await;
    assert!(again.starts_with("Your permit with code 2"), "{again}");
}
