//! The load generator: opens the binds, sends the population's texts at a rate (or as fast
//! as the windows allow), waits for the replies, and reports.
//!
//! A run has four phases, shared by every session through one atomic: binding (no MO may
//! leave before every bind is up, so the rate is the rate across all of them), sending,
//! draining (no new MOs; resends and replies still count) until every MO has its reply or
//! the drain timeout passes, and stopping (unbind).

use crate::bind::{self, Plan, Role};
use crate::ledger::Ledger;
use crate::oracle::Oracle;
use crate::population::Population;
use crate::procstat::{self, Snapshot};
use crate::replies::Classifier;
use crate::report::{Cpu, Frame, Report, RunConfig};
use crate::rules::Rules;
use crate::traffic::Mix;
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How fast to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Open loop: this many MOs per second across all binds, whatever the replies do (the
    /// windows still bound what is unanswered; what they hold back is reported as behind
    /// schedule).
    PerSecond(u64),
    /// Closed loop: keep every bind's window full.
    Max,
}

/// How the operator binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindKind {
    /// Every session a transceiver.
    Transceiver,
    /// Sessions in transmitter + receiver pairs.
    Pair,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The gateway, `host:port`.
    pub target: String,
    /// The operator's system_id.
    pub system_id: String,
    /// Its password.
    pub password: String,
    /// SMPP sessions (a pair counts two).
    pub binds: u32,
    /// Transceivers or pairs.
    pub bind_kind: BindKind,
    /// How fast.
    pub rate: Rate,
    /// Unanswered submit_sm per sending bind (the SMPP window: MOs not yet acknowledged).
    pub window: u32,
    /// MOs awaiting their reply, across all binds. Bounds memory, and with `Rate::Max`
    /// makes the loop closed on replies, not only on acknowledgements; MOs the rate asks
    /// for beyond it count as behind schedule.
    pub max_in_flight: u64,
    /// How long to send.
    pub duration: Duration,
    /// Documents in the population.
    pub population: u32,
    /// Seed of the population and the traffic.
    pub seed: u64,
    /// The gateway's rules file.
    pub rules: PathBuf,
    /// The short number citizens text.
    pub short_number: String,
    /// How long to wait for the last replies after sending stops.
    pub drain: Duration,
    /// Pacing tick: MOs due are written once per tick per bind.
    pub tick: Duration,
    /// The traffic mix.
    pub mix: Mix,
    /// The gateway's pid for its CPU share; found from the listening port if `None`.
    pub gateway_pid: Option<u32>,
    /// Show a progress bar (only ever on a terminal).
    pub progress: bool,
    /// Where to write the JSON report.
    pub report: Option<PathBuf>,
    /// Where to write the SVG picture.
    pub svg: Option<PathBuf>,
}

impl Settings {
    /// Defaults for `target`: the demo operator, 8 transceivers, 50,000 MO/s for 30 s over a
    /// million documents, the shipped rules.
    pub fn new(target: impl Into<String>) -> Settings {
        Settings {
            target: target.into(),
            system_id: "demo".into(),
            password: "demo".into(),
            binds: 8,
            bind_kind: BindKind::Transceiver,
            rate: Rate::PerSecond(50_000),
            window: 1024,
            max_in_flight: 200_000,
            duration: Duration::from_secs(30),
            population: 1_000_000,
            seed: 1,
            rules: PathBuf::from("config/rules.toml"),
            short_number: "8103".into(),
            drain: Duration::from_secs(10),
            tick: Duration::from_millis(1),
            mix: Mix::default(),
            gateway_pid: None,
            progress: true,
            report: None,
            svg: None,
        }
    }

    /// MOs per second each sending bind owes, or `None` for `max`.
    pub fn rate_per_sender(&self, senders: u32) -> Option<f64> {
        match self.rate {
            Rate::PerSecond(r) => Some(r as f64 / f64::from(senders.max(1))),
            Rate::Max => None,
        }
    }
}

/// The phase of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Binds are being opened.
    Binding = 0,
    /// MOs are being sent.
    Sending = 1,
    /// No new MOs; waiting for the last replies.
    Draining = 2,
    /// Unbinding.
    Stopping = 3,
}

