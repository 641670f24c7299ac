//! Smoke test: a real icaze gateway in this process on 127.0.0.1:0 (system clock, journal in
//! a temp dir), loadgen against it for about three seconds at a small rate; every MO must
//! get exactly the reply the oracle predicts. The same for smsc: the gateway's
//! `[[connectors]]` bind to the simulator's SMSC, which delivers the MOs.

use icaze::config::Config;
use icaze::gateway::Gateway;
use icaze::permit::clock::SystemClock;
use icaze_sim::language::ReplyLanguage;
use icaze_sim::loadgen::{self, BindKind, Rate, Settings};
use icaze_sim::replies::Lang;
use icaze_sim::shapes::Shape;
use icaze_sim::smsc;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn rules_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/rules.toml")
}

struct Running {
    addr: std::net::SocketAddr,
    /// The gateway, held weakly: once its server task ends it is dropped (and its journal
    /// unlocked for the next one).
    gateway: std::sync::Weak<Gateway>,
    shutdown: CancellationToken,
    done: tokio::task::JoinHandle<()>,
    _dir: Option<tempfile::TempDir>,
}

impl Running {
    /// Shuts the gateway down and waits (up to 5 s) for it to finish.
    async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.done).await;
    }
}

async fn gateway(rules: &std::path::Path) -> Running {
    gateway_with(rules, "").await
}

/// A gateway whose operator `demo` has the extra keys `operator` (e.g. a `tps`).
async fn gateway_with(rules: &std::path::Path, operator: &str) -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut running = gateway_in(dir.path(), rules, operator, "").await;
    running._dir = Some(dir);
    running
}

