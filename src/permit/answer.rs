//! One text in, one decision and one reply out: the path every caller shares (the gateway,
//! `icaze decide`, `icaze replay`, tests), so they can never disagree.

use crate::permit::decision::{Decision, Outcome};
use crate::permit::document::Document;
use crate::permit::engine::QuotaEngine;
use crate::permit::id::PermitKey;
use crate::permit::reply::{Language, Replier};
use crate::permit::request::ParseError;
use crate::permit::rules::Rules;
use serde::Serialize;

/// The four kinds of answer a citizen can get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A new permit.
    Granted,
    /// The same permit again (one of this code is active).
    Active,
    /// Refused under the rules.
    Denied,
    /// Not a request.
    Invalid,
}

impl Kind {
    /// Its snake_case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Granted => "granted",
            Kind::Active => "active",
            Kind::Denied => "denied",
            Kind::Invalid => "invalid",
        }
    }
}

/// What became of one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The engine decided.
    Decided(Decision),
    /// The text is not a request.
    Invalid(ParseError),
}

impl Verdict {
    /// The answer's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Verdict::Decided(d) => match d.outcome {
                Outcome::Granted(_) => Kind::Granted,
                Outcome::Active(_) => Kind::Active,
                Outcome::Denied(_) => Kind::Denied,
            },
            Verdict::Invalid(_) => Kind::Invalid,
        }
    }

    /// Why, as a stable key (`daily_limit`, `unknown_series`, …); `None` for a permit.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Verdict::Decided(d) => match d.outcome {
                Outcome::Denied(denial) => Some(denial.reason()),
                _ => None,
            },
            Verdict::Invalid(e) => Some(e.reason()),
        }
    }
}

/// Parses and decides one text at `now` (Unix seconds).
pub fn decide_text(engine: &QuotaEngine, rules: &Rules, text: &str, now: i64) -> Verdict {
    match rules.parser().parse(text) {
        Ok(request) => Verdict::Decided(engine.decide(rules, &request, now)),
        Err(e) => Verdict::Invalid(e),
    }
}

/// The reply text for a verdict.
pub fn reply_text(rules: &Rules, key: &PermitKey, lang: Language, verdict: &Verdict) -> String {
    let replier = Replier::new(rules, key);
    match verdict {
        Verdict::Decided(d) => replier.decision(lang, d),
        Verdict::Invalid(e) => replier.parse_error(lang, e),
    }
}

/// A verdict as one JSON object: what `icaze replay` prints per line.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// granted, active, denied or invalid.
    pub outcome: Kind,
    /// Why (refusals and invalid texts).
    pub reason: Option<&'static str>,
    /// The code asked for, if one was understood.
    pub code: Option<u8>,
    /// The document, as printed in replies (`AZE 11111111`).
    pub document: Option<String>,
    /// Start of the permit, RFC 3339 in the rules' zone.
    pub valid_from: Option<String>,
    /// End of the permit.
    pub valid_until: Option<String>,
    /// The permit id.
    pub permit_id: Option<String>,
    /// The reply SMS.
    pub reply: String,
}

impl Record {
    /// Builds the record of a verdict.
    pub fn new(rules: &Rules, key: &PermitKey, lang: Language, verdict: &Verdict) -> Record {
        let reply = reply_text(rules, key, lang, verdict);
        let (code, document, validity): (Option<u8>, Option<Document>, _) = match verdict {
            Verdict::Decided(d) => (Some(d.code), Some(d.document), d.validity()),
            Verdict::Invalid(_) => (None, None, None),
        };
        Record {
            outcome: verdict.kind(),
            reason: verdict.reason(),
            code,
            document: document.map(|d| rules.document_display(d)),
            valid_from: validity.map(|v| rules.calendar.rfc3339(v.from)),
            valid_until: validity.map(|v| rules.calendar.rfc3339(v.until)),
            permit_id: match (verdict, validity) {
                (Verdict::Decided(d), Some(v)) => Some(
                    key.permit_id(d.document, d.code, v.from, v.until)
                        .to_string(),
                ),
                _ => None,
            },
            reply,
        }
    }
}
