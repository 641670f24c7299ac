//! The ledger: every MO in flight, its prediction, and the reply it got.
//!
//! Each MO must get exactly one reply. Replies carry no reference to their MO, only the
//! citizen's number, so MOs in flight are kept per phone in a FIFO (send order) and a reply
//! goes to the first MO of its phone that it fits: an invalid-text reply to an MO whose text
//! is invalid for that reason, a decision to a request for the code and document it echoes.
//! Replies of one phone normally come in order; they can overtake each other when the
//! gateway spreads replies over several binds, which is counted (`reordered`) but is no
//! error, since each reply still names its request.
//!
//! A request's prediction is made when the gateway acknowledges it, in acknowledgement
//! order: a phone (and so each of its documents) sends through one bind, and a bind's
//! acknowledgements come in the order the gateway decided, so throttled MOs that are sent
//! again later are predicted in the order the gateway really saw them. A reply that arrives
//! before its acknowledgement (another bind delivered it first) waits in the MO's entry.
//!
//! An MO whose session ended before its acknowledgement (smsc: the gateway lost its bind)
//! is sent again on the session that takes over its phones, as an SMSC redelivers. The
//! gateway may already have decided it, so a grant may then come back as the permit already
//! held (`active`): that answer is accepted for such an MO, and the MOs are counted
//! (`redelivered`).
//!
//! Memory is bounded by the MOs in flight (the windows bound those), plus a per-second row
//! for the report.

use crate::check;
use crate::language::ReplyLanguage;
use crate::oracle::{Class, Oracle, Prediction};
use crate::population::Population;
use crate::replies::{Classified, Lang};
use crate::report::{DuplicateRecord, MismatchRecord, MissingRecord};
use crate::rng::IntMap;
use crate::rules::Rules;
use crate::traffic::{Expect, Origin, Sms};
use hdrhistogram::Histogram;
use icaze::smpp::Status;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Items kept in each list of the report.
pub const LISTED: usize = 20;
/// Sends of one MO before it is given up (throttled or queue full every time).
pub const MAX_ATTEMPTS: u32 = 50;
/// Statuses after which sending the same MO again can succeed: those the gateway's own
/// outbound queues retry ([`Status::is_transient`]: throttled, queue full, system error,
/// temporary application error), and ESME_RINVBNDSTS: the MO crossed an unbind (the gateway
/// closing that session) and was not taken, so another session can carry it.
pub fn is_transient(status: u32) -> bool {
    let status = Status(status);
    status.is_transient() || status == Status::ESME_RINVBNDSTS
}

/// Names a command_status for the report (`ESME_RTHROTTLED`, or hex for unknown ones).
pub fn status_name(status: u32) -> String {
    Status(status)
        .name()
        .map_or_else(|| format!("0x{status:08X}"), str::to_string)
}

/// Where an MO sits in the ledger; the serial tells a reused slot from the MO it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    slot: u32,
    serial: u64,
}

/// One reply as read off the wire (all its parts joined).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The destination address: the citizen's number.
    pub msisdn: String,
    /// The phone with that number, if it is one of ours.
    pub phone: Option<u32>,
    /// The text.
    pub text: String,
    /// What the text says, if a template matches it.
    pub classified: Option<Classified>,
    /// When its last part arrived.
    pub arrived: Instant,
}

/// What to do after a submit_sm_resp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// Accepted; the reply is awaited (or already here).
    Accepted,
    /// Refused for now: send it again after a back-off.
    Retry,
    /// Refused for good, or given up: no reply will come.
    Dropped,
    /// Not ours (a stale sequence number).
    Unknown,
}

#[derive(Debug)]
struct Flight {
    phone: u32,
    expect: Expect,
    origin: Origin,
    text: Box<str>,
    sent: Instant,
    sent_unix: i64,
    acked: bool,
    /// The class known before any state (invalid texts, blocked documents, switched-off
    /// codes); lets an early reply find its MO.
    hint: Option<Class>,
    prediction: Option<Prediction>,
    /// A family's predictions, one per document in text order (empty otherwise).
    lines: Vec<Prediction>,
    /// The language its reply must be in, when that is checked.
    lang: Option<Lang>,
    actual: Option<(Class, Option<Classified>, String)>,
    attempts: u32,
    /// Its session ended before the acknowledgement; it is being sent again.
    redelivered: bool,
    serial: u64,
}

impl Flight {
    /// Whether `got` is a right answer to this MO under prediction `p`.
    fn right(&self, p: &Prediction, got: Class) -> bool {
        check::right(p, got, self.redelivered)
    }
}

/// One second of the run, for the report's time series.
#[derive(Debug, Clone)]
pub struct Second {
    /// MOs sent for the first time.
    pub sent: u64,
    /// submit_sm_resp with ESME_ROK.
    pub acked: u64,
    /// Replies matched to an MO.
    pub answered: u64,
    /// ESME_RTHROTTLED answers.
    pub throttled: u64,
    /// MO→MT latency of the replies that arrived in this second, microseconds.
    pub latency: Option<Histogram<u64>>,
}

