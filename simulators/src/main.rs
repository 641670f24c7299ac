//! `icaze-sim`: load tests for icaze. See the crate docs, `icaze-sim loadgen --help` and
//! `icaze-sim smsc --help`.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use icaze_sim::language::ReplyLanguage;
use icaze_sim::loadgen::{self, BindKind, Rate, Settings};
use icaze_sim::replies::Lang;
use icaze_sim::shapes::Shapes;
use icaze_sim::smsc::{self, ReceiptIds, ReceiptSettings};
use icaze_sim::traffic::Mix;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "icaze-sim",
    version,
    about = "Load tests for the icaze SMS permit gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Play an operator: send citizens' SMS over SMPP, check every reply, report.
    ///
    /// Exits 0 when every MO got exactly the reply the oracle predicted, 1 when not
    /// (mismatches, missing or duplicate replies, refused MOs), 2 when the run could not
    /// start. The oracle assumes the gateway has not seen the population before: restart
    /// it (or use another --seed) between runs.
    Loadgen(LoadgenArgs),
    /// Play an operator's SMSC that the gateway binds to (its `[[connectors]]`): deliver
    /// citizens' SMS as deliver_sm, take the replies as submit_sm, check every reply, report.
    ///
    /// Waits for --binds sessions from the gateway (a transceiver counts one, a pair of
    /// transmitter and receiver two), then sends. Exit codes as for loadgen: 0 passed, 1
    /// failed, 2 could not run (address in use, bad rules, no usable binds within
    /// --bind-timeout).
    Smsc(SmscArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// Transceivers.
    Trx,
    /// Transmitter + receiver pairs (--binds counts sessions, so it must be even).
    Pair,
}

#[derive(clap::Args)]
struct LoadgenArgs {
    /// The gateway's SMPP address; several (repeated, or separated by commas) for several
    /// gateway nodes sharing one store: the binds are spread over them in turn (a
    /// transmitter + receiver pair on one node), and one oracle spans them all.
    #[arg(long, default_value = "127.0.0.1:2775", value_delimiter = ',')]
    target: Vec<String>,
    /// The operator's system_id.
    #[arg(long, default_value = "demo")]
    system_id: String,
    /// The operator's password.
    #[arg(long, default_value = "demo")]
    password: String,
    /// SMPP sessions (a transmitter + receiver pair counts two).
    #[arg(long, default_value_t = 8)]
    binds: u32,
    /// Transceivers or transmitter + receiver pairs.
    #[arg(long, value_enum, default_value = "trx")]
    bind_kind: Kind,
    /// How long connecting and binding may take, each.
    #[arg(long, default_value = "10s")]
    bind_timeout: String,
    /// The gateway's pid, for its CPU share (default: the process listening on the target
    /// port, if this user can see it).
    #[arg(long)]
    gateway_pid: Option<u32>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args)]
