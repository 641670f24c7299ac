//! Reply templates: the built-in texts per language and outcome, and the parsing and
//! checking of the rules file's `[replies.LANG]` overrides.
//!
//! Templates are parsed once when the rules load (literal pieces and variables), so a reply
//! costs one `String` and no parsing. The built-in templates below are the defaults; a rules
//! file overrides any of them under `[replies.az]`, `[replies.en]`, `[replies.ru]`.

use crate::permit::rules::RuleError;
use std::collections::BTreeMap;

/// Reply languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// Azerbaijani, Latin script.
    Az = 0,
    /// English.
    En = 1,
    /// Russian.
    Ru = 2,
}

impl Language {
    /// How many languages there are.
    pub const COUNT: usize = 3;
    /// Every language.
    pub const ALL: [Language; 3] = [Language::Az, Language::En, Language::Ru];

    /// `az`, `en` or `ru` (as in config).
    pub fn parse(tag: &str) -> Option<Language> {
        match tag.to_ascii_lowercase().as_str() {
            "az" => Some(Language::Az),
            "en" => Some(Language::En),
            "ru" => Some(Language::Ru),
            _ => None,
        }
    }

    /// The config tag.
    pub fn tag(self) -> &'static str {
        match self {
            Language::Az => "az",
            Language::En => "en",
            Language::Ru => "ru",
        }
    }
}

macro_rules! reply_keys {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// Which reply a template is for.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ReplyKey { $(#[doc = $doc] $variant,)* }

        impl ReplyKey {
            const ALL: &'static [ReplyKey] = &[$(ReplyKey::$variant,)*];

            /// The key's name in a rules file.
            pub fn name(self) -> &'static str {
                match self { $(ReplyKey::$variant => $name,)* }
            }

            /// Reads a key's name.
            pub fn parse(name: &str) -> Option<ReplyKey> {
                match name { $($name => Some(ReplyKey::$variant),)* _ => None }
            }

            /// Every key's name, for error messages.
            pub fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|k| k.name()).collect()
            }
        }
    };
}

reply_keys! {
    Granted => "granted", "A new permit.";
    Active => "active", "A repeat while a permit is active: the same permit again.";
    DailyLimit => "daily_limit", "The daily limit is used.";
    OutsideHours => "outside_hours", "Not at this hour.";
    CodeDisabled => "code_disabled", "The code is switched off.";
    Blocked => "blocked", "The document is blocked for the code.";
    Invalid => "invalid", "A text that is no request; the fallback for every parse error.";
    Empty => "empty", "A blank text.";
    NoCode => "no_code", "No permit code at the start.";
    UnknownCode => "unknown_code", "A code that does not exist.";
    NoDocument => "no_document", "A code but no document.";
    UnknownSeries => "unknown_series", "A series that is no document kind.";
    NoNumber => "no_number", "A series but no number.";
    WrongDigitCount => "wrong_digit_count", "A number with the wrong digit count.";
    TwoCodes => "two_codes", "Two different codes in one text.";
    AmbiguousNumber => "ambiguous_number", "A number two series could own.";
    TooManyDocuments => "too_many_documents", "More documents than one SMS may carry.";
    Help => "help", "How to ask: a help word or a lone `?`.";
    Abuse => "abuse", "Refused under an abuse limit (too many documents from one phone today, or `abuse_after` grants of an unlimited code).";
    Status => "status", "A status request's line for a document with permits asked from this phone today (then one `status_line` each).";
    StatusLine => "status_line", "One permit in a status reply.";
    StatusNone => "status_none", "A status request's line for a document with no permit asked from this phone today (also what a stranger gets).";
    TryLater => "try_later", "The gateway cannot decide now (store unavailable).";
    Revoked => "revoked", "A repeat of a permit an official revoked.";
    Family => "family", "The first line of a family reply (several documents in one text): the code and how many documents.";
    FamilyGranted => "family_granted", "A family reply's line for a document granted.";
    FamilyActive => "family_active", "A family reply's line for a document whose permit is active.";
    FamilyDailyLimit => "family_daily_limit", "A family reply's line for a document whose daily limit is used.";
    FamilyRevoked => "family_revoked", "A family reply's line for a document whose permit was revoked.";
    FamilyRefused => "family_refused", "A family reply's line for a document refused otherwise (blocked, hours, code off).";
    FamilyAbuse => "family_abuse", "A family reply's line for a document refused under an abuse limit.";
}

