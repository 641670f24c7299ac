//! Reading the gateway's replies: which template produced a text, and what it echoes.
//!
//! The gateway's reply templates are its public format: built-in texts in az, en and ru
//! (copied below from the maintainers' table of defaults; their first words are stable), and
//! the rules file's `[replies.LANG]` overrides on top. A reply is classified by matching it
//! against every template, literal pieces exactly and `{variables}` as wildcards, so the
//! classification also yields the echoed `{code}`, `{document}` and validity `{window}`,
//! which the ledger checks against the request.
//!
//! Templates are tried only when their first literal piece starts the text, so a reply
//! costs a few `starts_with` and one full match.

use crate::oracle::Class;
use crate::rules::Rules;
use crate::templates::DEFAULTS;
use crate::traffic::Reason;
use anyhow::{Result, bail};

/// The reply keys, as the gateway names its templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A new permit.
    Granted,
    /// The permit already held.
    Active,
    /// Daily limit used.
    DailyLimit,
    /// Outside permitted hours.
    OutsideHours,
    /// Code switched off.
    CodeDisabled,
    /// Document blocked.
    Blocked,
    /// The general "not understood".
    Invalid,
    /// Parse errors with their own hint.
    Parse(Reason),
    /// Store unavailable.
    TryLater,
    /// The permit was revoked by an official.
    Revoked,
    /// The usage reply to a help word.
    Help,
    /// The first line of a family reply (code and how many documents).
    Family,
    /// A family reply's line: a document granted.
    FamilyGranted,
    /// A family reply's line: the permit already held.
    FamilyActive,
    /// A family reply's line: the daily limit used.
    FamilyDailyLimit,
    /// A family reply's line: the permit was revoked.
    FamilyRevoked,
    /// A family reply's line: refused for another reason, not said (blocked, hours, off).
    FamilyRefused,
    /// Refused under an abuse limit.
    Abuse,
    /// A family reply's line: refused under an abuse limit.
    FamilyAbuse,
    /// A status reply's line for a document with permits today from this phone.
    Status,
    /// A status reply's line for one permit.
    StatusLine,
    /// A status reply's line for a document with none (also what a stranger gets).
    StatusNone,
}

impl Key {
    fn parse(name: &str) -> Option<Key> {
        Some(match name {
            "granted" => Key::Granted,
            "active" => Key::Active,
            "daily_limit" => Key::DailyLimit,
            "outside_hours" => Key::OutsideHours,
            "code_disabled" => Key::CodeDisabled,
            "blocked" => Key::Blocked,
            "invalid" => Key::Invalid,
            "try_later" => Key::TryLater,
            "revoked" => Key::Revoked,
            "help" => Key::Help,
            "family" => Key::Family,
            "family_granted" => Key::FamilyGranted,
            "family_active" => Key::FamilyActive,
            "family_daily_limit" => Key::FamilyDailyLimit,
            "family_revoked" => Key::FamilyRevoked,
            "family_refused" => Key::FamilyRefused,
            "abuse" => Key::Abuse,
            "family_abuse" => Key::FamilyAbuse,
            "status" => Key::Status,
            "status_line" => Key::StatusLine,
            "status_none" => Key::StatusNone,
            other => Key::Parse(Reason::ALL.into_iter().find(|r| r.key() == other)?),
        })
    }