struct SmscArgs {
    /// Where to listen for the gateway's binds (its connector's `address`).
    #[arg(long, default_value = "127.0.0.1:2776")]
    listen: String,
    /// The system_id the gateway must bind with (else ESME_RINVSYSID).
    #[arg(long, default_value = "icaze")]
    system_id: String,
    /// The password it must give (else ESME_RINVPASWD).
    #[arg(long, default_value = "secret")]
    password: String,
    /// Sessions to wait for before sending starts: a transceiver counts one, a pair of
    /// transmitter and receiver two. At least one must carry MOs (receiver or transceiver) and one
    /// replies (transmitter or transceiver).
    #[arg(long, default_value_t = 1)]
    binds: u32,
    /// How long to wait for those binds.
    #[arg(long, default_value = "30s")]
    bind_timeout: String,
    /// The gateway's pid, for its CPU share (default: the process at the other end of its
    /// first session, if this user can see it).
    #[arg(long)]
    gateway_pid: Option<u32>,
    /// Send a delivery receipt with this state (DELIVRD, UNDELIV, EXPIRED, DELETED, REJECTD,
    /// ACCEPTD, ENROUTE, UNKNOWN) for each submit_sm that asks for one, on its transceiver.
    #[arg(long)]
    receipts: Option<String>,
    /// How receipts write the id: hex (as submit_sm_resp gave it), decimal, or padded
    /// (upper-case hex with leading zeros).
    #[arg(long, default_value = "hex")]
    receipt_ids: String,
    /// Receipts carry the receipted_message_id and message_state TLVs besides the text.
    #[arg(long)]
    receipt_tlvs: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// What loadgen and smsc share: the traffic, the pacing, the report.
#[derive(clap::Args)]
struct RunArgs {
    /// MOs per second across all sessions (e.g. 50000 or 50k), or `max` to keep every
    /// window full.
    #[arg(long, default_value = "50000")]
    rate: String,
    /// Unacknowledged MOs (submit_sm for loadgen, deliver_sm for smsc) per sending session.
    #[arg(long, default_value_t = 1024)]
    window: u32,
    /// MOs awaiting their reply across all sessions: bounds memory; with --rate max, a
    /// small value closes the loop on replies rather than on acknowledgements.
    #[arg(long, default_value_t = 200_000)]
    max_in_flight: u64,
    /// How long to send, e.g. 30s, 2m.
    #[arg(long, default_value = "30s")]
    duration: String,
    /// Documents in the population.
    #[arg(long, default_value_t = 1_000_000)]
    population: u32,
    /// Seed of the population and the traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The gateway's rules file (the oracle reads it on its own).
    #[arg(long, default_value = "config/rules.toml")]
    rules: PathBuf,
    /// Where to write the JSON report.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Where to write an SVG of throughput and latency over time.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// The short number citizens text.
    #[arg(long, default_value = "8103")]
    short_number: String,
    /// How long to wait for the last replies once sending stops.
    #[arg(long, default_value = "10s")]
    drain: String,
    /// Pacing tick: each sending session writes the MOs that fell due once per tick.
    #[arg(long, default_value = "1ms")]
    tick: String,
    /// Share of texts that are no request.
    #[arg(long, default_value_t = Mix::default().invalid)]
    invalid_share: f64,
    /// Share of requests typed in a messy but valid spelling.
    #[arg(long, default_value_t = Mix::default().messy)]
    messy_share: f64,
    /// Share of texts that repeat a recent request.
    #[arg(long, default_value_t = Mix::default().repeat)]
    repeat_share: f64,
    /// Share of requests typed in one of the newer shapes (see --shapes).
    #[arg(long, default_value_t = Mix::default().shaped)]
    shaped_share: f64,
    /// Weights of the newer shapes, e.g. `order=3,words=3,keyboard=2,lost=1`; shapes:
    /// order, words, separators, keyboard, spread, look_digits, scripts, lost.
    #[arg(long, default_value = "")]
    shapes: String,
    /// Share of texts naming several documents of one household (a family).
    #[arg(long, default_value_t = Mix::default().family)]
    family_share: f64,
    /// Share of texts that are a help word.
    #[arg(long, default_value_t = Mix::default().help)]
    help_share: f64,
    /// Share of texts that are a status request (a third from a stranger's phone).
    #[arg(long, default_value_t = Mix::default().status)]
    status_share: f64,
    /// Check that replies are in this language: az, en, ru, or auto (the language of each
    /// text, else the rules file's `language`, else az) — what the gateway's operator (or
    /// the rules file) is configured with. Not checked unless given.
    #[arg(long)]
    reply_language: Option<String>,
    /// Worker threads of the simulator (1 leaves the most to the gateway).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// `30s`, `2m`, `500ms`, `1h`, or plain seconds.
fn duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num
        .parse()
        .with_context(|| format!("{s:?} is no duration"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("{s:?}: use ms, s, m or h"),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// `max`, `50000`, `50k`, `1.5m`.
fn rate(s: &str) -> Result<Rate> {
    let s = s.trim().to_ascii_lowercase();
    if s == "max" {
        return Ok(Rate::Max);
    }
    let (num, mult) = match s.strip_suffix('k') {
        Some(n) => (n, 1e3),
        None => match s.strip_suffix('m') {
            Some(n) => (n, 1e6),
            None => (s.as_str(), 1.0),
        },
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("--rate {s:?}: a number or max"))?;
    if n * mult < 1.0 {
        bail!("--rate must be at least 1");
    }
    Ok(Rate::PerSecond((n * mult) as u64))
}

/// The settings both subcommands share, from `a`, over `s`.
fn apply(a: RunArgs, mut s: Settings) -> Result<Settings> {
    s.rate = rate(&a.rate)?;
    s.window = a.window.max(1);
    s.max_in_flight = a.max_in_flight.max(1);
    s.duration = duration(&a.duration)?;
    s.population = a.population;
    s.seed = a.seed;
    s.rules = a.rules;
    s.short_number = a.short_number;
    s.drain = duration(&a.drain)?;
    s.tick = duration(&a.tick)?.max(Duration::from_micros(100));
    s.mix = Mix {
        invalid: a.invalid_share,
        messy: a.messy_share,
        repeat: a.repeat_share,
        shaped: a.shaped_share,
        shapes: Shapes::parse(&a.shapes)?,
        family: a.family_share,
        help: a.help_share,
        status: a.status_share,
        ..Mix::default()
    };
    s.progress = !a.quiet;
    s.report = a.report;
    s.svg = a.svg;
    s.reply_language = a
        .reply_language
        .as_deref()
        .map(|tag| ReplyLanguage::parse(tag, Lang::Az))
        .transpose()?;
    Ok(s)
}

fn loadgen_settings(a: LoadgenArgs) -> Result<Settings> {
    let Some(first) = a.target.first() else {
        anyhow::bail!("--target needs an address");
    };
    let mut s = Settings::new(first.clone());
    s.targets = a.target;
    s.system_id = a.system_id;
    s.password = a.password;
    s.binds = a.binds;
    s.bind_kind = match a.bind_kind {
        Kind::Trx => BindKind::Transceiver,
        Kind::Pair => BindKind::Pair,
    };
    s.bind_timeout = duration(&a.bind_timeout)?;
    s.gateway_pid = a.gateway_pid;
    apply(a.run, s)
}

fn smsc_settings(a: SmscArgs) -> Result<Settings> {
    let mut s = Settings::new(a.listen);
    s.system_id = a.system_id;
    s.password = a.password;
    s.binds = a.binds;
    s.bind_timeout = duration(&a.bind_timeout)?;
    s.gateway_pid = a.gateway_pid;
    if let Some(stat) = a.receipts {
        const STATES: [&str; 8] = [
            "DELIVRD", "UNDELIV", "EXPIRED", "DELETED", "REJECTD", "ACCEPTD", "ENROUTE", "UNKNOWN",
        ];
        let stat = stat.to_ascii_uppercase();
        if !STATES.contains(&stat.as_str()) {
            bail!("--receipts {stat}: use one of {}", STATES.join(", "));
        }
        let ids = match a.receipt_ids.as_str() {
            "hex" => ReceiptIds::Hex,
            "decimal" => ReceiptIds::Decimal,
            "padded" => ReceiptIds::Padded,
            other => bail!("--receipt-ids {other}: use hex, decimal or padded"),
        };
        s.receipts = Some(ReceiptSettings {
            stat,
            ids,
            tlvs: a.receipt_tlvs,
        });
    }
    apply(a.run, s)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (threads, side) = match &cli.command {
        Command::Loadgen(a) => (a.run.threads, "loadgen"),
        Command::Smsc(a) => (a.run.threads, "smsc"),
    };
    let threads = threads.max(1);
    let result = (|| {
        let runtime = if threads == 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
        }
        .context("starting the runtime")?;
        match cli.command {
            Command::Loadgen(a) => runtime.block_on(loadgen::run(loadgen_settings(a)?)),
            Command::Smsc(a) => runtime.block_on(smsc::run(smsc_settings(a)?)),
        }
    })();
    match result {
        Ok(report) => {
            print!("{}", report.summary());
            if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("icaze-sim {side}: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates() {
        assert_eq!(duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("3").unwrap(), Duration::from_secs(3));
        assert!(duration("3 days").is_err());
        assert_eq!(rate("max").unwrap(), Rate::Max);
        assert_eq!(rate("50k").unwrap(), Rate::PerSecond(50_000));
        assert_eq!(rate("1.5m").unwrap(), Rate::PerSecond(1_500_000));
        assert!(rate("0").is_err());
    }

    #[test]
    fn both_subcommands_parse_into_settings() {
        let cli = Cli::try_parse_from([
            "icaze-sim",
            "smsc",
            "--listen",
            "127.0.0.1:0",
            "--binds",
            "2",
            "--rate",
            "20k",
            "--duration",
            "15s",
            "--bind-timeout",
            "5s",
            "--population",
            "100000",
        ])
        .unwrap();
        let Command::Smsc(a) = cli.command else {
            panic!("not smsc")
        };
        let s = smsc_settings(a).unwrap();
        assert_eq!(
            (s.target.as_str(), s.system_id.as_str(), s.password.as_str()),
            ("127.0.0.1:0", "icaze", "secret")
        );
        assert_eq!((s.binds, s.rate), (2, Rate::PerSecond(20_000)));
        assert_eq!(s.bind_timeout, Duration::from_secs(5));
        assert_eq!(
            (s.duration, s.population),
            (Duration::from_secs(15), 100_000)
        );
        let cli = Cli::try_parse_from(["icaze-sim", "loadgen", "--bind-kind", "pair"]).unwrap();
        let Command::Loadgen(a) = cli.command else {
            panic!("not loadgen")
        };
        let s = loadgen_settings(a).unwrap();
        assert_eq!((s.bind_kind, s.binds), (BindKind::Pair, 8));
        assert_eq!(s.bind_timeout, Duration::from_secs(10));
        let cli = Cli::try_parse_from([
            "icaze-sim",
            "loadgen",
            "--shapes",
            "lost=4,order=0",
            "--family-share",
            "0.3",
            "--help-share",
            "0",
        ])
        .unwrap();
        let Command::Loadgen(a) = cli.command else {
            panic!("not loadgen")
        };
        let s = loadgen_settings(a).unwrap();
        assert_eq!((s.mix.family, s.mix.help), (0.3, 0.0));
        assert_eq!(
            (s.mix.shapes.weights[0], s.mix.shapes.weights[7]),
            (0.0, 4.0)
        );
        let cli = Cli::try_parse_from(["icaze-sim", "loadgen", "--shapes", "typo=1"]).unwrap();
        let Command::Loadgen(a) = cli.command else {
            panic!("not loadgen")
        };
        assert!(loadgen_settings(a).is_err());
    }
}
