//! The day's rules: permit codes, validity, daily limits and the quota groups that share
//! them, permitted hours, the blocklist, document kinds and reply templates.
//!
//! Officials change these every few weeks, so they live in a TOML file (see
//! `config/rules.toml`) that is parsed here from text (no file I/O: the caller reads the
//! file and names it in errors) and can be swapped at run time without a restart.

use crate::permit::clock::Calendar;
pub use crate::permit::decision::Hours;
use crate::permit::document::{Document, DocumentKind};
use crate::permit::reply::ReplyLanguage;
use crate::permit::request::{DEFAULT_MAX_DOCUMENTS, MAX_DOCUMENTS, Parser};
use crate::permit::templates::{Language, Templates};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// The highest `max_documents_per_phone` a rules file may set: a phone's documents of the
/// day are kept in a list this long at most.
pub const MAX_DOCUMENTS_PER_PHONE: i64 = 1000;

/// One problem in a rules file: the dotted key it concerns and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct RuleError {
    /// Dotted path of the offending key, e.g. `codes.2.validity`.
    pub key: String,
    /// What is wrong and what would be right.
    pub message: String,
}

impl RuleError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        RuleError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A daily limit: a number of permits per calendar day, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DailyLimit {
    /// At most this many grants per document per day.
    PerDay(u32),
    /// No limit (code 3, funerals, in 2020).
    Unlimited,
}

/// One permit code as the engine applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeRule {
    /// The number citizens type, e.g. 2.
    pub code: u8,
    /// Short internal name, e.g. `food`.
    pub name: String,
    /// What the code is for, per language, for replies.
    pub labels: [String; Language::COUNT],
    /// Switched off codes are refused (weekend lockdowns).
    pub enabled: bool,
    /// How long a permit lasts, in seconds.
    pub validity_secs: u32,
    /// The daily limit of this code's quota group.
    pub limit: DailyLimit,
    /// The quota group's name (`code:N` for a code with its own limit).
    pub group: String,
    /// The group's stable engine tag: the lowest code in it. Stable across reloads that keep
    /// that code in the group, so the counts carry over.
    pub group_tag: u8,
    /// Whether other codes share this code's daily limit.
    pub shared: bool,
    /// When the code may be granted; `None` means at any hour.
    pub hours: Option<Hours>,
    /// For a code without a daily limit (code 3, funerals): grants a document may have in
    /// a day before the next is refused as abuse. `None`: no such limit.
    pub abuse_after: Option<u32>,
}

/// Which codes a blocklist entry refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CodeSet([u64; 4]);

impl CodeSet {
    /// Every code.
    pub const ALL: CodeSet = CodeSet([u64::MAX; 4]);

    /// Adds a code.
    pub fn insert(&mut self, code: u8) {
        self.0[usize::from(code / 64)] |= 1 << (code % 64);
    }

    /// Whether the set holds a code.
    pub fn contains(&self, code: u8) -> bool {
        self.0[usize::from(code / 64)] & (1 << (code % 64)) != 0
    }

    /// Both sets together.
    pub fn union(self, other: CodeSet) -> CodeSet {
        CodeSet(std::array::from_fn(|i| self.0[i] | other.0[i]))
    }
}

/// A parsed, validated rules file.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Calendar in the rules' time zone; days and `HH:MM` come from here.
    pub calendar: Calendar,
    /// Language of replies unless an operator or connector says otherwise: one, or `auto`.
    pub language: ReplyLanguage,
    /// The language when a text does not tell: [`Rules::language`]'s fixed one, or auto's
    /// fallback (Azerbaijani).
    pub default_language: Language,
    /// Document kinds citizens may name.
    pub documents: Vec<DocumentKind>,
    codes: Vec<Option<CodeRule>>,
    blocklist: HashMap<Document, CodeSet, foldhash::fast::RandomState>,
    /// Reply templates per language.
    pub templates: Templates,
    /// The longest validity of any code, in seconds: state older than a day plus this is
    /// useless and dropped.
    pub longest_validity_secs: u32,
    /// Distinct documents one phone may get permits for in a (local) day; the next is
    /// refused as abuse. `None`: no limit.
    pub max_documents_per_phone: Option<u32>,
    parser: Parser,
}

impl Rules {
    /// The parser for these rules' documents and codes.
    pub fn parser(&self) -> &Parser {
        &self.parser
    }

