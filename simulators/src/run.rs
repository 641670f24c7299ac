//! A run, whichever side of SMPP the simulator plays: gets its sessions (loadgen connects
//! and binds them, smsc waits for the gateway's binds: see `Sessions`), sends the
//! population's texts at a rate (or as fast as the windows allow), waits for the replies,
//! and reports.
//!
//! A run has four phases, shared by every session through one atomic: binding (no MO may
//! leave before enough sessions are up, so the rate is the rate across all of them),
//! sending, draining (no new MOs; resends and replies still count) until every MO has its
//! reply or the drain timeout passes, and stopping (unbind). Sessions that come later (the
//! gateway binding again) are served too.

use crate::bind::{self, Plan, Role, Side, Slot, Slots};
use crate::language::ReplyLanguage;
use crate::ledger::Ledger;
use crate::oracle::Oracle;
use crate::population::Population;
use crate::procstat::{self, Snapshot};
use crate::replies::Classifier;
use crate::report::{Cpu, Frame, Report, RunConfig};
use crate::rules::Rules;
use crate::traffic::{Citizens, Mix};
use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

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

/// How loadgen binds (smsc takes the binds the gateway makes).
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
    /// loadgen: the gateway, `host:port`. smsc: where to listen for the gateway's binds.
    pub target: String,
    /// loadgen: every gateway node (`target` is the first); binds are spread over them.
    pub targets: Vec<String>,
    /// The system_id: loadgen binds with it, smsc accepts only it.
    pub system_id: String,
    /// Its password.
    pub password: String,
    /// SMPP sessions (a pair counts two): loadgen opens them, smsc waits for them before
    /// sending starts.
    pub binds: u32,
    /// Transceivers or pairs (loadgen only).
    pub bind_kind: BindKind,
    /// loadgen: how long connecting and binding may take, each. smsc: how long to wait for
    /// the gateway's binds before giving up.
    pub bind_timeout: Duration,
    /// How fast.
    pub rate: Rate,
    /// Unacknowledged MOs per sending session (the SMPP window).
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
    /// The language the gateway answers in, if replies are to be checked for it
    /// (`--reply-language`).
    pub reply_language: Option<ReplyLanguage>,
    /// The gateway's pid for its CPU share; found from the listening port if `None`.
    pub gateway_pid: Option<u32>,
    /// Show a progress bar (only ever on a terminal).
    pub progress: bool,
    /// Where to write the JSON report.
    pub report: Option<PathBuf>,
    /// Where to write the SVG picture.
    pub svg: Option<PathBuf>,
    /// smsc: send a delivery receipt for each submit_sm part that asks for one
    /// (registered_delivery non-zero), on the transceiver it came on.
    pub receipts: Option<ReceiptSettings>,
}

/// What smsc's receipts say and how they write the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSettings {
    /// The 7-letter state: DELIVRD, UNDELIV, EXPIRED, …
    pub stat: String,
    /// How the id is written.
    pub ids: crate::wire::ReceiptIds,
    /// Also send the receipted_message_id and message_state TLVs.
    pub tlvs: bool,
}

