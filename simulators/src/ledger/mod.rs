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

mod matching;
mod stats;

use stats::{MAX_SECONDS, histogram};
pub use stats::{Second, Stats};

use crate::check;
use crate::language::ReplyLanguage;
use crate::oracle::{Class, Oracle, Prediction};
use crate::population::Population;
use crate::replies::{Classified, Lang};
use crate::report::{DuplicateRecord, MismatchRecord, MissingRecord};
use crate::rng::IntMap;
use crate::rules::Rules;
use crate::traffic::{Expect, Origin, Sms};
use icaze::smpp::Status;
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
                (Some(class), Some(Prediction::sure(class)))
            }
            Expect::Request { doc, code } => (self.oracle.stateless(doc, code), None),
            Expect::Family(_) => (Some(Class::Family), None),
            Expect::Status(_) => (Some(Class::Status), None),
            Expect::Help => (Some(Class::Help), Some(Prediction::sure(Class::Help))),
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
            if needs {
                let decided = match expect {
                    Expect::Request { doc, code } => Some((
                        self.oracle
                            .decide_from(Some(phone), doc, code, sent_unix, unix),
                        Vec::new(),
                    )),
                    // Each document as if sent alone, in text order.
                    Expect::Family(family) => {
                        let lines = family
                            .docs()
                            .iter()
                            .map(|&d| {
                                self.oracle.decide_from(
                                    Some(phone),
                                    d,
                                    family.code,
                                    sent_unix,
                                    unix,
                                )
                            })
                            .collect();
                        Some((Prediction::sure(Class::Family), lines))
                    }
                    Expect::Status(asked) => {
                        let lines = self.status_lines(phone, asked.docs(), sent_unix);
                        Some((Prediction::sure(Class::Status), lines))
                    }
                    Expect::Invalid(_) | Expect::Help => None,
                };
                if let (Some((p, lines)), Some(f)) = (decided, self.flight_mut(t)) {
                    f.prediction = Some(p);
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
        let line = Prediction::sure;
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
                        .map(|p| p.class)
                        .or(f.hint)
                        .map_or_else(|| "?".into(), Class::name),
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
mod tests;