    /// The rule of a code, if the code exists (enabled or not).
    #[inline]
    pub fn code(&self, code: u8) -> Option<&CodeRule> {
        self.codes.get(usize::from(code)).and_then(Option::as_ref)
    }

    /// Every defined code, ascending.
    pub fn codes(&self) -> impl Iterator<Item = &CodeRule> {
        self.codes.iter().flatten()
    }

    /// Whether the blocklist refuses this document for this code.
    #[inline]
    pub fn is_blocked(&self, document: Document, code: u8) -> bool {
        !self.blocklist.is_empty()
            && self
                .blocklist
                .get(&document)
                .is_some_and(|set| set.contains(code))
    }

    /// The rules file's blocklist: each document and the codes it is refused.
    pub fn blocklist(&self) -> impl Iterator<Item = (Document, CodeSet)> + '_ {
        self.blocklist.iter().map(|(d, c)| (*d, *c))
    }

    /// How the series of a document is printed (`MYİ` for stored `MYI`).
    pub fn series_display(&self, document: Document) -> String {
        let (bytes, n) = document.series_bytes();
        let key = &bytes[..n];
        self.documents
            .iter()
            .find(|k| k.key.as_bytes() == key)
            .map_or_else(|| document.series(), |k| k.series.clone())
    }

    /// A document as printed in replies: `MYİ 1234567`.
    pub fn document_display(&self, document: Document) -> String {
        let mut out = String::with_capacity(16);
        self.push_document(&mut out, document);
        out
    }

    /// [`Rules::document_display`] written onto `out`, allocating nothing (a reply's
    /// rendering does this for every MO).
    pub fn push_document(&self, out: &mut String, document: Document) {
        let (bytes, n) = document.series_bytes();
        let key = &bytes[..n];
        match self.documents.iter().find(|k| k.key.as_bytes() == key) {
            Some(k) => out.push_str(&k.series),
            None => out.push_str(&String::from_utf8_lossy(key)),
        }
        out.push(' ');
        document.push_number(out);
    }

    /// Parses and validates a rules file's text; every problem is reported, not just the
    /// first.
    pub fn from_toml(text: &str) -> Result<Rules, Vec<RuleError>> {
        let raw: RawRules = deserialize_toml(text).map_err(|e| vec![e])?;
        raw.validate()
    }
}

/// Deserializes TOML text so that an error names the dotted key it concerns (via
/// `serde_path_to_error`) and the line it is on.
pub fn deserialize_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, RuleError> {
    let line_of = |e: &toml::de::Error| {
        e.span()
            .map(|s| {
                format!(
                    " (line {})",
                    text[..s.start.min(text.len())].matches('\n').count() + 1
                )
            })
            .unwrap_or_default()
    };
    let de = toml::Deserializer::parse(text).map_err(|e| {
        let key = duplicate_key(text, &e).unwrap_or_else(|| "(syntax)".to_string());
        RuleError::new(key, format!("{}{}", e.message().trim(), line_of(&e)))
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        RuleError::new(
            if path == "." {
                "(top level)".to_string()
            } else {
                path
            },
            format!("{}{}", inner.message().trim(), line_of(&inner)),
        )
    })
}

/// The dotted key a "duplicate key" error is about (`smpp.bind_timeout`): the key at the
/// error's span, under the last table header before it.
fn duplicate_key(text: &str, e: &toml::de::Error) -> Option<String> {
    if !e.message().contains("duplicate key") {
        return None;
    }
    let span = e.span()?;
    let key = text.get(span.clone())?.trim().trim_matches('"');
    if key.is_empty() || key.contains('\n') {
        return None;
    }
    let table = text[..span.start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    })
}

/// Normalises a series as printed (`MYİ`, `myi`) to its ASCII key (`MYI`).
pub fn series_key(series: &str) -> Option<String> {
    let mut key = String::new();
    for c in series.chars() {
        let c = match c {
            'İ' | 'ı' | 'i' | 'I' => 'I',
            c if c.is_ascii_alphabetic() => c.to_ascii_uppercase(),
            _ => return None,
        };
        key.push(c);
    }
    (!key.is_empty() && key.len() <= crate::permit::document::MAX_SERIES_LETTERS).then_some(key)
}

/// Reads a document as an official writes it in a file (`MYİ 1234567`, `aze11111111`):
/// a series of a known kind, then its digits (spaces allowed).
pub fn listed_document(text: &str, kinds: &[DocumentKind]) -> Option<Document> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_digit())?;
    let key = series_key(text[..split].trim())?;
    let digits: String = text[split..].chars().filter(|c| *c != ' ').collect();
    let kind = kinds.iter().find(|k| k.key == key)?;
    if !kind.accepts_len(digits.len()) {
        return None;
    }
    Document::new(key.as_bytes(), digits.as_bytes()).ok()
}