/// Everything counted.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Distinct MOs sent.
    pub sent: u64,
    /// submit_sm written, resends included.
    pub submits: u64,
    /// MOs acknowledged with ESME_ROK.
    pub acked: u64,
    /// Replies matched to an MO.
    pub answered: u64,
    /// Replies received in all.
    pub replies: u64,
    /// ESME_RTHROTTLED answers.
    pub throttled: u64,
    /// Resends after a transient refusal or a lost session.
    pub resent: u64,
    /// MOs whose session ended before their acknowledgement, sent again.
    pub redelivered: u64,
    /// Non-OK statuses by name.
    pub errors: BTreeMap<String, u64>,
    /// MOs refused for good (no reply expected) or given up after [`MAX_ATTEMPTS`].
    pub dropped: u64,
    /// Replies whose class or echoes differ from the prediction.
    pub mismatches: u64,
    /// Replies for which no MO was waiting.
    pub duplicates: u64,
    /// Replies that overtook an earlier MO of the same phone.
    pub reordered: u64,
    /// MOs whose send and acknowledgement straddled a day boundary or an hours edge.
    pub boundary: u64,
    /// Replies no template matches.
    pub unrecognised: u64,
    /// Predicted classes.
    pub expected: BTreeMap<String, u64>,
    /// Classes of the replies.
    pub got: BTreeMap<String, u64>,
    /// MOs by where they came from in the traffic model.
    pub origins: BTreeMap<String, u64>,
    /// Replies by the language of their template.
    pub languages: BTreeMap<String, u64>,
    /// MO→MT latency, microseconds.
    pub latency: Histogram<u64>,
    /// Per second since the start of sending.
    pub seconds: Vec<Second>,
    /// Mismatches by what was predicted and what came ("granted → try_later"): a double
    /// grant would show as "active → granted".
    pub mismatch_kinds: BTreeMap<String, u64>,
    /// The first mismatches.
    pub mismatch_list: Vec<MismatchRecord>,
    /// The first duplicate or unsolicited replies.
    pub duplicate_list: Vec<DuplicateRecord>,
}

/// Longest latency tracked (10 minutes, in microseconds); longer ones count as this.
const MAX_LATENCY_US: u64 = 600_000_000;
/// Seconds of per-second rows kept; a run longer than a day folds into the last row.
const MAX_SECONDS: usize = 86_400;

fn histogram(sigfig: u8) -> Histogram<u64> {
    // Bounds and precision are constants the crate accepts: 1 µs to 10 min, 2–3 digits.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, sigfig).expect("valid histogram bounds")
}

impl Stats {
    fn new() -> Stats {
        Stats {
            sent: 0,
            submits: 0,
            acked: 0,
            answered: 0,
            replies: 0,
            throttled: 0,
            resent: 0,
            redelivered: 0,
            errors: BTreeMap::new(),
            dropped: 0,
            mismatches: 0,
            duplicates: 0,
            reordered: 0,
            boundary: 0,
            unrecognised: 0,
            expected: BTreeMap::new(),
            got: BTreeMap::new(),
            origins: BTreeMap::new(),
            languages: BTreeMap::new(),
            latency: histogram(3),
            seconds: Vec::new(),
            mismatch_kinds: BTreeMap::new(),
            mismatch_list: Vec::new(),
            duplicate_list: Vec::new(),
        }
    }
}

/// The MOs in flight and the oracle, shared by every bind of a run.
#[derive(Debug)]
pub struct Ledger {
    oracle: Oracle,
    pop: Arc<Population>,
    rules: Arc<Rules>,
    flights: Vec<Option<Flight>>,
    free: Vec<u32>,
    by_phone: IntMap<u32, Vec<u32>>,
    serial: u64,
    live: usize,
    start: Instant,
    stats: Stats,
    language: Option<ReplyLanguage>,
}

impl Ledger {
    /// An empty ledger; seconds count from `start`.
    pub fn new(oracle: Oracle, pop: Arc<Population>, rules: Arc<Rules>, start: Instant) -> Self {
        Ledger {
            oracle,
            pop,
            rules,
            flights: Vec::new(),
            free: Vec::new(),
            by_phone: IntMap::default(),
            serial: 0,
            live: 0,
            start,
            stats: Stats::new(),
            language: None,
        }
    }

    /// Checks that every reply is in the language `language` says (none: not checked).
    pub fn check_language(&mut self, language: Option<ReplyLanguage>) {
        self.language = language;
    }

    /// Moves the start of the per-second series (to when sending begins).
    pub fn set_start(&mut self, start: Instant) {
        self.start = start;
    }

    /// The counts so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// MOs still waiting for an acknowledgement or a reply.
    pub fn outstanding(&self) -> usize {
        self.live
    }