    /// The reply class this key stands for.
    pub fn class(self) -> Class {
        match self {
            Key::Granted => Class::Granted,
            Key::Active => Class::Active,
            Key::DailyLimit => Class::DailyLimit,
            Key::OutsideHours => Class::OutsideHours,
            Key::CodeDisabled => Class::CodeDisabled,
            Key::Blocked => Class::Blocked,
            Key::Invalid => Class::Invalid(None),
            Key::Parse(r) => Class::Invalid(Some(r)),
            Key::TryLater => Class::TryLater,
            Key::Revoked => Class::Revoked,
            Key::Help => Class::Help,
            Key::Family => Class::Family,
            Key::FamilyGranted => Class::Granted,
            Key::FamilyActive => Class::Active,
            Key::FamilyDailyLimit => Class::DailyLimit,
            Key::FamilyRevoked => Class::Revoked,
            Key::FamilyRefused => Class::Refused,
            Key::Abuse | Key::FamilyAbuse => Class::Abuse,
            Key::Status => Class::Status,
            Key::StatusLine => Class::StatusLine,
            Key::StatusNone => Class::StatusNone,
        }
    }

    /// Whether the key is one line of a status reply.
    fn is_status(self) -> bool {
        matches!(self, Key::Status | Key::StatusLine | Key::StatusNone)
    }

    /// Whether the key is one line of a family reply rather than a whole reply.
    fn is_line(self) -> bool {
        matches!(
            self,
            Key::FamilyGranted
                | Key::FamilyActive
                | Key::FamilyDailyLimit
                | Key::FamilyRevoked
                | Key::FamilyRefused
                | Key::FamilyAbuse
        )
    }
}

/// The language a template is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    /// Azerbaijani.
    Az,
    /// English.
    En,
    /// Russian.
    Ru,
    /// A tag the gateway does not have (an override the simulator reads as given).
    Other,
}

impl Lang {
    /// The tag as in config (`az`, `en`, `ru`).
    pub fn parse(tag: &str) -> Lang {
        match tag {
            "az" => Lang::Az,
            "en" => Lang::En,
            "ru" => Lang::Ru,
            _ => Lang::Other,
        }
    }

    /// The tag.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Az => "az",
            Lang::En => "en",
            Lang::Ru => "ru",
            Lang::Other => "other",
        }
    }
}

/// The variables whose values the ledger checks; the rest only need to match something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Code,
    Document,
    Window,
    From,
    Until,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Var(Var),
}

#[derive(Debug, Clone)]
struct Template {
    key: Key,
    lang: Lang,
    pieces: Vec<Piece>,
}

fn parse_template(text: &str) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Var(match name.trim() {
                    "code" => Var::Code,
                    "document" => Var::Document,
                    "window" => Var::Window,
                    "from" => Var::From,
                    "until" => Var::Until,
                    _ => Var::Other,
                }));
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    if pieces.is_empty() {
        bail!("empty template");
    }
    Ok(pieces)
}

/// What a reply says, as far as the checks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// The template it matched.
    pub key: Key,
    /// The code it echoes.
    pub code: Option<u32>,
    /// The document it echoes, as printed (`MYİ 1234567`).
    pub document: Option<String>,
    /// Length of the validity window it prints, in minutes (modulo a day).
    pub window_minutes: Option<u32>,
    /// The language of the template it matched.
    pub lang: Lang,
    /// A family reply's lines, one per document in reply order (empty for other replies).
    pub lines: Vec<Line>,
}

/// One line of a family reply: a document and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The outcome ([`Class::Refused`] where the line gives no reason).
    pub class: Class,
    /// The document it names, as printed.
    pub document: Option<String>,
    /// Length of its validity window in minutes, for a grant or an active permit.
    pub window_minutes: Option<u32>,
}

/// Every template of every language, ready to match replies.
#[derive(Debug, Clone)]
pub struct Classifier {
    templates: Vec<Template>,
    /// The lines of family replies.
    lines: Vec<Template>,
    /// The lines of status replies.
    status: Vec<Template>,
}

/// Minutes since midnight of `HH:MM`.
fn hh_mm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    Some(h.parse::<u32>().ok()? * 60 + m.parse::<u32>().ok()?)
}

