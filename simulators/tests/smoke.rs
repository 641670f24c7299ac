//! Smoke test: a real icaze gateway in this process on 127.0.0.1:0 (system clock, journal in
//! a temp dir), loadgen against it for about three seconds at a small rate; every MO must
//! get exactly the reply the oracle predicts.

use icaze::config::Config;
use icaze::gateway::Gateway;
use icaze::permit::clock::SystemClock;
use icaze_sim::loadgen::{self, BindKind, Rate, Settings};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn rules_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/rules.toml")
}

struct Running {
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    done: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn gateway(rules: &std::path::Path) -> Running {
    gateway_with(rules, "").await
}

/// A gateway whose operator `demo` has the extra keys `operator` (e.g. a `tps`).
async fn gateway_with(rules: &std::path::Path, operator: &str) -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "rules = {:?}\ndata_dir = \"data\"\n[permit]\nkey = \"simulator-smoke-test-key\"\n\
         [smpp]\nlisten = \"127.0.0.1:0\"\nshort_numbers = [\"8103\"]\n\
         [[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\nmax_binds = 8\n{operator}\n",
        rules.display().to_string()
    );
    let config = Config::from_toml(&dir.path().join("icaze.toml"), &text, &|_| None)
        .expect("smoke config is valid");
    let gateway =
        Arc::new(Gateway::open(config, Arc::new(SystemClock), false).expect("gateway opens"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let done = tokio::spawn(icaze::gateway::listener::serve(
        gateway,
        listener,
        shutdown.clone(),
    ));
    Running {
        addr,
        shutdown,
        done,
        _dir: dir,
    }
}

/// Later-2020 rules: codes 1 and 2 share one permit a day, code 3 is refused to a blocked
/// document, code 4 is switched off, code 5 is only granted in hours that are not now.
fn strict_rules(dir: &std::path::Path) -> PathBuf {
    use chrono::Timelike;
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Baku);
    let from = (now.hour() + 3) % 24;
    let until = (now.hour() + 6) % 24;
    let text = format!(
        r#"
timezone = "Asia/Baku"
[[documents]]
series = "AZE"
digits = [8, 7]
[[documents]]
series = "AA"
digits = [7]
[[documents]]
series = "MYİ"
digits = [7]
[codes.1]
name = "medical"
validity = "3h"
group = "daily"
[codes.2]
name = "errands"
validity = "2h"
group = "daily"
[codes.3]
name = "funeral"
validity = "3h"
daily_limit = "unlimited"
[codes.4]
name = "walk"
validity = "1h"
daily_limit = 1
enabled = false
[codes.5]
name = "curfew"
validity = "90m"
daily_limit = 2
hours = "{from:02}:00-{until:02}:00"
[groups.daily]
daily_limit = 1
[[blocklist]]
document = "AA 1234567"
codes = [3]
[[blocklist]]
document = "AZE 99999999"
"#
    );
    let path = dir.join("rules.toml");
    std::fs::write(&path, text).expect("rules written");
    path
}

fn settings(addr: std::net::SocketAddr, dir: &std::path::Path) -> Settings {
    let mut s = Settings::new(addr.to_string());
    s.binds = 2;
    s.rate = Rate::PerSecond(500);
    s.duration = Duration::from_secs(3);
    s.population = 2_000;
    s.seed = 7;
    s.rules = rules_path();
    s.drain = Duration::from_secs(5);
    s.progress = false;
    s.report = Some(dir.join("report.json"));
    s.svg = Some(dir.join("report.svg"));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_against_a_real_gateway_gets_every_reply_right() {
    let started = Instant::now();
    let gw = gateway(&rules_path()).await;
    let out = tempfile::tempdir().expect("temp dir");
    let report = loadgen::run(settings(gw.addr, out.path()))
        .await
        .expect("loadgen runs");
    println!("{}", report.summary());
    let t = &report.totals;
    assert_eq!(t.mismatches, 0, "mismatches: {:#?}", report.mismatches);
    assert_eq!(t.missing, 0, "missing: {:#?}", report.missing);
    assert_eq!(t.duplicates, 0, "duplicates: {:#?}", report.duplicates);
    assert!(t.sent > 1_000, "sent only {}", t.sent);
    assert_eq!(t.answered, t.sent);
    assert_eq!(t.acknowledged, t.sent);
    assert!(report.passed);
    assert!(
        report.session_errors.is_empty(),
        "{:?}",
        report.session_errors
    );
    // The traffic had every kind of reply the shipped rules can give.
    for class in [
        "granted",
        "active",
        "invalid:no_code",
        "invalid:wrong_digit_count",
    ] {
        assert!(
            report.got.contains_key(class),
            "no {class} in {:?}",
            report.got
        );
    }
    assert!(report.latency_ms.p99 > 0.0 && report.latency_ms.p99 < 1_000.0);
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("report.json")).expect("report written"),
    )
    .expect("report is JSON");
    assert_eq!(json["totals"]["mismatches"], 0);
    let svg = std::fs::read_to_string(out.path().join("report.svg")).expect("svg written");
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
    gw.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), gw.done).await;
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_max_rate_and_every_refusal() {
    let out = tempfile::tempdir().expect("temp dir");
    let rules = strict_rules(out.path());
    let gw = gateway(&rules).await;
    let mut s = settings(gw.addr, out.path());
    s.rules = rules;
    // More blocklisted traffic than usual, so the blocked documents come up.
    s.mix.blocklisted = 0.05;
    s.bind_kind = BindKind::Pair;
    s.binds = 4;
    s.rate = Rate::Max;
    s.window = 64;
    s.duration = Duration::from_millis(1500);
    s.seed = 8;
    let report = loadgen::run(s).await.expect("loadgen runs");
    println!("{}", report.summary());
    assert!(report.passed, "{}", report.summary());
    assert!(report.totals.sent > 500);
    for class in [
        "granted",
        "active",
        "daily_limit",
        "blocked",
        "code_disabled",
        "outside_hours",
    ] {
        assert!(
            report.got.contains_key(class),
            "no {class} in {:?}",
            report.got
        );
    }
    gw.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), gw.done).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_mos_are_sent_again_and_all_answered() {
    let gw = gateway_with(&rules_path(), "tps = 400").await;
    let out = tempfile::tempdir().expect("temp dir");
    let mut s = settings(gw.addr, out.path());
    s.rate = Rate::PerSecond(700);
    s.duration = Duration::from_secs(2);
    s.seed = 9;
    let report = loadgen::run(s).await.expect("loadgen runs");
    println!("{}", report.summary());
    assert!(report.totals.throttled > 0, "{}", report.summary());
    assert!(report.errors.contains_key("ESME_RTHROTTLED"));
    assert!(report.passed, "{}", report.summary());
    assert_eq!(report.totals.answered, report.totals.sent);
    gw.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), gw.done).await;
}

#[tokio::test]
async fn a_wrong_password_is_an_error_not_a_report() {
    let gw = gateway(&rules_path()).await;
    let out = tempfile::tempdir().expect("temp dir");
    let mut s = settings(gw.addr, out.path());
    s.password = "nope".into();
    let err = loadgen::run(s).await.expect_err("bind refused");
    assert!(format!("{err:#}").contains("ESME_RINVPASWD"), "{err:#}");
    gw.shutdown.cancel();
}
