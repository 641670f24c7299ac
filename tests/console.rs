//! The console (issue 14) against the real `icaze serve` binary: the sign-in cookie and
//! the cross-site guard over plain HTTP, the rules check, who did what in the log; then the
//! page in a real headless Chromium with traffic from the load simulator: the charts draw
//! data, a permit issued in the test checks valid, a revoked one revoked, an invalid rules
//! edit shows its errors by key and changes nothing, a valid one shows its difference and
//! applies on confirmation. Screenshots of each screen go to `$ICAZE_CONSOLE_SCREENSHOTS`
//! (README's come from a run with `ICAZE_CONSOLE_SCREENSHOTS=docs`).

mod support;

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use support::browser::Browser;
use support::http::{Answer, call, call_with, get};
use support::process::Icaze;
use support::smpp::{permit_id, sms};

const CHECKPOINT: &str = "checkpoint-token-for-console";
const OFFICIAL: &str = "official-token-for-console";
const TOKENS: &[(&str, &str)] = &[
    ("ICAZE_CHECKPOINT_TOKEN", CHECKPOINT),
    ("ICAZE_OFFICIAL_TOKEN", OFFICIAL),
];

fn start(dir: &std::path::Path) -> (Icaze, SocketAddr, SocketAddr) {
    let mut child = Icaze::spawn_with_env(dir, "icaze", "", "", TOKENS);
    let smpp = child.addr();
    let admin = child.admin_addr();
    (child, smpp, admin)
}

fn key(a: &Answer) -> &str {
    a.json["key"].as_str().unwrap_or_default()
}