macro_rules! vars {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// A `{name}` a template may use.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Var { $(#[doc = $doc] $variant,)* }

        impl Var {
            fn parse(name: &str) -> Option<Var> {
                match name { $($name => Some(Var::$variant),)* _ => None }
            }
            fn names() -> &'static [&'static str] { &[$($name,)*] }
        }
    };
}

vars! {
    Code => "code", "The permit code.";
    Label => "label", "What the code is for, in the reply's language.";
    Document => "document", "Series and number, e.g. `MYİ 1234567`.";
    Window => "window", "`HH:MM–HH:MM`, Baku time.";
    From => "from", "`HH:MM` the permit starts.";
    Until => "until", "`HH:MM` it ends.";
    Date => "date", "`YYYY-MM-DD` it was issued.";
    PermitId => "permit_id", "The permit id, e.g. `K7QM-4RTX`.";
    Limit => "limit", "The daily limit that is used.";
    Hours => "hours", "The permitted hours `HH:MM–HH:MM`.";
    Series => "series", "The series the citizen typed.";
    Got => "got", "How many digits (or documents) they sent.";
    Expected => "expected", "How many digits the series takes.";
    Example => "example", "A correct message, e.g. `2 AZE 11111111`.";
    Codes => "codes", "The enabled codes, e.g. `1, 2, 3`.";
    SeriesList => "series_list", "The known series, e.g. `AZE, AA, MYİ`.";
    OtherCode => "other_code", "The second of two different codes.";
    OtherSeries => "other_series", "The second series a number could belong to.";
    Max => "max", "The most documents one SMS may name.";
    CodeLabels => "code_labels", "The enabled codes with what they are for, e.g. `1 (tibbi), 2 (ərzaq)`.";
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Var(Var),
}

/// A parsed template: literal text and `{variables}`; `{{` and `}}` are literal braces.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Piece>);

impl Template {
    /// Parses a template; the error says which variable is unknown.
    pub fn parse(text: &str, _key: ReplyKey) -> Result<Template, String> {
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
                    let var = Var::parse(name.trim()).ok_or_else(|| {
                        format!(
                            "unknown variable {{{name}}}; known: {}",
                            Var::names().join(", ")
                        )
                    })?;
                    if !lit.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Var(var));
                }
                '}' => return Err("a lone '}': write '}}' for a brace".into()),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        if pieces.is_empty() {
            return Err("empty template".into());
        }
        Ok(Template(pieces))
    }

    /// Renders with `value` writing each variable.
    pub fn render(&self, mut value: impl FnMut(Var, &mut String)) -> String {
        let mut out = String::with_capacity(160);
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => value(*v, &mut out),
            }
        }
        out
    }
}

/// Templates per language and key, defaults overridden by the rules file.
#[derive(Debug, Clone)]
pub struct Templates {
    by_lang: [BTreeMap<ReplyKey, Template>; Language::COUNT],
}

