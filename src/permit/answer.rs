//! One text in, one decision and one reply out: the path every caller shares (the gateway,
//! `icaze decide`, `icaze replay`, tests), so they can never disagree.

use crate::permit::decision::{Decision, Outcome};
use crate::permit::document::Document;
use crate::permit::engine::QuotaEngine;
use crate::permit::engine::permits::Issued;
use crate::permit::id::{PermitKey, PhoneTag};
use crate::permit::reply::{Language, Replier};
use crate::permit::request::{OneOrMore, ParseError, Parsed, PermitRequest};
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
    /// A status request's answer: the asking phone's permits of today.
    Status,
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
            Kind::Status => "status",
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
    /// A help word: the usage reply.
    Help,
    /// A status request: each document asked about (text order) with its permits of today
    /// that the asking phone asked for (filled by [`fill_status`]; empty for a stranger).
    Status(Vec<(Document, Vec<Issued>)>),
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
            Verdict::Status(_) => Kind::Status,
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
            Verdict::Help | Verdict::Status(_) => None,
        }
    }
}

/// What a parsed text leaves for the engine: the request to decide, or the verdict when
/// there is nothing to decide.
///
/// A family (several documents in one text) yields its first request only, for callers
/// that decide one document per text (`icaze decide`, `icaze replay`, the admin API); the
/// gateway uses [`requests_of`]. The other documents are not decided; this is logged
/// (masked) so it never goes unnoticed.
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
        Ok(Parsed::Help) => Err(Verdict::Help),
        Ok(Parsed::Status(documents)) => Err(status_asked(documents)),
        Err(e) => Err(Verdict::Invalid(e)),
    }
}

/// A status request's verdict before it is looked up: each document with no permits.
fn status_asked(documents: OneOrMore<Document>) -> Verdict {
    Verdict::Status(documents.into_iter().map(|d| (d, Vec::new())).collect())
}

/// Looks up a status request's permits: for each document, those of today that `phone`
/// asked for (see [`QuotaEngine::status`]). Any other verdict is left as it is.
pub fn fill_status(
    engine: &QuotaEngine,
    rules: &Rules,
    verdict: &mut Verdict,
    phone: PhoneTag,
    now: i64,
) {
    if let Verdict::Status(documents) = verdict {
        for (document, permits) in documents.iter_mut() {
            *permits = engine.status(rules, *document, phone, now);
        }
    }
}

/// What a parsed text leaves for the engine: every request of it (one per document, a
/// family in text order), or the verdict when there is nothing to decide. The gateway
/// decides each and answers them in one reply.
pub fn requests_of(
    parsed: Result<Parsed, ParseError>,
) -> Result<OneOrMore<PermitRequest>, Verdict> {
    match parsed {
        Ok(Parsed::Permits(requests)) => Ok(requests),
        Ok(Parsed::Help) => Err(Verdict::Help),
        Ok(Parsed::Status(documents)) => Err(status_asked(documents)),
        Err(e) => Err(Verdict::Invalid(e)),
    }
}

/// Parses and decides one text from `phone` at `now` (Unix seconds): a grant is committed
/// at once with its phone (see [`QuotaEngine::decide_by`]), a status request answered
/// from the engine's permit book.
pub fn decide_text(
    engine: &QuotaEngine,
    rules: &Rules,
    text: &str,
    phone: PhoneTag,
    now: i64,
) -> Verdict {
    match request_of(rules.parser().parse(text)) {
        Ok(request) => Verdict::Decided(engine.decide_by(rules, &request, phone, now)),
        Err(mut verdict) => {
            fill_status(engine, rules, &mut verdict, phone, now);
            verdict
        }
    }
}

/// The reply text for a verdict.
pub fn reply_text(rules: &Rules, key: &PermitKey, lang: Language, verdict: &Verdict) -> String {
    let replier = Replier::new(rules, key);
    match verdict {
        Verdict::Decided(d) => replier.decision(lang, d),
        Verdict::Invalid(e) => replier.parse_error(lang, e),
        Verdict::Help => replier.help(lang),
        Verdict::Status(documents) => replier.status(lang, documents),
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
            Verdict::Invalid(_) | Verdict::Help | Verdict::Status(_) => (None, None, None),
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
