//! Decisions and refusals become reply texts, from templates per outcome and language.
//!
//! The templates themselves, their defaults and their parsing live in
//! [`crate::permit::templates`] (re-exported here); this module fills their variables from a
//! decision or a parse error, so a reply costs one `String` and no parsing.

pub use crate::permit::templates::{Language, ReplyKey, Template, Templates, Var};

use crate::permit::decision::{Decision, Denial, Outcome};
use crate::permit::document::Document;
use crate::permit::engine::permits::Issued;
use crate::permit::id::PermitKey;
use crate::permit::request::{ParseError, detect_language};
use crate::permit::rules::Rules;
use std::fmt::Write;

/// The language replies are written in, as an operator, a connector or the rules file sets
/// it: one language, or `auto` (the language of the citizen's text, see
/// [`detect_language`]), falling back to a language when the text does not tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyLanguage {
    /// Always this language.
    Fixed(Language),
    /// The text's language; this one when the text does not tell (`2 AZE 11111111`).
    Auto(Language),
}

impl ReplyLanguage {
    /// `az`, `en`, `ru` or `auto` (any case); `auto` falls back to `fallback`.
    pub fn parse(tag: &str, fallback: Language) -> Option<ReplyLanguage> {
        if tag.eq_ignore_ascii_case("auto") {
            Some(ReplyLanguage::Auto(fallback))
        } else {
            Language::parse(tag).map(ReplyLanguage::Fixed)
        }
    }

    /// The language of a reply to `text`.
    pub fn for_text(self, text: &str) -> Language {
        match self {
            ReplyLanguage::Fixed(lang) => lang,
            ReplyLanguage::Auto(fallback) => detect_language(text).unwrap_or(fallback),
        }
    }

    /// The language when there is no text to read (the fixed one, or auto's fallback).
    pub fn fallback(self) -> Language {
        match self {
            ReplyLanguage::Fixed(lang) | ReplyLanguage::Auto(lang) => lang,
        }
    }

    /// The config tag: `az`, `en`, `ru`, or `auto`.
    pub fn tag(self) -> &'static str {
        match self {
            ReplyLanguage::Fixed(lang) => lang.tag(),
            ReplyLanguage::Auto(_) => "auto",
        }
    }
}

impl From<ReplyLanguage> for Language {
    /// The language when there is no text to read: see [`ReplyLanguage::fallback`].
    fn from(lang: ReplyLanguage) -> Language {
        lang.fallback()
    }
}

/// What a parse error tells the reply: the pieces the citizen got wrong.
#[derive(Debug, Default)]
struct ErrorFacts<'e> {
    code: Option<u32>,
    other_code: Option<u8>,
    series: Option<&'e str>,
    other_series: Option<&'e str>,
    got: Option<usize>,
    max: Option<usize>,
    expected: &'e [u8],
}

/// The reply a parse error gets: its own template, or `invalid` when none is defined.
pub fn parse_error_key(error: &ParseError) -> ReplyKey {
    ReplyKey::parse(error.reason()).unwrap_or(ReplyKey::Invalid)
}

fn parse_error_facts(error: &ParseError) -> ErrorFacts<'_> {
    match error {
        ParseError::UnknownCode { code } => ErrorFacts {
            code: Some(*code),
            ..ErrorFacts::default()
        },
        ParseError::UnknownSeries { series } | ParseError::NoNumber { series } => ErrorFacts {
            series: Some(series),
            ..ErrorFacts::default()
        },
        ParseError::WrongDigitCount {
            series,
            got,
            expected,
        } => ErrorFacts {
            series: Some(series),
            got: Some(*got),
            expected,
            ..ErrorFacts::default()
        },
        ParseError::TwoCodes { first, second } => ErrorFacts {
            code: Some(u32::from(*first)),
            other_code: Some(*second),
            ..ErrorFacts::default()
        },
        ParseError::AmbiguousNumber { first, second } => ErrorFacts {
            series: Some(first),
            other_series: Some(second),
            ..ErrorFacts::default()
        },
        ParseError::TooManyDocuments { max, got } => ErrorFacts {
            got: Some(*got),
            max: Some(*max),
            ..ErrorFacts::default()
        },
        ParseError::Empty | ParseError::NoCode | ParseError::NoDocument => ErrorFacts::default(),
    }
}

/// Renders replies under one rules snapshot.
pub struct Replier<'a> {
    rules: &'a Rules,
    key: &'a PermitKey,
}

impl<'a> Replier<'a> {
    /// A replier for these rules, minting permit ids with `key`.
    pub fn new(rules: &'a Rules, key: &'a PermitKey) -> Self {
        Replier { rules, key }
    }