    fn second(&mut self, at: Instant) -> &mut Second {
        let i = (at.saturating_duration_since(self.start).as_secs() as usize).min(MAX_SECONDS);
        while self.stats.seconds.len() <= i {
            self.stats.seconds.push(Second {
                sent: 0,
                acked: 0,
                answered: 0,
                throttled: 0,
                latency: None,
            });
        }
        &mut self.stats.seconds[i]
    }

    fn flight(&self, t: Ticket) -> Option<&Flight> {
        self.flights
            .get(t.slot as usize)?
            .as_ref()
            .filter(|f| f.serial == t.serial)
    }

    fn flight_mut(&mut self, t: Ticket) -> Option<&mut Flight> {
        self.flights
            .get_mut(t.slot as usize)?
            .as_mut()
            .filter(|f| f.serial == t.serial)
    }

    /// Whether the same request from the same phone is still unanswered.
    pub fn busy(&self, phone: u32, doc: u32, code: u8) -> bool {
        self.by_phone.get(&phone).is_some_and(|slots| {
            slots.iter().any(|&s| {
                self.flights[s as usize]
                    .as_ref()
                    .is_some_and(|f| f.expect.asks(doc, code))
            })
        })
    }

    /// Records an MO about to be written at `now` (wall clock `unix`).
    pub fn register(&mut self, sms: Sms, now: Instant, unix: i64) -> Ticket {
        self.serial += 1;
        let (hint, prediction) = match sms.expect {
            Expect::Invalid(r) => {
                let class = Class::Invalid(Some(r));
                (
                    Some(class),
                    Some(Prediction {
                        class,
                        alternative: None,
                        undo: None,
                    }),
                )
            }
            Expect::Request { doc, code } => (self.oracle.stateless(doc, code), None),
            Expect::Family(_) => (Some(Class::Family), None),
            Expect::Status(_) => (Some(Class::Status), None),
            Expect::Help => (
                Some(Class::Help),
                Some(Prediction {
                    class: Class::Help,
                    alternative: None,
                    undo: None,
                }),
            ),
        };
        *self
            .stats
            .origins
            .entry(sms.origin.name().into())
            .or_default() += 1;
        let lang = self.language.map(|l| l.for_text(&sms.text));
        let flight = Flight {
            phone: sms.phone,
            expect: sms.expect,
            origin: sms.origin,
            text: sms.text.into_boxed_str(),
            sent: now,
            sent_unix: unix,
            acked: false,
            hint,
            prediction,
            lines: Vec::new(),
            lang,
            actual: None,
            attempts: 1,
            redelivered: false,
            serial: self.serial,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.flights[slot as usize] = Some(flight);
                slot
            }
            None => {
                self.flights.push(Some(flight));
                self.flights.len() as u32 - 1
            }
        };
        self.by_phone.entry(sms.phone).or_default().push(slot);
        self.live += 1;
        self.stats.sent += 1;
        self.stats.submits += 1;
        self.second(now).sent += 1;
        Ticket {
            slot,
            serial: self.serial,
        }
    }

    /// The text of an MO and its phone, to write it (again).
    pub fn text_of(&self, t: Ticket) -> Option<(&str, u32)> {
        self.flight(t).map(|f| (&*f.text, f.phone))
    }

    /// Records that an MO was written again at `now`.
    pub fn resent(&mut self, t: Ticket, now: Instant, unix: i64) {
        if let Some(f) = self.flight_mut(t) {
            f.sent = now;
            f.sent_unix = unix;
            f.attempts += 1;
            self.stats.submits += 1;
            self.stats.resent += 1;
        }
    }

    /// Records that the session carrying an MO ended before the gateway acknowledged it: it
    /// will be sent again, and the gateway may have decided it already.
    pub fn unacknowledged(&mut self, t: Ticket) {
        if let Some(f) = self.flight_mut(t)
            && !f.redelivered
        {
            f.redelivered = true;
            self.stats.redelivered += 1;
        }
    }

    /// Handles the acknowledgement (submit_sm_resp, deliver_sm_resp, or generic_nack) for an
    /// MO.
    pub fn on_ack(&mut self, t: Ticket, status: u32, now: Instant, unix: i64) -> AckOutcome {
        let Some(f) = self.flight_mut(t) else {
            return AckOutcome::Unknown;
        };
        if status == 0 {
            f.acked = true;
            let (expect, sent_unix, needs) = (f.expect, f.sent_unix, f.prediction.is_none());
            let phone = f.phone;
            if needs && let Expect::Request { doc, code } = expect {
                let p = self
                    .oracle
                    .decide_from(Some(phone), doc, code, sent_unix, unix);
                if let Some(f) = self.flight_mut(t) {
                    f.prediction = Some(p);
                }
            }
            if needs && let Expect::Family(family) = expect {
                // Each document as if sent alone, in text order.
                let lines: Vec<Prediction> = family
                    .docs()
                    .iter()
                    .map(|&d| {
                        self.oracle
                            .decide_from(Some(phone), d, family.code, sent_unix, unix)
                    })
                    .collect();
                if let Some(f) = self.flight_mut(t) {
                    f.prediction = Some(Prediction {
                        class: Class::Family,
                        alternative: None,
                        undo: None,
                    });
                    f.lines = lines;
                }
            }
            if needs && let Expect::Status(asked) = expect {
                let lines = self.status_lines(phone, asked.docs(), sent_unix);
                if let Some(f) = self.flight_mut(t) {
                    f.prediction = Some(Prediction {
                        class: Class::Status,
                        alternative: None,
                        undo: None,
                    });
                    f.lines = lines;
                }
            }
            self.stats.acked += 1;
            self.second(now).acked += 1;
            let replied = self.flight(t).is_some_and(|f| f.actual.is_some());
            if replied {
                self.resolve(t);
            }
            return AckOutcome::Accepted;
        }
        let attempts = f.attempts;
        let phone = f.phone;
        *self.stats.errors.entry(status_name(status)).or_default() += 1;
        if status == Status::ESME_RTHROTTLED.code() {
            self.stats.throttled += 1;
            self.second(now).throttled += 1;
        }
        if is_transient(status) && attempts < MAX_ATTEMPTS {
            // It goes to the back of its phone's queue: its reply will come after those
            // of MOs the gateway has already taken.
            if let Some(slots) = self.by_phone.get_mut(&phone) {
                slots.retain(|&s| s != t.slot);
                slots.push(t.slot);
            }
            return AckOutcome::Retry;
        }
        self.stats.dropped += 1;
        self.remove(t);
        AckOutcome::Dropped
    }

    /// The lines a status reply to `phone` must have: per document, its permits of today
    /// when `phone` is the one that asked for them (a header and a line each), else none.
    fn status_lines(&mut self, phone: u32, docs: &[u32], unix: i64) -> Vec<Prediction> {
        let line = |class| Prediction {
            class,
            alternative: None,
            undo: None,
        };
        let mut lines = Vec::new();
        for &d in docs {
            let n = if self.pop.owner(d) == phone {
                self.oracle.grants_today(d, unix)
            } else {
                0
            };
            if n == 0 {
                lines.push(line(Class::StatusNone));
            } else {
                lines.push(line(Class::Status));
                lines.extend((0..n).map(|_| line(Class::StatusLine)));
            }
        }
        lines
    }

    fn display(&self, doc: u32) -> String {
        let (kind, number) = self.pop.document(doc);
        let series = self
            .rules
            .kinds
            .get(kind)
            .map_or("?", |k| k.series.as_str());
        format!("{series} {number}")
    }

    /// Whether a reply of `class` saying `said` can be the answer to `f`.
    fn fits(&self, f: &Flight, class: Class, said: Option<&Classified>) -> bool {
        match f.expect {
            Expect::Invalid(r) => class == Class::Invalid(Some(r)) || class == Class::Invalid(None),
            Expect::Help => class == Class::Help,
            Expect::Status(asked) => {
                class == Class::Status
                    && said
                        .is_none_or(|c| check::names_status(c, asked.docs(), &|d| self.display(d)))
            }
            Expect::Family(family) => {
                class == Class::Family
                    && said.is_none_or(|c| {
                        check::names_family(c, family.code, family.docs(), &|d| self.display(d))
                    })
            }
            Expect::Request { doc, code } => {
                let echoes = said.is_none_or(|c| {
                    c.code.is_none_or(|x| x == u32::from(code))
                        && c.document.as_ref().is_none_or(|d| *d == self.display(doc))
                });
                let class_ok = match (f.prediction, f.hint) {
                    (Some(p), _) => f.right(&p, class),
                    (None, Some(h)) => h == class,
                    (None, None) => class.is_decision(),
                };
                class.is_decision() && echoes && class_ok
            }
        }
    }

    /// Handles a reply: finds its MO, records the latency, and checks it once the MO's
    /// prediction is known.
    pub fn on_reply(&mut self, reply: Reply) {
        self.stats.replies += 1;
        let class = reply
            .classified
            .as_ref()
            .map_or(Class::Unrecognised, |c| c.key.class());
        if class == Class::Unrecognised {
            self.stats.unrecognised += 1;
        }
        // The first MO of the phone still waiting for a reply, and the first one this
        // reply fits (usually the same).
        let mut first_open = None;
        let mut chosen = None;
        if let Some(slots) = reply.phone.and_then(|p| self.by_phone.get(&p)) {
            for &s in slots {
                let Some(f) = self.flights[s as usize].as_ref() else {
                    continue;
                };
                if f.actual.is_some() {
                    continue;
                }
                first_open.get_or_insert(s);
                if self.fits(f, class, reply.classified.as_ref()) {
                    chosen = Some(s);
                    break;
                }
            }
        }
        let chosen = chosen.or(first_open);
        let Some(slot) = chosen else {
            self.stats.duplicates += 1;
            if self.stats.duplicate_list.len() < LISTED {
                self.stats.duplicate_list.push(DuplicateRecord {
                    msisdn: reply.msisdn,
                    reply: reply.text,
                    why: if reply.phone.is_some() {
                        "no MO of this phone is waiting for a reply".into()
                    } else {
                        "not a number the simulator sends from".into()
                    },
                });
            }
            return;
        };
        if first_open != Some(slot) {
            self.stats.reordered += 1;
        }
        let Some(f) = self.flights[slot as usize].as_mut() else {
            return;
        };
        let t = Ticket {
            slot,
            serial: f.serial,
        };
        let latency = reply.arrived.saturating_duration_since(f.sent).as_micros() as u64;
        f.actual = Some((class, reply.classified, reply.text));
        let acked = f.acked;
        self.stats.answered += 1;
        self.stats.latency.saturating_record(latency.max(1));
        let second = self.second(reply.arrived);
        second.answered += 1;
        second
            .latency
            .get_or_insert_with(|| histogram(2))
            .saturating_record(latency.max(1));
        if acked {
            self.resolve(t);
        }
    }

    /// Compares an MO's reply with its prediction and forgets the MO.
    fn resolve(&mut self, t: Ticket) {
        let Some(mut f) = self.remove(t) else {
            return;
        };
        let (Some(p), Some((got, said, reply))) = (f.prediction, f.actual.take()) else {
            return;
        };
        if p.alternative.is_some() {
            self.stats.boundary += 1;
        }
        // A grant predicted where "active" was right too, answered "active": the permit
        // before ended later than the oracle dated it, and there is no new one. A grant
        // answered "try again later" was not made either (a family's: none of its lines).
        if let Some(undo) = &p.undo
            && ((got == Class::Active && p.alternative == Some(Class::Active))
                || got == Class::TryLater)
        {
            self.oracle.undo(undo);
        }
        if got == Class::TryLater {
            for line in &f.lines {
                if let Some(undo) = &line.undo {
                    self.oracle.undo(undo);
                }
            }
        }
        *self.stats.expected.entry(p.class.name()).or_default() += 1;
        *self.stats.got.entry(got.name()).or_default() += 1;
        for line in &f.lines {
            *self
                .stats
                .expected
                .entry(line.class.as_line().name())
                .or_default() += 1;
        }
        if let Some(said) = &said {
            *self
                .stats
                .languages
                .entry(said.lang.tag().into())
                .or_default() += 1;
            for line in &said.lines {
                *self.stats.got.entry(line.class.name()).or_default() += 1;
            }
        }
        let mut why = check::differences(
            &f.expect,
            &p,
            &f.lines,
            f.redelivered,
            got,
            said.as_ref(),
            &self.rules,
            &|d| self.display(d),
        );
        if let (Some(want), Some(said)) = (f.lang, &said)
            && said.lang != want
        {
            why.push(format!(
                "answered in {}, not {}",
                said.lang.tag(),
                want.tag()
            ));
        }
        if why.is_empty() {
            return;
        }
        self.stats.mismatches += 1;
        // A second permit for a document (a family's line included) is named as such.
        let kind = if why
            .iter()
            .any(|w| w.contains("expected active, got granted"))
        {
            "active → granted".to_string()
        } else {
            let predicted = match f.expect {
                Expect::Request { .. } | Expect::Invalid(_) | Expect::Help => p.class.name(),
                Expect::Family(_) => "family".into(),
                Expect::Status(_) => "status".into(),
            };
            format!("{predicted} → {}", got.name())
        };
        let of_kind = self.stats.mismatch_kinds.entry(kind).or_default();
        *of_kind += 1;
        // The first of every kind too, not only the first of the run.
        if self.stats.mismatch_list.len() < LISTED || *of_kind <= 3 {
            let expected = match f.expect {
                Expect::Request { doc, code } => {
                    format!("{} (code {code}, {})", p.class.name(), self.display(doc))
                }
                Expect::Family(family) => {
                    let lines: Vec<String> = family
                        .docs()
                        .iter()
                        .zip(&f.lines)
                        .map(|(&d, l)| format!("{} {}", self.display(d), l.class.as_line().name()))
                        .collect();
                    format!("family (code {}: {})", family.code, lines.join(", "))
                }
                Expect::Status(_) => {
                    let lines: Vec<String> = f.lines.iter().map(|l| l.class.name()).collect();
                    format!("status ({})", lines.join(", "))
                }
                Expect::Invalid(_) | Expect::Help => p.class.name(),
            };
            self.stats.mismatch_list.push(MismatchRecord {
                msisdn: self.pop.msisdn(f.phone),
                sent: f.text.into(),
                origin: f.origin.name().into(),
                expected,
                got: got.name(),
                reply,
                why: why.join("; "),
            });
        }
    }

    fn remove(&mut self, t: Ticket) -> Option<Flight> {
        self.flight(t)?;
        let f = self.flights[t.slot as usize].take()?;
        self.free.push(t.slot);
        self.live -= 1;
        if let Some(slots) = self.by_phone.get_mut(&f.phone) {
            slots.retain(|&s| s != t.slot);
            if slots.is_empty() {
                self.by_phone.remove(&f.phone);
            }
        }
        Some(f)
    }

    /// Ends the run: every MO still here is missing its acknowledgement or its reply.
    /// Returns (missing, the first few of them).
    pub fn close(&mut self) -> (u64, Vec<MissingRecord>) {
        let mut list = Vec::new();
        let mut missing = 0;
        for f in self.flights.iter_mut().filter_map(Option::take) {
            missing += 1;
            if list.len() < LISTED {
                list.push(MissingRecord {
                    msisdn: self.pop.msisdn(f.phone),
                    sent: f.text.into(),
                    origin: f.origin.name().into(),
                    expected: f
                        .prediction
                        .or(f.hint.map(|class| Prediction {
                            class,
                            alternative: None,
                            undo: None,
                        }))
                        .map_or_else(|| "?".into(), |p| p.class.name()),
                    acknowledged: f.acked,
                    replied: f.actual.is_some(),
                    attempts: f.attempts,
                });
            }
        }
        self.by_phone.clear();
        self.free.clear();
        self.flights.clear();
        self.live = 0;
        (missing, list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replies::Classifier;
    use crate::traffic::Reason;

    struct World {
        ledger: Ledger,
        pop: Arc<Population>,
        rules: Arc<Rules>,
        classifier: Classifier,
    }

    fn world() -> World {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rules.toml");
        let rules = Arc::new(Rules::load(&path).unwrap());
        let pop = Arc::new(Population::new(&rules, 50, 3).unwrap());
        let oracle = Oracle::new(rules.clone(), &pop);
        World {
            ledger: Ledger::new(oracle, pop.clone(), rules.clone(), Instant::now()),
            classifier: Classifier::new(&rules).unwrap(),
            pop,
            rules,
        }
    }

    impl World {
        fn request(&mut self, doc: u32, code: u8) -> Ticket {
            let phone = self.pop.owner(doc);
            let (kind, number) = self.pop.document(doc);
            let sms = Sms {
                phone,
                text: format!("{code} {} {number}", self.rules.kinds[kind].series),
                expect: Expect::Request { doc, code },
                origin: Origin::Clean,
            };
            self.ledger.register(sms, Instant::now(), 1_586_152_800)
        }

        fn reply(&mut self, doc: u32, text: &str) {
            let phone = self.pop.owner(doc);
            self.ledger.on_reply(Reply {
                msisdn: self.pop.msisdn(phone),
                phone: Some(phone),
                text: text.into(),
                classified: self.classifier.classify(text),
                arrived: Instant::now(),
            });
        }

        fn doc_text(&self, doc: u32) -> String {
            let (kind, number) = self.pop.document(doc);
            format!("{} {number}", self.rules.kinds[kind].series)
        }
    }

    const NOW: i64 = 1_586_152_800;

    #[test]
    fn a_family_reply_is_checked_document_by_document_in_order() {
        let mut w = world();
        // Two documents of one household (phone), the first granted alone beforehand.
        let phone = (0..w.pop.phones())
            .find(|&p| w.pop.docs_of(p).len() >= 2)
            .unwrap();
        let docs: Vec<u32> = w.pop.docs_of(phone).take(2).collect();
        let (d0, d1) = (w.doc_text(docs[0]), w.doc_text(docs[1]));
        let a = w.request(docs[0], 2);
        w.ledger.on_ack(a, 0, Instant::now(), NOW);
        w.reply(
            docs[0],
            &format!("İCAZƏ VERİLDİ: kod 2 (x), {d0}, 10:00–13:00. İcazə № A"),
        );
        let family = |w: &mut World| {
            let sms = Sms {
                phone,
                text: format!("2 {d0} {d1}"),
                expect: Expect::Family(crate::traffic::Family::new(2, &docs)),
                origin: Origin::Family,
            };
            assert!(!w.ledger.busy(phone, docs[1], 3));
            let t = w.ledger.register(sms, Instant::now(), NOW);
            assert!(
                w.ledger.busy(phone, docs[1], 2),
                "a family's documents are busy"
            );
            w.ledger.on_ack(t, 0, Instant::now(), NOW);
        };
        family(&mut w);
        // Each document as if sent alone: the first's permit is active, the second granted.
        w.reply(
            docs[0],
            &format!(
                "Kod 2 (x), 2 sənəd:\n{d0}: artıq var 10:00–13:00, № A\n{d1}: VERİLDİ 10:00–13:00, № B"
            ),
        );
        assert_eq!(
            w.ledger.stats().mismatches,
            0,
            "{:?}",
            w.ledger.stats().mismatch_list
        );
        assert_eq!(w.ledger.stats().got.get("family"), Some(&1));
        // Again: both active now; a reply saying the second was granted again is wrong.
        family(&mut w);
        w.reply(
            docs[0],
            &format!(
                "Kod 2 (x), 2 sənəd:\n{d0}: artıq var 10:00–13:00, № A\n{d1}: VERİLDİ 10:00–13:00, № B"
            ),
        );
        let s = w.ledger.stats();
        assert_eq!(s.mismatches, 1);
        assert_eq!(
            s.mismatch_kinds.get("active → granted"),
            Some(&1),
            "a second permit is counted as one: {:?}",
            s.mismatch_kinds
        );
        assert!(
            s.mismatch_list[0]
                .why
                .contains("expected active, got granted"),
            "{:?}",
            s.mismatch_list
        );
        // A reply listing the documents in another order does not answer the family.
        family(&mut w);
        w.reply(
            docs[0],
            &format!(
                "Kod 2 (x), 2 sənəd:\n{d1}: artıq var 10:00–13:00, № B\n{d0}: artıq var 10:00–13:00, № A"
            ),
        );
        assert_eq!(w.ledger.stats().mismatches, 2);
        assert!(w.ledger.stats().mismatch_list[1].why.contains("line"));
    }

    #[test]
    fn a_grant_answered_try_again_is_not_counted_as_made() {
        let mut w = world();
        let doc = w.pop.docs_of(0).start;
        let d = w.doc_text(doc);
        // Predicted a grant, answered "try again later" (the store was away): a mismatch,
        // and no permit in the oracle's books.
        let a = w.request(doc, 2);
        w.ledger.on_ack(a, 0, Instant::now(), NOW);
        w.reply(
            doc,
            "Sorğunuzu indi emal etmək mümkün olmadı. Bir neçə dəqiqədən sonra yenidən göndərin.",
        );
        // So the re-send is predicted a grant again, and a grant is right.
        let b = w.request(doc, 2);
        w.ledger.on_ack(b, 0, Instant::now(), NOW);
        w.reply(
            doc,
            &format!("İCAZƏ VERİLDİ: kod 2 (x), {d}, 10:00–13:00. İcazə № A"),
        );
        let s = w.ledger.stats();
        assert_eq!(s.mismatches, 1, "{:?}", s.mismatch_list);
        assert_eq!(
            s.mismatch_kinds.get("granted → try_later"),
            Some(&1),
            "{:?}",
            s.mismatch_kinds
        );
    }

    #[test]
    fn a_help_word_gets_the_usage_reply() {
        let mut w = world();
        let sms = Sms {
            phone: 0,
            text: "kömək".into(),
            expect: Expect::Help,
            origin: Origin::Help,
        };
        let t = w.ledger.register(sms, Instant::now(), NOW);
        w.ledger.on_ack(t, 0, Instant::now(), NOW);
        w.reply(
            w.pop.docs_of(0).start,
            "İcazə üçün yazın: KOD SERİYA NÖMRƏ, məs. 1 AZE 12345678. Kodlar: 1 (a), 2 (b).",
        );
        let s = w.ledger.stats();
        assert_eq!((s.answered, s.mismatches), (1, 0), "{:?}", s.mismatch_list);
    }

    #[test]
    fn grant_then_active_in_order_and_out_of_order() {
        let mut w = world();
        let d = w.doc_text(0);
        let a = w.request(0, 2);
        assert!(w.ledger.busy(w.pop.owner(0), 0, 2));
        assert_eq!(
            w.ledger.on_ack(a, 0, Instant::now(), NOW),
            AckOutcome::Accepted
        );
        w.reply(
            0,
            &format!("İCAZƏ VERİLDİ: kod 2 (x), {d}, 10:00–13:00. İcazə № A"),
        );
        assert!(!w.ledger.busy(w.pop.owner(0), 0, 2));
        // A repeat whose reply comes before its acknowledgement.
        let b = w.request(0, 2);
        w.reply(
            0,
            &format!("İcazəniz artıq var: kod 2 (x), {d}, 10:00–13:00. İcazə № A"),
        );
        assert_eq!(w.ledger.outstanding(), 1);
        w.ledger.on_ack(b, 0, Instant::now(), NOW);
        let s = w.ledger.stats();
        assert_eq!((s.answered, s.mismatches, s.duplicates), (2, 0, 0));
        assert_eq!(w.ledger.outstanding(), 0);
    }

    #[test]
    fn wrong_class_wrong_echo_duplicate_and_missing_are_caught() {
        let mut w = world();
        let d = w.doc_text(1);
        let a = w.request(1, 2);
        w.ledger.on_ack(a, 0, Instant::now(), NOW);
        w.reply(
            1,
            &format!("İcazəniz artıq var: kod 2 (x), {d}, 10:00–13:00. İcazə № A"),
        );
        assert_eq!(w.ledger.stats().mismatches, 1);
        w.reply(
            1,
            "Boş mesaj. Yazın: KOD SERİYA NÖMRƏ, məs. 1 AZE 12345678. Kodlar: 1, 2, 3.",
        );
        assert_eq!(w.ledger.stats().duplicates, 1);
        // A window that is not the code's validity.
        let b = w.request(2, 2);
        w.ledger.on_ack(b, 0, Instant::now(), NOW);
        let d2 = w.doc_text(2);
        w.reply(
            2,
            &format!("İCAZƏ VERİLDİ: kod 2 (x), {d2}, 10:00–12:00. İcazə № A"),
        );
        assert_eq!(w.ledger.stats().mismatches, 2);
        assert!(w.ledger.stats().mismatch_list[1].why.contains("window"));
        let c = w.request(3, 1);
        w.ledger.on_ack(c, 0, Instant::now(), NOW);
        let (missing, list) = w.ledger.close();
        assert_eq!(missing, 1);
        assert!(list[0].acknowledged && !list[0].replied);
    }

    #[test]
    fn a_redelivered_grant_may_come_back_active_and_nothing_else_may() {
        let mut w = world();
        let (d5, d6) = (w.doc_text(5), w.doc_text(6));
        // The session carrying both ended before their acknowledgements.
        let a = w.request(5, 2);
        let b = w.request(6, 2);
        w.ledger.unacknowledged(a);
        w.ledger.unacknowledged(a);
        w.ledger.unacknowledged(b);
        assert_eq!(w.ledger.stats().redelivered, 2);
        for t in [a, b] {
            w.ledger.resent(t, Instant::now(), NOW);
            w.ledger.on_ack(t, 0, Instant::now(), NOW);
        }
        // The gateway had granted the first before it lost the bind: right.
        w.reply(
            5,
            &format!("İcazəniz artıq var: kod 2 (x), {d5}, 10:00–13:00. İcazə № A"),
        );
        assert_eq!(w.ledger.stats().mismatches, 0);
        // A refusal is no answer to a grant, redelivered or not.
        w.reply(
            6,
            &format!(
                "İcazə verilmədi: {d6} bu gün kod 2 üzrə icazəsini artıq alıb (gündə 1). Sabah yenidən yazın."
            ),
        );
        let s = w.ledger.stats();
        assert_eq!((s.answered, s.mismatches), (2, 1), "{:?}", s.mismatch_list);
        assert_eq!(s.got.get("daily_limit"), Some(&1));
        assert!(
            s.mismatch_list[0]
                .why
                .contains("expected granted, got daily_limit")
        );
        // An MO that was never redelivered still must get its grant.
        let c = w.request(7, 2);
        w.ledger.on_ack(c, 0, Instant::now(), NOW);
        let d7 = w.doc_text(7);
        w.reply(
            7,
            &format!("İcazəniz artıq var: kod 2 (x), {d7}, 10:00–13:00. İcazə № A"),
        );
        assert_eq!(w.ledger.stats().mismatches, 2);
    }

    #[test]
    fn throttled_mos_are_sent_again_and_predicted_in_gateway_order() {
        let mut w = world();
        let d = w.doc_text(4);
        let a = w.request(4, 2);
        let phone = w.pop.owner(4);
        let invalid = w.ledger.register(
            Sms {
                phone,
                text: "salam".into(),
                expect: Expect::Invalid(Reason::NoCode),
                origin: Origin::Invalid,
            },
            Instant::now(),
            NOW,
        );
        assert_eq!(
            w.ledger
                .on_ack(a, Status::ESME_RTHROTTLED.code(), Instant::now(), NOW),
            AckOutcome::Retry
        );
        w.ledger.on_ack(invalid, 0, Instant::now(), NOW);
        w.reply(
            4,
            "Mesaj icazə kodu ilə başlamalıdır (1, 2, 3), məs. 1 AZE 12345678.",
        );
        w.ledger.resent(a, Instant::now(), NOW);
        w.ledger.on_ack(a, 0, Instant::now(), NOW);
        w.reply(
            4,
            &format!("İCAZƏ VERİLDİ: kod 2 (x), {d}, 10:00–13:00. İcazə № A"),
        );
        let s = w.ledger.stats();
        assert_eq!(
            (s.answered, s.mismatches, s.throttled, s.resent),
            (2, 0, 1, 1)
        );
        assert_eq!(s.errors.get("ESME_RTHROTTLED"), Some(&1));
        assert_eq!(
            w.ledger.on_ack(a, 0, Instant::now(), NOW),
            AckOutcome::Unknown
        );
    }
}
