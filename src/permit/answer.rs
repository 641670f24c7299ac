//! One text in, one decision and one reply out: the path every caller shares (the gateway,
//! `icaze decide`, `icaze replay`, tests), so they can never disagree.

use crate::permit::decision::{Decision, Outcome};
use crate::permit::document::Document;
use crate::permit::engine::QuotaEngine;
use crate::permit::id::PermitKey;
use crate::permit::reply::{Language, Replier};
use crate::permit::request::{ParseError, Parsed, PermitRequest};
use crate::permit::rules::Rules;
use serde::Serialize;

/// The kinds of answer a citizen can get.
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
    /// How the service works.
    Help,
}

impl Kind {
    /// Its snake_case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Granted => "granted",
            Kind::Active => "active",
            Kind::Denied => "denied",
            Kind::Invalid => "invalid",
            Kind::Help => "help",
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
    /// A help word: the usage reply. A status request gets it too for now (status replies,
    /// which must show only the asking phone's permits, are not built yet).
    Help,
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
            Verdict::Help => Kind::Help,
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
            Verdict::Help => None,
        }
    }
}

/// What a parsed text leaves for the engine: the request to decide, or the verdict when
/// there is nothing to decide.
///
/// A family (several documents in one text) yields its first request only: deciding and
/// answering every document in one reply is not built yet. The other documents are not
/// decided; this is logged (masked) so it never goes unnoticed.
pub fn request_of(parsed: Result<Parsed, ParseError>) -> Result<PermitRequest, Verdict> {
    match parsed {
        Ok(Parsed::Permits(requests)) => {
            if requests.len() > 1 {
                tracing::warn!(
                    documents = requests.len(),
                    first = %requests[0].document.masked(),
                    "several documents in one text: only the first is decided"
                );
            }
            requests.into_iter().next().ok_or(Verdict::Help)
        }
        Ok(Parsed::Help | Parsed::Status(_)) => Err(Verdict::Help),
        Err(e) => Err(Verdict::Invalid(e)),
    }
}

/// Parses and decides one text at `now` (Unix seconds).
pub fn decide_text(engine: &QuotaEngine, rules: &Rules, text: &str, now: i64) -> Verdict {
    match request_of(rules.parser().parse(text)) {
        Ok(request) => Verdict::Decided(engine.decide(rules, &request, now)),
        Err(verdict) => verdict,
    }
}

/// The reply text for a verdict.
pub fn reply_text(rules: &Rules, key: &PermitKey, lang: Language, verdict: &Verdict) -> String {
    let replier = Replier::new(rules, key);
    match verdict {
        Verdict::Decided(d) => replier.decision(lang, d),
        Verdict::Invalid(e) => replier.parse_error(lang, e),
        Verdict::Help => replier.help(lang),
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
            Verdict::Invalid(_) | Verdict::Help => (None, None, None),
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
