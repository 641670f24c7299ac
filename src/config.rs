//! Typed config: the gateway file (`config/icaze.toml`) and the rules file it points to.
//!
//! Loading collects every problem, each naming its file and dotted key, so an official
//! fixing a file sees all mistakes at once; `icaze` exits with code 64 (EX_USAGE's
//! neighbour EX_DATAERR is 65; DESIGN.md fixes 64) when there are any.

use crate::permit::id::PermitKey;
use crate::permit::reply::Language;
use crate::permit::rules::{RuleError, Rules, deserialize_toml, parse_duration};
use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The process exit code for bad config.
pub const EXIT_BAD_CONFIG: i32 = 64;

/// Environment variable that overrides `[permit] key`.
pub const PERMIT_KEY_ENV: &str = "ICAZE_PERMIT_KEY";

/// One problem in a config or rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file it is in.
    pub file: PathBuf,
    /// Dotted key, e.g. `smpp.listen`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
    }
}

/// Every problem found while loading, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// How an operator's password is checked.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    /// The password itself (from the file or the environment).
    Plain(String),
    /// The SHA-256 of the password, hex, so the file holds no secret.
    Sha256([u8; 32]),
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Password::Plain(_) => f.write_str("Password::Plain(..)"),
            Password::Sha256(_) => f.write_str("Password::Sha256(..)"),
        }
    }
}

impl Password {
    /// Compares in constant time, so the time taken does not tell how much was right.
    pub fn matches(&self, given: &[u8]) -> bool {
        match self {
            Password::Plain(p) => constant_time_eq(p.as_bytes(), given),
            Password::Sha256(h) => {
                let digest = sha256(given);
                constant_time_eq(h, &digest)
            }
        }
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Length differences leak only the length, which SMPP's 9-octet limit makes moot.
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An operator (or aggregator) allowed to bind.
#[derive(Debug, Clone)]
pub struct Operator {
    /// SMPP system_id.
    pub system_id: String,
    /// How its password is checked.
    pub password: Password,
    /// Most simultaneous binds.
    pub max_binds: u32,
    /// Peer IP addresses allowed to bind as this operator; empty = any.
    pub allowed_ips: Vec<IpAddr>,
    /// Inbound MO per second across its binds, answered with ESME_RTHROTTLED above.
    pub tps: u32,
    /// Unanswered MT (deliver_sm) per bind.
    pub window: u32,
    /// Replies held for the operator while it has no receiver bind.
    pub queue: usize,
    /// Language of replies to its subscribers.
    pub language: Language,
}

/// How a connector binds to an operator's SMSC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorBind {
    /// Each bind a transceiver: MOs in and replies out on the same session.
    Transceiver,
    /// Each bind a transmitter (replies out) plus a receiver (MOs in).
    Pair,
}

/// An operator's SMSC that icaze binds to as an ESME (connector mode): MOs arrive as
/// deliver_sm, replies leave as submit_sm.
#[derive(Debug, Clone)]
pub struct Connector {
    /// Its name in logs (1 to 15 characters, unique among connectors).
    pub name: String,
    /// The SMSC's `host:port`.
    pub address: String,
    /// The system_id we bind with.
    pub system_id: String,
    /// The password we bind with (from the file or the environment).
    pub password: String,
    /// The system_type we bind with (often empty).
    pub system_type: String,
    /// Transceivers, or transmitter + receiver pairs.
    pub bind: ConnectorBind,
    /// How many binds (pairs count one).
    pub binds: u32,
    /// interface_version of our binds: 0x34 (SMPP 3.4) or 0x50 (SMPP 5.0).
    pub interface_version: u8,
    /// First wait before reconnecting after a lost or refused bind; doubles up to 30 s.
    pub reconnect: Duration,
    /// Inbound MO per second across its binds; above it, deliver_sm is answered with
    /// ESME_RTHROTTLED.
    pub tps: u32,
    /// Unanswered submit_sm per bind.
    pub window: u32,
    /// Replies held while no transmitting bind is up.
    pub queue: usize,
    /// Language of replies to its subscribers.
    pub language: Language,
}

impl Connector {
    /// The operator-shaped settings its MOs and replies are handled with (rate limit,
    /// window, queue, language). The password is one no bind can match: a connector's
    /// state is never reachable by binding to our listener.
    pub fn as_operator(&self) -> Operator {
        Operator {
            system_id: self.name.clone(),
            password: Password::Sha256([0; 32]),
            max_binds: self.binds.saturating_mul(2),
            allowed_ips: Vec::new(),
            tps: self.tps,
            window: self.window,
            queue: self.queue,
            language: self.language,
        }
    }
}

/// The SMPP listener's settings.
#[derive(Debug, Clone)]
pub struct Smpp {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Destination addresses citizens text (8103).
    pub short_numbers: Vec<String>,
    /// Largest PDU accepted; a longer command_length closes the connection.
    pub max_pdu_bytes: u32,
    /// Most simultaneous connections.
    pub max_connections: u32,
    /// How often to send enquire_link on a quiet bind.
    pub enquire_link: Duration,
    /// A bind silent for this long is closed.
    pub inactivity_timeout: Duration,
    /// How long to wait for a response to our request (deliver_sm, enquire_link).
    pub response_timeout: Duration,
    /// How long to hold parts of a concatenated MO.
    pub concat_timeout: Duration,
    /// A peer that accepts none of our bytes for this long is dropped (it stopped reading;
    /// its replies go back to its operator's queue).
    pub write_timeout: Duration,
    /// How long shutdown waits for in-flight work.
    pub shutdown_grace: Duration,
}

/// Where grants become durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded journal in `data_dir` (the default).
    Journal,
    /// Redis: one server, or the seed nodes of a Redis Cluster.
    Redis(RedisConfig),
}

