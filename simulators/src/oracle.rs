//! The oracle: an independent model of the rules that predicts the class of every reply.
//!
//! It is written from the rules file and the gateway's documented behaviour, not from its
//! code: a refusal for a blocked document first, then a switched-off code, then "active"
//! while a permit of that code is still valid (the same permit again, outside permitted
//! hours too), then permitted hours, then the quota group's daily limit on the Baku calendar
//! day, then a grant. A grant counts for the local day it was issued.
//!
//! State is three flat arrays indexed by document (and code or group), so a population of a
//! million costs about 10 bytes per document and code, allocated once.
//!
//! Time: the gateway decides with its wall clock when it reads the MO; the oracle uses the
//! wall clock when the MO was written. Within a run the difference is a few milliseconds and
//! only matters when a Baku midnight or an edge of a code's permitted hours falls between the
//! two: such MOs are predicted both ways and either answer is accepted (see
//! [`Prediction::alternative`]).

use crate::population::Population;
use crate::rules::Rules;
use crate::traffic::Reason;
use chrono::{Datelike, TimeZone, Timelike};
use std::collections::HashMap;
use std::sync::Arc;

/// The class of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// A new permit.
    Granted,
    /// The permit already held, sent again.
    Active,
    /// Refused: the day's limit is used.
    DailyLimit,
    /// Refused: not at this hour.
    OutsideHours,
    /// Refused: the code is switched off.
    CodeDisabled,
    /// Refused: the document is blocked for the code.
    Blocked,
    /// Not a request; with the parse reason when the reply says which.
    Invalid(Option<Reason>),
    /// The gateway could not decide (store down).
    TryLater,
    /// Refused: an official revoked the permit this repeat asks for (through the admin
    /// API; the oracle never predicts it).
    Revoked,
    /// A reply no template matches.
    Unrecognised,
    /// The usage reply to a help word.
    Help,
    /// One reply for a family: its lines carry each document's outcome.
    Family,
    /// A family line refused without saying why: what blocked, outside hours and switched
    /// off become in a family reply.
    Refused,
    /// Refused under an abuse limit (documents per phone, or `abuse_after`).
    Abuse,
    /// A status reply; as a line, a document with permits today from this phone.
    Status,
    /// A status reply's line for one permit.
    StatusLine,
    /// A status reply's line for a document without permits today from this phone.
    StatusNone,
}

impl Class {
    /// A stable name for reports: `granted`, `invalid:no_code`, ….
    pub fn name(self) -> String {
        match self {
            Class::Granted => "granted".into(),
            Class::Active => "active".into(),
            Class::DailyLimit => "daily_limit".into(),
            Class::OutsideHours => "outside_hours".into(),
            Class::CodeDisabled => "code_disabled".into(),
            Class::Blocked => "blocked".into(),
            Class::Invalid(None) => "invalid".into(),
            Class::Invalid(Some(r)) => format!("invalid:{}", r.key()),
            Class::TryLater => "try_later".into(),
            Class::Revoked => "revoked".into(),
            Class::Unrecognised => "unrecognised".into(),
            Class::Help => "help".into(),
            Class::Family => "family".into(),
            Class::Refused => "refused".into(),
            Class::Abuse => "abuse".into(),
            Class::Status => "status".into(),
            Class::StatusLine => "status_line".into(),
            Class::StatusNone => "status_none".into(),
        }
    }

    /// The class as a family reply's line shows it: refusals other than the daily limit
    /// and a revocation give no reason there.
    pub fn as_line(self) -> Class {
        match self {
            Class::Blocked | Class::OutsideHours | Class::CodeDisabled => Class::Refused,
            other => other,
        }
    }

    /// Whether the class is a decision about a request (it names a code).
    pub fn is_decision(self) -> bool {
        matches!(
            self,
            Class::Granted
                | Class::Active
                | Class::DailyLimit
                | Class::OutsideHours
                | Class::CodeDisabled
                | Class::Blocked
                | Class::Abuse
        )
    }
}

/// A prediction for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prediction {
    /// The class at the MO's send time.
    pub class: Class,
    /// The class at the time the gateway acknowledged it, when that differs (a day boundary
    /// or an hours edge fell in between): either answer is right.
    pub alternative: Option<Class>,
    /// For a grant: what recording it changed, taken back with [`Oracle::undo`] if the
    /// gateway did not grant it: it answered "try again later" (the store was away), or,
    /// where "active" is right too (the permit before may have ended later than the oracle
    /// dated it, `alternative`), "active".
    pub undo: Option<Undo>,
}