/// Signs in with `token`; the cookie header to send back and the page's CSRF token.
async fn sign_in(admin: SocketAddr, token: &str) -> (String, String) {
    let body = json!({"token": token}).to_string();
    let a = call_with(admin, "POST", "/v1/session", &[], Some(&body)).await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    let set = a.header("set-cookie").expect("a cookie").to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    (cookie, a.json["csrf"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cookie_stands_for_the_token_and_writes_need_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, smpp, admin) = start(dir.path());

    // The page without a session: the sign-in form, the page's own headers.
    let page = get(admin, "/", None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text.contains("id=\"login\"") && !page.text.contains("id=\"now\""));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let js = get(admin, "/console/console.js", None).await;
    assert_eq!(
        (js.status, js.header("content-type")),
        (200, Some("text/javascript; charset=utf-8"))
    );
    assert!(
        js.text.len() < 16 * 1024,
        "a few KB of script: {}",
        js.text.len()
    );
    assert!(!js.text.contains("http://") || js.text.contains("http://www.w3.org/2000/svg"));

    // A wrong token: 401, counted; no cookie.
    let wrong = call_with(
        admin,
        "POST",
        "/v1/session",
        &[],
        Some(r#"{"token": "guess"}"#),
    )
    .await;
    assert_eq!((wrong.status, key(&wrong)), (401, "unauthorized"));
    assert!(wrong.header("set-cookie").is_none());

    // The official's token: a cookie that is HttpOnly, SameSite=Strict, for this browser
    // session only, and does not hold the token.
    let signed = call_with(
        admin,
        "POST",
        "/v1/session",
        &[],
        Some(&json!({"token": OFFICIAL}).to_string()),
    )
    .await;
    assert_eq!(signed.status, 200, "{:?}", signed.json);
    assert_eq!(signed.json["role"], "official");
    let set = signed.header("set-cookie").unwrap();
    assert!(set.starts_with("icaze_session="), "{set}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    assert!(
        !set.contains("Max-Age") && !set.contains("Expires"),
        "{set}"
    );
    assert!(!set.contains(OFFICIAL));
    let (cookie, csrf) = sign_in(admin, OFFICIAL).await;
    let with_cookie = [("cookie", cookie.as_str())];

    // Reads with the cookie alone; the page is the official's, with the CSRF token.
    let page = call_with(admin, "GET", "/", &with_cookie, None).await;
    assert!(page.text.contains(&format!("content=\"{csrf}\"")));
    assert!(page.text.contains("id=\"now\"") && page.text.contains("id=\"rules-text\""));
    let now = call_with(admin, "GET", "/v1/now", &with_cookie, None).await;
    assert_eq!(now.status, 200, "{:?}", now.json);
    assert_eq!(now.json["store"]["kind"], "journal");
    assert_eq!(now.json["store"]["ok"], true);
    assert_eq!(now.json["smpp"], "listening");
    assert_eq!(now.json["operators"][0]["operator"], "demo");

    // A write with the cookie: refused without the CSRF token or from another origin.
    let reply = sms(smpp, "994501234567", "2 AZE 11111111").await;
    let id = permit_id(&reply);
    let revoke = format!("/v1/permits/{id}/revoke");
    let body = Some(r#"{"reason": "forged copy"}"#);
    let bare = call_with(admin, "POST", &revoke, &with_cookie, body).await;
    assert_eq!((bare.status, key(&bare)), (403, "csrf"), "{:?}", bare.json);
    let host = admin.to_string();
    let evil = call_with(
        admin,
        "POST",
        &revoke,
        &[
            ("cookie", &cookie),
            ("x-csrf-token", &csrf),
            ("origin", "http://evil.example"),
        ],
        body,
    )
    .await;
    assert_eq!((evil.status, key(&evil)), (403, "csrf"));
    let other_session = call_with(
        admin,
        "POST",
        &revoke,
        &[("cookie", &cookie), ("x-csrf-token", "0000")],
        body,
    )
    .await;
    assert_eq!((other_session.status, key(&other_session)), (403, "csrf"));
    let still = get(admin, &format!("/v1/permits/{id}"), Some(CHECKPOINT)).await;
    assert_eq!(still.json["status"], "valid", "nothing refused was done");
    let origin = format!("http://{host}");
    let done = call_with(
        admin,
        "POST",
        &revoke,
        &[
            ("cookie", &cookie),
            ("x-csrf-token", &csrf),
            ("origin", &origin),
        ],
        body,
    )
    .await;
    assert_eq!(
        (done.status, done.json["status"].as_str()),
        (200, Some("revoked"))
    );

    // Logged with who did it: the role and a fingerprint, never the token.
    let line = child
        .wait_for_log("admin: permit revoked", Duration::from_secs(5))
        .expect("the revocation is logged");
    let fingerprint = signed.json["who"].as_str().unwrap().to_string();
    assert!(fingerprint.starts_with("official:") && fingerprint.len() == "official:".len() + 8);
    assert!(line.contains(&format!("who={fingerprint}")), "{line}");
    assert!(
        !child.log_text().contains(OFFICIAL),
        "the token is never logged"
    );

    // Bearer tokens keep working for the API, with no CSRF token.
    let bearer = call(admin, "GET", "/v1/now", Some(OFFICIAL), None).await;
    assert_eq!(bearer.status, 200);

    // A checkpoint's session: the check screen only, and no figures.
    let (checkpoint_cookie, _) = sign_in(admin, CHECKPOINT).await;
    let page = call_with(admin, "GET", "/", &[("cookie", &checkpoint_cookie)], None).await;
    assert!(page.text.contains("id=\"check\"") && !page.text.contains("id=\"now\""));
    assert!(!page.text.contains("id=\"rules-text\""));
    let now = call_with(
        admin,
        "GET",
        "/v1/now",
        &[("cookie", &checkpoint_cookie)],
        None,
    )
    .await;
    assert_eq!((now.status, key(&now)), (403, "forbidden"));

    // Signing out ends the session on the server.
    let out = call_with(
        admin,
        "DELETE",
        "/v1/session",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        None,
    )
    .await;
    assert_eq!(out.status, 200);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let gone = call_with(admin, "GET", "/v1/now", &with_cookie, None).await;
    assert_eq!((gone.status, key(&gone)), (401, "unauthorized"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_check_answers_every_error_by_key_or_the_difference_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, _smpp, admin) = start(dir.path());
    let rules_file = dir.path().join("icaze-rules.toml");
    let original = std::fs::read_to_string(&rules_file).unwrap();
    let version = get(admin, "/v1/rules", Some(OFFICIAL)).await.json["version"]
        .as_str()
        .unwrap()
        .to_string();

    let broken = original
        .replace("validity = \"3h\"", "validity = \"3 hours\"")
        .replacen("daily_limit = 1", "daily_limit = -1", 1);
    let refused = call(
        admin,
        "POST",
        "/v1/rules/check",
        Some(OFFICIAL),
        Some(&broken),
    )
    .await;
    assert_eq!(
        (refused.status, key(&refused)),
        (422, "invalid_rules"),
        "{:?}",
        refused.json
    );
    let keys: Vec<&str> = refused.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert!(keys.iter().any(|k| k.contains("validity")), "{keys:?}");
    assert!(keys.iter().any(|k| k.contains("daily_limit")), "{keys:?}");

    let lockdown = original.replacen(
        "[codes.3]\nname = \"funeral\"\nenabled = true",
        "[codes.3]\nname = \"funeral\"\nenabled = false",
        1,
    );
    let checked = call(
        admin,
        "POST",
        "/v1/rules/check",
        Some(OFFICIAL),
        Some(&lockdown),
    )
    .await;
    assert_eq!(checked.status, 200, "{:?}", checked.json);
    assert_eq!(checked.json["in_force"], version.as_str());
    assert_eq!(checked.json["changed"], true);
    let diff: Vec<(String, String)> = checked.json["diff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["op"].as_str().unwrap().into(),
                l["text"].as_str().unwrap().into(),
            )
        })
        .collect();
    let changed: Vec<_> = diff.iter().filter(|(op, _)| op != " ").collect();
    assert_eq!(
        changed,
        [
            &("-".into(), "enabled = true".into()),
            &("+".into(), "enabled = false".into())
        ],
        "{diff:?}"
    );
    assert!(
        diff.contains(&(" ".into(), "name = \"funeral\"".into())),
        "with context"
    );
    // Checked, nothing changed: file and version as before.
    assert_eq!(std::fs::read_to_string(&rules_file).unwrap(), original);
    assert_eq!(
        get(admin, "/v1/rules", Some(OFFICIAL)).await.json["version"],
        version.as_str()
    );

    // Applied against the version it was checked against; a second upload based on the
    // old version is refused, since the rules changed in between.
    let base = [
        ("authorization", &*format!("Bearer {OFFICIAL}")),
        ("x-rules-base", &*version),
    ];
    let put = call_with(admin, "PUT", "/v1/rules", &base, Some(&lockdown)).await;
    assert_eq!(put.status, 200, "{:?}", put.json);
    assert_eq!(put.json["version"], checked.json["version"]);
    let stale = call_with(admin, "PUT", "/v1/rules", &base, Some(&original)).await;
    assert_eq!((stale.status, key(&stale)), (409, "rules_changed"));
    assert_eq!(std::fs::read_to_string(&rules_file).unwrap(), lockdown);
}

/// Where the screenshots go: `$ICAZE_CONSOLE_SCREENSHOTS` (relative to the repository),
/// else the test's scratch folder.
fn screenshots() -> PathBuf {
    match std::env::var_os("ICAZE_CONSOLE_SCREENSHOTS") {
        Some(dir) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir),
        None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console"),
    }
}

/// Checks `id` (and `document`) in the form and returns the verdict's big text and its
/// details once it is shown for that id.
fn check_in_form(b: &mut Browser, id: &str, document: &str) -> (String, String) {
    b.eval(
        "location.hash = '#check'; document.querySelector('#verdict').className = 'verdict idle'",
    );
    b.type_into("#check-id", id);
    b.type_into("#check-document", document);
    b.click("#check-form button[type=submit]");
    b.wait_for(
        &format!("the verdict on {id}"),
        &format!("!document.querySelector('#verdict').classList.contains('idle') && document.querySelector('#verdict .detail').innerText.includes({})", json!(id.to_uppercase())),
    );
    (b.text("#verdict .status"), b.text("#verdict .detail"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let Some(mut b) = Browser::launch("the_console_in_a_real_browser") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_child, smpp, admin) = start(dir.path());
    let shots = screenshots();
    let base = format!("http://{admin}");

    // Two permits issued over SMPP: one to check, one to revoke.
    let valid = permit_id(&sms(smpp, "994501234567", "2 AZE 11111111").await);
    let doomed = permit_id(&sms(smpp, "994507654321", "1 AA 1234567").await);

    // Citizens' traffic from the simulator while the page watches.
    let mut traffic = icaze_sim::loadgen::Settings::new(smpp.to_string());
    traffic.binds = 1;
    traffic.rate = icaze_sim::run::Rate::PerSecond(40);
    traffic.duration = Duration::from_secs(30);
    traffic.population = 5_000;
    traffic.rules = dir.path().join("icaze-rules.toml");
    traffic.drain = Duration::from_secs(2);
    traffic.progress = false;
    let traffic = tokio::spawn(icaze_sim::loadgen::run(traffic));

    // Sign in on a phone: a wrong token is refused on the page, the right one kept in an
    // HttpOnly cookie that the page's scripts cannot read.
    b.viewport(390, 844, true);
    b.goto(&format!("{base}/"));
    b.wait_for("the sign-in form", "document.querySelector('#login')");
    b.screenshot(&shots.join("console-sign-in.png"));
    b.type_into("#token", "not-the-token");
    b.click("#login button");
    let refused = b.wait_for(
        "the refusal",
        "document.querySelector('#login-result').innerText",
    );
    assert!(
        refused.as_str().unwrap().contains("unauthorized"),
        "{refused}"
    );
    b.type_into("#token", OFFICIAL);
    b.click("#login button");
    b.wait_for(
        "the official's page",
        "document.body.dataset.role === 'official' && document.querySelector('#now.on')",
    );
    assert_eq!(
        b.eval("document.cookie"),
        json!(""),
        "the session cookie is HttpOnly"
    );

    // Now: both charts draw lines from the last seconds' data, the tables fill in.
    b.viewport(1280, 900, false);
    let points = b.wait_for(
        "MOs per second drawn above zero",
        "(() => { const ps = [...document.querySelectorAll('#mos-chart polyline')].flatMap(p => p.getAttribute('points').split(' ')); \
         return ps.length >= 5 && ps.some(p => +p.split(',')[1] < 150) ? ps.length : 0; })()",
    );
    assert!(points.as_u64().unwrap() >= 5);
    // For the picture: a quarter of a minute of traffic.
    b.wait_for(
        "15 s of samples",
        "document.querySelectorAll('#mos-chart polyline')[0].getAttribute('points').split(' ').length >= 15",
    );
    b.wait_for(
        "reply times drawn",
        "document.querySelectorAll('#reply-chart polyline.p50').length && document.querySelectorAll('#reply-chart polyline.p99').length",
    );
    b.wait_for(
        "today's outcomes and bad texts",
        "document.querySelectorAll('#outcomes tbody tr td.n').length && document.querySelectorAll('#invalid tbody tr td.n').length",
    );
    assert!(b.text("#binds").contains("demo"), "{}", b.text("#binds"));
    assert!(
        b.text("#store").starts_with("journal: ok"),
        "{}",
        b.text("#store")
    );
    let version = get(admin, "/v1/rules", Some(OFFICIAL)).await.json["version"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(b.text("#rules-version").starts_with(&version));
    b.screenshot(&shots.join("console-now.png"));

    // The checkpoint's screen on a phone: valid, in large text, with the masked document.
    b.viewport(390, 844, true);
    let (status, detail) = check_in_form(&mut b, &valid.to_lowercase(), "aze 1111 1111");
    assert_eq!(status, "VALID");
    assert!(
        detail.contains("AZE *****111") && detail.contains("matches"),
        "{detail}"
    );
    assert!(detail.contains('–'), "the window: {detail}");
    let font =
        b.eval("parseFloat(getComputedStyle(document.querySelector('#verdict .status')).fontSize)");
    assert!(font.as_f64().unwrap() >= 40.0, "large: {font}");
    assert_eq!(
        b.eval("document.documentElement.scrollWidth <= innerWidth"),
        json!(true),
        "nothing sticks out sideways on a phone"
    );
    b.screenshot(&shots.join("console-check-valid.png"));
    let (status, _) = check_in_form(&mut b, "2222-2222", "");
    assert_eq!(status, "UNKNOWN");

    // Revoked on the actions screen, then checked: revoked.
    b.viewport(1280, 900, false);
    b.eval("location.hash = '#actions'");
    b.type_into("#revoke-id", &doomed);
    b.type_into("#revoke-reason", "sold on social media");
    b.click("#revoke-form button");
    let said = b.wait_for(
        "the revocation",
        "document.querySelector('#revoke-result').innerText",
    );
    assert!(said.as_str().unwrap().contains("revoked"), "{said}");
    // Blocked for code 3 from the page, in force in the API; then lifted.
    b.type_into("#block-document", "aze 5555 5555");
    b.type_into("#block-codes", "3");
    b.type_into("#block-reason", "quarantine list");
    b.click("#block-form button[type=submit]");
    let said = b.wait_for(
        "the block",
        "document.querySelector('#block-result').innerText",
    );
    assert!(
        said.as_str()
            .unwrap()
            .contains("AZE 55555555 blocked for codes [3]"),
        "{said}"
    );
    let list = get(admin, "/v1/blocklist", Some(OFFICIAL)).await;
    assert!(
        list.text.contains("AZE 55555555") && list.text.contains("quarantine list"),
        "{}",
        list.text
    );
    b.screenshot(&shots.join("console-actions.png"));
    b.click("#unblock");
    b.wait_for(
        "the unblock",
        "document.querySelector('#block-result').innerText.includes('unblocked')",
    );
    let list = get(admin, "/v1/blocklist", Some(OFFICIAL)).await;
    assert!(!list.text.contains("AZE 55555555"), "{}", list.text);

    b.viewport(390, 844, true);
    let (status, detail) = check_in_form(&mut b, &doomed, "");
    assert_eq!(status, "REVOKED");
    assert!(detail.contains("sold on social media"), "{detail}");
    b.screenshot(&shots.join("console-check-revoked.png"));
    let api = get(admin, &format!("/v1/permits/{doomed}"), Some(CHECKPOINT)).await;
    assert_eq!(api.json["status"], "revoked");

    // An invalid rules edit: its errors by key on the page, nothing applied.
    b.viewport(1280, 900, false);
    b.eval("location.hash = '#rules'");
    let set_rules = |text: &str| {
        format!(
            "(() => {{ const t = document.querySelector('#rules-text'); t.value = {}; t.dispatchEvent(new Event('input')); return true; }})()",
            json!(text)
        )
    };
    let original = b.eval("document.querySelector('#rules-text').value");
    let original = original.as_str().unwrap().to_string();
    b.eval(&set_rules(&original.replacen(
        "daily_limit = 1",
        "daily_limit = -1",
        1,
    )));
    b.click("#rules-check");
    let errors = b.wait_for("the rules errors", "document.querySelector('#rules-result li code') && document.querySelector('#rules-result').innerText");
    assert!(errors.as_str().unwrap().contains("daily_limit"), "{errors}");
    assert_eq!(
        b.eval("document.querySelector('#rules-apply').disabled"),
        json!(true)
    );
    b.screenshot(&shots.join("console-rules-error.png"));
    let after = get(admin, "/v1/rules", Some(OFFICIAL)).await;
    assert_eq!(after.json["version"], version.as_str(), "nothing changed");

    // A valid edit: the difference, then applied on confirmation.
    let lockdown = original.replacen(
        "[codes.3]\nname = \"funeral\"\nenabled = true",
        "[codes.3]\nname = \"funeral\"\nenabled = false",
        1,
    );
    b.eval(&set_rules(&lockdown));
    b.click("#rules-check");
    b.wait_for(
        "the difference",
        "document.querySelector('#rules-result .diff')",
    );
    assert!(
        b.text("#rules-result .diff .del")
            .contains("enabled = true")
    );
    assert!(
        b.text("#rules-result .diff .add")
            .contains("enabled = false")
    );
    b.screenshot(&shots.join("console-rules-diff.png"));
    assert_eq!(
        get(admin, "/v1/rules", Some(OFFICIAL)).await.json["version"],
        version.as_str()
    );
    b.click("#rules-apply");
    let applied = b.wait_for("the rules applied", "document.querySelector('#rules-result').innerText.includes('Applied') && document.querySelector('#rules-result').innerText");
    let now_in_force = get(admin, "/v1/rules", Some(OFFICIAL)).await;
    let new_version = now_in_force.json["version"].as_str().unwrap();
    assert_ne!(new_version, version);
    assert!(applied.as_str().unwrap().contains(new_version), "{applied}");
    assert_eq!(now_in_force.json["text"], Value::String(lockdown));

    assert!(b.errors.is_empty(), "the page threw: {:?}", b.errors);
    traffic.abort();
}