/// What every session of a run shares.
#[derive(Debug)]
pub struct Shared {
    /// The run's settings.
    pub settings: Settings,
    /// The population.
    pub pop: Arc<Population>,
    /// The rules as the simulator reads them.
    pub rules: Arc<Rules>,
    /// Reads replies.
    pub classifier: Classifier,
    /// Sessions that send MOs.
    pub senders: u32,
    /// MOs the rate asked for that the windows held back.
    pub behind: AtomicU64,
    ledger: Mutex<Ledger>,
    phase: AtomicU8,
    start: OnceLock<Instant>,
}

impl Shared {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Binding,
            1 => Phase::Sending,
            2 => Phase::Draining,
            _ => Phase::Stopping,
        }
    }

    fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    /// When sending started.
    pub fn start(&self) -> Option<Instant> {
        self.start.get().copied()
    }

    /// The ledger, locked. A panic while holding it leaves counts that are still counts, so
    /// a poisoned lock is used as it is.
    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn port_of(target: &str) -> Option<u16> {
    target.rsplit_once(':')?.1.parse().ok()
}

fn plans(settings: &Settings) -> Result<Vec<Plan>> {
    let n = settings.binds as usize;
    if n == 0 {
        bail!("--binds must be at least 1");
    }
    Ok(match settings.bind_kind {
        BindKind::Transceiver => (0..n)
            .map(|id| Plan {
                id,
                role: Role::Transceiver,
                sender: Some(id as u32),
            })
            .collect(),
        BindKind::Pair => {
            if n < 2 || !n.is_multiple_of(2) {
                bail!("--bind-kind pair needs an even --binds (a transmitter and a receiver each)");
            }
            (0..n)
                .map(|id| Plan {
                    id,
                    role: if id % 2 == 0 {
                        Role::Transmitter
                    } else {
                        Role::Receiver
                    },
                    sender: (id % 2 == 0).then_some((id / 2) as u32),
                })
                .collect()
        }
    })
}