impl Classifier {
    /// The built-in templates with the rules file's overrides on top (an override replaces
    /// the built-in text of its language and key).
    pub fn new(rules: &Rules) -> Result<Classifier> {
        let mut table: Vec<(String, String, String)> = DEFAULTS
            .iter()
            .map(|(l, k, t)| (l.to_string(), k.to_string(), t.to_string()))
            .collect();
        for (lang, keys) in &rules.replies {
            for (key, text) in keys {
                match table.iter_mut().find(|(l, k, _)| l == lang && k == key) {
                    Some(entry) => entry.2 = text.clone(),
                    None => table.push((lang.clone(), key.clone(), text.clone())),
                }
            }
        }
        let (mut templates, mut lines, mut status) = (Vec::new(), Vec::new(), Vec::new());
        for (lang, key, text) in table {
            let Some(k) = Key::parse(&key) else {
                bail!("replies.{lang}.{key}: no such reply");
            };
            let t = Template {
                key: k,
                lang: Lang::parse(&lang),
                pieces: parse_template(&text)?,
            };
            if k.is_status() {
                status.push(t);
            } else if k.is_line() {
                lines.push(t);
            } else {
                templates.push(t);
            }
        }
        Ok(Classifier {
            templates,
            lines,
            status,
        })
    }

    /// The template a reply came from and what it echoes; `None` if no template matches.
    pub fn classify(&self, text: &str) -> Option<Classified> {
        let first = text.split('\n').next().unwrap_or("");
        if let Some(head) = Self::find(&self.status, first)
            && head.key != Key::StatusLine
        {
            let mut reply = Classified {
                key: Key::Status,
                lines: Vec::new(),
                ..head
            };
            for line in text.split('\n') {
                let line = Self::find(&self.status, line)?;
                reply.lines.push(Line {
                    class: line.key.class(),
                    document: line.document,
                    window_minutes: line.window_minutes,
                });
            }
            return Some(reply);
        }
        if let Some((first, rest)) = text.split_once('\n')
            && let Some(mut header) = Self::find(&self.templates, first)
            && header.key == Key::Family
        {
            for line in rest.split('\n') {
                let line = Self::find(&self.lines, line)?;
                header.lines.push(Line {
                    class: line.key.class(),
                    document: line.document,
                    window_minutes: line.window_minutes,
                });
            }
            return Some(header);
        }
        Self::find(&self.templates, text).filter(|c| c.key != Key::Family)
    }

    /// The first of `templates` that matches the whole of `text`.
    fn find(templates: &[Template], text: &str) -> Option<Classified> {
        let mut caps: Vec<(Var, &str)> = Vec::new();
        for t in templates {
            if let Some(Piece::Lit(first)) = t.pieces.first()
                && !text.starts_with(first.as_str())
            {
                continue;
            }
            caps.clear();
            if matches(&t.pieces, text, &mut caps) {
                return Some(Self::read(t.key, t.lang, &caps));
            }
        }
        None
    }

    fn read(key: Key, lang: Lang, caps: &[(Var, &str)]) -> Classified {
        let get = |v: Var| caps.iter().find(|(w, _)| *w == v).map(|(_, s)| *s);
        let window = get(Var::Window)
            .and_then(|w| w.split_once('\u{2013}'))
            .or_else(|| Some((get(Var::From)?, get(Var::Until)?)))
            .and_then(|(a, b)| Some((hh_mm(b)? + 1440 - hh_mm(a)?) % 1440));
        Classified {
            key,
            code: get(Var::Code).and_then(|c| c.parse().ok()),
            document: get(Var::Document).map(str::to_string),
            window_minutes: window,
            lang,
            lines: Vec::new(),
        }
    }
}

