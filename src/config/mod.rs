//! Typed config: the gateway file (`config/icaze.toml`) and the rules file it points to.
//!
//! Loading collects every problem, each naming its file and dotted key, so an official
//! fixing a file sees all mistakes at once; `icaze` exits with code 64 (EX_USAGE's
//! neighbour EX_DATAERR is 65; DESIGN.md fixes 64) when there are any.
//!
//! [`Config::from_toml`] reads the file once and hands each section to its own function:
//! `[smpp]` in `smpp.rs`, `store` and `[redis]` in `store.rs`, `[[operators]]` in
//! `operators.rs`, `[[connectors]]` in `connectors.rs`, `[admin]` in `admin.rs`, the TLS tables
//! in `tls.rs`; the one-key `[permit]` and
//! `[engine]` sections are checked here.

mod admin;
mod connectors;
mod error;
mod operators;
mod smpp;
mod store;
mod tls;

use crate::telemetry::LogFormat;
pub use admin::{Admin, CHECKPOINT_TOKEN_ENV, Network, OFFICIAL_TOKEN_ENV};
pub use connectors::{Connector, ConnectorBind};
pub use error::{ConfigError, ConfigErrors};
pub use operators::{Operator, Password};
pub use smpp::{IdFormat, Smpp};
use std::time::Duration;
pub use store::{RedisConfig, StoreConfig};

use crate::permit::id::PermitKey;
use crate::permit::reply::{Language, ReplyLanguage};
use crate::permit::rules::{Rules, deserialize_toml};
use error::{Errors, rule_errors};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The process exit code for bad config.
pub const EXIT_BAD_CONFIG: i32 = 64;

/// Environment variable that overrides `[permit] key`.
pub const PERMIT_KEY_ENV: &str = "ICAZE_PERMIT_KEY";

/// The demo secret in `config/icaze.toml`; `check-config` warns about it.
pub const DEMO_KEY: &str = "demo-only-change-me";

/// The whole gateway config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// The rules file, resolved against the config file's folder.
    pub rules_path: PathBuf,
    /// The rules, loaded and validated.
    pub rules: Rules,
    /// The journal's folder.
    pub data_dir: PathBuf,
    /// The secret behind permit ids.
    pub permit_key: PermitKey,
    /// Whether the permit key is the demo key shipped in the repository.
    pub demo_key: bool,
    /// Where grants become durable.
    pub store: StoreConfig,
    /// SMPP settings.
    pub smpp: Smpp,
    /// Operators allowed to bind.
    pub operators: Vec<Operator>,
    /// Operators' SMSCs icaze binds to.
    pub connectors: Vec<Connector>,
    /// (document, quota group) entries the engine reserves at start (`[engine] reserve`), so
    /// a busy first morning never waits for a table to grow; 0 grows as needed.
    pub engine_reserve: usize,
    /// The journal's shortest time between the starts of two commit rounds (`[journal]
    /// round_every`, default 2 ms; "0ms" starts one as soon as the last is done).
    pub journal_round_every: Duration,
    /// The admin HTTP API.
    pub admin: Admin,
    /// How log lines are written (`[log] format`: "text", the default, or "json").
    pub log_format: LogFormat,
}

/// The file as written; each section's raw type lives beside the function that checks it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    rules: Option<String>,
    data_dir: Option<String>,
    store: Option<store::RawStore>,
    #[serde(default)]
    redis: store::RawRedis,
    #[serde(default)]
    permit: RawPermit,
    #[serde(default)]
    smpp: smpp::RawSmpp,
    #[serde(default)]
    operators: Vec<operators::RawOperator>,
    #[serde(default)]
    connectors: Vec<connectors::RawConnector>,
    #[serde(default)]
    engine: RawEngine,
    #[serde(default)]
    journal: RawJournal,
    #[serde(default)]
    admin: admin::RawAdmin,
    #[serde(default)]
    log: RawLog,
}

/// `[log]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<String>,
}

/// `[engine]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    reserve: Option<usize>,
}

/// `[journal]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawJournal {
    round_every: Option<String>,
}

/// `[permit]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPermit {
    key: Option<String>,
}

/// Reads a whole file, or the one error that says it cannot be read.
fn read(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            key: "(file)".into(),
            message: format!("cannot read: {e}"),
        }])
    })
}

/// Loads and validates a rules file on its own (for reloads).
pub fn load_rules(path: &Path) -> Result<Rules, ConfigErrors> {
    let text = read(path)?;
    rules_from_text(path, &text)
}

/// Validates rules text as if it were the file at `path` (an upload through the admin API
/// before it is written there); errors name `path` and the key, like `check-config`.
pub fn rules_from_text(path: &Path, text: &str) -> Result<Rules, ConfigErrors> {
    Rules::from_toml(text).map_err(|e| ConfigErrors(rule_errors(path, e)))
}

