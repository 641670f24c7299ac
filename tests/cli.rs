//! The `icaze` command as a person runs it: check-config, decide, replay, exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn icaze(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_icaze"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("ICAZE_CONFIG")
        .env_remove("ICAZE_PERMIT_KEY")
        .args(args)
        .output()
        .expect("icaze runs")
}

#[test]
fn check_config_accepts_the_shipped_files_and_warns_of_the_demo_key() {
    let out = icaze(&["check-config"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("config/rules.toml: ok"), "{stdout}");
    assert!(stdout.contains("demo key"), "{stdout}");
}

#[test]
fn bad_config_exits_64_naming_every_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.toml"),
        "[[documents]]\nseries = \"AZE\"\ndigits = [8]\n[codes.2]\nname = \"food\"\nvalidity = \"3 hours\"\ndaily_limit = 1\n",
    )
    .unwrap();
    let config = dir.path().join("icaze.toml");
    std::fs::write(&config, "[smpp]\nlisten = \"here\"\n").unwrap();
    let out = icaze(&["--config", config.to_str().unwrap(), "check-config"]);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rules.toml: codes.2.validity"), "{stderr}");
    assert!(stderr.contains("icaze.toml: permit.key"), "{stderr}");
    assert!(stderr.contains("icaze.toml: smpp.listen"), "{stderr}");
    // Every command refuses bad config the same way.
    let out = icaze(&[
        "--config",
        config.to_str().unwrap(),
        "decide",
        "2 AZE 11111111",
    ]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn decide_prints_the_decision_and_the_reply() {
    let out = icaze(&[
        "decide",
        "--at",
        "2020-04-06T22:30:00+04:00",
        "2 AZE 11111111",
        "2 aze 1111 1111",
        "2 AZE 123",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let blocks: Vec<&str> = stdout.split("text:").skip(1).collect();
    assert_eq!(blocks.len(), 3, "{stdout}");
    assert!(
        blocks[0].contains("decision: granted code 2 for AZE 11111111"),
        "{stdout}"
    );
    assert!(blocks[0].contains("22:30\u{2013}01:30"), "{stdout}");
    assert!(blocks[1].contains("decision: active"), "{stdout}");
    assert!(blocks[2].contains("invalid"), "{stdout}");
    assert!(blocks[2].contains("reply:"), "{stdout}");
}

#[test]
fn replay_prints_one_json_object_per_line() {
    let input = "2020-04-06T10:00:00+04:00\t994501234567\t2 AZE 11111111\n\
                 2020-04-06T10:05:00+04:00\t994501234567\t2 AZE 11111111\n\
                 2020-04-06T14:00:00+04:00\t994501234567\t2 AZE 11111111\n\
                 2020-04-07T09:00:00+04:00\t994501234567\t2 AZE 11111111\n\
                 2020-04-07T09:00:00+04:00\t994501234567\tsalam\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_icaze"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["replay", "--lang", "en"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outcomes: Vec<&str> = lines
        .iter()
        .map(|l| l["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["granted", "active", "denied", "granted", "invalid"]
    );
    assert_eq!(lines[0]["code"], 2);
    assert_eq!(lines[0]["document"], "AZE 11111111");
    assert_eq!(lines[0]["valid_from"], "2020-04-06T10:00:00+04:00");
    assert_eq!(lines[0]["valid_until"], "2020-04-06T13:00:00+04:00");
    assert_eq!(lines[0]["permit_id"], lines[1]["permit_id"]);
    assert_ne!(lines[0]["permit_id"], lines[3]["permit_id"]);
    assert_eq!(lines[2]["reason"], "daily_limit");
    assert!(
        lines[0]["reply"]
            .as_str()
            .unwrap()
            .starts_with("PERMIT GRANTED")
    );
    for key in [
        "outcome",
        "reason",
        "code",
        "document",
        "valid_from",
        "valid_until",
        "permit_id",
        "reply",
    ] {
        assert!(lines[4].get(key).is_some(), "{key} present even when null");
    }
}

#[test]
fn bad_abuse_limits_exit_64_naming_the_rules_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.toml"),
        "max_documents_per_phone = 0\n[[documents]]\nseries = \"AZE\"\ndigits = [8]\n\
         [codes.2]\nname = \"food\"\nvalidity = \"3h\"\ndaily_limit = 1\nabuse_after = 2\n\
         [codes.3]\nname = \"funeral\"\nvalidity = \"3h\"\ndaily_limit = \"unlimited\"\nabuse_after = 0\n",
    )
    .unwrap();
    let config = dir.path().join("icaze.toml");
    std::fs::write(&config, "[permit]\nkey = \"cli-test-key-long-enough\"\n").unwrap();
    let out = icaze(&["--config", config.to_str().unwrap(), "check-config"]);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rules.toml: max_documents_per_phone"),
        "{stderr}"
    );
    assert!(
        stderr.contains("rules.toml: codes.2.abuse_after"),
        "{stderr}"
    );
}

#[test]
fn decide_with_a_phone_answers_status_and_abuse() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rules.toml"),
        shipped.replace(
            "max_documents_per_sms = 5",
            "max_documents_per_sms = 5\nmax_documents_per_phone = 1",
        ),
    )
    .unwrap();
    let config = dir.path().join("icaze.toml");
    std::fs::write(&config, "[permit]\nkey = \"cli-test-key-long-enough\"\n").unwrap();
    let out = icaze(&[
        "--config",
        config.to_str().unwrap(),
        "decide",
        "--lang",
        "en",
        "--phone",
        "994501234567",
        "--at",
        "2020-04-06T10:00:00+04:00",
        "2 AZE 11111111",
        "status AZE 11111111",
        "2 AZE 22222222",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let blocks: Vec<&str> = stdout.split("text:").skip(1).collect();
    assert_eq!(blocks.len(), 3, "{stdout}");
    assert!(
        blocks[1].contains("decision: status, 1 permit(s)"),
        "{stdout}"
    );
    assert!(
        blocks[1].contains("AZE 11111111, today from this phone:"),
        "{stdout}"
    );
    assert!(blocks[2].contains("(abuse)"), "{stdout}");
}