/// Whether `s` can be the value of `v`: checked variables have the shape the gateway prints
/// (a document is `SERIES DIGITS`, times are `HH:MM`), which keeps a template whose variables
/// sit side by side from matching the wrong split.
fn shaped(v: Var, s: &str) -> bool {
    let time = |t: &str| t.len() == 5 && hh_mm(t).is_some();
    !s.is_empty()
        && match v {
            Var::Code => s.bytes().all(|b| b.is_ascii_digit()),
            Var::Document => s.split_once(' ').is_some_and(|(series, number)| {
                !series.is_empty()
                    && !series.contains(char::is_whitespace)
                    && !number.is_empty()
                    && number.bytes().all(|b| b.is_ascii_digit())
            }),
            Var::From | Var::Until => time(s),
            Var::Window => s
                .split_once('\u{2013}')
                .is_some_and(|(a, b)| time(a) && time(b)),
            Var::Other => true,
        }
}

/// Matches `text` against template pieces, literals exactly and variables as non-empty
/// wildcards (a `{code}` only digits), recording what each checked variable matched.
/// Backtracks over where a variable ends; texts are a few hundred characters at most.
fn matches<'t>(pieces: &[Piece], text: &'t str, caps: &mut Vec<(Var, &'t str)>) -> bool {
    match pieces.split_first() {
        None => text.is_empty(),
        Some((Piece::Lit(l), rest)) => {
            text.starts_with(l.as_str()) && matches(rest, &text[l.len()..], caps)
        }
        Some((Piece::Var(v), rest)) => {
            let fits = |s: &str| shaped(*v, s);
            let mark = caps.len();
            match rest.first() {
                None => {
                    if fits(text) {
                        caps.push((*v, text));
                        return true;
                    }
                    false
                }
                Some(Piece::Lit(next)) => {
                    for (at, _) in text.match_indices(next.as_str()) {
                        let value = &text[..at];
                        if !fits(value) {
                            // Later ends only lengthen the value: a code that is no longer
                            // all digits never will be.
                            if *v == Var::Code && !value.is_empty() && !shaped(Var::Code, value) {
                                return false;
                            }
                            continue;
                        }
                        caps.push((*v, value));
                        if matches(rest, &text[at..], caps) {
                            return true;
                        }
                        caps.truncate(mark);
                    }
                    false
                }
                Some(Piece::Var(_)) => {
                    for (at, _) in text.char_indices().skip(1) {
                        let value = &text[..at];
                        if !fits(value) {
                            continue;
                        }
                        caps.push((*v, value));
                        if matches(rest, &text[at..], caps) {
                            return true;
                        }
                        caps.truncate(mark);
                    }
                    false
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classifier(overrides: &str) -> Classifier {
        let rules = Rules::from_toml(&format!(
            "[[documents]]\nseries = \"AZE\"\ndigits = [8]\n[codes.2]\nvalidity = \"3h\"\ndaily_limit = 1\n{overrides}"
        ))
        .unwrap();
        Classifier::new(&rules).unwrap()
    }

    #[test]
    fn replies_in_every_language_are_classified_with_their_echoes() {
        let c = classifier("");
        let got = c
            .classify("İCAZƏ VERİLDİ: kod 2 (ərzaq, dərman, bank, poçt), AZE 11111111, 10:00–13:00. İcazə № 95NF-JFQP")
            .unwrap();
        assert_eq!(got.key, Key::Granted);
        assert_eq!(got.code, Some(2));
        assert_eq!(got.document.as_deref(), Some("AZE 11111111"));
        assert_eq!(got.window_minutes, Some(180));
        let late = c
            .classify("You already have a permit: code 2 (food, medicine, bank, post), MYİ 1234567, 22:30–01:30. Permit no. X")
            .unwrap();
        assert_eq!((late.key, late.window_minutes), (Key::Active, Some(180)));
        let refused = c
            .classify("Отказано: AA 1234567 уже получил сегодня разрешение по коду 1 (1 в день). Попробуйте завтра.")
            .unwrap();
        assert_eq!(refused.key, Key::DailyLimit);
        assert_eq!(refused.document.as_deref(), Some("AA 1234567"));
        assert_eq!(
            c.classify("İcazə verilmədi: AZE 99999999 üçün kod 3 üzrə icazə verilə bilməz.")
                .unwrap()
                .key,
            Key::Blocked
        );
        assert_eq!(
            c.classify("AZE nömrəsi 8/7 rəqəmdir, siz 9 yazmısınız. Məs. 2 AZE 12345678.")
                .unwrap()
                .key,
            Key::Parse(Reason::WrongDigitCount)
        );
        assert_eq!(
            c.classify("Kod 7 yoxdur. Kodlar: 1, 2, 3. Məs. 1 AZE 12345678.")
                .unwrap(),
            Classified {
                key: Key::Parse(Reason::UnknownCode),
                code: Some(7),
                document: None,
                window_minutes: None,
                lang: Lang::Az,
                lines: Vec::new(),
            }
        );
        assert_eq!(
            c.classify("Boş mesaj. Yazın: KOD SERİYA NÖMRƏ, məs. 1 AZE 12345678. Kodlar: 1, 2, 3.")
                .unwrap()
                .key,
            Key::Parse(Reason::Empty)
        );
        assert!(c.classify("hello").is_none());
    }

    #[test]
    fn family_and_help_replies_are_read_line_by_line() {
        let c = classifier("");
        let text = "Code 2 (food, medicine, bank, post), 3 documents:\n\
                    AZE 11111111: GRANTED 10:00\u{2013}13:00, no. K7QM-4RTX\n\
                    AA 1234567: refused, today's permit already used (1 a day)\n\
                    MYİ 7654321: refused";
        let got = c.classify(text).unwrap();
        assert_eq!(
            (got.key, got.code, got.lang),
            (Key::Family, Some(2), Lang::En)
        );
        let lines: Vec<(Class, Option<&str>, Option<u32>)> = got
            .lines
            .iter()
            .map(|l| (l.class, l.document.as_deref(), l.window_minutes))
            .collect();
        assert_eq!(
            lines,
            [
                (Class::Granted, Some("AZE 11111111"), Some(180)),
                (Class::DailyLimit, Some("AA 1234567"), None),
                (Class::Refused, Some("MYİ 7654321"), None),
            ]
        );
        let ru = "Код 1 (x), документов: 2:\nAA 1234567: уже выдано 22:30\u{2013}01:30, № A\n\
                  DYİ 7654321: разрешение аннулировано";
        let got = c.classify(ru).unwrap();
        assert_eq!(got.lang, Lang::Ru);
        assert_eq!(got.lines[0].class, Class::Active);
        assert_eq!(got.lines[1].class, Class::Revoked);
        // A line no template knows makes the whole reply unrecognised.
        assert!(
            c.classify("Kod 2 (x), 2 sənəd:\nAZE 11111111: bilinmir")
                .is_none()
        );
        // A header alone is no reply.
        assert!(c.classify("Kod 2 (x), 2 sənəd:").is_none());
        let help = c
            .classify(
                "For a permit send: CODE SERIES NUMBER, e.g. 2 AZE 12345678. Codes: 1 (a), 2 (b).",
            )
            .unwrap();
        assert_eq!((help.key, help.lang), (Key::Help, Lang::En));
        assert_eq!(
            c.classify("Send one code per message; you sent 2 and 3. E.g. 2 AZE 12345678.")
                .unwrap()
                .key,
            Key::Parse(Reason::TwoCodes)
        );
    }

    #[test]
    fn overrides_replace_the_builtin_text() {
        let c = classifier("[replies.az]\ngranted = \"OK {code} {document} {from}-{until}\"\n");
        let got = c.classify("OK 2 AZE 11111111 22:30-01:30").unwrap();
        assert_eq!(got.key, Key::Granted);
        assert_eq!(got.window_minutes, Some(180));
        assert!(
            c.classify("İCAZƏ VERİLDİ: kod 2 (x), AZE 11111111, 10:00–13:00. İcazə № 1")
                .is_none()
        );
    }
}