    fn codes(&self, out: &mut String) {
        let mut first = true;
        for c in self.rules.codes().filter(|c| c.enabled) {
            if !first {
                out.push_str(", ");
            }
            first = false;
            let _ = write!(out, "{}", c.code);
        }
    }

    fn example(&self, out: &mut String, code: Option<u8>, series: Option<(&str, u8)>) {
        let code = code
            .or_else(|| self.rules.codes().find(|c| c.enabled).map(|c| c.code))
            .unwrap_or(1);
        let (series, digits) = series.unwrap_or_else(|| {
            self.rules.documents.first().map_or(("AZE", 8), |k| {
                (k.series.as_str(), k.digits.first().copied().unwrap_or(7))
            })
        });
        let number: String = "1234567891".chars().take(usize::from(digits)).collect();
        let _ = write!(out, "{code} {series} {number}");
    }

    fn common(&self, var: Var, out: &mut String) {
        match var {
            Var::Codes => self.codes(out),
            Var::SeriesList => {
                let list: Vec<&str> = self
                    .rules
                    .documents
                    .iter()
                    .map(|k| k.series.as_str())
                    .collect();
                out.push_str(&list.join(", "));
            }
            Var::Example => self.example(out, None, None),
            _ => {}
        }
    }

    /// The reply to a decision.
    pub fn decision(&self, lang: Language, decision: &Decision) -> String {
        let key = match decision.outcome {
            Outcome::Granted(_) => ReplyKey::Granted,
            Outcome::Active(_) => ReplyKey::Active,
            Outcome::Denied(Denial::DailyLimit { .. }) => ReplyKey::DailyLimit,
            Outcome::Denied(Denial::OutsideHours { .. }) => ReplyKey::OutsideHours,
            Outcome::Denied(Denial::CodeDisabled) => ReplyKey::CodeDisabled,
            Outcome::Denied(Denial::Blocked) => ReplyKey::Blocked,
            Outcome::Denied(Denial::UnknownCode) => ReplyKey::UnknownCode,
            Outcome::Denied(Denial::Revoked) => ReplyKey::Revoked,
            Outcome::Denied(Denial::Abuse) => ReplyKey::Abuse,
        };
        self.rules
            .templates
            .get(lang, key)
            .render(|var, out| self.decision_var(lang, decision, var, out))
    }

    /// The one reply to a family (several documents in one text, all for one code): the
    /// `family` line, then one line per document, in text order, with its own outcome,
    /// window and permit id. The reply encoder splits it into as many parts as it needs.
    pub fn family(&self, lang: Language, decisions: &[Decision]) -> String {
        let Some(first) = decisions.first() else {
            return self.invalid(lang);
        };
        let templates = &self.rules.templates;
        let mut text = templates.get(lang, ReplyKey::Family).render(|var, out| {
            if var == Var::Got {
                let _ = write!(out, "{}", decisions.len());
            } else {
                self.decision_var(lang, first, var, out);
            }
        });
        for decision in decisions {
            let key = match decision.outcome {
                Outcome::Granted(_) => ReplyKey::FamilyGranted,
                Outcome::Active(_) => ReplyKey::FamilyActive,
                Outcome::Denied(Denial::DailyLimit { .. }) => ReplyKey::FamilyDailyLimit,
                Outcome::Denied(Denial::Revoked) => ReplyKey::FamilyRevoked,
                Outcome::Denied(Denial::Abuse) => ReplyKey::FamilyAbuse,
                Outcome::Denied(_) => ReplyKey::FamilyRefused,
            };
            text.push('\n');
            text.push_str(
                &templates
                    .get(lang, key)
                    .render(|var, out| self.decision_var(lang, decision, var, out)),
            );
        }
        text
    }

