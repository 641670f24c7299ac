//! Model check: random multi-day sequences of requests and clock steps go through the
//! engine and through a deliberately simple reference model (a list of every grant,
//! searched from scratch), and the two must agree on every decision. The same sequence also
//! goes through a second engine in batches (the asks between two clock steps, the same
//! document several times over included), which must agree too; before each batch is
//! decided, its tentative decisions (`peek_batch`) must be those of `peek_at` one by one and
//! leave the engine as it was.

use chrono::{DateTime, TimeZone};
use icaze::permit::document::Document;
use icaze::permit::engine::{BatchScratch, Decision, Denial, Outcome, QuotaEngine, Validity};
use icaze::permit::request::PermitRequest;
use icaze::permit::rules::Rules;
use proptest::prelude::*;

/// Rules with every feature the engine has: a shared group, an unlimited code, a code with
/// a limit of 2 and permitted hours, a disabled code, a short validity and a blocklist.
const RULES: &str = r#"
timezone = "Asia/Baku"
[[documents]]
series = "AZE"
digits = [8]
[codes.1]
name = "medical"
validity = "3h"
group = "daily"
[codes.2]
name = "food"
validity = "2h"
group = "daily"
[codes.3]
name = "funeral"
validity = "3h"
daily_limit = "unlimited"
[codes.4]
name = "walk"
validity = "45m"
daily_limit = 2
hours = "07:00-20:00"
[codes.5]
name = "off"
enabled = false
validity = "1h"
daily_limit = 1
[codes.6]
name = "night"
validity = "5h"
daily_limit = 1
hours = "21:00-02:00"
[groups.daily]
daily_limit = 2
[[blocklist]]
document = "AZE 00000003"
codes = [3]
"#;

struct ModelCode {
    enabled: bool,
    validity: i64,
    group: u8,
    limit: Option<usize>,
    hours: Option<(u32, u32)>,
}

fn model_code(code: u8) -> Option<ModelCode> {
    let c = |enabled, validity_min: i64, group, limit, hours| {
        Some(ModelCode {
            enabled,
            validity: validity_min * 60,
            group,
            limit,
            hours,
        })
    };
    match code {
        1 => c(true, 180, 1, Some(2), None),
        2 => c(true, 120, 1, Some(2), None),
        3 => c(true, 180, 3, None, None),
        4 => c(true, 45, 4, Some(2), Some((7 * 3600, 20 * 3600))),
        5 => c(false, 60, 5, Some(1), None),
        6 => c(true, 300, 6, Some(1), Some((21 * 3600, 2 * 3600))),
        _ => None,
    }
}

/// The reference: every grant ever made, searched linearly.
#[derive(Default)]
struct Model {
    grants: Vec<(u32, u8, i64, i64)>,
}

fn baku(unix: i64) -> DateTime<chrono_tz::Tz> {
    chrono_tz::Asia::Baku.timestamp_opt(unix, 0).unwrap()
}

impl Model {
    fn decide(&mut self, doc: u32, code: u8, now: i64) -> Outcome {
        let Some(rule) = model_code(code) else {
            return Outcome::Denied(Denial::UnknownCode);
        };
        if doc == 3 && code == 3 {
            return Outcome::Denied(Denial::Blocked);
        }
        if !rule.enabled {
            return Outcome::Denied(Denial::CodeDisabled);
        }
        if let Some(&(_, _, from, until)) = self
            .grants
            .iter()
            .find(|g| g.0 == doc && g.1 == code && now < g.3)
        {
            return Outcome::Active(Validity { from, until });
        }
        if let Some((from, until)) = rule.hours {
            let local = baku(now);
            let sec = local.time().num_seconds_from_midnight();
            let inside = if from < until {
                sec >= from && sec < until
            } else {
                sec >= from || sec < until
            };
            if !inside {
                let hours = icaze_hours(code);
                return Outcome::Denied(Denial::OutsideHours { hours });
            }
        }
        let today = baku(now).date_naive();
        let used = self
            .grants
            .iter()
            .filter(|g| {
                g.0 == doc
                    && model_code(g.1).is_some_and(|r| r.group == rule.group)
                    && baku(g.2).date_naive() == today
            })
            .count();
        if let Some(limit) = rule.limit
            && used >= limit
        {
            return Outcome::Denied(Denial::DailyLimit {
                limit: limit as u32,
            });
        }
        self.grants.push((doc, code, now, now + rule.validity));
        Outcome::Granted(Validity {
            from: now,
            until: now + rule.validity,
        })
    }
}

use chrono::Timelike;

fn icaze_hours(code: u8) -> icaze::permit::rules::Hours {
    let rules = Rules::from_toml(RULES).unwrap();
    rules.code(code).unwrap().hours.unwrap()
}