/// Built-in templates: (language, key, text).
const DEFAULTS: &[(Language, ReplyKey, &str)] = &[
    (
        Language::Az,
        ReplyKey::Granted,
        "İCAZƏ VERİLDİ: kod {code} ({label}), {document}, {window}. İcazə № {permit_id}",
    ),
    (
        Language::Az,
        ReplyKey::Active,
        "İcazəniz artıq var: kod {code} ({label}), {document}, {window}. İcazə № {permit_id}",
    ),
    (
        Language::Az,
        ReplyKey::DailyLimit,
        "İcazə verilmədi: {document} bu gün kod {code} üzrə icazəsini artıq alıb (gündə {limit}). Sabah yenidən yazın.",
    ),
    (
        Language::Az,
        ReplyKey::OutsideHours,
        "İcazə verilmədi: kod {code} ({label}) yalnız {hours} arası verilir.",
    ),
    (
        Language::Az,
        ReplyKey::CodeDisabled,
        "İcazə verilmədi: kod {code} ({label}) hazırda qüvvədə deyil. Kodlar: {codes}.",
    ),
    (
        Language::Az,
        ReplyKey::Blocked,
        "İcazə verilmədi: {document} üçün kod {code} üzrə icazə verilə bilməz.",
    ),
    (
        Language::Az,
        ReplyKey::Invalid,
        "Mesaj tanınmadı. Yazın: KOD SERİYA NÖMRƏ, məs. {example}. Kodlar: {codes}.",
    ),
    (
        Language::Az,
        ReplyKey::Empty,
        "Boş mesaj. Yazın: KOD SERİYA NÖMRƏ, məs. {example}. Kodlar: {codes}.",
    ),
    (
        Language::Az,
        ReplyKey::NoCode,
        "Mesaj icazə kodu ilə başlamalıdır ({codes}), məs. {example}.",
    ),
    (
        Language::Az,
        ReplyKey::UnknownCode,
        "Kod {code} yoxdur. Kodlar: {codes}. Məs. {example}.",
    ),
    (
        Language::Az,
        ReplyKey::NoDocument,
        "Kodu sənədin seriyası və nömrəsi izləməlidir, məs. {example}.",
    ),
    (
        Language::Az,
        ReplyKey::UnknownSeries,
        "Seriya {series} tanınmadı. Seriyalar: {series_list}. Məs. {example}.",
    ),
    (
        Language::Az,
        ReplyKey::NoNumber,
        "Seriya {series} sonra sənədin nömrəsini yazın, məs. {example}.",
    ),
    (
        Language::Az,
        ReplyKey::WrongDigitCount,
        "{series} nömrəsi {expected} rəqəmdir, siz {got} yazmısınız. Məs. {example}.",
    ),
    (
        Language::Az,
        ReplyKey::TwoCodes,
        "Bir mesajda bir kod yazın: siz {code} və {other_code} göndərmisiniz. Məs. {example}.",
    ),
    (
        Language::Az,
        ReplyKey::AmbiguousNumber,
        "Nömrə {series} və ya {other_series} üçündür? Seriyanı nömrədən əvvəl yazın, məs. {example}.",
    ),
    (
        Language::Az,
        ReplyKey::TooManyDocuments,
        "Bir mesajda ən çoxu {max} sənəd yazın, siz {got} yazmısınız. Qalanlarını ayrıca göndərin.",
    ),
    (
        Language::Az,
        ReplyKey::Help,
        "İcazə üçün yazın: KOD SERİYA NÖMRƏ, məs. {example}. Kodlar: {code_labels}.",
    ),
    (
        Language::Az,
        ReplyKey::TryLater,
        "Sorğunuzu indi emal etmək mümkün olmadı. Bir neçə dəqiqədən sonra yenidən göndərin.",
    ),
    (
        Language::Az,
        ReplyKey::Revoked,
        "{document} üçün kod {code} ({label}) üzrə icazəniz ləğv edilib. Onunla çölə çıxmayın.",
    ),
    (
        Language::En,
        ReplyKey::Granted,
        "PERMIT GRANTED: code {code} ({label}), {document}, {window}. Permit no. {permit_id}",
    ),
    (
        Language::En,
        ReplyKey::Active,
        "You already have a permit: code {code} ({label}), {document}, {window}. Permit no. {permit_id}",
    ),
    (
        Language::En,
        ReplyKey::DailyLimit,
        "Refused: {document} already had today's permit for code {code} ({limit} a day). Try again tomorrow.",
    ),
    (
        Language::En,
        ReplyKey::OutsideHours,
        "Refused: code {code} ({label}) is only granted {hours}.",
    ),
    (
        Language::En,
        ReplyKey::CodeDisabled,
        "Refused: code {code} ({label}) is not in force now. Codes: {codes}.",
    ),
    (
        Language::En,
        ReplyKey::Blocked,
        "Refused: no permit with code {code} can be issued for {document}.",
    ),
    (
        Language::En,
        ReplyKey::Invalid,
        "Message not understood. Send: CODE SERIES NUMBER, e.g. {example}. Codes: {codes}.",
    ),
    (
        Language::En,
        ReplyKey::Empty,
        "Empty message. Send: CODE SERIES NUMBER, e.g. {example}. Codes: {codes}.",
    ),
    (
        Language::En,
        ReplyKey::NoCode,
        "Start with a permit code ({codes}), e.g. {example}.",
    ),
    (
        Language::En,
        ReplyKey::UnknownCode,
        "There is no code {code}. Codes: {codes}. E.g. {example}.",
    ),
    (
        Language::En,
        ReplyKey::NoDocument,
        "After the code, send the document series and number, e.g. {example}.",
    ),
    (
        Language::En,
        ReplyKey::UnknownSeries,
        "Unknown series {series}. Series: {series_list}. E.g. {example}.",
    ),
    (
        Language::En,
        ReplyKey::NoNumber,
        "After {series}, send the document number, e.g. {example}.",
    ),
    (
        Language::En,
        ReplyKey::WrongDigitCount,
        "A {series} number has {expected} digits; you sent {got}. E.g. {example}.",
    ),
    (
        Language::En,
        ReplyKey::TwoCodes,
        "Send one code per message; you sent {code} and {other_code}. E.g. {example}.",
    ),
    (
        Language::En,
        ReplyKey::AmbiguousNumber,
        "Is the number for {series} or for {other_series}? Write the series before its number, e.g. {example}.",
    ),
    (
        Language::En,
        ReplyKey::TooManyDocuments,
        "At most {max} documents per message; you sent {got}. Send the rest in another message.",
    ),
    (
        Language::En,
        ReplyKey::Help,
        "For a permit send: CODE SERIES NUMBER, e.g. {example}. Codes: {code_labels}.",
    ),
    (
        Language::En,
        ReplyKey::TryLater,
        "We could not process your request now. Please send it again in a few minutes.",
    ),
    (
        Language::En,
        ReplyKey::Revoked,
        "Your permit with code {code} ({label}) for {document} has been revoked. Do not go out on it.",
    ),
    (
        Language::Ru,
        ReplyKey::Granted,
        "РАЗРЕШЕНИЕ ВЫДАНО: код {code} ({label}), {document}, {window}. Разрешение № {permit_id}",
    ),
    (
        Language::Ru,
        ReplyKey::Active,
        "У вас уже есть разрешение: код {code} ({label}), {document}, {window}. Разрешение № {permit_id}",
    ),
    (
        Language::Ru,
        ReplyKey::DailyLimit,
        "Отказано: {document} уже получил сегодня разрешение по коду {code} ({limit} в день). Попробуйте завтра.",
    ),
    (
        Language::Ru,
        ReplyKey::OutsideHours,
        "Отказано: код {code} ({label}) выдаётся только {hours}.",
    ),
    (
        Language::Ru,
        ReplyKey::CodeDisabled,
        "Отказано: код {code} ({label}) сейчас не действует. Коды: {codes}.",
    ),
    (
        Language::Ru,
        ReplyKey::Blocked,
        "Отказано: разрешение по коду {code} для {document} выдано быть не может.",
    ),
    (
        Language::Ru,
        ReplyKey::Invalid,
        "Сообщение не распознано. Отправьте: КОД СЕРИЯ НОМЕР, напр. {example}. Коды: {codes}.",
    ),
    (
        Language::Ru,
        ReplyKey::Empty,
        "Пустое сообщение. Отправьте: КОД СЕРИЯ НОМЕР, напр. {example}. Коды: {codes}.",
    ),
    (
        Language::Ru,
        ReplyKey::NoCode,
        "Начните с кода разрешения ({codes}), напр. {example}.",
    ),
    (
        Language::Ru,
        ReplyKey::UnknownCode,
        "Кода {code} нет. Коды: {codes}. Напр. {example}.",
    ),
    (
        Language::Ru,
        ReplyKey::NoDocument,
        "После кода укажите серию и номер документа, напр. {example}.",
    ),
    (
        Language::Ru,
        ReplyKey::UnknownSeries,
        "Серия {series} не распознана. Серии: {series_list}. Напр. {example}.",
    ),
    (
        Language::Ru,
        ReplyKey::NoNumber,
        "После {series} укажите номер документа, напр. {example}.",
    ),
    (
        Language::Ru,
        ReplyKey::WrongDigitCount,
        "Номер {series} состоит из {expected} цифр, вы отправили {got}. Напр. {example}.",
    ),
    (
        Language::Ru,
        ReplyKey::TwoCodes,
        "Укажите один код: вы отправили {code} и {other_code}. Напр. {example}.",
    ),
    (
        Language::Ru,
        ReplyKey::AmbiguousNumber,
        "Номер относится к {series} или к {other_series}? Укажите серию перед номером, напр. {example}.",
    ),
    (
        Language::Ru,
        ReplyKey::TooManyDocuments,
        "Не более {max} документов в одном сообщении, вы отправили {got}. Остальные отправьте отдельно.",
    ),
    (
        Language::Ru,
        ReplyKey::Help,
        "Для разрешения отправьте: КОД СЕРИЯ НОМЕР, напр. {example}. Коды: {code_labels}.",
    ),
    (
        Language::Ru,
        ReplyKey::TryLater,
        "Сейчас не удалось обработать запрос. Отправьте его снова через несколько минут.",
    ),
    (
        Language::Ru,
        ReplyKey::Revoked,
        "Ваше разрешение с кодом {code} ({label}) для {document} аннулировано. Не выходите по нему.",
    ),
    (
        Language::Az,
        ReplyKey::Family,
        "Kod {code} ({label}), {got} sənəd:",
    ),
    (
        Language::Az,
        ReplyKey::FamilyGranted,
        "{document}: VERİLDİ {window}, № {permit_id}",
    ),
    (
        Language::Az,
        ReplyKey::FamilyActive,
        "{document}: artıq var {window}, № {permit_id}",
    ),
    (
        Language::Az,
        ReplyKey::FamilyDailyLimit,
        "{document}: verilmədi, bu gün artıq alıb (gündə {limit})",
    ),
    (
        Language::Az,
        ReplyKey::FamilyRevoked,
        "{document}: icazə ləğv edilib",
    ),
    (
        Language::Az,
        ReplyKey::FamilyRefused,
        "{document}: verilmədi",
    ),
    (
        Language::En,
        ReplyKey::Family,
        "Code {code} ({label}), {got} documents:",
    ),
    (
        Language::En,
        ReplyKey::FamilyGranted,
        "{document}: GRANTED {window}, no. {permit_id}",
    ),
    (
        Language::En,
        ReplyKey::FamilyActive,
        "{document}: already granted {window}, no. {permit_id}",
    ),
    (
        Language::En,
        ReplyKey::FamilyDailyLimit,
        "{document}: refused, today's permit already used ({limit} a day)",
    ),
    (
        Language::En,
        ReplyKey::FamilyRevoked,
        "{document}: permit revoked",
    ),
    (Language::En, ReplyKey::FamilyRefused, "{document}: refused"),
    (
        Language::Ru,
        ReplyKey::Family,
        "Код {code} ({label}), документов: {got}:",
    ),
    (
        Language::Ru,
        ReplyKey::FamilyGranted,
        "{document}: РАЗРЕШЕНО {window}, № {permit_id}",
    ),
    (
        Language::Ru,
        ReplyKey::FamilyActive,
        "{document}: уже выдано {window}, № {permit_id}",
    ),
    (
        Language::Ru,
        ReplyKey::FamilyDailyLimit,
        "{document}: отказ, сегодня уже выдано ({limit} в день)",
    ),
    (
        Language::Ru,
        ReplyKey::FamilyRevoked,
        "{document}: разрешение аннулировано",
    ),
    (Language::Ru, ReplyKey::FamilyRefused, "{document}: отказ"),
    (
        Language::Az,
        ReplyKey::Abuse,
        "İcazə verilmədi: {document} üçün kod {code} üzrə sorğular həddi aşıb (sui-istifadə). İcazə qəbul edilmir.",
    ),
    (
        Language::En,
        ReplyKey::Abuse,
        "Refused: too many requests (abuse limit) for code {code}, {document}. The permit is not accepted.",
    ),
    (
        Language::Ru,
        ReplyKey::Abuse,
        "Отказ: превышен предел запросов (злоупотребление) по коду {code}, {document}. Разрешение не принято.",
    ),
    (
        Language::Az,
        ReplyKey::FamilyAbuse,
        "{document}: verilmədi, sorğu həddi aşılıb",
    ),
    (
        Language::En,
        ReplyKey::FamilyAbuse,
        "{document}: refused, abuse limit",
    ),
    (
        Language::Ru,
        ReplyKey::FamilyAbuse,
        "{document}: отказ, предел запросов",
    ),
    (
        Language::Az,
        ReplyKey::Status,
        "{document}, bu gün bu nömrədən:",
    ),
    (
        Language::En,
        ReplyKey::Status,
        "{document}, today from this phone:",
    ),
    (
        Language::Ru,
        ReplyKey::Status,
        "{document}, сегодня с этого номера:",
    ),
    (
        Language::Az,
        ReplyKey::StatusLine,
        "kod {code} {window}, № {permit_id}",
    ),
    (
        Language::En,
        ReplyKey::StatusLine,
        "code {code} {window}, no. {permit_id}",
    ),
    (
        Language::Ru,
        ReplyKey::StatusLine,
        "код {code} {window}, № {permit_id}",
    ),
    (
        Language::Az,
        ReplyKey::StatusNone,
        "{document}: bu gün bu nömrədən icazə yoxdur.",
    ),
    (
        Language::En,
        ReplyKey::StatusNone,
        "{document}: no permits today from this phone.",
    ),
    (
        Language::Ru,
        ReplyKey::StatusNone,
        "{document}: сегодня с этого номера разрешений нет.",
    ),
];