    /// Writes one variable of a decision's reply.
    fn decision_var(&self, lang: Language, decision: &Decision, var: Var, out: &mut String) {
        let rules = self.rules;
        let validity = decision.validity();
        match var {
            Var::Code => {
                let _ = write!(out, "{}", decision.code);
            }
            Var::Label => {
                if let Some(r) = rules.code(decision.code) {
                    out.push_str(&r.labels[lang as usize]);
                }
            }
            Var::Document => rules.push_document(out, decision.document),
            Var::Window => {
                if let Some(v) = validity {
                    rules.calendar.push_hh_mm(v.from, out);
                    out.push('\u{2013}');
                    rules.calendar.push_hh_mm(v.until, out);
                }
            }
            Var::From => {
                if let Some(v) = validity {
                    rules.calendar.push_hh_mm(v.from, out);
                }
            }
            Var::Until => {
                if let Some(v) = validity {
                    rules.calendar.push_hh_mm(v.until, out);
                }
            }
            Var::Date => {
                if let Some(v) = validity {
                    out.push_str(&rules.calendar.date(v.from));
                }
            }
            Var::PermitId => {
                if let Some(v) = validity {
                    let id = self
                        .key
                        .permit_id(decision.document, decision.code, v.from, v.until);
                    let _ = write!(out, "{id}");
                }
            }
            Var::Limit => {
                if let Outcome::Denied(Denial::DailyLimit { limit }) = decision.outcome {
                    let _ = write!(out, "{limit}");
                }
            }
            Var::Hours => {
                if let Outcome::Denied(Denial::OutsideHours { hours }) = decision.outcome {
                    out.push_str(&hours.window());
                }
            }
            Var::Series => out.push_str(&rules.series_display(decision.document)),
            Var::Example => self.example(out, Some(decision.code), None),
            other => self.common(other, out),
        }
    }

    /// The reply to a text that is no request: what is wrong and what to send instead.
    pub fn parse_error(&self, lang: Language, error: &ParseError) -> String {
        let key = parse_error_key(error);
        let facts = parse_error_facts(error);
        self.rules
            .templates
            .get(lang, key)
            .render(|var, out| match var {
                Var::Code => {
                    if let Some(c) = facts.code {
                        let _ = write!(out, "{c}");
                    }
                }
                Var::Series => out.push_str(facts.series.unwrap_or("")),
                Var::OtherSeries => out.push_str(facts.other_series.unwrap_or("")),
                Var::OtherCode => {
                    if let Some(c) = facts.other_code {
                        let _ = write!(out, "{c}");
                    }
                }
                Var::Max => {
                    if let Some(m) = facts.max {
                        let _ = write!(out, "{m}");
                    }
                }
                Var::Got => {
                    if let Some(g) = facts.got {
                        let _ = write!(out, "{g}");
                    }
                }
                Var::Expected => {
                    let list: Vec<String> = facts.expected.iter().map(u8::to_string).collect();
                    out.push_str(&list.join("/"));
                }
                Var::Example => {
                    let code = facts
                        .code
                        .and_then(|c| u8::try_from(c).ok())
                        .filter(|c| self.rules.code(*c).is_some());
                    let kind = facts.series.and_then(|s| {
                        let key = crate::permit::rules::series_key(s)?;
                        self.rules.documents.iter().find(|k| k.key == key)
                    });
                    let series =
                        kind.map(|k| (k.series.as_str(), k.digits.first().copied().unwrap_or(7)));
                    self.example(out, code, series)
                }
                other => self.common(other, out),
            })
    }

    /// The general "not understood, send CODE SERIES NUMBER" reply, for a text that never
    /// arrived whole (a concatenated MO whose parts stopped coming).
    ///
    /// Such a text cannot tell its language, so a [`ReplyLanguage`] gives its default.
    pub fn invalid(&self, lang: impl Into<Language>) -> String {
        self.rules
            .templates
            .get(lang.into(), ReplyKey::Invalid)
            .render(|var, out| self.common(var, out))
    }

    /// The usage reply to a help word: the format, an example and the codes in force with
    /// what each is for.
    pub fn help(&self, lang: Language) -> String {
        self.rules
            .templates
            .get(lang, ReplyKey::Help)
            .render(|var, out| match var {
                Var::CodeLabels => {
                    let mut first = true;
                    for c in self.rules.codes().filter(|c| c.enabled) {
                        if !first {
                            out.push_str(", ");
                        }
                        first = false;
                        let _ = write!(out, "{} ({})", c.code, c.labels[lang as usize]);
                    }
                }
                other => self.common(other, out),
            })
    }

    /// The reply to a status request: for each document asked about, in text order, the
    /// `status` line and one `status_line` per permit of today that this phone asked for
    /// (code, window, id), or the `status_none` line. A stranger's request gets exactly
    /// what a phone with no permits gets, so it learns nothing.
    pub fn status(&self, lang: Language, documents: &[(Document, Vec<Issued>)]) -> String {
        let templates = &self.rules.templates;
        let mut text = String::new();
        for (document, permits) in documents {
            if !text.is_empty() {
                text.push('\n');
            }
            let none = Decision {
                code: 0,
                document: *document,
                outcome: Outcome::Denied(Denial::UnknownCode),
            };
            if permits.is_empty() {
                text.push_str(
                    &templates
                        .get(lang, ReplyKey::StatusNone)
                        .render(|var, out| self.decision_var(lang, &none, var, out)),
                );
                continue;
            }
            text.push_str(
                &templates
                    .get(lang, ReplyKey::Status)
                    .render(|var, out| self.decision_var(lang, &none, var, out)),
            );
            for p in permits {
                let permit = Decision {
                    code: p.code,
                    document: p.document,
                    outcome: Outcome::Active(p.validity),
                };
                text.push('\n');
                text.push_str(
                    &templates
                        .get(lang, ReplyKey::StatusLine)
                        .render(|var, out| self.decision_var(lang, &permit, var, out)),
                );
            }
        }
        text
    }