/// Parses `3h`, `90m`, `2h30m`, `45s` into seconds.
pub fn parse_duration(s: &str) -> Option<u32> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut any = false;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    (any && digits.is_empty() && total > 0 && total <= u64::from(u32::MAX)).then_some(total as u32)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    timezone: Option<String>,
    language: Option<String>,
    max_documents_per_sms: Option<i64>,
    max_documents_per_phone: Option<i64>,
    #[serde(default)]
    documents: Vec<RawDocument>,
    #[serde(default)]
    codes: BTreeMap<String, RawCode>,
    #[serde(default)]
    groups: BTreeMap<String, RawGroup>,
    #[serde(default)]
    blocklist: Vec<RawBlock>,
    #[serde(default)]
    replies: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    series: String,
    #[serde(default)]
    name: String,
    digits: Vec<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawLimit {
    Number(i64),
    Word(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCode {
    name: String,
    #[serde(default = "yes")]
    enabled: bool,
    validity: String,
    daily_limit: Option<RawLimit>,
    group: Option<String>,
    hours: Option<String>,
    abuse_after: Option<i64>,
    #[serde(default)]
    label: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    daily_limit: RawLimit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlock {
    document: String,
    codes: Option<Vec<u8>>,
    #[serde(default)]
    #[allow(dead_code)]
    reason: String,
}

fn parse_limit(raw: &RawLimit, key: &str, errors: &mut Vec<RuleError>) -> DailyLimit {
    match raw {
        RawLimit::Number(n) if (1..=i64::from(u16::MAX)).contains(n) => {
            DailyLimit::PerDay(*n as u32)
        }
        RawLimit::Word(w) if w == "unlimited" => DailyLimit::Unlimited,
        _ => {
            errors.push(RuleError::new(
                key,
                "must be a number from 1 to 65535 or \"unlimited\"",
            ));
            DailyLimit::Unlimited
        }
    }
}

impl RawRules {
    fn validate(self) -> Result<Rules, Vec<RuleError>> {
        let mut errors = Vec::new();
        let tz_name = self.timezone.as_deref().unwrap_or("Asia/Baku");
        let tz: chrono_tz::Tz = tz_name.parse().unwrap_or_else(|_| {
            errors.push(RuleError::new(
                "timezone",
                format!("unknown time zone {tz_name:?} (e.g. \"Asia/Baku\")"),
            ));
            chrono_tz::Asia::Baku
        });
        let language = match self.language.as_deref() {
            None => ReplyLanguage::Fixed(Language::Az),
            Some(l) => ReplyLanguage::parse(l, Language::Az).unwrap_or_else(|| {
                errors.push(RuleError::new(
                    "language",
                    format!("unknown language {l:?}: use az, en, ru or auto"),
                ));
                ReplyLanguage::Fixed(Language::Az)
            }),
        };
        let default_language = language.fallback();

        let max_documents = match self.max_documents_per_sms {
            None => DEFAULT_MAX_DOCUMENTS,
            Some(n) if (1..=MAX_DOCUMENTS as i64).contains(&n) => n as usize,
            Some(n) => {
                errors.push(RuleError::new(
                    "max_documents_per_sms",
                    format!("{n} is not from 1 to {MAX_DOCUMENTS}"),
                ));
                DEFAULT_MAX_DOCUMENTS
            }
        };

        let max_documents_per_phone = match self.max_documents_per_phone {
            None => None,
            Some(n) if (1..=MAX_DOCUMENTS_PER_PHONE).contains(&n) => Some(n as u32),
            Some(n) => {
                errors.push(RuleError::new(
                    "max_documents_per_phone",
                    format!(
                        "{n} is not from 1 to {MAX_DOCUMENTS_PER_PHONE} (leave it out for no limit)"
                    ),
                ));
                None
            }
        };

        let mut documents: Vec<DocumentKind> = Vec::new();
        if self.documents.is_empty() {
            errors.push(RuleError::new(
                "documents",
                "at least one [[documents]] kind is needed",
            ));
        }
        for (i, d) in self.documents.iter().enumerate() {
            let key = format!("documents[{i}]");
            let Some(series_key) = series_key(&d.series) else {
                errors.push(RuleError::new(
                    format!("{key}.series"),
                    format!("{:?} must be 1 to 4 Latin letters", d.series),
                ));
                continue;
            };
            if d.digits.is_empty()
                || d.digits
                    .iter()
                    .any(|&n| n == 0 || n > crate::permit::document::MAX_DIGITS)
            {
                errors.push(RuleError::new(
                    format!("{key}.digits"),
                    "must list digit counts from 1 to 9, e.g. [7]",
                ));
            }
            if documents.iter().any(|k| k.key == series_key) {
                errors.push(RuleError::new(
                    format!("{key}.series"),
                    format!("{:?} is listed twice", d.series),
                ));
            }
            documents.push(DocumentKind {
                series: d.series.clone(),
                key: series_key,
                name: d.name.clone(),
                digits: d.digits.clone(),
            });
        }

        let mut groups: BTreeMap<String, DailyLimit> = BTreeMap::new();
        for (name, g) in &self.groups {
            let limit = parse_limit(
                &g.daily_limit,
                &format!("groups.{name}.daily_limit"),
                &mut errors,
            );
            groups.insert(name.clone(), limit);
        }

        let mut codes: Vec<Option<CodeRule>> = vec![None; 256];
        if self.codes.is_empty() {
            errors.push(RuleError::new("codes", "at least one code is needed"));
        }
        for (k, c) in &self.codes {
            let key = format!("codes.{k}");
            let Ok(code) = k.parse::<u8>() else {
                errors.push(RuleError::new(
                    &key,
                    "a code must be a number from 0 to 255",
                ));
                continue;
            };
            let validity_secs = parse_duration(&c.validity).unwrap_or_else(|| {
                errors.push(RuleError::new(
                    format!("{key}.validity"),
                    format!(
                        "{:?} is not a duration like \"3h\", \"90m\" or \"2h30m\"",
                        c.validity
                    ),
                ));
                3600
            });
            let (group, limit, shared) = match (&c.group, &c.daily_limit) {
                (Some(_), Some(_)) => {
                    errors.push(RuleError::new(
                        format!("{key}.daily_limit"),
                        "a code in a group takes the group's daily_limit; remove one of them",
                    ));
                    (format!("code:{code}"), DailyLimit::Unlimited, false)
                }
                (Some(g), None) => match groups.get(g) {
                    Some(limit) => (g.clone(), *limit, true),
                    None => {
                        errors.push(RuleError::new(
                            format!("{key}.group"),
                            format!("no [groups.{g}] defines this group"),
                        ));
                        (g.clone(), DailyLimit::Unlimited, true)
                    }
                },
                (None, Some(l)) => (
                    format!("code:{code}"),
                    parse_limit(l, &format!("{key}.daily_limit"), &mut errors),
                    false,
                ),
                (None, None) => {
                    errors.push(RuleError::new(
                        format!("{key}.daily_limit"),
                        "missing: give a number, \"unlimited\", or a group",
                    ));
                    (format!("code:{code}"), DailyLimit::Unlimited, false)
                }
            };
            let hours = c.hours.as_deref().and_then(|h| {
                let parsed = Hours::parse(h);
                if parsed.is_none() {
                    errors.push(RuleError::new(
                        format!("{key}.hours"),
                        format!("{h:?} is not a window like \"07:00-20:00\""),
                    ));
                }
                parsed
            });
            let abuse_after = c.abuse_after.and_then(|n| {
                let key = format!("{key}.abuse_after");
                if limit != DailyLimit::Unlimited || shared || c.group.is_some() {
                    errors.push(RuleError::new(
                        key,
                        "only a code with daily_limit = \"unlimited\" of its own may set abuse_after",
                    ));
                    None
                } else if (1..=i64::from(u16::MAX)).contains(&n) {
                    Some(n as u32)
                } else {
                    errors.push(RuleError::new(key, format!("{n} is not from 1 to 65535")));
                    None
                }
            });
            let mut labels: [String; Language::COUNT] = Default::default();
            for lang in Language::ALL {
                match c.label.get(lang.tag()) {
                    Some(l) => labels[lang as usize] = l.clone(),
                    None => labels[lang as usize] = c.name.clone(),
                }
            }
            for l in c.label.keys() {
                if Language::parse(l).is_none() {
                    errors.push(RuleError::new(
                        format!("{key}.label.{l}"),
                        "unknown language: use az, en or ru",
                    ));
                }
            }
            codes[usize::from(code)] = Some(CodeRule {
                code,
                name: c.name.clone(),
                labels,
                enabled: c.enabled,
                validity_secs,
                limit,
                group,
                group_tag: code,
                shared,
                hours,
                abuse_after,
            });
        }
        // A group's tag is its lowest code; a group with one code is not shared.
        for name in self.groups.keys() {
            let members: Vec<u8> = codes
                .iter()
                .flatten()
                .filter(|c| c.shared && &c.group == name)
                .map(|c| c.code)
                .collect();
            if members.is_empty() {
                errors.push(RuleError::new(
                    format!("groups.{name}"),
                    "no code uses this group",
                ));
            }
            let tag = members.iter().copied().min().unwrap_or(0);
            for m in &members {
                if let Some(rule) = codes[usize::from(*m)].as_mut() {
                    rule.group_tag = tag;
                    rule.shared = members.len() > 1;
                }
            }
        }

        let mut blocklist = HashMap::default();
        for (i, b) in self.blocklist.iter().enumerate() {
            let key = format!("blocklist[{i}]");
            let Some(doc) = listed_document(&b.document, &documents) else {
                errors.push(RuleError::new(
                    format!("{key}.document"),
                    format!(
                        "{:?} is not a document of a kind in [[documents]] (e.g. \"AZE 11111111\")",
                        b.document
                    ),
                ));
                continue;
            };
            let set = match &b.codes {
                None => CodeSet::ALL,
                Some(list) => {
                    let mut set = CodeSet::default();
                    for &c in list {
                        if codes[usize::from(c)].is_none() {
                            errors.push(RuleError::new(
                                format!("{key}.codes"),
                                format!("code {c} is not defined in [codes]"),
                            ));
                        }
                        set.insert(c);
                    }
                    set
                }
            };
            let entry: &mut CodeSet = blocklist.entry(doc).or_default();
            *entry = entry.union(set);
        }

        let templates = Templates::from_raw(&self.replies, &mut errors);

        let longest_validity_secs = codes
            .iter()
            .flatten()
            .map(|c| c.validity_secs)
            .max()
            .unwrap_or(0);
        if !errors.is_empty() {
            return Err(errors);
        }
        let parser = Parser::new(&documents, codes.iter().flatten().map(|c| c.code))
            .with_max_documents(max_documents);
        Ok(Rules {
            parser,
            calendar: Calendar::new(tz),
            language,
            default_language,
            documents,
            codes,
            blocklist,
            templates,
            longest_validity_secs,
            max_documents_per_phone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_hours() {
        assert_eq!(parse_duration("3h"), Some(10_800));
        assert_eq!(parse_duration("2h30m"), Some(9_000));
        assert_eq!(parse_duration("90m"), Some(5_400));
        assert_eq!(parse_duration("3"), None);
        assert_eq!(parse_duration("0h"), None);
        assert_eq!(parse_duration("3 hours"), None);
        let h = Hours::parse("07:00-20:00").unwrap();
        assert!(h.contains(7 * 3600) && !h.contains(20 * 3600) && !h.contains(0));
        let night = Hours::parse("22:00-06:00").unwrap();
        assert!(night.contains(23 * 3600) && night.contains(3600) && !night.contains(12 * 3600));
        assert_eq!(night.window(), "22:00\u{2013}06:00");
        assert_eq!(
            Hours::parse("07:00-24:00").unwrap().window(),
            "07:00\u{2013}24:00"
        );
        assert!(Hours::parse("25:00-26:00").is_none());
        assert!(Hours::parse("7-8").is_none());
    }

    #[test]
    fn max_documents_per_sms_is_read_and_bounded() {
        let rules = |extra: &str| {
            Rules::from_toml(&format!(
                "{extra}\n[[documents]]\nseries = \"AZE\"\ndigits = [8]\n\
                 [codes.2]\nname = \"food\"\nvalidity = \"3h\"\ndaily_limit = 1\n"
            ))
        };
        let default = rules("").expect("valid");
        assert_eq!(default.parser().max_documents(), 5);
        let two = rules("max_documents_per_sms = 2").expect("valid");
        assert_eq!(two.parser().max_documents(), 2);
        assert!(matches!(
            two.parser()
                .parse("2 AZE 11111111 AZE 22222222 AZE 33333333"),
            Err(crate::permit::request::ParseError::TooManyDocuments { max: 2, got: 3 })
        ));
        for bad in ["0", "11", "-1"] {
            let errs = rules(&format!("max_documents_per_sms = {bad}")).expect_err(bad);
            assert_eq!(errs[0].key, "max_documents_per_sms", "{bad}");
        }
    }

    #[test]
    fn abuse_limits_are_read_and_bad_values_name_their_key() {
        let rules = |top: &str, code3: &str| {
            Rules::from_toml(&format!(
                "{top}\n[[documents]]\nseries = \"AZE\"\ndigits = [8]\n\
                 [codes.2]\nname = \"food\"\nvalidity = \"3h\"\ndaily_limit = 1\n\
                 [codes.3]\nname = \"funeral\"\nvalidity = \"3h\"\n{code3}\n"
            ))
        };
        let none = rules("", "daily_limit = \"unlimited\"").expect("valid");
        assert_eq!(none.max_documents_per_phone, None);
        assert_eq!(none.code(3).and_then(|c| c.abuse_after), None);
        let set = rules(
            "max_documents_per_phone = 3",
            "daily_limit = \"unlimited\"\nabuse_after = 2",
        )
        .expect("valid");
        assert_eq!(set.max_documents_per_phone, Some(3));
        assert_eq!(set.code(3).and_then(|c| c.abuse_after), Some(2));
        for (top, code3, key) in [
            (
                "max_documents_per_phone = 0",
                "daily_limit = \"unlimited\"",
                "max_documents_per_phone",
            ),
            (
                "max_documents_per_phone = 1001",
                "daily_limit = \"unlimited\"",
                "max_documents_per_phone",
            ),
            (
                "",
                "daily_limit = \"unlimited\"\nabuse_after = 0",
                "codes.3.abuse_after",
            ),
            (
                "",
                "daily_limit = 2\nabuse_after = 1",
                "codes.3.abuse_after",
            ),
        ] {
            let errs = rules(top, code3).expect_err(key);
            assert_eq!(errs[0].key, key, "{top} {code3}: {errs:?}");
        }
    }

    #[test]
    fn code_sets() {
        let mut s = CodeSet::default();
        s.insert(3);
        s.insert(200);
        assert!(s.contains(3) && s.contains(200) && !s.contains(2));
        assert!(CodeSet::ALL.contains(0) && CodeSet::ALL.contains(255));
    }

    #[test]
    fn series_keys() {
        assert_eq!(series_key("MYİ").as_deref(), Some("MYI"));
        assert_eq!(series_key("dyı").as_deref(), Some("DYI"));
        assert_eq!(series_key("A1"), None);
    }

    #[test]
    fn errors_name_every_bad_key() {
        let errs = Rules::from_toml(
            "timezone = \"Mars/Base\"\n[[documents]]\nseries = \"AZE\"\ndigits = [8]\n\
             [codes.1]\nname = \"x\"\nvalidity = \"3 hours\"\ndaily_limit = 0\n\
             [codes.2]\nname = \"y\"\nvalidity = \"1h\"\ngroup = \"nope\"\n\
             [replies.az]\ngranted = \"{perm}\"\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "timezone",
                "codes.1.validity",
                "codes.1.daily_limit",
                "codes.2.group",
                "replies.az.granted"
            ],
            "{errs:?}"
        );
        let typo = Rules::from_toml("[codes.1]\nname = \"x\"\nvalidty = \"3h\"\n").unwrap_err();
        assert_eq!(typo[0].key, "codes.1.validty", "{typo:?}");
        assert!(typo[0].message.contains("line 3"), "{typo:?}");
        assert!(typo[0].message.contains("validty"), "{typo:?}");
        let syntax = Rules::from_toml("[codes.1\n").unwrap_err();
        assert!(syntax[0].message.contains("line 1"), "{syntax:?}");
    }

    #[test]
    fn the_shipped_rules_are_the_april_2020_rules() {
        let r = Rules::from_toml(include_str!("../../config/rules.toml")).unwrap();
        let codes: Vec<(u8, bool, u32, DailyLimit)> = r
            .codes()
            .map(|c| (c.code, c.enabled, c.validity_secs, c.limit))
            .collect();
        assert_eq!(
            codes,
            [
                (1, true, 10_800, DailyLimit::PerDay(1)),
                (2, true, 10_800, DailyLimit::PerDay(1)),
                (3, true, 10_800, DailyLimit::Unlimited)
            ]
        );
        assert!(r.codes().all(|c| c.hours.is_none() && !c.shared));
        let series: Vec<&str> = r.documents.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(series, ["AZE", "AA", "MYI", "DYI", "MOM"]);
        assert_eq!(series_key(""), None);
    }
}