/// A gateway whose config and journal live in `dir`, with `operator` keys for `demo` and
/// further `tables` (e.g. `[[connectors]]`).
async fn gateway_in(
    dir: &std::path::Path,
    rules: &std::path::Path,
    operator: &str,
    tables: &str,
) -> Running {
    let text = format!(
        "rules = {:?}\ndata_dir = \"data\"\n[permit]\nkey = \"simulator-smoke-test-key\"\n\
         [smpp]\nlisten = \"127.0.0.1:0\"\nshort_numbers = [\"8103\"]\nshutdown_grace = \"3s\"\n\
         [[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\nmax_binds = 8\n{operator}\n{tables}\n",
        rules.display().to_string()
    );
    let config = Config::from_toml(&dir.join("icaze.toml"), &text, &|_| None)
        .expect("smoke config is valid");
    let gateway =
        Arc::new(Gateway::open(config, Arc::new(SystemClock), false).expect("gateway opens"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let weak = Arc::downgrade(&gateway);
    let done = tokio::spawn(icaze::gateway::listener::serve(
        gateway,
        listener,
        shutdown.clone(),
    ));
    Running {
        addr,
        gateway: weak,
        shutdown,
        done,
        _dir: None,
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

/// Every MO acknowledged and answered exactly once, as predicted.
fn assert_clean(report: &icaze_sim::report::Report) {
    let t = &report.totals;
    assert_eq!(t.mismatches, 0, "mismatches: {:#?}", report.mismatches);
    assert_eq!(t.missing, 0, "missing: {:#?}", report.missing);
    assert_eq!(t.duplicates, 0, "duplicates: {:#?}", report.duplicates);
    assert_eq!(t.answered, t.sent);
    assert_eq!(t.acknowledged, t.sent);
    assert!(report.passed, "{}", report.summary());
}

/// Each of `classes` came back at least once.
fn assert_got(report: &icaze_sim::report::Report, classes: &[&str]) {
    for class in classes {
        assert!(
            report.got.contains_key(*class),
            "no {class} in {:?}",
            report.got
        );
    }
}

/// The smoke run of [`settings`] (500 MO/s for 3 s), from either side: clean, more than
/// 1,000 MOs, no session errors, each of `classes` among the replies, p99 under a second.
fn assert_smoke_run(report: &icaze_sim::report::Report, classes: &[&str]) {
    assert_clean(report);
    assert!(
        report.totals.sent > 1_000,
        "sent only {}",
        report.totals.sent
    );
    assert!(
        report.session_errors.is_empty(),
        "{:?}",
        report.session_errors
    );
    assert_got(report, classes);
    assert!(report.latency_ms.p99 > 0.0 && report.latency_ms.p99 < 1_000.0);
}

/// The JSON report the run wrote into `dir`.
fn report_json(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("report written"))
        .expect("report is JSON")
}

/// A three-second run, gateway start and stop included, took under 25 s: no phase waited
/// out a timeout.
fn assert_quick(started: Instant) {
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "took {:?}",
        started.elapsed()
    );
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
    // The traffic had every kind of reply the shipped rules can give.
    assert_smoke_run(
        &report,
        &[
            "granted",
            "active",
            "invalid:no_code",
            "invalid:wrong_digit_count",
        ],
    );
    let json = report_json(out.path());
    assert_eq!(json["totals"]["mismatches"], 0);
    let svg = std::fs::read_to_string(out.path().join("report.svg")).expect("svg written");
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
    gw.stop().await;
    assert_quick(started);
}

/// Issue 13 point 7: the newer shapes, families, help words and the refusals only several
/// codes or documents earn, each predicted and checked (a family line by line), and under
/// `language = "auto"` every reply in the language of its text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_new_shape_families_and_help_in_the_texts_language() {
    let started = Instant::now();
    let gw = gateway_with(&rules_path(), "language = \"auto\"").await;
    let out = tempfile::tempdir().expect("temp dir");
    let mut s = settings(gw.addr, out.path());
    s.mix.shaped = 0.6;
    s.mix.family = 0.2;
    s.mix.help = 0.05;
    s.mix.invalid = 0.15;
    s.seed = 13;
    s.reply_language = Some(ReplyLanguage::Auto(Lang::Az));
    let report = loadgen::run(s).await.expect("loadgen runs");
    println!("{}", report.summary());
    assert_smoke_run(
        &report,
        &[
            "granted",
            "active",
            "family",
            "help",
            "invalid:two_codes",
            "invalid:ambiguous_number",
            "invalid:too_many_documents",
            "invalid:no_number",
            "invalid:no_document",
            "status",
            "status_line",
            "status_none",
        ],
    );
    assert!(report.traffic["stranger"] > 5, "{:?}", report.traffic);
    for shape in Shape::ALL {
        let origin = format!("shaped:{}", shape.name());
        assert!(
            report.traffic.get(&origin).copied().unwrap_or(0) > 0,
            "no {origin} in {:?}",
            report.traffic
        );
    }
    assert!(report.traffic["family"] > 100, "{:?}", report.traffic);
    for lang in ["az", "en", "ru"] {
        assert!(
            report.languages.get(lang).copied().unwrap_or(0) > 10,
            "few replies in {lang}: {:?}",
            report.languages
        );
    }
    gw.stop().await;
    assert_quick(started);
}

/// Issue 13 points 6 and 7: abusive phones. Under `max_documents_per_phone = 2` a household
/// asking for a third document the same day is refused as abuse, alone or as a family's
/// line; under code 3's `abuse_after = 2` (with a validity of one second, so a repeat can
/// be a new grant within the run) the abusers' third grant is refused. The oracle predicts
/// each: zero mismatches, and `abuse` among the replies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abusive_phones_are_refused_as_predicted() {
    let out = tempfile::tempdir().expect("temp dir");
    let rules = out.path().join("rules.toml");
    let shipped = std::fs::read_to_string(rules_path()).expect("shipped rules");
    let text = shipped
        .replace(
            "# max_documents_per_phone = 5",
            "max_documents_per_phone = 2",
        )
        .replace("# abuse_after = 3", "abuse_after = 2");
    // Code 3 (the only unlimited code) valid for a second.
    let at = text.find("daily_limit = \"unlimited\"").expect("code 3");
    let head = text[..at]
        .rfind("validity = \"3h\"")
        .expect("code 3 validity");
    let text = format!(
        "{}validity = \"1s\"{}",
        &text[..head],
        &text[head + "validity = \"3h\"".len()..]
    );
    assert!(text.contains("max_documents_per_phone = 2") && text.contains("abuse_after = 2"));
    std::fs::write(&rules, text).expect("rules written");
    let gw = gateway(&rules).await;
    let mut s = settings(gw.addr, out.path());
    s.rules = rules;
    s.mix.family = 0.3;
    s.mix.abuse = 0.1;
    s.seed = 17;
    let report = loadgen::run(s).await.expect("loadgen runs");
    println!("{}", report.summary());
    assert_clean(&report);
    assert_got(&report, &["granted", "family", "abuse"]);
    gw.stop().await;
}