/// Reads the rules file's text (for its version hash and the admin API).
pub fn read_rules_text(path: &Path) -> Result<String, ConfigErrors> {
    read(path)
}

impl Config {
    /// Loads the config file and the rules file it names; `env` is how the environment is
    /// read (tests pass their own).
    pub fn load_with_env(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let text = read(path)?;
        Self::from_toml(path, &text, env)
    }

    /// Loads with the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Self::load_with_env(path, &|k| std::env::var(k).ok())
    }

    /// Parses config text as if it were the file at `path` (relative paths resolve from
    /// its folder). Errors come in section order: the rules file's, then `[permit]`,
    /// `[smpp]`, `store`/`[redis]`, `[[operators]]`, `[[connectors]]`, `[engine]`, `[admin]`.
    pub fn from_toml(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let mut errs = Errors::new(path);
        let raw: RawConfig = match deserialize_toml(text) {
            Ok(r) => r,
            Err(e) => return Err(ConfigErrors(rule_errors(path, vec![e]))),
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let rules_path = dir.join(raw.rules.as_deref().unwrap_or("rules.toml"));
        let rules = match load_rules(&rules_path) {
            Ok(r) => Some(r),
            Err(ConfigErrors(list)) => {
                errs.list.extend(list);
                None
            }
        };
        let data_dir = dir.join(raw.data_dir.as_deref().unwrap_or("../data"));
        let (key_text, demo_key) = permit_key(&mut errs, raw.permit, env);
        let mut smpp = smpp::smpp(&mut errs, raw.smpp, dir);
        let store = store::store(&mut errs, raw.store, raw.redis);
        let default_language = rules
            .as_ref()
            .map_or(ReplyLanguage::Fixed(Language::Az), |r| r.language);
        let operators = operators::operators(&mut errs, raw.operators, env, default_language);
        let connectors =
            connectors::connectors(&mut errs, raw.connectors, env, default_language, dir);
        smpp.reserved = smpp::reserve(&mut errs, &smpp, &operators);
        let engine_reserve = engine_reserve(&mut errs, raw.engine);
        let journal_round_every = journal_round_every(&mut errs, raw.journal);
        let admin = admin::admin(&mut errs, raw.admin, env, dir);
        let log_format = match raw.log.format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                errs.push(
                    "log.format",
                    format!("{other:?} is neither \"text\" nor \"json\""),
                );
                LogFormat::Text
            }
        };

        match (errs.list.is_empty(), rules) {
            (true, Some(rules)) => Ok(Config {
                path: path.to_path_buf(),
                rules_path,
                rules,
                data_dir,
                permit_key: PermitKey::from_secret(key_text.as_bytes()),
                demo_key,
                store,
                smpp,
                operators,
                connectors,
                engine_reserve,
                journal_round_every,
                admin,
                log_format,
            }),
            _ => Err(ConfigErrors(errs.list)),
        }
    }
}

/// Checks `[permit]`: the secret (the environment wins over the file) and whether it is
/// the demo key.
fn permit_key(
    errs: &mut Errors,
    raw: RawPermit,
    env: &dyn Fn(&str) -> Option<String>,
) -> (String, bool) {
    let (key_text, demo_key) = match (env(PERMIT_KEY_ENV), raw.key) {
        (Some(k), _) if !k.is_empty() => (k, false),
        (_, Some(k)) if !k.is_empty() => {
            let demo = k == DEMO_KEY;
            (k, demo)
        }
        _ => {
            errs.push(
                "permit.key",
                format!("missing: set [permit] key or the {PERMIT_KEY_ENV} environment variable"),
            );
            (String::new(), false)
        }
    };
    if !key_text.is_empty() && key_text.len() < 16 {
        errs.push(
            "permit.key",
            "too short: use at least 16 characters of secret",
        );
    }
    (key_text, demo_key)
}

/// Checks `[engine]`: how many entries to reserve at start.
fn engine_reserve(errs: &mut Errors, raw: RawEngine) -> usize {
    let reserve = raw.reserve.unwrap_or(0);
    if reserve > 1_000_000_000 {
        errs.push(
            "engine.reserve",
            "at most 1000000000 entries (about 36 GB of memory)",
        );
    }
    reserve
}

/// The longest `[journal] round_every`: every MO may wait that much longer for its commit.
const MAX_ROUND_EVERY: Duration = Duration::from_millis(100);