/// The oracle's state of one document and code before a grant was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undo {
    ui: usize,
    until: u32,
    late: Option<u32>,
    di: usize,
    day: u32,
    ni: usize,
    used: u32,
    phone: Option<(u32, Option<(u32, u32)>)>,
}

impl Prediction {
    /// `class` and nothing else: no other answer is right, nothing to take back.
    pub fn sure(class: Class) -> Prediction {
        Prediction {
            class,
            alternative: None,
            undo: None,
        }
    }

    /// Whether `got` is a right answer.
    pub fn accepts(&self, got: Class) -> bool {
        self.class == got || self.alternative == Some(got)
    }
}

/// The oracle's state of every document.
#[derive(Debug)]
pub struct Oracle {
    rules: Arc<Rules>,
    codes: usize,
    groups: usize,
    /// Per document, `codes + 2 * groups` words side by side, so one decision touches one
    /// cache line: for each code the end of its latest grant (Unix seconds, 0 for none),
    /// then for each group the local day (days since 0001-01-01, 0 for none) of its latest
    /// grant and the grants on that day.
    state: Vec<u32>,
    /// Blocked documents and the codes refused (`None`: every code).
    blocked: HashMap<u32, Option<Vec<u8>>>,
    /// Last converted second: (unix, local day, second of day).
    clock: (i64, u32, u32),
    /// Per phone, for `max_documents_per_phone`: the local day and how many distinct
    /// documents got a new permit that day.
    phones: HashMap<u32, (u32, u32)>,
    /// Grants whose MO was acknowledged in a later second than it was sent: the gateway
    /// dated the permit somewhere in between, so it may end up to this late (the state
    /// holds the end by the send second). Index as in `state`.
    late: HashMap<usize, u32>,
}

impl Oracle {
    /// A fresh oracle: no document has a permit yet (the gateway must be fresh too, or the
    /// population one it has not seen).
    pub fn new(rules: Arc<Rules>, pop: &Population) -> Oracle {
        let docs = pop.documents() as usize;
        let codes = rules.codes.len();
        let groups = rules.groups.len();
        let mut blocked: HashMap<u32, Option<Vec<u8>>> = HashMap::new();
        for (block, &doc) in rules.blocklist.iter().zip(pop.blocklisted()) {
            let entry = blocked.entry(doc).or_insert_with(|| Some(Vec::new()));
            match (&block.codes, entry.as_mut()) {
                (None, _) => *entry = None,
                (Some(cs), Some(list)) => list.extend(cs),
                (Some(_), None) => {}
            }
        }
        Oracle {
            state: vec![0; docs * (codes + 2 * groups)],
            rules,
            codes,
            groups,
            blocked,
            clock: (i64::MIN, 0, 0),
            phones: HashMap::new(),
            late: HashMap::new(),
        }
    }

    /// Local day and second of day of a Unix second, cached per second.
    fn local(&mut self, unix: i64) -> (u32, u32) {
        if self.clock.0 != unix {
            let (day, sod) = match self.rules.tz.timestamp_opt(unix, 0).earliest() {
                Some(t) => (
                    t.date_naive().num_days_from_ce().max(1) as u32,
                    t.time().num_seconds_from_midnight(),
                ),
                None => (1, 0),
            };
            self.clock = (unix, day, sod);
        }
        (self.clock.1, self.clock.2)
    }

    /// Decides a request the way the gateway must, at `unix` (the send time), recording a
    /// grant; `ack_unix` is when the gateway answered, for the boundary check.
    pub fn decide(&mut self, doc: u32, code: u8, unix: i64, ack_unix: i64) -> Prediction {
        self.decide_from(None, doc, code, unix, ack_unix)
    }

    /// [`Oracle::decide`] for a request sent from `phone` (`None`: no phone limit applies).
    pub fn decide_from(
        &mut self,
        phone: Option<u32>,
        doc: u32,
        code: u8,
        unix: i64,
        ack_unix: i64,
    ) -> Prediction {
        let at_ack = if ack_unix != unix {
            Some(self.evaluate(phone, doc, code, ack_unix, false))
        } else {
            None
        };
        // The permit before may end later than the state says (its grant was dated by the
        // gateway after its send second): then "active" is right too.
        let slot = self.slot(doc, code);
        let now = unix.max(0) as u32;
        let late_active = slot.is_some_and(|(ui, ..)| {
            self.state.get(ui).is_some_and(|&u| u <= now)
                && self.late.get(&ui).is_some_and(|&late| late > now)
        });
        let before = slot.map(|(ui, di, ni, _)| Undo {
            ui,
            until: self.state.get(ui).copied().unwrap_or(0),
            late: self.late.get(&ui).copied(),
            di,
            day: self.state.get(di).copied().unwrap_or(0),
            ni,
            used: self.state.get(ni).copied().unwrap_or(0),
            phone: phone.map(|p| (p, self.phones.get(&p).copied())),
        });
        let class = self.evaluate(phone, doc, code, unix, true);
        if class == Class::Granted
            && let Some((ui, _, _, validity)) = slot
        {
            if ack_unix > unix {
                self.late
                    .insert(ui, (ack_unix.max(0) as u32).saturating_add(validity));
            } else {
                self.late.remove(&ui);
            }
        }
        let mut alternative = at_ack.filter(|c| *c != class);
        let undo = if class == Class::Granted {
            before
        } else {
            None
        };
        if late_active && class != Class::Active {
            alternative = Some(Class::Active);
        }
        Prediction {
            class,
            alternative,
            undo,
        }
    }