/// A gateway answering in one language while the simulator expects another: every reply
/// is a mismatch naming the language (the check is live, not vacuous).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_in_another_language_than_configured_are_mismatches() {
    let gw = gateway_with(&rules_path(), "language = \"en\"").await;
    let out = tempfile::tempdir().expect("temp dir");
    let mut s = settings(gw.addr, out.path());
    s.duration = Duration::from_millis(500);
    s.reply_language = Some(ReplyLanguage::Fixed(Lang::Ru));
    let report = loadgen::run(s).await.expect("loadgen runs");
    assert!(!report.passed);
    assert!(report.totals.mismatches > 0);
    assert!(
        report.mismatches[0].why.contains("answered in en, not ru"),
        "{:?}",
        report.mismatches[0]
    );
    gw.stop().await;
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
    assert_got(
        &report,
        &[
            "granted",
            "active",
            "daily_limit",
            "blocked",
            "code_disabled",
            "outside_hours",
        ],
    );
    gw.stop().await;
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
    gw.stop().await;
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

/// smsc settings for a short run against a gateway that binds `binds` sessions.
fn smsc_settings(binds: u32, dir: &std::path::Path) -> Settings {
    let mut s = settings("127.0.0.1:0".parse().expect("addr"), dir);
    s.system_id = "icaze".into();
    s.password = "secret".into();
    s.binds = binds;
    s.bind_timeout = Duration::from_secs(10);
    s
}