impl Templates {
    /// The built-in templates with the rules file's `[replies.LANG]` tables on top.
    pub(crate) fn from_raw(
        raw: &BTreeMap<String, BTreeMap<String, String>>,
        errors: &mut Vec<RuleError>,
    ) -> Templates {
        let mut by_lang: [BTreeMap<ReplyKey, Template>; Language::COUNT] = Default::default();
        for (lang, key, text) in DEFAULTS {
            if let Ok(t) = Template::parse(text, *key) {
                by_lang[*lang as usize].insert(*key, t);
            }
        }
        for (lang_tag, table) in raw {
            let Some(lang) = Language::parse(lang_tag) else {
                errors.push(RuleError {
                    key: format!("replies.{lang_tag}"),
                    message: "unknown language: use az, en or ru".into(),
                });
                continue;
            };
            for (name, text) in table {
                if let Some((key, t)) = check_template(lang_tag, name, text, errors) {
                    by_lang[lang as usize].insert(key, t);
                }
            }
        }
        Templates { by_lang }
    }

    /// The template for a key, falling back to `invalid` for a parse error without its own.
    pub(crate) fn get(&self, lang: Language, key: ReplyKey) -> &Template {
        let table = &self.by_lang[lang as usize];
        table
            .get(&key)
            .or_else(|| table.get(&ReplyKey::Invalid))
            .or_else(|| self.by_lang[Language::Az as usize].get(&key))
            .unwrap_or_else(|| &table[&ReplyKey::Invalid])
    }
}