    /// Where `doc` and `code` are in `state`: the code's end, the group's day and count,
    /// and the code's validity.
    fn slot(&self, doc: u32, code: u8) -> Option<(usize, usize, usize, u32)> {
        let (ci, rule) = self.rules.code(code)?;
        let base = doc as usize * (self.codes + 2 * self.groups);
        let g = base + self.codes + 2 * rule.group;
        Some((base + ci, g, g + 1, rule.validity_secs))
    }

    /// Takes back a grant the oracle recorded and the gateway did not make: answered
    /// "active" (the permit before ended later than dated) or "try again later" (see
    /// [`Prediction::undo`]). Several are taken back newest first.
    pub fn undo(&mut self, undo: &Undo) {
        for (i, v) in [
            (undo.ui, undo.until),
            (undo.di, undo.day),
            (undo.ni, undo.used),
        ] {
            if let Some(s) = self.state.get_mut(i) {
                *s = v;
            }
        }
        match undo.late {
            Some(late) => self.late.insert(undo.ui, late),
            None => self.late.remove(&undo.ui),
        };
        if let Some((p, before)) = undo.phone {
            match before {
                Some(e) => self.phones.insert(p, e),
                None => self.phones.remove(&p),
            };
        }
    }

    /// The class a request gets before any state is consulted (unknown code, blocked,
    /// switched off), or `None` if it depends on what came before.
    pub fn stateless(&self, doc: u32, code: u8) -> Option<Class> {
        let Some((_, rule)) = self.rules.code(code) else {
            return Some(Class::Invalid(Some(Reason::UnknownCode)));
        };
        if self.is_blocked(doc, code) {
            return Some(Class::Blocked);
        }
        if !rule.enabled {
            return Some(Class::CodeDisabled);
        }
        None
    }

    fn is_blocked(&self, doc: u32, code: u8) -> bool {
        match self.blocked.get(&doc) {
            None => false,
            Some(None) => true,
            Some(Some(codes)) => codes.contains(&code),
        }
    }

    /// Permits `doc` got on the local day of `unix`, all codes together: what a status
    /// reply from its own phone lists (one line each).
    pub fn grants_today(&mut self, doc: u32, unix: i64) -> u32 {
        let (day, _) = self.local(unix);
        let base = doc as usize * (self.codes + 2 * self.groups) + self.codes;
        (0..self.groups)
            .filter(|g| self.state.get(base + 2 * g) == Some(&day))
            .map(|g| self.state.get(base + 2 * g + 1).copied().unwrap_or(0))
            .sum()
    }