/// Checks `[journal]`: the shortest time between the starts of two commit rounds.
fn journal_round_every(errs: &mut Errors, raw: RawJournal) -> Duration {
    const KEY: &str = "journal.round_every";
    let default = crate::store::journal::ROUND_EVERY;
    let every = match raw.round_every.as_deref().map(str::trim) {
        Some("0ms" | "0s" | "0") => Duration::ZERO,
        value => errs.duration(KEY, value, default),
    };
    if every > MAX_ROUND_EVERY {
        errs.push(
            KEY,
            "at most \"100ms\": every MO may wait that much longer for its commit",
        );
        return default;
    }
    every
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// An environment holding only a valid permit key.
    pub(crate) fn key_only(k: &str) -> Option<String> {
        (k == PERMIT_KEY_ENV).then(|| "a long enough permit secret".to_string())
    }

    /// A temp folder with the shipped rules, and the path of a config file in it.
    pub(crate) fn beside_shipped_rules() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rules.toml"),
            include_str!("../../config/rules.toml"),
        )
        .unwrap();
        let path = dir.path().join("icaze.toml");
        (dir, path)
    }

    #[test]
    fn the_shipped_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/icaze.toml");
        let c = Config::load_with_env(&path, &no_env).unwrap();
        assert_eq!(c.smpp.listen.to_string(), "127.0.0.1:2775");
        assert_eq!(c.smpp.short_numbers, ["8103"]);
        assert_eq!(c.operators[0].system_id, "demo");
        assert!(c.operators[0].password.matches(b"demo"));
        assert!(!c.operators[0].password.matches(b"demO"));
        assert!(c.demo_key);
        assert_eq!(c.store, StoreConfig::Journal);
    }

    #[test]
    fn language_auto_for_operators_connectors_and_the_rules_file() {
        let dir = tempfile::tempdir().unwrap();
        let rules = include_str!("../../config/rules.toml")
            .replace("language = \"az\"", "language = \"ru\"");
        std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
        let path = dir.path().join("icaze.toml");
        let text = "[permit]\nkey = \"language-test-key-language-test\"\n[smpp]\nlisten = \"127.0.0.1:0\"\n\
                    [[operators]]\nsystem_id = \"a\"\npassword = \"a\"\nlanguage = \"AUTO\"\n\
                    [[operators]]\nsystem_id = \"b\"\npassword = \"b\"\n\
                    [[connectors]]\nname = \"c\"\naddress = \"127.0.0.1:1\"\nsystem_id = \"c\"\npassword = \"c\"\nlanguage = \"auto\"\n";
        let c = Config::from_toml(&path, text, &no_env).unwrap();
        // auto falls back to the rules file's language; absent is the rules file's.
        assert_eq!(c.operators[0].language, ReplyLanguage::Auto(Language::Ru));
        assert_eq!(c.operators[1].language, ReplyLanguage::Fixed(Language::Ru));
        assert_eq!(c.connectors[0].language, ReplyLanguage::Auto(Language::Ru));
        let bad = text.replace("\"AUTO\"", "\"fr\"");
        let errs = Config::from_toml(&path, &bad, &no_env).unwrap_err().0;
        assert!(
            errs.iter().any(|e| e.key == "operators[0].language"),
            "{errs:?}"
        );

        let auto = include_str!("../../config/rules.toml")
            .replace("language = \"az\"", "language = \"auto\"");
        let rules = Rules::from_toml(&auto).unwrap();
        assert_eq!(rules.language, ReplyLanguage::Auto(Language::Az));
        assert_eq!(rules.language.for_text("2 АЗЕ 11111111"), Language::Ru);
        assert_eq!(rules.language.for_text("2 AZE 11111111"), Language::Az);
    }

    #[test]
    fn every_error_names_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("icaze.toml");
        std::fs::write(dir.path().join("rules.toml"), "[codes.1]\nname = \"x\"\nvalidity = \"soon\"\ndaily_limit = 1\n[[documents]]\nseries = \"AA\"\ndigits = [7]\n").unwrap();
        let text = "[permit]\nkey = \"short\"\n[smpp]\nlisten = \"nowhere\"\nenquire_link = \"often\"\n\
                    [[operators]]\nsystem_id = \"op\"\npassword_env = \"OP_PW\"\nwindow = 0\n";
        let errs = Config::from_toml(&path, text, &no_env).unwrap_err().0;
        let found: Vec<(String, String)> = errs
            .iter()
            .map(|e| {
                (
                    e.file.file_name().unwrap().to_string_lossy().into_owned(),
                    e.key.clone(),
                )
            })
            .collect();
        let want = [
            ("rules.toml", "codes.1.validity"),
            ("icaze.toml", "permit.key"),
            ("icaze.toml", "smpp.listen"),
            ("icaze.toml", "smpp.enquire_link"),
            ("icaze.toml", "operators[0].password_env"),
            ("icaze.toml", "operators[0].window"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(found, want, "{errs:?}");
        // The environment fills what the file leaves to it.
        let env = |k: &str| match k {
            "OP_PW" => Some("secret".to_string()),
            PERMIT_KEY_ENV => Some("a long enough permit secret".to_string()),
            _ => None,
        };
        std::fs::write(dir.path().join("rules.toml"), "[codes.1]\nname = \"x\"\nvalidity = \"3h\"\ndaily_limit = 1\n[[documents]]\nseries = \"AA\"\ndigits = [7]\n").unwrap();
        let ok = Config::from_toml(
            &path,
            "[[operators]]\nsystem_id = \"op\"\npassword_env = \"OP_PW\"\n",
            &env,
        )
        .unwrap();
        assert!(ok.operators[0].password.matches(b"secret"));
        assert!(!ok.demo_key);
    }

    #[test]
    fn settings_that_would_let_anyone_in_or_nobody_in_are_errors_by_key() {
        let (_dir, path) = beside_shipped_rules();
        let env = |k: &str| match k {
            "EMPTY_PW" => Some(String::new()),
            _ => key_only(k),
        };
        let keys = |text: &str| -> Vec<String> {
            Config::from_toml(&path, text, &env)
                .unwrap_err()
                .0
                .into_iter()
                .map(|e| e.key)
                .collect()
        };
        let op = |extra: &str| format!("[[operators]]\nsystem_id = \"op\"\n{extra}\n");
        assert_eq!(keys(&op("password = \"\"")), ["operators[0].password"]);
        assert_eq!(
            keys(&op("password_env = \"EMPTY_PW\"")),
            ["operators[0].password_env"]
        );
        let empty_env = Config::from_toml(&path, &op("password_env = \"EMPTY_PW\""), &env)
            .unwrap_err()
            .to_string();
        assert!(empty_env.contains("EMPTY_PW is empty"), "{empty_env}");
        assert_eq!(
            keys(&op("password = \"pw\"\nqueue = 0")),
            ["operators[0].queue"]
        );
        assert_eq!(
            keys(&format!(
                "[smpp]\nmax_connections = 0\n{}",
                op("password = \"pw\"")
            )),
            ["smpp.max_connections"]
        );
        for key in ["max_unbound_per_address", "bind_failures"] {
            assert_eq!(
                keys(&format!("[smpp]\n{key} = 0\n{}", op("password = \"pw\""))),
                [format!("smpp.{key}")]
            );
        }
        // Room kept for operators on known addresses must leave room for everyone else.
        let known = op("password = \"pw\"\nmax_binds = 8\nallowed_ips = [\"10.0.0.1\"]");
        assert_eq!(
            keys(&format!("[smpp]\nmax_connections = 8\n{known}")),
            ["smpp.max_connections"]
        );
        let ok = Config::from_toml(
            &path,
            &format!("[smpp]\nmax_connections = 9\n{known}"),
            &env,
        )
        .unwrap();
        assert_eq!(ok.smpp.reserved, 8);
        // A key given twice is named, with its table.
        assert_eq!(
            keys("[smpp]\nbind_timeout = \"5s\"\nbind_timeout = \"6s\"\n"),
            ["smpp.bind_timeout"]
        );
    }

    #[test]
    fn journal_round_every() {
        let (_dir, path) = beside_shipped_rules();
        let env = key_only;
        let every =
            |text: &str| Config::from_toml(&path, text, &env).map(|c| c.journal_round_every);
        assert_eq!(every("").unwrap(), Duration::from_millis(2));
        assert_eq!(
            every("[journal]\nround_every = \"5ms\"\n").unwrap(),
            Duration::from_millis(5)
        );
        assert_eq!(
            every("[journal]\nround_every = \"0ms\"\n").unwrap(),
            Duration::ZERO
        );
        for bad in ["\"soon\"", "\"1s\"", "\"-1ms\""] {
            let errors = every(&format!("[journal]\nround_every = {bad}\n")).unwrap_err();
            assert!(
                errors.0.iter().any(|e| e.key == "journal.round_every"),
                "{bad}: {errors}"
            );
        }
    }

    #[test]
    fn engine_reserve() {
        let (_dir, path) = beside_shipped_rules();
        let env = key_only;
        let c = Config::from_toml(&path, "[engine]\nreserve = 200000\n", &env).unwrap();
        assert_eq!(c.engine_reserve, 200_000);
        assert_eq!(
            Config::from_toml(&path, "", &env).unwrap().engine_reserve,
            0
        );
        let bad = Config::from_toml(&path, "[engine]\nreserve = 2000000000\n", &env)
            .unwrap_err()
            .0;
        assert_eq!(bad[0].key, "engine.reserve");
        let unknown = Config::from_toml(&path, "[engine]\nreserved = 1\n", &env).unwrap_err();
        assert!(unknown.to_string().contains("reserved"), "{unknown}");
    }
}
