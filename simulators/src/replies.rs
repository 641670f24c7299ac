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
        }
    }
}

/// The gateway's built-in reply templates: (language, key, text).
const DEFAULTS: &[(&str, &str, &str)] = &[
    (
        "az",
        "granted",
        "İCAZƏ VERİLDİ: kod {code} ({label}), {document}, {window}. İcazə № {permit_id}",
    ),
    (
        "az",
        "active",
        "İcazəniz artıq var: kod {code} ({label}), {document}, {window}. İcazə № {permit_id}",
    ),
    (
        "az",
        "daily_limit",
        "İcazə verilmədi: {document} bu gün kod {code} üzrə icazəsini artıq alıb (gündə {limit}). Sabah yenidən yazın.",
    ),
    (
        "az",
        "outside_hours",
        "İcazə verilmədi: kod {code} ({label}) yalnız {hours} arası verilir.",
    ),
    (
        "az",
        "code_disabled",
        "İcazə verilmədi: kod {code} ({label}) hazırda qüvvədə deyil. Kodlar: {codes}.",
    ),
    (
        "az",
        "blocked",
        "İcazə verilmədi: {document} üçün kod {code} üzrə icazə verilə bilməz.",
    ),
    (
        "az",
        "invalid",
        "Mesaj tanınmadı. Yazın: KOD SERİYA NÖMRƏ, məs. {example}. Kodlar: {codes}.",
    ),
    (
        "az",
        "empty",
        "Boş mesaj. Yazın: KOD SERİYA NÖMRƏ, məs. {example}. Kodlar: {codes}.",
    ),
    (
        "az",
        "no_code",
        "Mesaj icazə kodu ilə başlamalıdır ({codes}), məs. {example}.",
    ),
    (
        "az",
        "unknown_code",
        "Kod {code} yoxdur. Kodlar: {codes}. Məs. {example}.",
    ),
    (
        "az",
        "no_document",
        "Kodu sənədin seriyası və nömrəsi izləməlidir, məs. {example}.",
    ),
    (
        "az",
        "unknown_series",
        "Seriya {series} tanınmadı. Seriyalar: {series_list}. Məs. {example}.",
    ),
    (
        "az",
        "no_number",
        "Seriya {series} sonra sənədin nömrəsini yazın, məs. {example}.",
    ),
    (
        "az",
        "wrong_digit_count",
        "{series} nömrəsi {expected} rəqəmdir, siz {got} yazmısınız. Məs. {example}.",
    ),
    (
        "az",
        "try_later",
        "Sorğunuzu indi emal etmək mümkün olmadı. Bir neçə dəqiqədən sonra yenidən göndərin.",
    ),
    (
        "az",
        "revoked",
        "{document} üçün kod {code} ({label}) üzrə icazəniz ləğv edilib. Onunla çölə çıxmayın.",
    ),
    (
        "en",
        "granted",
        "PERMIT GRANTED: code {code} ({label}), {document}, {window}. Permit no. {permit_id}",
    ),
    (
        "en",
        "active",
        "You already have a permit: code {code} ({label}), {document}, {window}. Permit no. {permit_id}",
    ),
    (
        "en",
        "daily_limit",
        "Refused: {document} already had today's permit for code {code} ({limit} a day). Try again tomorrow.",
    ),
    (
        "en",
        "outside_hours",
        "Refused: code {code} ({label}) is only granted {hours}.",
    ),
    (
        "en",
        "code_disabled",
        "Refused: code {code} ({label}) is not in force now. Codes: {codes}.",
    ),
    (
        "en",
        "blocked",
        "Refused: no permit with code {code} can be issued for {document}.",
    ),
    (
        "en",
        "invalid",
        "Message not understood. Send: CODE SERIES NUMBER, e.g. {example}. Codes: {codes}.",
    ),
    (
        "en",
        "empty",
        "Empty message. Send: CODE SERIES NUMBER, e.g. {example}. Codes: {codes}.",
    ),
    (
        "en",
        "no_code",
        "Start with a permit code ({codes}), e.g. {example}.",
    ),
    (
        "en",
        "unknown_code",
        "There is no code {code}. Codes: {codes}. E.g. {example}.",
    ),
    (
        "en",
        "no_document",
        "After the code, send the document series and number, e.g. {example}.",
    ),
    (
        "en",
        "unknown_series",
        "Unknown series {series}. Series: {series_list}. E.g. {example}.",
    ),
    (
        "en",
        "no_number",
        "After {series}, send the document number, e.g. {example}.",
    ),
    (
        "en",
        "wrong_digit_count",
        "A {series} number has {expected} digits; you sent {got}. E.g. {example}.",
    ),
    (
        "en",
        "try_later",
        "We could not process your request now. Please send it again in a few minutes.",
    ),
    (
        "en",
        "revoked",
        "Your permit with code {code} ({label}) for {document} has been revoked. Do not go out on it.",
    ),
    (
        "ru",
        "granted",
        "РАЗРЕШЕНИЕ ВЫДАНО: код {code} ({label}), {document}, {window}. Разрешение № {permit_id}",
    ),
    (
        "ru",
        "active",
        "У вас уже есть разрешение: код {code} ({label}), {document}, {window}. Разрешение № {permit_id}",
    ),
    (
        "ru",
        "daily_limit",
        "Отказано: {document} уже получил сегодня разрешение по коду {code} ({limit} в день). Попробуйте завтра.",
    ),
    (
        "ru",
        "outside_hours",
        "Отказано: код {code} ({label}) выдаётся только {hours}.",
    ),
    (
        "ru",
        "code_disabled",
        "Отказано: код {code} ({label}) сейчас не действует. Коды: {codes}.",
    ),
    (
        "ru",
        "blocked",
        "Отказано: разрешение по коду {code} для {document} выдано быть не может.",
    ),
    (
        "ru",
        "invalid",
        "Сообщение не распознано. Отправьте: КОД СЕРИЯ НОМЕР, напр. {example}. Коды: {codes}.",
    ),
    (
        "ru",
        "empty",
        "Пустое сообщение. Отправьте: КОД СЕРИЯ НОМЕР, напр. {example}. Коды: {codes}.",
    ),
    (
        "ru",
        "no_code",
        "Начните с кода разрешения ({codes}), напр. {example}.",
    ),
    (
        "ru",
        "unknown_code",
        "Кода {code} нет. Коды: {codes}. Напр. {example}.",
    ),
    (
        "ru",
        "no_document",
        "После кода укажите серию и номер документа, напр. {example}.",
    ),
    (
        "ru",
        "unknown_series",
        "Серия {series} не распознана. Серии: {series_list}. Напр. {example}.",
    ),
    (
        "ru",
        "no_number",
        "После {series} укажите номер документа, напр. {example}.",
    ),
    (
        "ru",
        "wrong_digit_count",
        "Номер {series} состоит из {expected} цифр, вы отправили {got}. Напр. {example}.",
    ),
    (
        "ru",
        "try_later",
        "Сейчас не удалось обработать запрос. Отправьте его снова через несколько минут.",
    ),
    (
        "ru",
        "revoked",
        "Ваше разрешение с кодом {code} ({label}) для {document} аннулировано. Не выходите по нему.",
    ),
];

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
}

/// Every template of every language, ready to match replies.
#[derive(Debug, Clone)]
pub struct Classifier {
    templates: Vec<Template>,
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
        let mut templates = Vec::new();
        for (lang, key, text) in table {
            let Some(k) = Key::parse(&key) else {
                bail!("replies.{lang}.{key}: no such reply");
            };
            templates.push(Template {
                key: k,
                pieces: parse_template(&text)?,
            });
        }
        Ok(Classifier { templates })
    }

    /// The template a reply came from and what it echoes; `None` if no template matches.
    pub fn classify(&self, text: &str) -> Option<Classified> {
        let mut caps: Vec<(Var, &str)> = Vec::new();
        for t in &self.templates {
            if let Some(Piece::Lit(first)) = t.pieces.first()
                && !text.starts_with(first.as_str())
            {
                continue;
            }
            caps.clear();
            if matches(&t.pieces, text, &mut caps) {
                return Some(Self::read(t.key, &caps));
            }
        }
        None
    }

    fn read(key: Key, caps: &[(Var, &str)]) -> Classified {
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
                window_minutes: None
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
