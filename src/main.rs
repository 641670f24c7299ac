//! The `icaze` command: serve, check-config, decide (one message, for people), replay.

use anyhow::Context;
use clap::{Parser, Subcommand};
use icaze::config::{Config, EXIT_BAD_CONFIG};
use icaze::gateway::Gateway;
use icaze::permit::answer::{Record, Verdict, decide_text};
use icaze::permit::clock::{Clock, SystemClock};
use icaze::permit::engine::QuotaEngine;
use icaze::permit::reply::Language;
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
    },
    /// Validate the config and rules files; report every error with file and key.
    CheckConfig,
    /// Decide texts as if they arrived in this order, and print each decision and reply.
    Decide {
        /// When they arrive (RFC 3339, e.g. 2020-04-06T10:00:00+04:00); default now.
        #[arg(long)]
        at: Option<String>,
        /// Reply language: az, en or ru (default: the rules file's).
        #[arg(long)]
        lang: Option<String>,
        /// Print JSON (as replay does) instead of text.
        #[arg(long)]
        json: bool,
        /// The citizens' texts, e.g. "2 AZE 11111111".
        #[arg(required = true)]
        texts: Vec<String>,
    },
    /// Read `TIME<TAB>MSISDN<TAB>TEXT` lines (stdin if no file) through one engine and
    /// print one JSON object per line.
    Replay {
        /// The file; stdin when absent.
        file: Option<PathBuf>,
        /// Reply language: az, en or ru (default: the rules file's).
        #[arg(long)]
        lang: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    icaze::telemetry::init();
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("icaze: the config has {} error(s):", errors.0.len());
            eprintln!("{errors}");
            return ExitCode::from(EXIT_BAD_CONFIG as u8);
        }
    };
    let result = match cli.command {
        Command::CheckConfig => check_config(&config),
        Command::Serve { volatile, listen } => {
            let mut config = config;
            if let Some(listen) = listen {
                config.smpp.listen = listen;
            }
            serve(config, volatile)
        }
        Command::Decide {
            at,
            lang,
            json,
            texts,
        } => decide(&config, at, lang, json, &texts),
        Command::Replay { file, lang } => replay(&config, file, lang),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("icaze: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn language(config: &Config, lang: Option<String>) -> anyhow::Result<Language> {
    match lang {
        None => Ok(config.rules.default_language),
        Some(l) => Language::parse(&l).with_context(|| format!("--lang {l:?}: use az, en or ru")),
    }
}

fn check_config(config: &Config) -> anyhow::Result<ExitCode> {
    let rules = &config.rules;
    println!("{}: ok", config.path.display());
    println!("{}: ok", config.rules_path.display());
    println!(
        "  time zone {}, replies in {}",
        rules.calendar.tz(),
        rules.default_language.tag()
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
    texts: &[String],
) -> anyhow::Result<ExitCode> {
    let lang = language(config, lang)?;
    let now = match at {
        Some(at) => parse_time(&at)?,
        None => chrono::Utc::now().timestamp(),
    };
    let engine = QuotaEngine::new();
    let rules = &config.rules;
    let mut out = std::io::stdout().lock();
    for text in texts {
        let verdict = decide_text(&engine, rules, text, now);
        let record = Record::new(rules, &config.permit_key, lang, &verdict);
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
    let engine = QuotaEngine::new();
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
        let (Some(time), Some(_msisdn), Some(text)) = (fields.next(), fields.next(), fields.next())
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
        let verdict = decide_text(&engine, rules, text, now);
        serde_json::to_writer(
            &mut out,
            &Record::new(rules, &config.permit_key, lang, &verdict),
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
        reload_on_sighup(gateway.clone(), shutdown.clone());
        icaze::gateway::listener::serve(gateway.clone(), listener, shutdown).await;
        if let icaze::store::Store::Journal(_) = &gateway.store {
            tracing::info!("journal closed");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGHUP reloads the rules file; a bad file is reported and the old rules stay.
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
            match icaze::config::load_rules(&gateway.config.rules_path) {
                Ok(rules) => {
                    gateway.set_rules(rules);
                    tracing::info!(file = %gateway.config.rules_path.display(), "rules reloaded");
                }
                Err(errors) => {
                    tracing::error!("rules reload refused, old rules stay:\n{errors}");
                }
            }
        }
    });
}
