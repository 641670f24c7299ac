//! The admin HTTP API against the real `icaze serve` binary, over real HTTP: tokens and
//! roles, health, verification of a permit issued over SMPP in the test, revocation (and
//! the citizen's repeat answered `revoked`, also after `kill -9` and a restart), and rules
//! changed without a restart.

mod support;

use serde_json::Value;
use support::http::{call, get};
use support::process::Icaze;
use support::smpp::*;

const CHECKPOINT: &str = "checkpoint-token-for-tests";
const OFFICIAL: &str = "official-token-for-tests";
const TOKENS: &[(&str, &str)] = &[
    ("ICAZE_CHECKPOINT_TOKEN", CHECKPOINT),
    ("ICAZE_OFFICIAL_TOKEN", OFFICIAL),
];

fn start(dir: &std::path::Path) -> (Icaze, std::net::SocketAddr, std::net::SocketAddr) {
    let mut child = Icaze::spawn_with_env(dir, "icaze", "", "", TOKENS);
    let smpp = child.addr();
    let admin = child.admin_addr();
    (child, smpp, admin)
}

fn key(v: &Value) -> &str {
    v["key"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _smpp, admin) = start(dir.path());
    assert!(
        child.log_line("role is switched off").is_none(),
        "both roles have tokens"
    );

    let alive = get(admin, "/healthz", None).await;
    assert_eq!(
        (alive.status, alive.json["status"].as_str()),
        (200, Some("alive"))
    );
    let ready = get(admin, "/readyz", None).await;
    assert_eq!(ready.status, 200, "{:?}", ready.json);
    assert_eq!(ready.json["checks"]["smpp"], "listening");
    assert_eq!(ready.json["checks"]["store"]["kind"], "journal");
    assert_eq!(ready.json["checks"]["store"]["state"], "ok");

    // No token, a wrong token: 401, in the error format.
    let none = get(admin, "/v1/permits/K7QM-4RTX", None).await;
    assert_eq!((none.status, key(&none.json)), (401, "unauthorized"));
    assert!(none.json["error"].as_str().unwrap().contains("Bearer"));
    let wrong = get(
        admin,
        "/v1/permits/K7QM-4RTX",
        Some("official-token-for-test"),
    )
    .await;
    assert_eq!((wrong.status, key(&wrong.json)), (401, "unauthorized"));
    assert!(
        child
            .wait_for_log("refused_total=2", std::time::Duration::from_secs(5))
            .is_some(),
        "refusals are counted"
    );

    // A checkpoint may verify but not write.
    let read = get(admin, "/v1/permits/K7QM-4RTX", Some(CHECKPOINT)).await;
    assert_eq!(
        (read.status, read.json["status"].as_str()),
        (200, Some("unknown"))
    );
    let revoke = call(
        admin,
        "POST",
        "/v1/permits/K7QM-4RTX/revoke",
        Some(CHECKPOINT),
        Some(r#"{"reason": "test"}"#),
    )
    .await;
    assert_eq!((revoke.status, key(&revoke.json)), (403, "forbidden"));
    let rules = call(admin, "PUT", "/v1/rules", Some(CHECKPOINT), Some("x")).await;
    assert_eq!((rules.status, key(&rules.json)), (403, "forbidden"));
    let bad_id = get(admin, "/v1/permits/not-an-id", Some(CHECKPOINT)).await;
    assert_eq!((bad_id.status, key(&bad_id.json)), (400, "permit_id"));
    let nowhere = get(admin, "/v2/anything", Some(OFFICIAL)).await;
    assert_eq!((nowhere.status, key(&nowhere.json)), (404, "not_found"));
    let method = call(admin, "DELETE", "/v1/rules", Some(OFFICIAL), None).await;
    assert_eq!((method.status, key(&method.json)), (405, "method"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_a_token_is_off_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Icaze::spawn_with_env(dir.path(), "icaze", "", "", &TOKENS[..1]);
    let admin = child.admin_addr();
    assert!(
        child
            .log_line("the official role is switched off")
            .is_some()
    );
    let put = call(admin, "POST", "/v1/rules/reload", Some(OFFICIAL), None).await;
    assert_eq!(put.status, 401, "no official token is configured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_revoke_and_the_repeat_is_refused_even_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, smpp, admin) = start(dir.path());
    let reply = sms(smpp, "994501234567", "2 AZE 11111111").await;
    assert!(reply.starts_with("PERMIT GRANTED"), "{reply}");
    let id = permit_id(&reply);

    let path = format!("/v1/permits/{id}");
    let v = get(admin, &path, Some(CHECKPOINT)).await;
    assert_eq!(v.status, 200, "{:?}", v.json);
    assert_eq!(v.json["status"], "valid");
    assert_eq!(v.json["code"], 2);
    assert_eq!(v.json["document"], "AZE *****111");
    assert!(
        reply.contains(v.json["window"].as_str().unwrap()),
        "{reply} vs {}",
        v.json
    );
    assert!(v.json["issued_at"].as_str().unwrap().ends_with("+04:00"));
    // The id typed back in lower case, without its hyphen, is the same permit.
    let typed = get(
        admin,
        &format!("/v1/permits/{}", id.to_lowercase().replace('-', "")),
        Some(CHECKPOINT),
    )
    .await;
    assert_eq!(typed.json["status"], "valid");

    // The document in any spelling an SMS may use.
    let mine = get(
        admin,
        &format!("{path}?document=aze%201111%201111"),
        Some(CHECKPOINT),
    )
    .await;
    assert_eq!(mine.json["document_matches"], true, "{:?}", mine.json);
    let other = get(
        admin,
        &format!("{path}?document=AZE%2022222222"),
        Some(CHECKPOINT),
    )
    .await;
    assert_eq!(other.json["document_matches"], false);
    assert_eq!(other.json["status"], "valid");
    let nonsense = get(admin, &format!("{path}?document=XYZ%201"), Some(CHECKPOINT)).await;
    assert_eq!((nonsense.status, key(&nonsense.json)), (400, "document"));

    let list = get(admin, "/v1/documents/AZE11111111/permits", Some(CHECKPOINT)).await;
    assert_eq!(list.status, 200, "{:?}", list.json);
    let permits = list.json["permits"].as_array().unwrap();
    assert_eq!(permits.len(), 1);
    assert_eq!(permits[0]["permit_id"], id.as_str());

    // Revocation: a reason is required; then it is revoked.
    let no_reason = call(
        admin,
        "POST",
        &format!("{path}/revoke"),
        Some(OFFICIAL),
        Some(r#"{"reason": " "}"#),
    )
    .await;
    assert_eq!((no_reason.status, key(&no_reason.json)), (422, "reason"));
    let unknown = call(
        admin,
        "POST",
        "/v1/permits/2222-2222/revoke",
        Some(OFFICIAL),
        Some(r#"{"reason": "x"}"#),
    )
    .await;
    assert_eq!(
        (unknown.status, key(&unknown.json)),
        (404, "unknown_permit")
    );
    let revoked = call(
        admin,
        "POST",
        &format!("{path}/revoke"),
        Some(OFFICIAL),
        Some(r#"{"reason": "shared on social media"}"#),
    )
    .await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.json);
    assert_eq!(revoked.json["status"], "revoked");
    let v = get(admin, &path, Some(CHECKPOINT)).await;
    assert_eq!(v.json["status"], "revoked");
    assert_eq!(v.json["revocation_reason"], "shared on social media");

    // The citizen asks again: told the permit is revoked, not given it again.
    let again = sms(smpp, "994501234567", "2 aze11111111").await;
    assert!(again.starts_with("Your permit with code 2"), "{again}");
    assert!(again.contains("revoked") && !again.contains(&id), "{again}");

    // kill -9 and restart on the same journal: still revoked, everywhere. (Once the
    // replies delivered are settled, so none comes again to be read as the answer.)
    child.wait_settled().await;
    child.kill_9();
    let (_child, smpp, admin) = start(dir.path());
    let v = get(admin, &path, Some(CHECKPOINT)).await;
    assert_eq!(v.json["status"], "revoked", "{:?}", v.json);
    assert_eq!(v.json["revocation_reason"], "shared on social media");
    let again = sms(smpp, "994501234567", "2 AZE 11111111").await;
    assert!(again.contains("revoked"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_replaced_and_reloaded_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, smpp, admin) = start(dir.path());
    let rules_file = dir.path().join("icaze-rules.toml");
    let original = std::fs::read_to_string(&rules_file).unwrap();

    let before = get(admin, "/v1/rules", Some(OFFICIAL)).await;
    assert_eq!(before.status, 200, "{:?}", before.json);
    let version = before.json["version"].as_str().unwrap().to_string();
    assert_eq!(before.json["text"], original.as_str());
    assert!(
        before.json["path"]
            .as_str()
            .unwrap()
            .ends_with("icaze-rules.toml")
    );

    // An invalid file: every error with file and key, and nothing changes.
    let broken = original
        .replace("validity = \"3h\"", "validity = \"3 hours\"")
        .replace("daily_limit = 1", "daily_limit = -1");
    let refused = call(admin, "PUT", "/v1/rules", Some(OFFICIAL), Some(&broken)).await;
    assert_eq!(
        (refused.status, key(&refused.json)),
        (422, "invalid_rules"),
        "{:?}",
        refused.json
    );
    let errors = refused.json["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    assert!(
        errors.iter().all(
            |e| e["file"].as_str().unwrap().ends_with("icaze-rules.toml") && e["key"].is_string()
        ),
        "{errors:?}"
    );
    assert_eq!(std::fs::read_to_string(&rules_file).unwrap(), original);
    assert_eq!(
        get(admin, "/v1/rules", Some(OFFICIAL)).await.json["version"],
        version.as_str()
    );

    // A weekend lockdown: code 3 off. Written, swapped in, answered with the new version.
    let lockdown = original.replacen(
        "[codes.3]\nname = \"funeral\"\nenabled = true",
        "[codes.3]\nname = \"funeral\"\nenabled = false",
        1,
    );
    assert_ne!(lockdown, original);
    let put = call(admin, "PUT", "/v1/rules", Some(OFFICIAL), Some(&lockdown)).await;
    assert_eq!(put.status, 200, "{:?}", put.json);
    let new_version = put.json["version"].as_str().unwrap().to_string();
    assert_ne!(new_version, version);
    assert_eq!(std::fs::read_to_string(&rules_file).unwrap(), lockdown);
    let reply = sms(smpp, "994501234567", "3 AZE 11111111").await;
    assert!(reply.starts_with("Refused: code 3"), "{reply}");

    // The file edited by hand and reloaded, as SIGHUP would.
    std::fs::write(&rules_file, &original).unwrap();
    let reload = call(admin, "POST", "/v1/rules/reload", Some(OFFICIAL), None).await;
    assert_eq!(reload.status, 200, "{:?}", reload.json);
    assert_eq!(reload.json["version"], version.as_str());
    let reply = sms(smpp, "994501234567", "3 AZE 11111111").await;
    assert!(reply.starts_with("PERMIT GRANTED"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_document_is_refused_on_the_next_sms_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, smpp, admin) = start(dir.path());
    let path = "/v1/blocklist/aze%203333%203333";
    let bad = call(
        admin,
        "PUT",
        path,
        Some(OFFICIAL),
        Some(r#"{"codes": [9], "reason": "x"}"#),
    )
    .await;
    assert_eq!((bad.status, key(&bad.json)), (422, "codes"));
    let past = call(
        admin,
        "PUT",
        path,
        Some(OFFICIAL),
        Some(r#"{"reason": "x", "until": "2020-01-01T00:00:00+04:00"}"#),
    )
    .await;
    assert_eq!((past.status, key(&past.json)), (422, "until"));
    let checkpoint = call(
        admin,
        "PUT",
        path,
        Some(CHECKPOINT),
        Some(r#"{"reason": "x"}"#),
    )
    .await;
    assert_eq!(checkpoint.status, 403);

    let put = call(
        admin,
        "PUT",
        path,
        Some(OFFICIAL),
        Some(r#"{"codes": [2], "reason": "on the quarantine list"}"#),
    )
    .await;
    assert_eq!(put.status, 200, "{:?}", put.json);
    assert_eq!(put.json["codes"], serde_json::json!([2]));
    let refused = sms(smpp, "994501234567", "2 AZE 33333333").await;
    assert!(
        refused.starts_with("Refused: no permit with code 2"),
        "{refused}"
    );
    let other_code = sms(smpp, "994501234567", "1 AZE 33333333").await;
    assert!(
        other_code.starts_with("PERMIT GRANTED"),
        "only code 2 is blocked: {other_code}"
    );
    let list = get(admin, "/v1/blocklist", Some(OFFICIAL)).await;
    let entries = list.json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["document"], "AZE 33333333");
    assert_eq!(entries[0]["reason"], "on the quarantine list");
    assert_eq!(entries[0]["source"], "api");

    // Durable: kill -9 and restart, still blocked; then lifted.
    child.wait_settled().await;
    child.kill_9();
    let (_child, smpp, admin) = start(dir.path());
    let refused = sms(smpp, "994501234567", "2 AZE 33333333").await;
    assert!(refused.starts_with("Refused"), "{refused}");
    let lifted = call(admin, "DELETE", path, Some(OFFICIAL), None).await;
    assert_eq!(lifted.status, 200, "{:?}", lifted.json);
    let again = call(admin, "DELETE", path, Some(OFFICIAL), None).await;
    assert_eq!((again.status, key(&again.json)), (404, "not_blocked"));
    let granted = sms(smpp, "994501234567", "2 AZE 33333333").await;
    assert!(granted.starts_with("PERMIT GRANTED"), "{granted}");
}

/// Runs `icaze ARGS --admin ADDR` (no config needed) and gives its exit code and output.
fn icaze(admin: std::net::SocketAddr, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_icaze"))
        .args(args)
        .args(["--admin", &admin.to_string()])
        .env_remove("ICAZE_CHECKPOINT_TOKEN")
        .env_remove("ICAZE_OFFICIAL_TOKEN")
        .output()
        .expect("icaze runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_verifies_revokes_and_blocks_with_exit_codes_scripts_can_use() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, smpp, admin) = start(dir.path());
    let reply = sms(smpp, "994501234567", "2 AZE 11111111").await;
    let id = permit_id(&reply);

    let (code, out) = icaze(admin, &["verify", &id, "--token", CHECKPOINT]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("VALID") && out.contains("AZE *****111"),
        "{out}"
    );
    let (code, _) = icaze(
        admin,
        &[
            "verify",
            &id,
            "--document",
            "aze 1111 1111",
            "--token",
            CHECKPOINT,
        ],
    );
    assert_eq!(code, 0);
    let (code, out) = icaze(
        admin,
        &[
            "verify",
            &id,
            "--document",
            "AZE 22222222",
            "--token",
            CHECKPOINT,
        ],
    );
    assert_eq!(code, 5, "{out}");
    let (code, _) = icaze(admin, &["verify", "2222-2222", "--token", CHECKPOINT]);
    assert_eq!(code, 2);
    let (code, out) = icaze(admin, &["verify", &id, "--token", "not-a-token"]);
    assert_eq!(code, 77, "{out}");
    let (code, _) = icaze(
        admin,
        &["revoke", &id, "--reason", "test", "--token", CHECKPOINT],
    );
    assert_eq!(code, 77, "a checkpoint may not revoke");
    let (code, out) = icaze(
        admin,
        &[
            "revoke", &id, "--reason", "forged", "--token", OFFICIAL, "--json",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let answer: Value = serde_json::from_str(out.trim()).expect("--json prints the answer");
    assert_eq!(answer["status"], "revoked");
    let (code, _) = icaze(admin, &["verify", &id, "--token", CHECKPOINT]);
    assert_eq!(code, 4);

    let (code, out) = icaze(
        admin,
        &[
            "block",
            "AZE 55555555",
            "--codes",
            "3",
            "--reason",
            "abuse of code 3",
            "--token",
            OFFICIAL,
        ],
    );
    assert_eq!(code, 0, "{out}");
    let refused = sms(smpp, "994501234567", "3 AZE 55555555").await;
    assert!(refused.starts_with("Refused"), "{refused}");
    let (code, _) = icaze(
        admin,
        &[
            "block",
            "AZE 55555555",
            "--codes",
            "9",
            "--reason",
            "x",
            "--token",
            OFFICIAL,
        ],
    );
    assert_eq!(code, 65, "an unknown code is bad input");
    let (code, out) = icaze(admin, &["unblock", "AZE 55555555", "--token", OFFICIAL]);
    assert_eq!(code, 0, "{out}");

    // Nobody listening: 69.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, _) = icaze(closed, &["verify", &id, "--token", CHECKPOINT]);
    assert_eq!(code, 69);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_from_other_networks_are_refused_and_verification_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let mut far = Icaze::spawn_with_env(
        dir.path(),
        "far",
        "",
        "[admin]\nread_networks = [\"10.9.9.0/24\"]\n",
        TOKENS,
    );
    let admin = far.admin_addr();
    let refused = get(admin, "/v1/permits/K7QM-4RTX", Some(CHECKPOINT)).await;
    assert_eq!((refused.status, key(&refused.json)), (403, "network"));
    assert_eq!(
        get(admin, "/healthz", None).await.status,
        200,
        "health is open"
    );

    let mut near = Icaze::spawn_with_env(
        dir.path(),
        "near",
        "",
        "[admin]\nread_networks = [\"127.0.0.0/8\"]\nverify_rate = 1\nverify_burst = 3\n",
        TOKENS,
    );
    let admin = near.admin_addr();
    let mut answers = Vec::new();
    for _ in 0..6 {
        let a = get(admin, "/v1/permits/K7QM-4RTX", Some(CHECKPOINT)).await;
        answers.push((a.status, key(&a.json).to_string()));
    }
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(&statuses[..3], [200, 200, 200], "the burst: {answers:?}");
    assert!(
        answers.contains(&(429, "rate_limited".to_string())),
        "six at once exceed a burst of 3 at 1/s: {answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_days_figures_count_what_citizens_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, smpp, admin) = start(dir.path());
    sms(smpp, "994501111111", "2 AZE 11111111").await;
    sms(smpp, "994501111111", "2 AZE 11111111").await;
    sms(smpp, "994502222222", "2 AZE 22222222").await;
    sms(smpp, "994503333333", "hello").await;
    // Reply times count once the operator answered each reply (read a moment later).
    let mut st = get(admin, "/v1/stats", Some(OFFICIAL)).await;
    for _ in 0..100 {
        if st.json["reply_ms"]["count"] == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        st = get(admin, "/v1/stats", Some(OFFICIAL)).await;
    }
    assert_eq!(st.status, 200, "{:?}", st.json);
    let j = &st.json;
    assert_eq!(j["reply_ms"]["count"], 4, "every reply's time counted: {j}");
    assert!(
        j["reply_ms"]["p99"]
            .as_f64()
            .is_some_and(|ms| ms <= 5_000.0),
        "replies here take milliseconds: {j}"
    );
    assert_eq!(j["mos"], 4, "{j}");
    assert_eq!(j["by_code"]["2"]["granted"], 2, "{j}");
    assert_eq!(j["by_code"]["2"]["active"], 1, "{j}");
    assert_eq!(j["invalid"]["total"], 1);
    assert_eq!(j["invalid"]["share"], 0.25);
    assert_eq!(j["distinct_documents"], 2);
    assert_eq!(j["distinct_phones"], 3);
    assert_eq!(j["by_operator"]["demo"]["mos"], 4);
    assert!(j["decision_ms"]["p99"].is_number(), "{j}");
    let other_day = get(admin, "/v1/stats?date=2020-04-06", Some(OFFICIAL)).await;
    assert_eq!(
        (other_day.status, other_day.json["mos"].clone()),
        (200, serde_json::json!(0))
    );
    let bad = get(admin, "/v1/stats?date=yesterday", Some(OFFICIAL)).await;
    assert_eq!((bad.status, key(&bad.json)), (400, "date"));
    assert_eq!(get(admin, "/v1/stats", Some(CHECKPOINT)).await.status, 403);

    let (code, out) = icaze(admin, &["stats", "--token", OFFICIAL]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("MOs 4") && out.contains("invalid 1 (25.0%)"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_the_prometheus_text_format() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, smpp, admin) = start(dir.path());
    let reply = sms(smpp, "994501112233", "2 AZE 12121212").await;
    assert!(reply.contains("PERMIT GRANTED"), "{reply}");
    let refused = get(admin, "/v1/permits/K7QM-4RTX", Some("not-a-token")).await;
    assert_eq!(refused.status, 401);
    let m = get(admin, "/metrics", None).await;
    assert_eq!(m.status, 200);
    for line in [
        "icaze_mos_total{operator=\"demo\",outcome=\"granted\"} 1",
        "icaze_decisions_total{code=\"2\",outcome=\"granted\"} 1",
        "icaze_admin_unauthorized_total 1",
        "icaze_store_round_seconds_count 1",
    ] {
        assert!(m.text.contains(line), "{line:?} missing from\n{}", m.text);
    }
    assert!(m.text.contains("# TYPE icaze_mo_to_mt_seconds histogram"));
}