/// Runs the load: binds, sends for the duration, drains, unbinds, and reports. The report
/// says whether the run passed; an `Err` means it could not run (bad rules, no gateway, a
/// bind refused).
pub async fn run(settings: Settings) -> Result<Report> {
    let rules = Arc::new(Rules::load(&settings.rules)?);
    let classifier = Classifier::new(&rules).context("reply templates")?;
    let pop = Arc::new(Population::new(&rules, settings.population, settings.seed)?);
    let plans = plans(&settings)?;
    let senders = plans.iter().filter(|p| p.sender.is_some()).count() as u32;
    if pop.phones() < senders {
        bail!(
            "--population {} gives {} phones, fewer than the {senders} sending binds",
            settings.population,
            pop.phones()
        );
    }
    let oracle = Oracle::new(rules.clone(), &pop);
    let ledger = Ledger::new(oracle, pop.clone(), rules.clone(), Instant::now());
    let shared = Arc::new(Shared {
        settings: settings.clone(),
        pop: pop.clone(),
        rules: rules.clone(),
        classifier,
        senders,
        behind: AtomicU64::new(0),
        ledger: Mutex::new(ledger),
        phase: AtomicU8::new(Phase::Binding as u8),
        start: OnceLock::new(),
    });

    // Every bind connects at once, so a run with many binds does not wait for each in turn.
    let mut connecting = Vec::new();
    for plan in &plans {
        let (shared, plan) = (shared.clone(), *plan);
        connecting.push(tokio::spawn(
            async move { bind::connect(&shared, &plan).await },
        ));
    }
    let mut streams = Vec::new();
    for (plan, handle) in plans.iter().zip(connecting) {
        streams.push((*plan, handle.await.context("bind task")??));
    }
    let mut sessions = tokio::task::JoinSet::new();
    for (plan, (stream, inbuf)) in streams {
        let shared = shared.clone();
        sessions.spawn(async move {
            bind::serve(shared, plan, stream, inbuf)
                .await
                .map_err(|e| format!("session {} ({:?}): {e:#}", plan.id, plan.role))
        });
    }

    let gateway_pid = settings
        .gateway_pid
        .or_else(|| port_of(&settings.target).and_then(procstat::listener_pid));
    let load_before = procstat::loadavg();
    let before = Snapshot::take(gateway_pid);
    let start = Instant::now();
    shared.ledger().set_start(start);
    let _ = shared.start.set(start);
    let started_at = chrono::Utc::now()
        .with_timezone(&rules.tz)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    shared.set_phase(Phase::Sending);

    let bar = progress_bar(&settings);
    let mut session_errors = Vec::new();
    while start.elapsed() < settings.duration {
        tokio::time::sleep(Duration::from_millis(250).min(settings.duration)).await;
        let elapsed = start.elapsed().min(settings.duration);
        bar.set_position(elapsed.as_millis() as u64);
        bar.set_message(progress_line(&shared, start));
        while let Some(done) = sessions.try_join_next() {
            session_errors.push(joined(done));
        }
    }
    let sending_secs = start.elapsed().as_secs_f64();
    let after = Snapshot::take(gateway_pid);
    let load_after = procstat::loadavg();
    shared.set_phase(Phase::Draining);
    let drain_until = Instant::now() + settings.drain;
    while shared.ledger().outstanding() > 0 && Instant::now() < drain_until {
        bar.set_message(format!(
            "draining: {} MOs without reply",
            shared.ledger().outstanding()
        ));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bar.finish_and_clear();
    shared.set_phase(Phase::Stopping);
    let stop_until = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(stop_until, sessions.join_next()).await {
            Ok(Some(done)) => session_errors.push(joined(done)),
            Ok(None) => break,
            Err(_) => {
                session_errors.push(Some("sessions did not unbind in time".into()));
                sessions.abort_all();
                break;
            }
        }
    }

    let (own, gateway, machine) = procstat::cores_used(&before, &after);
    let mut ledger = shared.ledger();
    let missing = ledger.close();
    let frame = Frame {
        config: RunConfig {
            target: settings.target.clone(),
            binds: settings.binds,
            bind_kind: match settings.bind_kind {
                BindKind::Transceiver => "trx".into(),
                BindKind::Pair => "pair".into(),
            },
            rate: match settings.rate {
                Rate::PerSecond(r) => Some(r),
                Rate::Max => None,
            },
            window: settings.window,
            duration_s: settings.duration.as_secs_f64(),
            population: settings.population,
            phones: pop.phones(),
            seed: settings.seed,
            rules: settings.rules.display().to_string(),
        },
        started_at,
        sending_secs,
        missing,
        behind_schedule: shared.behind.load(Ordering::Relaxed),
        cpu: Cpu {
            cores: procstat::cores(),
            loadgen: own,
            gateway_pid,
            gateway,
            machine,
            load_before,
            load_after,
        },
        session_errors: session_errors.into_iter().flatten().collect(),
    };
    let report = Report::build(ledger.stats(), frame);
    drop(ledger);
    if let Some(path) = &settings.report {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &settings.svg {
        std::fs::write(path, crate::svg::render(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

fn joined(done: Result<Result<(), String>, tokio::task::JoinError>) -> Option<String> {
    match done {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(e) => Some(format!("session task failed: {e}")),
    }
}

fn progress_bar(settings: &Settings) -> ProgressBar {
    if !settings.progress || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(
        Some(settings.duration.as_millis() as u64),
        ProgressDrawTarget::stdout(),
    );
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// The last full second: sent, answered, p99, and what is in flight.
fn progress_line(shared: &Shared, start: Instant) -> String {
    let ledger = shared.ledger();
    let s = ledger.stats();
    let last = (start.elapsed().as_secs() as usize).checked_sub(1);
    let row = last.and_then(|i| s.seconds.get(i));
    let p99 = row.and_then(|r| r.latency.as_ref()).map_or_else(
        || "-".into(),
        |h| format!("{:.2} ms", h.value_at_quantile(0.99) as f64 / 1000.0),
    );
    format!(
        "sent {}/s  answered {}/s  p99 {p99}  in flight {}  mismatches {}",
        row.map_or(0, |r| r.sent),
        row.map_or(0, |r| r.answered),
        ledger.outstanding(),
        s.mismatches
    )
}