    /// The "try again in a few minutes" reply, for when the store cannot decide.
    pub fn try_later(&self, lang: Language) -> String {
        self.rules
            .templates
            .get(lang, ReplyKey::TryLater)
            .render(|var, out| self.common(var, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules::from_toml(include_str!("../../config/rules.toml")).expect("shipped rules")
    }

    #[test]
    fn help_lists_the_codes_in_force_with_their_labels() {
        let rules = rules();
        let key = PermitKey::from_secret(b"reply-unit-test");
        let replier = Replier::new(&rules, &key);
        let az = replier.help(Language::Az);
        assert!(az.contains("KOD SERİYA NÖMRƏ"), "{az}");
        assert!(az.contains("2 (ərzaq, dərman, bank, poçt)"), "{az}");
        let en = replier.help(Language::En);
        assert!(en.contains("1 (urgent medical need)"), "{en}");
        assert!(replier.help(Language::Ru).contains("КОД СЕРИЯ НОМЕР"));
    }

    #[test]
    fn new_refusals_say_what_was_wrong() {
        let rules = rules();
        let key = PermitKey::from_secret(b"reply-unit-test");
        let replier = Replier::new(&rules, &key);
        let parse = |text: &str| rules.parser().parse(text).expect_err(text);
        let two = replier.parse_error(Language::En, &parse("2 AZE 11111111 3"));
        assert!(two.contains("you sent 2 and 3"), "{two}");
        let ambiguous = replier.parse_error(Language::En, &parse("2 AZE 1234567 AA"));
        assert!(ambiguous.contains("for AZE or for AA"), "{ambiguous}");
        let many = replier.parse_error(
            Language::Az,
            &parse("2 AZE 11111111 AZE 22222222 AZE 33333333 AZE 44444444 AZE 55555555 AA 1234567"),
        );
        assert!(
            many.contains("ən çoxu 5 sənəd") && many.contains("siz 6"),
            "{many}"
        );
        for lang in Language::ALL {
            let text = replier.parse_error(lang, &parse("2 AZE 11111111 3"));
            assert!(text.contains('2') && text.contains('3'), "{text}");
        }
    }

    #[test]
    fn a_family_reply_has_one_line_per_document_with_its_own_outcome() {
        use crate::permit::decision::Validity;
        let rules = rules();
        let key = PermitKey::from_secret(b"reply-unit-test");
        let replier = Replier::new(&rules, &key);
        let document = |text: &str| {
            rules
                .parser()
                .parse(text)
                .expect(text)
                .into_permits()
                .expect("permits")[0]
                .document
        };
        let from = 1_586_152_800; // 10:00 in Baku
        let validity = Validity {
            from,
            until: from + 3 * 3600,
        };
        let decisions = [
            (document("2 AZE 11111111"), Outcome::Granted(validity)),
            (document("2 AA 1234567"), Outcome::Active(validity)),
            (
                document("2 MYİ 7654321"),
                Outcome::Denied(Denial::DailyLimit { limit: 1 }),
            ),
            (document("2 DYİ 7654321"), Outcome::Denied(Denial::Blocked)),
        ]
        .map(|(document, outcome)| Decision {
            code: 2,
            document,
            outcome,
        });
        let en = replier.family(Language::En, &decisions);
        let lines: Vec<&str> = en.lines().collect();
        assert_eq!(
            lines[0],
            "Code 2 (food, medicine, bank, post), 4 documents:"
        );
        let id = key.permit_id(decisions[0].document, 2, validity.from, validity.until);
        assert_eq!(
            lines[1],
            format!("AZE 11111111: GRANTED 10:00\u{2013}13:00, no. {id}")
        );
        assert!(
            lines[2].starts_with("AA 1234567: already granted 10:00"),
            "{en}"
        );
        assert!(lines[3].contains("already used (1 a day)"), "{en}");
        assert_eq!(lines[4], "DYİ 7654321: refused");
        for lang in Language::ALL {
            let text = replier.family(lang, &decisions);
            assert_eq!(text.lines().count(), 5, "{text}");
        }
    }
}