/// The Redis store's settings (`store = "redis://…"` or a list of cluster nodes, and the
/// `[redis]` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://` URLs: one server, or cluster seed nodes.
    pub nodes: Vec<String>,
    /// Whether `nodes` are a Redis Cluster (a list in config means yes).
    pub cluster: bool,
    /// Most grants in one pipeline.
    pub batch_max: usize,
    /// Longest a grant waits for its pipeline to fill.
    pub flush_after: Duration,
    /// How long an MO waits for an unreachable Redis before the citizen is told to try
    /// again in a few minutes.
    pub retry_for: Duration,
    /// `WAITAOF local replicas timeout` after each pipeline (Redis/Valkey 7.2+): grants are
    /// fsynced (and replicated) before the MO is acknowledged.
    pub waitaof: Option<(u32, u32, Duration)>,
}

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
}

/// The demo secret in `config/icaze.toml`; `check-config` warns about it.
pub const DEMO_KEY: &str = "demo-only-change-me";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    rules: Option<String>,
    data_dir: Option<String>,
    store: Option<RawStore>,
    #[serde(default)]
    redis: RawRedis,
    #[serde(default)]
    permit: RawPermit,
    #[serde(default)]
    smpp: RawSmpp,
    #[serde(default)]
    operators: Vec<RawOperator>,
    #[serde(default)]
    connectors: Vec<RawConnector>,
    #[serde(default)]
    engine: RawEngine,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    reserve: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnector {
    name: String,
    address: String,
    system_id: String,
    password: Option<String>,
    password_env: Option<String>,
    #[serde(default)]
    system_type: String,
    bind: Option<String>,
    binds: Option<u32>,
    interface_version: Option<String>,
    reconnect: Option<String>,
    tps: Option<u32>,
    window: Option<u32>,
    queue: Option<usize>,
    language: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawStore {
    One(String),
    Cluster(Vec<String>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRedis {
    batch_max: Option<usize>,
    flush_after: Option<String>,
    retry_for: Option<String>,
    waitaof: Option<RawWaitAof>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaitAof {
    local: u32,
    #[serde(default)]
    replicas: u32,
    timeout: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPermit {
    key: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSmpp {
    listen: Option<String>,
    short_numbers: Option<Vec<String>>,
    max_pdu_bytes: Option<u32>,
    max_connections: Option<u32>,
    enquire_link: Option<String>,
    inactivity_timeout: Option<String>,
    response_timeout: Option<String>,
    concat_timeout: Option<String>,
    write_timeout: Option<String>,
    shutdown_grace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperator {
    system_id: String,
    password: Option<String>,
    password_env: Option<String>,
    password_sha256: Option<String>,
    max_binds: Option<u32>,
    #[serde(default)]
    allowed_ips: Vec<String>,
    tps: Option<u32>,
    window: Option<u32>,
    queue: Option<usize>,
    language: Option<String>,
}

struct Errors<'a> {
    file: &'a Path,
    list: Vec<ConfigError>,
}

impl Errors<'_> {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.list.push(ConfigError {
            file: self.file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        });
    }

    /// An SMPP system_id: 1 to 15 characters.
    fn system_id(&mut self, key: &str, id: &str) {
        if id.is_empty() || id.len() > 15 {
            self.push(key, "must be 1 to 15 characters (SMPP system_id)");
        }
    }

    /// A password taken from the environment variable `var`.
    fn env_password(
        &mut self,
        key: &str,
        var: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> String {
        env(var).unwrap_or_else(|| {
            self.push(key, format!("the environment variable {var} is not set"));
            String::new()
        })
    }

    /// A plain SMPP password: at most 8 characters.
    fn password_length(&mut self, key: &str, password: &str) {
        if password.len() > 8 {
            self.push(key, "SMPP passwords are at most 8 characters");
        }
    }

    /// A reply language tag, `default` when absent.
    fn language(&mut self, key: &str, value: Option<&str>, default: Language) -> Language {
        match value {
            None => default,
            Some(l) => Language::parse(l).unwrap_or_else(|| {
                self.push(key, "use az, en or ru");
                default
            }),
        }
    }

    /// A count that must be at least 1, `default` when absent (or wrong).
    fn at_least_one(&mut self, key: &str, value: Option<u32>, default: u32) -> u32 {
        match value {
            Some(0) => {
                self.push(key, "must be at least 1");
                default
            }
            Some(n) => n,
            None => default,
        }
    }

    fn duration(&mut self, key: &str, value: Option<&str>, default: Duration) -> Duration {
        let Some(v) = value else {
            return default;
        };
        let parsed = match v.trim().strip_suffix("ms") {
            Some(ms) => ms
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Duration::from_millis),
            None => parse_duration(v).map(|secs| Duration::from_secs(u64::from(secs))),
        };
        parsed.unwrap_or_else(|| {
            self.push(
                key,
                format!("{v:?} is not a duration like \"500ms\", \"30s\" or \"2m\""),
            );
            default
        })
    }
}

fn rule_errors(file: &Path, errors: Vec<RuleError>) -> Vec<ConfigError> {
    errors
        .into_iter()
        .map(|e| ConfigError {
            file: file.to_path_buf(),
            key: e.key,
            message: e.message,
        })
        .collect()
}

/// Loads and validates a rules file on its own (for reloads).
pub fn load_rules(path: &Path) -> Result<Rules, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            key: "(file)".into(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    Rules::from_toml(&text).map_err(|e| ConfigErrors(rule_errors(path, e)))
}

impl Config {
    /// Loads the config file and the rules file it names; `env` is how the environment is
    /// read (tests pass their own).
    pub fn load_with_env(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                key: "(file)".into(),
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::from_toml(path, &text, env)
    }

    /// Loads with the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Self::load_with_env(path, &|k| std::env::var(k).ok())
    }

    /// Parses config text as if it were the file at `path` (relative paths resolve from
    /// its folder).
    pub fn from_toml(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let mut errs = Errors {
            file: path,
            list: Vec::new(),
        };
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

        let (key_text, demo_key) = match (env(PERMIT_KEY_ENV), raw.permit.key) {
            (Some(k), _) if !k.is_empty() => (k, false),
            (_, Some(k)) if !k.is_empty() => {
                let demo = k == DEMO_KEY;
                (k, demo)
            }
            _ => {
                errs.push(
                    "permit.key",
                    format!(
                        "missing: set [permit] key or the {PERMIT_KEY_ENV} environment variable"
                    ),
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

        let s = raw.smpp;
        let listen_text = s.listen.as_deref().unwrap_or("127.0.0.1:2775");
        let listen = listen_text.parse().unwrap_or_else(|_| {
            errs.push(
                "smpp.listen",
                format!("{listen_text:?} is not an address like \"127.0.0.1:2775\""),
            );
            SocketAddr::from(([127, 0, 0, 1], 2775))
        });
        let short_numbers = s.short_numbers.unwrap_or_else(|| vec!["8103".into()]);
        if short_numbers.is_empty()
            || short_numbers.iter().any(|n| {
                n.is_empty()
                    || n.len() > 20
                    || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '+')
            })
        {
            errs.push(
                "smpp.short_numbers",
                "must list 1 or more addresses of up to 20 digits or letters, e.g. [\"8103\"]",
            );
        }
        let max_pdu_bytes = s.max_pdu_bytes.unwrap_or(65_536);
        if !(1_024..=16 * 1024 * 1024).contains(&max_pdu_bytes) {
            errs.push("smpp.max_pdu_bytes", "must be from 1024 to 16777216");
        }
        let smpp = Smpp {
            listen,
            short_numbers,
            max_pdu_bytes,
            max_connections: s.max_connections.unwrap_or(1_000),
            enquire_link: errs.duration(
                "smpp.enquire_link",
                s.enquire_link.as_deref(),
                Duration::from_secs(30),
            ),
            inactivity_timeout: errs.duration(
                "smpp.inactivity_timeout",
                s.inactivity_timeout.as_deref(),
                Duration::from_secs(120),
            ),
            response_timeout: errs.duration(
                "smpp.response_timeout",
                s.response_timeout.as_deref(),
                Duration::from_secs(10),
            ),
            concat_timeout: errs.duration(
                "smpp.concat_timeout",
                s.concat_timeout.as_deref(),
                Duration::from_secs(60),
            ),
            write_timeout: errs.duration(
                "smpp.write_timeout",
                s.write_timeout.as_deref(),
                Duration::from_secs(30),
            ),
            shutdown_grace: errs.duration(
                "smpp.shutdown_grace",
                s.shutdown_grace.as_deref(),
                Duration::from_secs(10),
            ),
        };

        let redis = raw.redis;
        let redis_config = |errs: &mut Errors, nodes: Vec<String>, cluster: bool| {
            for (i, n) in nodes.iter().enumerate() {
                if !(n.starts_with("redis://") || n.starts_with("rediss://")) {
                    let key = if cluster {
                        format!("store[{i}]")
                    } else {
                        "store".to_string()
                    };
                    errs.push(key, format!("{n:?} is not a redis:// URL"));
                }
            }
            let waitaof = redis.waitaof.as_ref().map(|w| {
                (
                    w.local,
                    w.replicas,
                    errs.duration(
                        "redis.waitaof.timeout",
                        w.timeout.as_deref(),
                        Duration::from_secs(1),
                    ),
                )
            });
            StoreConfig::Redis(RedisConfig {
                nodes,
                cluster,
                batch_max: redis.batch_max.unwrap_or(512).max(1),
                flush_after: errs.duration(
                    "redis.flush_after",
                    redis.flush_after.as_deref(),
                    Duration::from_millis(1),
                ),
                retry_for: errs.duration(
                    "redis.retry_for",
                    redis.retry_for.as_deref(),
                    Duration::from_secs(5),
                ),
                waitaof,
            })
        };
        let store = match raw.store {
            None => StoreConfig::Journal,
            Some(RawStore::One(s)) if s == "journal" => StoreConfig::Journal,
            Some(RawStore::One(s)) => redis_config(&mut errs, vec![s], false),
            Some(RawStore::Cluster(nodes)) if nodes.is_empty() => {
                errs.push(
                    "store",
                    "an empty list: give \"journal\", a redis:// URL, or cluster nodes",
                );
                StoreConfig::Journal
            }
            Some(RawStore::Cluster(nodes)) => redis_config(&mut errs, nodes, true),
        };

        let default_language = rules.as_ref().map_or(Language::Az, |r| r.default_language);
        let mut operators: Vec<Operator> = Vec::new();
        for (i, o) in raw.operators.into_iter().enumerate() {
            let key = format!("operators[{i}]");
            errs.system_id(&format!("{key}.system_id"), &o.system_id);
            if operators.iter().any(|p| p.system_id == o.system_id) {
                errs.push(
                    format!("{key}.system_id"),
                    format!("{:?} is defined twice", o.system_id),
                );
            }
            let password = match (o.password, o.password_env, o.password_sha256) {
                (Some(p), None, None) => Password::Plain(p),
                (None, Some(var), None) => {
                    Password::Plain(errs.env_password(&format!("{key}.password_env"), &var, env))
                }
                (None, None, Some(hex)) => match decode_hex32(&hex) {
                    Some(h) => Password::Sha256(h),
                    None => {
                        errs.push(
                            format!("{key}.password_sha256"),
                            "must be 64 hex digits (SHA-256)",
                        );
                        Password::Plain(String::new())
                    }
                },
                _ => {
                    errs.push(
                        format!("{key}.password"),
                        "give exactly one of password, password_env, password_sha256",
                    );
                    Password::Plain(String::new())
                }
            };
            if let Password::Plain(p) = &password {
                errs.password_length(&format!("{key}.password"), p);
            }
            let mut allowed_ips = Vec::new();
            for (j, ip) in o.allowed_ips.iter().enumerate() {
                match ip.parse() {
                    Ok(a) => allowed_ips.push(a),
                    Err(_) => errs.push(
                        format!("{key}.allowed_ips[{j}]"),
                        format!("{ip:?} is not an IP address"),
                    ),
                }
            }
            let language = errs.language(
                &format!("{key}.language"),
                o.language.as_deref(),
                default_language,
            );
            operators.push(Operator {
                max_binds: errs.at_least_one(&format!("{key}.max_binds"), o.max_binds, 8),
                tps: errs.at_least_one(&format!("{key}.tps"), o.tps, 1_000_000),
                window: errs.at_least_one(&format!("{key}.window"), o.window, 256),
                queue: o.queue.unwrap_or(100_000),
                system_id: o.system_id,
                password,
                allowed_ips,
                language,
            });
        }

        let mut connectors: Vec<Connector> = Vec::new();
        for (i, c) in raw.connectors.into_iter().enumerate() {
            let key = format!("connectors[{i}]");
            if let Some(conn) = connector(&mut errs, &key, c, env, &connectors, default_language) {
                connectors.push(conn);
            }
        }

        let engine_reserve = raw.engine.reserve.unwrap_or(0);
        if engine_reserve > 1_000_000_000 {
            errs.push(
                "engine.reserve",
                "at most 1000000000 entries (about 36 GB of memory)",
            );
        }

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
            }),
            _ => Err(ConfigErrors(errs.list)),
        }
    }
}

