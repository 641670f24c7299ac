//! The config and rules loader: `icaze::config::Config::from_toml` with a rules file beside
//! it, and `icaze::permit::rules::Rules::from_toml`.
//!
//! The input is the config text, a NUL, then the rules text (no NUL: the shipped
//! `config/rules.toml`). The rules are written as `rules.toml` in a scratch folder and the
//! config is read as if it were `icaze.toml` there. Checks: never panic; the rules file
//! loads on its own exactly when `Rules::from_toml` accepts it; every error names one of
//! the two files and a key; a config that loads has its rules from that file.
#![no_main]

use icaze::config::{Config, load_rules};
use icaze::permit::rules::Rules;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::LazyLock;

/// A scratch folder for the whole run (RAM-backed where there is one).
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("scratch folder")
    } else {
        tempfile::tempdir().expect("scratch folder")
    }
});

const SHIPPED_RULES: &str = include_str!("../../config/rules.toml");

fn env(name: &str) -> Option<String> {
    match name {
        "ICAZE_FUZZ_PASSWORD" => Some("secret".into()),
        "ICAZE_FUZZ_EMPTY" => Some(String::new()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let (config, rules) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], String::from_utf8_lossy(&data[i + 1..])),
        None => (data, SHIPPED_RULES.into()),
    };
    let config = String::from_utf8_lossy(config);
    // The config may name another rules file; reading whatever file it names is the
    // operator's business, not the loader's, so such inputs are skipped.
    if let Ok(table) = config.parse::<toml::Table>()
        && table
            .get("rules")
            .is_some_and(|r| r.as_str() != Some("rules.toml"))
    {
        return;
    }
    let rules_path: PathBuf = DIR.path().join("rules.toml");
    let config_path: PathBuf = DIR.path().join("icaze.toml");
    std::fs::write(&rules_path, rules.as_bytes()).expect("write rules");

    let direct = Rules::from_toml(&rules);
    let from_file = load_rules(&rules_path);
    assert_eq!(
        direct.is_ok(),
        from_file.is_ok(),
        "rules file and text disagree"
    );
    if let Err(errors) = &from_file {
        assert!(!errors.0.is_empty(), "an error without a problem");
        for e in &errors.0 {
            assert_eq!(e.file, rules_path);
            assert!(!e.key.is_empty(), "error names no key: {e}");
        }
    }

    match Config::from_toml(&config_path, &config, &env) {
        Ok(c) => {
            assert!(direct.is_ok(), "config loaded with broken rules");
            assert_eq!(c.rules_path, rules_path);
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error without a problem");
            for e in &errors.0 {
                assert!(
                    e.file == config_path || e.file == rules_path,
                    "error names another file: {e}"
                );
                assert!(!e.key.is_empty(), "error names no key: {e}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
});