#[derive(Debug, Clone)]
enum Step {
    Ask {
        doc: u32,
        code: u8,
    },
    Wait {
        secs: i64,
    },
    Sweep,
    /// Ends the current batch without moving the clock (two batches at one instant).
    Flush,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0u32..6, 0u8..8).prop_map(|(doc, code)| Step::Ask { doc, code }),
        3 => prop_oneof![0i64..120, 0i64..4 * 3600, 0i64..30 * 3600].prop_map(|secs| Step::Wait { secs }),
        1 => Just(Step::Sweep),
        1 => Just(Step::Flush),
    ]
}

fn document(doc: u32) -> Document {
    Document::new(b"AZE", format!("{doc:08}").as_bytes()).unwrap()
}

/// The asks since the last clock step, waiting to be decided as one batch, with the step
/// each came from and the model's answer.
#[derive(Default)]
struct Pending {
    requests: Vec<PermitRequest>,
    steps: Vec<usize>,
    want: Vec<Outcome>,
    /// Batches decided so far: odd ones go through `decide_batch`, even ones through
    /// `decide_batch_with` and a scratch kept across batches.
    batches: usize,
}

impl Pending {
    /// Decides the pending asks in one batch and checks every decision against the model's.
    fn flush(
        &mut self,
        engine: &QuotaEngine,
        rules: &Rules,
        now: i64,
        scratch: &mut BatchScratch,
        out: &mut Vec<Decision>,
    ) -> Result<(), TestCaseError> {
        if self.requests.is_empty() {
            return Ok(());
        }
        self.batches += 1;
        // First the batch's tentative decisions: each the one `peek_at` gives alone, and
        // nothing recorded (the engine keeps its size, and the decisions below still agree
        // with the model).
        let len = engine.len();
        let mut peeked = Vec::new();
        if self.batches % 2 == 1 {
            engine.peek_batch(rules, &self.requests, now, &mut peeked);
        } else {
            engine.peek_batch_with(rules, &self.requests, now, &mut peeked, scratch);
        }
        prop_assert_eq!(peeked.len(), self.requests.len());
        let m = rules.calendar.moment(now);
        for (k, (got, r)) in peeked.iter().zip(&self.requests).enumerate() {
            prop_assert_eq!(
                *got,
                engine.peek_at(rules, r.code, r.document, &m),
                "peeked, step {} ({} of {} in the batch)",
                self.steps[k],
                k,
                self.requests.len()
            );
        }
        prop_assert_eq!(engine.len(), len, "peek_batch recorded something");
        // Decisions are appended: keep what is already there to check that.
        let base = out.len();
        if self.batches % 2 == 1 {
            engine.decide_batch(rules, &self.requests, now, out);
        } else {
            engine.decide_batch_with(rules, &self.requests, now, out, scratch);
        }
        prop_assert_eq!(out.len() - base, self.requests.len());
        for (k, got) in out[base..].iter().enumerate() {
            let r = &self.requests[k];
            prop_assert_eq!(got.code, r.code);
            prop_assert_eq!(got.document, r.document);
            prop_assert_eq!(
                got.outcome,
                self.want[k],
                "batched, step {} ({} of {} in the batch) at {}: {:?} code {}",
                self.steps[k],
                k,
                self.requests.len(),
                baku(now),
                r.document,
                r.code
            );
        }
        if out.len() > 1000 {
            out.clear();
        }
        self.requests.clear();
        self.steps.clear();
        self.want.clear();
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_the_model(
        start_minute in 0i64..(3 * 24 * 60),
        steps in proptest::collection::vec(step(), 1..300),
    ) {
        let rules = Rules::from_toml(RULES).unwrap();
        let engine = QuotaEngine::new();
        let batched = QuotaEngine::new();
        let mut pending = Pending::default();
        let mut scratch = BatchScratch::new();
        let mut out = Vec::new();
        let mut model = Model::default();
        // 2020-04-05T00:00+04:00 plus a random start within three days.
        let mut now = 1_586_030_400 + start_minute * 60;
        for (i, s) in steps.iter().enumerate() {
            match *s {
                Step::Wait { secs } => {
                    pending.flush(&batched, &rules, now, &mut scratch, &mut out)?;
                    now += secs;
                }
                Step::Sweep => {
                    pending.flush(&batched, &rules, now, &mut scratch, &mut out)?;
                    let swept = engine.sweep(&rules, now);
                    let swept_batched = batched.sweep(&rules, now);
                    prop_assert_eq!(swept, swept_batched, "step {}: sweeps differ", i);
                    prop_assert_eq!(engine.len(), batched.len());
                }
                Step::Flush => pending.flush(&batched, &rules, now, &mut scratch, &mut out)?,
                Step::Ask { doc, code } => {
                    let document = document(doc);
                    let got = engine.decide_at(&rules, code, document, &rules.calendar.moment(now)).outcome;
                    let want = model.decide(doc, code, now);
                    prop_assert_eq!(got, want, "step {} at {}: doc {} code {}", i, baku(now), doc, code);
                    pending.requests.push(PermitRequest { code, document, extra: String::new() });
                    pending.steps.push(i);
                    pending.want.push(want);
                }
            }
        }
        pending.flush(&batched, &rules, now, &mut scratch, &mut out)?;
    }
}