impl Settings {
    /// Defaults for `target`: the demo operator, 8 transceivers, 50,000 MO/s for 30 s over a
    /// million documents, the shipped rules.
    pub fn new(target: impl Into<String>) -> Settings {
        let target = target.into();
        Settings {
            targets: vec![target.clone()],
            target,
            system_id: "demo".into(),
            password: "demo".into(),
            binds: 8,
            bind_kind: BindKind::Transceiver,
            bind_timeout: Duration::from_secs(10),
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
            reply_language: None,
            gateway_pid: None,
            progress: true,
            report: None,
            svg: None,
            receipts: None,
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
    /// Binds are being opened (loadgen) or awaited (smsc).
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
    /// Which side of SMPP the simulator plays.
    pub side: Side,
    /// The population.
    pub pop: Arc<Population>,
    /// The rules as the simulator reads them.
    pub rules: Arc<Rules>,
    /// Reads replies.
    pub classifier: Classifier,
    /// The phones' shares, for the sessions that carry MOs.
    pub slots: Slots,
    /// MOs the rate asked for that the windows held back.
    pub behind: AtomicU64,
    /// The next message_id smsc gives a reply.
    pub message_ids: AtomicU64,
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

/// A session bound and ready to serve.
#[derive(Debug)]
pub struct Bound {
    /// How its ESME bound.
    pub role: Role,
    /// Its socket.
    pub stream: TcpStream,
    /// What the socket held after the bind exchange.
    pub inbuf: BytesMut,
}

/// What the side that provides a run's sessions hands it.
#[derive(Debug)]
pub enum Arrival {
    /// A session, bound.
    Session(Bound),
    /// A bind refused (or a connection that never bound), and why: for the report.
    Refused(String),
}

/// How a run gets its sessions: loadgen connects and binds them, smsc accepts the gateway's
/// binds.
pub(crate) trait Sessions {
    /// Hands every session bound before sending may start to `arrive`, and returns once they
    /// are enough to start; an error if the run cannot start (exit code 2).
    async fn first(&mut self, arrive: &mut impl FnMut(Arrival)) -> Result<()>;
    /// The next session after those (the gateway binding again); never ready if none can
    /// come. Must be cancel safe: the run polls it beside its own clock.
    async fn later(&mut self) -> Arrival;
    /// The gateway's pid, for its CPU share, if it can be found.
    fn gateway_pid(&self) -> Option<u32>;
}

/// `trx`, `pair`, or `mixed`: how the first sessions bound, for the report.
fn bind_kind_of(roles: &[Role]) -> String {
    let trx = roles.iter().filter(|r| **r == Role::Transceiver).count();
    match trx {
        n if n == roles.len() => "trx".into(),
        0 => "pair".into(),
        _ => "mixed".into(),
    }
}

/// The run's sessions, as they come and go.
struct Tasks {
    shared: Arc<Shared>,
    tasks: JoinSet<Result<(), String>>,
    next_id: usize,
    roles: Vec<Role>,
    errors: Vec<String>,
}

impl Tasks {
    fn arrive(&mut self, arrival: Arrival) {
        match arrival {
            Arrival::Session(b) => {
                let plan = Plan {
                    id: self.next_id,
                    role: b.role,
                };
                self.next_id += 1;
                self.roles.push(b.role);
                let shared = self.shared.clone();
                self.tasks.spawn(async move {
                    bind::serve(shared, plan, b.stream, b.inbuf)
                        .await
                        .map_err(|e| format!("session {} ({:?}): {e:#}", plan.id, plan.role))
                });
            }
            Arrival::Refused(why) => self.errors.push(why),
        }
    }

    fn reap(&mut self) {
        while let Some(done) = self.tasks.try_join_next() {
            self.errors.extend(joined(done));
        }
    }
}

/// Runs the load over the sessions `sessions` provides: sends for the duration, drains,
/// unbinds, and reports. The report says whether the run passed; an `Err` means it could not
/// run (bad rules, no gateway, a bind refused, no binds in time).
pub(crate) async fn run(
    settings: Settings,
    side: Side,
    mut sessions: impl Sessions,
) -> Result<Report> {
    let rules = Arc::new(Rules::load(&settings.rules)?);
    let classifier = Classifier::new(&rules).context("reply templates")?;
    let pop = Arc::new(Population::new(&rules, settings.population, settings.seed)?);
    let oracle = Oracle::new(rules.clone(), &pop);
    let mut ledger = Ledger::new(oracle, pop.clone(), rules.clone(), Instant::now());
    ledger.check_language(
        settings
            .reply_language
            .map(|l| l.falling_back_to(&rules.language)),
    );
    let shared = Arc::new(Shared {
        settings: settings.clone(),
        side,
        pop: pop.clone(),
        rules: rules.clone(),
        classifier,
        slots: Slots::default(),
        behind: AtomicU64::new(0),
        message_ids: AtomicU64::new(1),
        ledger: Mutex::new(ledger),
        phase: AtomicU8::new(Phase::Binding as u8),
        start: OnceLock::new(),
    });

    let mut tasks = Tasks {
        shared: shared.clone(),
        tasks: JoinSet::new(),
        next_id: 0,
        roles: Vec::new(),
        errors: Vec::new(),
    };
    sessions.first(&mut |a| tasks.arrive(a)).await?;
    let first_roles = tasks.roles.clone();
    let senders = first_roles.iter().filter(|r| r.carries_mo(side)).count() as u32;
    if senders == 0 {
        bail!("no session can carry MOs");
    }
    if pop.phones() < senders {
        bail!(
            "--population {} gives {} phones, fewer than the {senders} sessions that carry MOs",
            settings.population,
            pop.phones()
        );
    }
    shared.slots.fill(
        (0..senders)
            .map(|i| {
                Slot::new(Citizens::new(
                    &pop,
                    &rules,
                    settings.seed,
                    i,
                    senders,
                    settings.mix,
                ))
            })
            .collect(),
    );

    let gateway_pid = settings.gateway_pid.or_else(|| sessions.gateway_pid());
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
    let mut every = tokio::time::interval(Duration::from_millis(250).min(settings.duration));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while start.elapsed() < settings.duration {
        tokio::select! {
            _ = every.tick() => {}
            a = sessions.later() => tasks.arrive(a),
        }
        let elapsed = start.elapsed().min(settings.duration);
        bar.set_position(elapsed.as_millis() as u64);
        bar.set_message(progress_line(&shared, start));
        tasks.reap();
    }
    let sending_secs = start.elapsed().as_secs_f64();
    let after = Snapshot::take(gateway_pid);
    let load_after = procstat::loadavg();
    shared.set_phase(Phase::Draining);
    let drain_until = Instant::now() + settings.drain;
    let mut every = tokio::time::interval(Duration::from_millis(20));
    while shared.ledger().outstanding() > 0 && Instant::now() < drain_until {
        bar.set_message(format!(
            "draining: {} MOs without reply",
            shared.ledger().outstanding()
        ));
        tokio::select! {
            _ = every.tick() => {}
            a = sessions.later() => tasks.arrive(a),
        }
    }
    bar.finish_and_clear();
    // No more sessions: smsc stops listening, so the gateway cannot bind again meanwhile.
    drop(sessions);
    shared.set_phase(Phase::Stopping);
    let stop_until = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(stop_until, tasks.tasks.join_next()).await {
            Ok(Some(done)) => tasks.errors.extend(joined(done)),
            Ok(None) => break,
            Err(_) => {
                tasks.errors.push("sessions did not unbind in time".into());
                tasks.tasks.abort_all();
                while tasks.tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
    shared
        .behind
        .fetch_add(shared.slots.take_owed(), Ordering::Relaxed);

    let (own, gateway, machine) = procstat::cores_used(&before, &after);
    let mut ledger = shared.ledger();
    let missing = ledger.close();
    let frame = Frame {
        config: RunConfig {
            mode: side.name().into(),
            target: settings.targets.join(","),
            binds: first_roles.len() as u32,
            bind_kind: bind_kind_of(&first_roles),
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
        session_errors: tasks.errors,
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
        Err(e) if e.is_cancelled() => None,
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