    fn evaluate(
        &mut self,
        phone: Option<u32>,
        doc: u32,
        code: u8,
        unix: i64,
        commit: bool,
    ) -> Class {
        if let Some(class) = self.stateless(doc, code) {
            return class;
        }
        let Some((ci, rule)) = self.rules.code(code) else {
            return Class::Invalid(Some(Reason::UnknownCode));
        };
        let (validity, group, hours, abuse_after) =
            (rule.validity_secs, rule.group, rule.hours, rule.abuse_after);
        let limit = self.rules.groups.get(group).and_then(|g| g.limit);
        let (day, sod) = self.local(unix);
        let base = doc as usize * (self.codes + 2 * self.groups);
        let ui = base + ci;
        let (di, ni) = (
            base + self.codes + 2 * group,
            base + self.codes + 2 * group + 1,
        );
        let now = unix.max(0) as u32;
        if self.state.get(ui).is_some_and(|&u| u > now) {
            return Class::Active;
        }
        if let Some(h) = hours
            && !h.contains(sod)
        {
            return Class::OutsideHours;
        }
        let used = if self.state.get(di) == Some(&day) {
            self.state.get(ni).copied().unwrap_or(0)
        } else {
            0
        };
        if let Some(limit) = limit
            && used >= limit
        {
            return Class::DailyLimit;
        }
        if limit.is_none()
            && let Some(k) = abuse_after
            && used >= k
        {
            return Class::Abuse;
        }
        // A grant; past the phone's distinct documents of the day, abuse instead (documents
        // it already had today are answered as ever).
        let new_today = self.grants_today(doc, unix) == 0;
        if let (Some(p), Some(most), true) = (phone, self.rules.max_documents_per_phone, new_today)
        {
            let had = self
                .phones
                .get(&p)
                .filter(|(d, _)| *d == day)
                .map_or(0, |e| e.1);
            if had >= most {
                return Class::Abuse;
            }
            if commit {
                self.phones.insert(p, (day, had + 1));
            }
        }
        if commit {
            if let Some(u) = self.state.get_mut(ui) {
                *u = now.saturating_add(validity);
            }
            if let Some(d) = self.state.get_mut(di) {
                *d = day;
            }
            if let Some(n) = self.state.get_mut(ni) {
                *n = used.saturating_add(1);
            }
        }
        Class::Granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(extra: &str) -> (Oracle, Population, Arc<Rules>) {
        let text = format!(
            r#"
            [[documents]]
            series = "AZE"
            digits = [8, 7]
            [codes.1]
            validity = "3h"
            group = "daily"
            [codes.2]
            validity = "3h"
            group = "daily"
            [codes.3]
            validity = "3h"
            daily_limit = "unlimited"
            [codes.4]
            validity = "1h"
            daily_limit = 2
            hours = "07:00-20:00"
            [codes.5]
            validity = "1h"
            daily_limit = 1
            enabled = false
            [groups.daily]
            daily_limit = 1
            {extra}
            "#
        );
        let rules = Arc::new(Rules::from_toml(&text).unwrap());
        let pop = Population::new(&rules, 100, 1).unwrap();
        (Oracle::new(rules.clone(), &pop), pop, rules)
    }

    /// Unix seconds of a Baku local time on 6 April 2020.
    fn baku(h: u32, m: u32) -> i64 {
        chrono_tz::Asia::Baku
            .with_ymd_and_hms(2020, 4, 6, h, m, 0)
            .unwrap()
            .timestamp()
    }

    #[test]
    fn grant_then_active_then_group_limit_then_next_day() {
        let (mut o, _, _) = setup("");
        let t = baku(10, 0);
        assert_eq!(o.decide(0, 2, t, t).class, Class::Granted);
        assert_eq!(o.decide(0, 2, t + 60, t + 60).class, Class::Active);
        // Codes 1 and 2 share one permit a day.
        assert_eq!(o.decide(0, 1, t + 60, t + 60).class, Class::DailyLimit);
        // After the permit ends: the limit, until the next Baku day.
        assert_eq!(
            o.decide(0, 2, t + 3 * 3600, t + 3 * 3600).class,
            Class::DailyLimit
        );
        let tomorrow = baku(10, 0) + 86_400;
        assert_eq!(o.decide(0, 1, tomorrow, tomorrow).class, Class::Granted);
        // Another document is untouched.
        assert_eq!(o.decide(1, 2, t, t).class, Class::Granted);
    }

    #[test]
    fn late_permit_counts_for_its_day_and_stays_active_past_midnight() {
        let (mut o, _, _) = setup("");
        let late = baku(22, 30);
        assert_eq!(o.decide(0, 2, late, late).class, Class::Granted);
        let after_midnight = late + 2 * 3600;
        assert_eq!(
            o.decide(0, 2, after_midnight, after_midnight).class,
            Class::Active
        );
        let later = late + 3 * 3600 + 1;
        assert_eq!(o.decide(0, 2, later, later).class, Class::Granted);
    }

    #[test]
    fn unlimited_hours_disabled_and_blocked() {
        let (mut o, pop, rules) =
            setup("[[blocklist]]\ndocument = \"AZE 99999999\"\ncodes = [3]\n");
        let t = baku(10, 0);
        assert_eq!(o.decide(2, 3, t, t).class, Class::Granted);
        assert_eq!(
            o.decide(2, 3, t + 3 * 3600, t + 3 * 3600).class,
            Class::Granted
        );
        assert_eq!(
            o.decide(3, 4, baku(21, 0), baku(21, 0)).class,
            Class::OutsideHours
        );
        assert_eq!(o.decide(3, 4, baku(8, 0), baku(8, 0)).class, Class::Granted);
        // Active goes before hours.
        assert_eq!(
            o.decide(3, 4, baku(8, 30), baku(8, 30)).class,
            Class::Active
        );
        assert_eq!(o.decide(3, 5, t, t).class, Class::CodeDisabled);
        let blocked = pop.index_of(0, "99999999").unwrap();
        assert_eq!(o.decide(blocked, 3, t, t).class, Class::Blocked);
        assert_eq!(o.decide(blocked, 2, t, t).class, Class::Granted);
        assert_eq!(rules.blocklist.len(), 1);
    }

    #[test]
    fn abuse_limits_per_phone_and_after_k_grants_of_an_unlimited_code() {
        let rules = Arc::new(
            Rules::from_toml(
                r#"
                max_documents_per_phone = 2
                [[documents]]
                series = "AA"
                digits = [7]
                [codes.2]
                validity = "3h"
                daily_limit = 1
                [codes.3]
                validity = "1h"
                daily_limit = "unlimited"
                abuse_after = 2
                "#,
            )
            .unwrap(),
        );
        let pop = Population::new(&rules, 100, 1).unwrap();
        let mut o = Oracle::new(rules, &pop);
        let t = baku(10, 0);
        let phone = Some(7);
        // Two documents from one phone, then a third is abuse; the first again is as ever.
        assert_eq!(o.decide_from(phone, 0, 2, t, t).class, Class::Granted);
        assert_eq!(o.decide_from(phone, 1, 2, t, t).class, Class::Granted);
        assert_eq!(o.decide_from(phone, 2, 2, t, t).class, Class::Abuse);
        assert_eq!(o.decide_from(phone, 0, 2, t, t).class, Class::Active);
        assert_eq!(
            o.decide_from(phone, 0, 3, t, t).class,
            Class::Granted,
            "a second code"
        );
        // Another phone, and the next day, start afresh.
        assert_eq!(o.decide_from(Some(8), 2, 2, t, t).class, Class::Granted);
        let tomorrow = t + 86_400;
        assert_eq!(
            o.decide_from(phone, 3, 2, tomorrow, tomorrow).class,
            Class::Granted
        );
        // Code 3: two grants a day for one document, the third refused as abuse.
        assert_eq!(o.decide(5, 3, t, t).class, Class::Granted);
        assert_eq!(o.decide(5, 3, t + 3600, t + 3600).class, Class::Granted);
        assert_eq!(o.decide(5, 3, t + 7200, t + 7200).class, Class::Abuse);
        assert_eq!(o.grants_today(5, t + 7200), 2);
        assert_eq!(o.grants_today(5, tomorrow), 0);
    }

    #[test]
    fn a_permit_dated_between_send_and_ack_may_end_later_and_is_taken_back_if_active() {
        let (mut o, _, _) = setup("");
        // Code 3: 3 h. Granted: sent at t, acknowledged a second later, so the gateway's
        // permit ends at t + 3 h or t + 3 h + 1.
        let t = baku(10, 0) + 59;
        assert_eq!(o.decide(7, 3, t, t + 1).class, Class::Granted);
        let end = t + 3 * 3600;
        // Sent exactly at the earlier end: a new grant by the oracle's dating, still active
        // by the later one; either is right.
        let p = o.decide(7, 3, end, end);
        assert_eq!(
            (p.class, p.alternative),
            (Class::Granted, Some(Class::Active))
        );
        // The gateway said "active": the oracle's grant is taken back, so the next request a
        // second later is a grant again (not "active" until end + 3 h).
        o.undo(p.undo.as_ref().expect("a grant that can be taken back"));
        assert_eq!(o.decide(7, 3, end + 1, end + 1).class, Class::Granted);
        // Acknowledged in its own second: no doubt, no alternative.
        let q = o.decide(8, 3, t, t);
        assert_eq!(q.class, Class::Granted);
        let p = o.decide(8, 3, end, end);
        assert_eq!((p.class, p.alternative), (Class::Granted, None));
        // A grant answered "try again later" was never made: taken back, the next request
        // is a grant, not "active".
        o.undo(p.undo.as_ref().expect("every grant can be taken back"));
        assert_eq!(o.decide(8, 3, end + 1, end + 1).class, Class::Granted);
    }

    #[test]
    fn a_boundary_between_send_and_ack_accepts_both() {
        let (mut o, _, _) = setup("");
        // Permit at 23:59:59, second request sent before midnight, acknowledged after.
        let t = baku(23, 59) + 59 - 3 * 3600;
        assert_eq!(
            o.decide(5, 4, baku(19, 59) + 59, baku(20, 0)).alternative,
            Some(Class::OutsideHours)
        );
        assert_eq!(o.decide(6, 2, t, t).class, Class::Granted);
    }
}