/// The smsc's listener on a free port, and the gateway's `[[connectors]]` table binding to
/// it as `icaze`/`secret`: `bind` = `transceiver` or `pair`, `binds` of them.
async fn smsc_listener(bind: &str, binds: u32) -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let smsc = listener.local_addr().expect("addr");
    let tables = format!(
        "[[connectors]]\nname = \"smsc1\"\naddress = \"{smsc}\"\nsystem_id = \"icaze\"\n\
         password = \"secret\"\nbind = \"{bind}\"\nbinds = {binds}\nwindow = 256\nreconnect = \"100ms\"\n"
    );
    (listener, tables)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smsc_with_a_real_gateway_in_connector_mode_gets_every_reply_right() {
    let started = Instant::now();
    let out = tempfile::tempdir().expect("temp dir");
    let (listener, tables) = smsc_listener("transceiver", 1).await;
    let gw = gateway_in(out.path(), &rules_path(), "", &tables).await;
    let report = smsc::run_on(listener, smsc_settings(1, out.path()))
        .await
        .expect("smsc runs");
    println!("{}", report.summary());
    assert_smoke_run(&report, &["granted", "active", "invalid:no_code"]);
    assert_eq!(report.config.mode, "smsc");
    assert_eq!(
        (report.config.binds, report.config.bind_kind.as_str()),
        (1, "trx")
    );
    // The gateway is this process, found at the other end of its bind.
    if std::path::Path::new("/proc/self/stat").exists() {
        assert_eq!(report.cpu.gateway_pid, Some(std::process::id()));
    }
    let json = report_json(out.path());
    assert_eq!(json["config"]["mode"], "smsc");
    assert_eq!(json["totals"]["missing"], 0);
    gw.stop().await;
    assert_quick(started);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smsc_receipts_in_decimal_settle_every_reply_the_gateway_delivered() {
    let out = tempfile::tempdir().expect("temp dir");
    let (listener, tables) = smsc_listener("transceiver", 1).await;
    let tables = format!("{tables}registered_delivery = 1\n");
    let gw = gateway_in(out.path(), &rules_path(), "", &tables).await;
    let mut s = smsc_settings(1, out.path());
    s.duration = Duration::from_millis(1500);
    s.seed = 12;
    s.receipts = Some(smsc::ReceiptSettings {
        stat: "DELIVRD".into(),
        ids: smsc::ReceiptIds::Decimal,
        tlvs: false,
    });
    let report = smsc::run_on(listener, s).await.expect("smsc runs");
    println!("{}", report.summary());
    assert_clean(&report);
    let text = gw
        .gateway
        .upgrade()
        .expect("gateway running")
        .metrics_text();
    let value = |key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map_or(0, |v| v.trim().parse::<f64>().expect("a number") as u64)
    };
    let delivered = value("icaze_replies_delivered_total{operator=\"smsc1\"} ");
    let receipts = value("icaze_receipts_total{connector=\"smsc1\",state=\"delivered\"} ");
    let settled = value("icaze_reply_delivery_total{connector=\"smsc1\",state=\"delivered\"} ");
    let unmatched = value("icaze_receipts_total{connector=\"smsc1\",state=\"unmatched\"} ");
    assert!(delivered > 100, "{text}");
    assert_eq!(unmatched, 0, "every receipt matched its part");
    assert!(
        receipts >= delivered,
        "a receipt per part: {receipts} for {delivered} replies"
    );
    // The last replies' receipts may still be on their way when the run unbinds.
    assert!(
        settled * 10 >= delivered * 9,
        "{settled} of {delivered} replies settled"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smsc_with_transmitter_receiver_pairs_at_max_rate() {
    let out = tempfile::tempdir().expect("temp dir");
    let (listener, tables) = smsc_listener("pair", 2).await;
    let gw = gateway_in(out.path(), &rules_path(), "", &tables).await;
    let mut s = smsc_settings(4, out.path());
    s.rate = Rate::Max;
    s.window = 64;
    s.duration = Duration::from_millis(1500);
    s.seed = 8;
    let report = smsc::run_on(listener, s).await.expect("smsc runs");
    println!("{}", report.summary());
    assert_clean(&report);
    assert!(report.totals.sent > 500);
    assert_eq!(
        (report.config.binds, report.config.bind_kind.as_str()),
        (4, "pair")
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_binds_again_takes_over_the_phones() {
    let out = tempfile::tempdir().expect("temp dir");
    let (listener, tables) = smsc_listener("transceiver", 1).await;
    let first = gateway_in(out.path(), &rules_path(), "", &tables).await;
    let mut s = smsc_settings(1, out.path());
    s.duration = Duration::from_secs(4);
    s.seed = 10;
    let run = tokio::spawn(smsc::run_on(listener, s));
    // Half way through, the gateway stops (unbinding, as on SIGTERM) and a new one opens the
    // same journal and binds again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), first.done)
        .await
        .expect("the first gateway stops")
        .expect("it stops cleanly");
    let second = gateway_in(out.path(), &rules_path(), "", &tables).await;
    let report = run.await.expect("smsc task").expect("smsc runs");
    println!("{}", report.summary());
    assert_clean(&report);
    // The second gateway's session took over the phones: replies came after the first
    // gateway was gone.
    let seconds = &report.seconds;
    assert!(
        seconds.iter().skip(3).any(|r| r.answered > 0),
        "{seconds:#?}"
    );
    assert!(
        report.totals.sent >= 1_800,
        "sent only {}",
        report.totals.sent
    );
    second.stop().await;
}

#[tokio::test]
async fn smsc_refuses_a_wrong_password_and_gives_up_after_the_bind_timeout() {
    let out = tempfile::tempdir().expect("temp dir");
    let (listener, tables) = smsc_listener("transceiver", 1).await;
    let tables = tables.replace("secret", "wrong");
    let gw = gateway_in(out.path(), &rules_path(), "", &tables).await;
    let mut s = smsc_settings(1, out.path());
    s.bind_timeout = Duration::from_secs(1);
    let err = smsc::run_on(listener, s).await.expect_err("no usable bind");
    let text = format!("{err:#}");
    assert!(text.contains("did not bind"), "{text}");
    assert!(text.contains("ESME_RINVPASWD"), "{text}");
    gw.shutdown.cancel();
}