/// Checks one `[[connectors]]` table; `None` (with errors pushed) when it is unusable.
fn connector(
    errs: &mut Errors,
    key: &str,
    c: RawConnector,
    env: &dyn Fn(&str) -> Option<String>,
    earlier: &[Connector],
    default_language: Language,
) -> Option<Connector> {
    let before = errs.list.len();
    if c.name.is_empty() || c.name.len() > 15 {
        errs.push(format!("{key}.name"), "must be 1 to 15 characters");
    }
    if earlier.iter().any(|e| e.name == c.name) {
        errs.push(
            format!("{key}.name"),
            format!("{:?} is defined twice", c.name),
        );
    }
    let port_ok = c
        .address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok {
        errs.push(
            format!("{key}.address"),
            format!("{:?} is not a host:port like \"10.0.0.5:2775\"", c.address),
        );
    }
    errs.system_id(&format!("{key}.system_id"), &c.system_id);
    if c.system_type.len() > 12 {
        errs.push(format!("{key}.system_type"), "at most 12 characters");
    }
    let password = match (c.password, c.password_env) {
        (Some(p), None) => p,
        (None, Some(var)) => errs.env_password(&format!("{key}.password_env"), &var, env),
        _ => {
            errs.push(
                format!("{key}.password"),
                "give exactly one of password, password_env",
            );
            String::new()
        }
    };
    errs.password_length(&format!("{key}.password"), &password);
    let bind = match c.bind.as_deref() {
        None | Some("transceiver") => ConnectorBind::Transceiver,
        Some("pair") => ConnectorBind::Pair,
        Some(other) => {
            errs.push(
                format!("{key}.bind"),
                format!(
                    "{other:?}: use \"transceiver\" or \"pair\" (a transmitter and a receiver)"
                ),
            );
            ConnectorBind::Transceiver
        }
    };
    let interface_version = match c.interface_version.as_deref() {
        None | Some("3.4") => 0x34,
        Some("5.0") => 0x50,
        Some(other) => {
            errs.push(
                format!("{key}.interface_version"),
                format!("{other:?}: use \"3.4\" or \"5.0\""),
            );
            0x34
        }
    };
    let reconnect = errs.duration(
        &format!("{key}.reconnect"),
        c.reconnect.as_deref(),
        Duration::from_secs(1),
    );
    let language = errs.language(
        &format!("{key}.language"),
        c.language.as_deref(),
        default_language,
    );
    let binds = errs.at_least_one(&format!("{key}.binds"), c.binds, 1);
    let tps = errs.at_least_one(&format!("{key}.tps"), c.tps, 1_000_000);
    let window = errs.at_least_one(&format!("{key}.window"), c.window, 256);
    (errs.list.len() == before).then(|| Connector {
        name: c.name,
        address: c.address,
        system_id: c.system_id,
        password,
        system_type: c.system_type,
        bind,
        binds,
        interface_version,
        reconnect,
        tps,
        window,
        queue: c.queue.unwrap_or(100_000),
        language,
    })
}

fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// An environment holding only a valid permit key.
    fn key_only(k: &str) -> Option<String> {
        (k == PERMIT_KEY_ENV).then(|| "a long enough permit secret".to_string())
    }

    /// A temp folder with the shipped rules, and the path of a config file in it.
    fn beside_shipped_rules() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rules.toml"),
            include_str!("../config/rules.toml"),
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
    fn store_settings() {
        let (_dir, path) = beside_shipped_rules();
        let env = key_only;
        let one = Config::from_toml(&path, "store = \"redis://127.0.0.1:7000\"\n[redis]\nflush_after = \"2ms\"\nwaitaof = { local = 1, timeout = \"500ms\" }\n", &env).unwrap();
        let StoreConfig::Redis(r) = one.store else {
            panic!("redis")
        };
        assert_eq!(
            (r.cluster, r.flush_after, r.waitaof),
            (
                false,
                Duration::from_millis(2),
                Some((1, 0, Duration::from_millis(500)))
            )
        );
        let cluster =
            Config::from_toml(&path, "store = [\"redis://a:1\", \"redis://b:2\"]\n", &env).unwrap();
        assert!(matches!(
            cluster.store,
            StoreConfig::Redis(RedisConfig { cluster: true, .. })
        ));
        let bad = Config::from_toml(
            &path,
            "store = \"postgres://x\"\n[redis]\nretry_for = \"soon\"\n",
            &env,
        )
        .unwrap_err()
        .0;
        let keys: Vec<&str> = bad.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["store", "redis.retry_for"]);
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
    fn connectors() {
        let (_dir, path) = beside_shipped_rules();
        let env = |k: &str| match k {
            "SMSC_PW" => Some("s3cret".to_string()),
            PERMIT_KEY_ENV => Some("a long enough permit secret".to_string()),
            _ => None,
        };
        let ok = Config::from_toml(
            &path,
            "[[connectors]]\nname = \"azercell\"\naddress = \"smsc.example:2775\"\nsystem_id = \"icaze\"\n\
             password_env = \"SMSC_PW\"\nbind = \"pair\"\nbinds = 2\ninterface_version = \"5.0\"\n\
             reconnect = \"500ms\"\nlanguage = \"ru\"\n",
            &env,
        )
        .unwrap();
        let c = &ok.connectors[0];
        assert_eq!(
            (
                c.name.as_str(),
                c.address.as_str(),
                c.password.as_str(),
                c.bind,
                c.binds,
                c.interface_version,
                c.reconnect,
                c.language,
                c.window
            ),
            (
                "azercell",
                "smsc.example:2775",
                "s3cret",
                ConnectorBind::Pair,
                2,
                0x50,
                Duration::from_millis(500),
                Language::Ru,
                256
            )
        );
        // Its operator-shaped state can never be bound to from outside.
        assert!(!c.as_operator().password.matches(b""));
        assert!(!c.as_operator().password.matches(b"s3cret"));
        let bad = Config::from_toml(
            &path,
            "[[connectors]]\nname = \"a\"\naddress = \"nowhere\"\nsystem_id = \"icaze\"\npassword = \"x\"\n\
             bind = \"both\"\nbinds = 0\n\
             [[connectors]]\nname = \"a\"\naddress = \"h:1\"\nsystem_id = \"icaze\"\npassword = \"too long a password\"\n\
             interface_version = \"4\"\n",
            &env,
        )
        .unwrap_err()
        .0;
        let keys: Vec<&str> = bad.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "connectors[0].address",
                "connectors[0].bind",
                "connectors[0].binds",
                "connectors[1].password",
                "connectors[1].interface_version",
            ]
        );
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

    #[test]
    fn hashed_passwords() {
        let p = Password::Sha256(sha256(b"demo"));
        assert!(p.matches(b"demo") && !p.matches(b"demo2"));
        assert_eq!(decode_hex32(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(decode_hex32("abc"), None);
    }
}
