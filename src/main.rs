//! The `icaze` command: serve, check-config, decide (one message, for people), replay, and
//! the admin API's clients: verify, revoke, block, unblock, stats.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use icaze::config::{Config, EXIT_BAD_CONFIG};
use icaze::gateway::Gateway;
use icaze::permit::answer::{Record, Verdict, decide_text};
use icaze::permit::clock::{Clock, SystemClock};
use icaze::permit::engine::QuotaEngine;
use icaze::permit::id::PhoneTag;
use icaze::permit::reply::ReplyLanguage;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's malloc: the gateway allocates per MO and per reply (texts,
/// reply parts, batch vectors), and at saturation glibc's malloc/free were ~15% of the
/// gateway's CPU (benches/README.md, end to end).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "icaze",
    version,
    about = "SMS permit gateway (a short number like 8103)"
)]
struct Cli {
    /// The gateway config file; its `rules` key names the rules file.
    #[arg(
        long,
        short,
        global = true,
        env = "ICAZE_CONFIG",
        default_value = "config/icaze.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: SMPP listener, journal, rules reload on SIGHUP.
    Serve {
        /// Keep nothing on disk (load tests of the gateway alone): a restart forgets every
        /// permit.
        #[arg(long)]
        volatile: bool,
        /// Listen here instead of the config's smpp.listen (e.g. 127.0.0.1:0 in tests).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Serve the admin API here instead of the config's admin.listen.
        #[arg(long)]
        admin_listen: Option<std::net::SocketAddr>,
    },
    /// Validate the config and rules files; report every error with file and key.
    CheckConfig,
    /// Decide texts as if they arrived in this order, and print each decision and reply.
    Decide {
        /// When they arrive (RFC 3339, e.g. 2020-04-06T10:00:00+04:00); default now.
        #[arg(long)]
        at: Option<String>,
        /// Reply language: az, en, ru or auto (default: the rules file's).
        #[arg(long)]
        lang: Option<String>,
        /// Print JSON (as replay does) instead of text.
        #[arg(long)]
        json: bool,
        /// The phone every text comes from (e.g. 994501234567): status requests list its
        /// permits, and `max_documents_per_phone` counts its documents. None by default.
        #[arg(long)]
        phone: Option<String>,
        /// The citizens' texts, e.g. "2 AZE 11111111".
        #[arg(required = true)]
        texts: Vec<String>,
    },
    /// Read `TIME<TAB>MSISDN<TAB>TEXT` lines (stdin if no file) through one engine and
    /// print one JSON object per line.
    Replay {
        /// The file; stdin when absent.
        file: Option<PathBuf>,
        /// Reply language: az, en, ru or auto (default: the rules file's).
        #[arg(long)]
        lang: Option<String>,
    },
    /// Ask the admin API whether a permit id is real and valid now (exit 0 valid, 2 unknown,
    /// 3 expired or not yet valid, 4 revoked, 5 another document's, 77 token refused, 69 no
    /// answer).
    Verify {
        /// The id as printed, e.g. K7QM-4RTX.
        permit_id: String,
        /// Also check that it is this document's (any spelling an SMS may use).
        #[arg(long)]
        document: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Revoke a permit through the admin API (official token).
    Revoke {
        /// The id as printed.
        permit_id: String,
        /// Why (required; kept with the revocation).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Block a document through the admin API (official token), on top of the rules file.
    Block {
        /// The document, e.g. "AZE 11111111".
        document: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
        /// Only these codes (comma-separated); all when absent.
        #[arg(long, value_delimiter = ',')]
        codes: Vec<u8>,
        /// Until when (RFC 3339); for good when absent.
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print a Baku day's figures from the admin API (official token).
    Stats {
        /// The day, YYYY-MM-DD; today when absent.
        #[arg(long)]
        date: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Lift a block set through the admin API (official token).
    Unblock {
        /// The document.
        document: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Where the admin API is and who calls it.
#[derive(Args)]
struct ApiArgs {
    /// The admin API (`http://host:port`, `https://host:port` or `host:port`); default: the
    /// config's admin.listen, over HTTPS when [admin.tls] is set.
    #[arg(long)]
    admin: Option<String>,
    /// The certificates (PEM) an HTTPS admin API must be signed by; default with the
    /// config: its [admin.tls] cert (the served chain), else the compiled-in Mozilla roots.
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// The bearer token; default: ICAZE_OFFICIAL_TOKEN, or for verify
    /// ICAZE_CHECKPOINT_TOKEN first.
    #[arg(long)]
    token: Option<String>,
    /// Print the API's JSON answer instead of a line.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(code) = admin_command(&cli) {
        return code;
    }
    let config = match Config::load(&cli.config) {
        Ok(c) => {
            icaze::telemetry::init(c.log_format);
            c
        }
        Err(errors) => {
            eprintln!("icaze: the config has {} error(s):", errors.0.len());
            eprintln!("{errors}");
            return ExitCode::from(EXIT_BAD_CONFIG as u8);
        }
    };
    let result = match cli.command {
        Command::CheckConfig => check_config(&config),
        Command::Serve {
            volatile,
            listen,
            admin_listen,
        } => {
            let mut config = config;
            if let Some(listen) = listen {
                config.smpp.listen = listen;
            }
            if let Some(listen) = admin_listen {
                config.admin.listen = listen;
            }
            serve(config, volatile)
        }
        Command::Decide {
            at,
            lang,
            json,
            phone,
            texts,
        } => decide(&config, at, lang, json, phone.as_deref(), &texts),
        Command::Replay { file, lang } => replay(&config, file, lang),
        // Run by `admin_command` above, before any config is needed.
        Command::Verify { .. }
        | Command::Revoke { .. }
        | Command::Block { .. }
        | Command::Stats { .. }
        | Command::Unblock { .. } => Ok(ExitCode::FAILURE),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("icaze: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an admin API client command (verify, revoke, block, unblock); `None` for any other
/// command. The config is read only when `--admin` is not given.
fn admin_command(cli: &Cli) -> Option<ExitCode> {
    use icaze::admin::cli;
    let api = match &cli.command {
        Command::Verify { api, .. }
        | Command::Revoke { api, .. }
        | Command::Block { api, .. }
        | Command::Stats { api, .. }
        | Command::Unblock { api, .. } => api,
        _ => return None,
    };
    icaze::telemetry::init(icaze::telemetry::LogFormat::Text);
    let (base, served_chain) = match &api.admin {
        Some(base) => (base.clone(), None),
        None => match Config::load(&cli.config) {
            Ok(config) => match &config.admin.tls {
                Some(tls) => (
                    format!("https://{}", config.admin.listen),
                    Some(tls.files.cert.clone()),
                ),
                None => (config.admin.listen.to_string(), None),
            },
            Err(errors) => {
                eprintln!(
                    "icaze: the config has {} error(s) (or give --admin):",
                    errors.0.len()
                );
                eprintln!("{errors}");
                return Some(ExitCode::from(EXIT_BAD_CONFIG as u8));
            }
        },
    };
    let env = |var: &str| std::env::var(var).ok().filter(|t| !t.is_empty());
    let official = || env(icaze::config::OFFICIAL_TOKEN_ENV);
    let token = api.token.clone().or_else(|| match &cli.command {
        Command::Verify { .. } => env(icaze::config::CHECKPOINT_TOKEN_ENV).or_else(official),
        _ => official(),
    });
    let client = icaze::admin::client::AdminClient::new(&base, token)
        .trusting(api.ca.clone().or(served_chain));
    let json = api.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("icaze: starting the tokio runtime: {e}");
            return Some(ExitCode::FAILURE);
        }
    };
    let mut out = std::io::stdout().lock();
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Verify {
                permit_id,
                document,
                ..
            } => cli::verify(&client, permit_id, document.as_deref(), json, &mut out).await,
            Command::Revoke {
                permit_id, reason, ..
            } => cli::revoke(&client, permit_id, reason, json, &mut out).await,
            Command::Block {
                document,
                reason,
                codes,
                until,
                ..
            } => {
                let change = Some((reason.as_str(), codes.as_slice(), until.as_deref()));
                cli::block(&client, document, change, json, &mut out).await
            }
            Command::Unblock { document, .. } => {
                cli::block(&client, document, None, json, &mut out).await
            }
            Command::Stats { date, .. } => {
                cli::stats(&client, date.as_deref(), json, &mut out).await
            }
            _ => Ok(cli::EXIT_OK),
        }
    });
    Some(match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("icaze: {e}");
            ExitCode::from(cli::EXIT_UNAVAILABLE)
        }
    })
}

fn language(config: &Config, lang: Option<String>) -> anyhow::Result<ReplyLanguage> {
    match lang {
        None => Ok(config.rules.language),
        Some(l) => ReplyLanguage::parse(&l, config.rules.default_language)
            .with_context(|| format!("--lang {l:?}: use az, en, ru or auto")),
    }
}

fn check_config(config: &Config) -> anyhow::Result<ExitCode> {
    let rules = &config.rules;
    println!("{}: ok", config.path.display());
    println!("{}: ok", config.rules_path.display());
    println!(
        "  time zone {}, replies in {}",
        rules.calendar.tz(),
        rules.language.tag()
    );
    for c in rules.codes() {
        let limit = match c.limit {
            icaze::permit::rules::DailyLimit::PerDay(n) => format!("{n} a day"),
            icaze::permit::rules::DailyLimit::Unlimited => "unlimited".into(),
        };
        println!(
            "  code {} {:<10} {} valid {}m, {}{}{}",
            c.code,
            c.name,
            if c.enabled { "on " } else { "OFF" },
            c.validity_secs / 60,
            limit,
            if c.shared {
                format!(" (group {})", c.group)
            } else {
                String::new()
            },
            c.hours
                .map(|h| format!(", hours {}", h.window()))
                .unwrap_or_default()
        );
    }
    let series: Vec<&str> = rules.documents.iter().map(|k| k.series.as_str()).collect();
    println!("  documents {}", series.join(", "));
    println!(
        "  SMPP on {}, short numbers {}, {} operator(s)",
        config.smpp.listen,
        config.smpp.short_numbers.join(", "),
        config.operators.len()
    );
    for c in &config.connectors {
        let kind = match c.bind {
            icaze::config::ConnectorBind::Transceiver => "transceiver",
            icaze::config::ConnectorBind::Pair => "transmitter + receiver pair",
        };
        println!(
            "  connector {}: binds to {} as {} ({} x {kind})",
            c.name, c.address, c.system_id, c.binds
        );
    }
    if config.demo_key {
        println!(
            "warning: [permit] key is the demo key; set {} in production",
            icaze::config::PERMIT_KEY_ENV
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_time(s: &str) -> anyhow::Result<i64> {
    Ok(chrono::DateTime::parse_from_rfc3339(s.trim())
        .with_context(|| format!("{s:?} is not an RFC 3339 time like 2020-04-06T10:00:00+04:00"))?
        .timestamp())
}

fn decide(
    config: &Config,
    at: Option<String>,
    lang: Option<String>,
    json: bool,
    phone: Option<&str>,
    texts: &[String],
) -> anyhow::Result<ExitCode> {
    let lang = language(config, lang)?;
    let now = match at {
        Some(at) => parse_time(&at)?,
        None => chrono::Utc::now().timestamp(),
    };
    let engine = QuotaEngine::with_permits(0, config.permit_key.clone());
    let phone = phone.map_or(PhoneTag::NONE, |p| config.permit_key.phone_tag(p));
    let rules = &config.rules;
    let mut out = std::io::stdout().lock();
    for text in texts {
        let verdict = decide_text(&engine, rules, text, phone, now);
        let record = Record::new(rules, &config.permit_key, lang.for_text(text), &verdict);
        if json {
            writeln!(out, "{}", serde_json::to_string(&record)?)?;
            continue;
        }
        writeln!(out, "text:     {text}")?;
        match &verdict {
            Verdict::Decided(_) => {
                let what = serde_json::to_value(record.outcome)?;
                writeln!(
                    out,
                    "decision: {} code {} for {}{}",
                    what.as_str().unwrap_or_default(),
                    record.code.map(|c| c.to_string()).unwrap_or_default(),
                    record.document.as_deref().unwrap_or_default(),
                    record.reason.map(|r| format!(" ({r})")).unwrap_or_default()
                )?;
                if let (Some(from), Some(until), Some(id)) =
                    (&record.valid_from, &record.valid_until, &record.permit_id)
                {
                    writeln!(out, "permit:   {id}, {from} to {until}")?;
                }
            }
            Verdict::Invalid(e) => writeln!(
                out,
                "decision: invalid ({}): {e}",
                record.reason.unwrap_or_default()
            )?,
            Verdict::Help => writeln!(out, "decision: help")?,
            Verdict::Status(documents) => writeln!(
                out,
                "decision: status, {} permit(s) from this phone",
                documents.iter().map(|(_, p)| p.len()).sum::<usize>()
            )?,
        }
        writeln!(out, "reply:    {}", record.reply)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn replay(
    config: &Config,
    file: Option<PathBuf>,
    lang: Option<String>,
) -> anyhow::Result<ExitCode> {
    let lang = language(config, lang)?;
    let input: Box<dyn BufRead> = match &file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let name = file
        .as_ref()
        .map_or("stdin".to_string(), |p| p.display().to_string());
    let engine = QuotaEngine::with_permits(0, config.permit_key.clone());
    let rules = &config.rules;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut bad = 0usize;
    let mut last_day = None;
    for (n, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("{name}: line {}", n + 1))?;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.splitn(3, '\t');
        let (Some(time), Some(msisdn), Some(text)) = (fields.next(), fields.next(), fields.next())
        else {
            eprintln!("{name}: line {}: expected TIME<TAB>MSISDN<TAB>TEXT", n + 1);
            bad += 1;
            continue;
        };
        let now = match parse_time(time) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{name}: line {}: {e}", n + 1);
                bad += 1;
                continue;
            }
        };
        // Drop dead state once a day so a long replay runs in bounded memory.
        let day = rules.calendar.moment(now).day;
        if last_day.is_some_and(|d| d != day) {
            engine.sweep(rules, now);
        }
        last_day = Some(day);
        let phone = config.permit_key.phone_tag(msisdn);
        let verdict = decide_text(&engine, rules, text, phone, now);
        serde_json::to_writer(
            &mut out,
            &Record::new(rules, &config.permit_key, lang.for_text(text), &verdict),
        )?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(if bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn serve(config: Config, volatile: bool) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let listen = config.smpp.listen;
        if config.demo_key {
            tracing::warn!(
                "[permit] key is the demo key: anyone with this repository can mint permit ids; set {}",
                icaze::config::PERMIT_KEY_ENV
            );
        }
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        // Signals count from here: Ctrl-C also ends the wait for an unreachable Redis.
        let shutdown = CancellationToken::new();
        icaze::gateway::shutdown::on_signal(shutdown.clone());
        let gateway = match Gateway::connect(config, clock, volatile, &shutdown).await {
            Ok(gateway) => Arc::new(gateway),
            Err(e) if shutdown.is_cancelled() => {
                tracing::info!("{e}");
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => return Err(anyhow::Error::new(e).context("opening the store")),
        };
        if let icaze::store::Store::Redis(redis) = &gateway.store {
            tracing::info!(store = ?redis, "store: redis (grants decided in Redis, shared by every node)");
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let tls_listener = match &gateway.config.smpp.tls {
            None => None,
            Some(tls) => Some(
                tokio::net::TcpListener::bind(tls.listen)
                    .await
                    .with_context(|| format!("cannot listen on {} (smpp.tls.listen)", tls.listen))?,
            ),
        };
        let admin = tokio_util::task::TaskTracker::new();
        if gateway.config.admin.enabled {
            let at = gateway.config.admin.listen;
            let admin_listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot serve the admin API on {at}"))?;
            admin.spawn(icaze::admin::serve(
                gateway.clone(),
                admin_listener,
                shutdown.clone(),
            ));
        } else {
            tracing::info!("admin API off ([admin] enabled = false)");
        }
        // With Redis, revocations made through any node reach this node's engine.
        admin.spawn(icaze::admin::follow::follow_revocations(
            gateway.clone(),
            shutdown.clone(),
        ));
        admin.close();
        gateway
            .smpp_listening
            .store(true, std::sync::atomic::Ordering::Release);
        reload_on_sighup(gateway.clone(), shutdown.clone());
        icaze::gateway::listener::serve_with_tls(gateway.clone(), listener, tls_listener, shutdown)
            .await;
        gateway
            .smpp_listening
            .store(false, std::sync::atomic::Ordering::Release);
        // The admin API stopped taking requests with the same signal; let those under way
        // finish within the grace period.
        let grace = gateway.config.smpp.shutdown_grace;
        if tokio::time::timeout(grace, admin.wait()).await.is_err() {
            tracing::warn!("admin API requests still running at exit");
        }
        if let icaze::store::Store::Journal(_) = &gateway.store {
            tracing::info!("journal closed");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGHUP reloads the rules file and re-reads the TLS certificates; a bad file is reported
/// and what was in use stays. Sessions already up are not touched.
fn reload_on_sighup(gateway: Arc<Gateway>, shutdown: CancellationToken) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot watch SIGHUP: rules reload by signal is off");
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = hup.recv() => {}
            }
            let reloaded = {
                let gateway = gateway.clone();
                tokio::task::spawn_blocking(move || {
                    icaze::tls::reload(&gateway);
                    gateway.reload_rules()
                })
                .await
            };
            let Ok(reloaded) = reloaded else {
                tracing::error!("rules reload did not finish; old rules stay");
                continue;
            };
            match reloaded {
                Ok(info) => {
                    tracing::info!(file = %info.path.display(), version = %info.version, "rules reloaded");
                    icaze::admin::follow::publish_rules(&gateway).await;
                }
                Err(errors) => {
                    tracing::error!("rules reload refused, old rules stay:\n{errors}");
                }
            }
        }
    });
}