/// Checks one `[replies.LANG] name = text` entry: a known reply key and a template that
/// parses; otherwise an error naming `replies.LANG.name`.
fn check_template(
    lang: &str,
    name: &str,
    text: &str,
    errors: &mut Vec<RuleError>,
) -> Option<(ReplyKey, Template)> {
    let key = format!("replies.{lang}.{name}");
    let Some(reply_key) = ReplyKey::parse(name) else {
        errors.push(RuleError::new(
            key,
            format!("unknown reply; known: {}", ReplyKey::names().join(", ")),
        ));
        return None;
    };
    match Template::parse(text, reply_key) {
        Ok(t) => Some((reply_key, t)),
        Err(message) => {
            errors.push(RuleError::new(key, message));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_reject_unknown_variables() {
        let t = Template::parse("Kod {code}: {{ok}}", ReplyKey::Granted).unwrap();
        assert_eq!(
            t.render(|v, out| if v == Var::Code {
                out.push('2')
            }),
            "Kod 2: {ok}"
        );
        let err = Template::parse("{nope}", ReplyKey::Granted).unwrap_err();
        assert!(err.contains("unknown variable {nope}"), "{err}");
        assert!(Template::parse("a } b", ReplyKey::Granted).is_err());
        assert!(Template::parse("", ReplyKey::Granted).is_err());
    }

    #[test]
    fn every_default_template_parses() {
        for (_, key, text) in DEFAULTS {
            Template::parse(text, *key).unwrap();
        }
        for lang in Language::ALL {
            for key in ReplyKey::ALL {
                assert!(
                    DEFAULTS.iter().any(|(l, k, _)| *l == lang && k == key),
                    "no default {} template for {:?}",
                    lang.tag(),
                    key
                );
            }
        }
    }
}
