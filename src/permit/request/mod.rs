//! A citizen's text becomes [`Parsed`] (a family of [`PermitRequest`]s, help, or a status
//! request), or a [`ParseError`] that knows what hint the reply should carry.
//!
//! # What the parser reads
//!
//! `CODE SERIES NUMBER`, e.g. `2 AZE 11111111`, `1 AA1234567`, `2 MYİ1234567`, as people
//! really type it on whatever phone they have, anywhere in the text:
//!
//! - in any order and among other words: `AZE 11111111 2`, `Salam, kod 2 AZE 11111111`,
//!   `11111111 AZE 2`, `2 AZE 11111111 zəhmət olmasa`, `пожалуйста 2 AZE 11111111`;
//! - any case; no separators or many: spaces, dashes, dots, commas, slashes, line breaks
//!   (`2aze11111111`, `2/AZE/11111111`, `2 AZE: №11111111`);
//! - İ, i, ı and I all read as `I`; a combining dot above (`I` + U+0307) is ignored;
//! - Cyrillic by look (А В Е К М Н О Р С Т У Х, and І Ѕ Ј) and by sound (З Д Э Й Ы Ю…, see
//!   `normalize.rs`), so `АZЕ`, `АЗЕ`, `МУИ`, `МЙИ`, `ДУИ`, `МОМ` all read; and a Cyrillic
//!   И also as Y where I matches no series (`МИИ`: a Й whose breve was dropped);
//! - the letters of a series spread out (`A Z E 11111111`, `M Y İ 1234567`), and `M0M`;
//! - `?` for a letter an SMSC lost converting to GSM 7-bit (`2 MY?1234567` is MYİ, `D?İ`
//!   is DYİ), when one kind alone fits and at most half the letters are lost;
//! - the letter O (Latin or Cyrillic) for 0 and I or l for 1 inside a number of at least
//!   three real digits (`1111O111`, `O1234567`, `AZEO1234567`);
//! - the decimal digits of every script (Arabic-Indic, Extended Arabic-Indic, Devanagari,
//!   full-width, … from a table of the Unicode Nd zeros), full-width Latin letters;
//! - any whitespace (tab, NBSP, U+3000), zero-width characters and soft hyphens skipped;
//! - several documents for one code (`2 AZE 11111111 AA 1234567 MYİ 7654321`), up to
//!   [`Parser::max_documents`]; the same document twice counts once;
//! - a help word (`kömək`, `yardım`, `help`, `info`, `помощь`, `справка`) or a lone `?`
//!   with no request in the text: [`Parsed::Help`]; a status word (`status`, `vəziyyət`,
//!   `статус`) with documents: [`Parsed::Status`].
//!
//! One pass turns the text into tokens (runs of digits, runs of letters, each knowing the
//! gap before it) in a fixed buffer; the reader then works on at most a few tokens. Nothing
//! is allocated for a one-document request unless it has extra words after it.
//!
//! # Decisions on ambiguous texts
//!
//! - **Where the number ends.** The first digit run after the series is always part of the
//!   number. Further digit groups join it only when (a) the gap before them is horizontal
//!   whitespace with at most one dash or dot (`1111 1111`, `1111-1111`, `1111 - 1111`);
//!   (b) the group is a whole token (`10AB123` is a car plate); (c) the total stays within
//!   the kind's largest digit count. The longest allowed total wins, so `2 AZE 1234567 8`
//!   reads as the 8-digit `12345678`. Car plates (two digits, two letters, three digits,
//!   glued or with dashes or spaces) are never read as documents or codes.
//! - **The code** is the number of at most three digits that is one of the rules' codes,
//!   wherever it stands; repeated, it counts once. Other short numbers (a house number, a
//!   plate's region) are ignored when a code is there. Two different codes are
//!   [`ParseError::TwoCodes`]; only numbers that are no code give
//!   [`ParseError::UnknownCode`]; no short number at all gives [`ParseError::NoCode`] —
//!   except when a document's last digit group is a code and the number is whole without
//!   it: `AZE 1234567 2` is code 2 for `AZE 1234567` (with a code elsewhere, the group
//!   stays in the number, as above).
//! - **Number before the series** (`11111111 AZE 2`) is read only when no fitting number
//!   follows the series. A number between two series that fits both and is glued to
//!   neither (`AZE 1234567 AA`) is [`ParseError::AmbiguousNumber`].
//! - **Nothing is silently dropped.** A known series without a number is
//!   [`ParseError::NoNumber`], even beside a good document; a number of a document's length
//!   with no series (`2 AZE 11111111 7654321`) is [`ParseError::NoDocument`], or
//!   [`ParseError::UnknownSeries`] when a word stands before it (`XYZ 7654321`); more
//!   documents than the limit is [`ParseError::TooManyDocuments`].
//! - **Which refusal.** Code problems first, then the first document problem in the text,
//!   then a missing document; so `7 XYZ 1` is an unknown code.
//! - **A text of only whitespace** is [`ParseError::Empty`]; one of only punctuation or
//!   emoji is [`ParseError::NoCode`].

mod keywords;
mod language;
mod normalize;
mod read;
mod series;
#[cfg(test)]
mod tests;
mod tokens;

pub use language::detect_language;

use crate::permit::document::{Document, DocumentKind};
use normalize::{BREAK, IGNORE, JOIN, SPACE, norm_char};
use series::KindKey;

/// Most bytes of [`PermitRequest::extra`]: enough for a plate and a note, bounded so that a
/// long concatenated text does not travel through the engine and the journal.
pub const MAX_EXTRA_BYTES: usize = 160;

/// Most characters of a series echoed in [`ParseError::UnknownSeries`], so the hint still
/// fits one SMS when someone sends a paragraph.
pub const MAX_ECHO_CHARS: usize = 12;

/// What a citizen asked for: a permit of `code` for `document`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitRequest {
    /// The permit code, e.g. 2 for food, medicine, bank or post.
    pub code: u8,
    /// The identity document the permit is for.
    pub document: Document,
    /// Words after the request (a car plate, a note), kept for the record; empty if none.
    /// The text after the last token the request used, trimmed of surrounding whitespace
    /// and leading separator punctuation, cut at [`MAX_EXTRA_BYTES`]; the same for every
    /// request of a family.
    pub extra: String,
}

/// One item or several, in text order; one needs no heap allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OneOrMore<T> {
    /// Exactly one.
    One(T),
    /// Two or more.
    More(Vec<T>),
}

impl<T> OneOrMore<T> {
    /// The items of a non-empty iterator (an empty one gives an empty `More`, which the
    /// parser never builds).
    fn collect(items: impl Iterator<Item = T>) -> Self {
        let mut items: Vec<T> = items.collect();
        if items.len() == 1
            && let Some(one) = items.pop()
        {
            return OneOrMore::One(one);
        }
        OneOrMore::More(items)
    }

    /// The items as a slice.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMore::One(one) => std::slice::from_ref(one),
            OneOrMore::More(many) => many,
        }
    }

    /// The items as a `Vec` (allocates for one).
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMore::One(one) => vec![one],
            OneOrMore::More(many) => many,
        }
    }
}

impl<T> std::ops::Deref for OneOrMore<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T> IntoIterator for OneOrMore<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;
    fn into_iter(self) -> Self::IntoIter {
        match self {
            OneOrMore::One(one) => Some(one).into_iter().chain(Vec::new()),
            OneOrMore::More(many) => None.into_iter().chain(many),
        }
    }
}

/// What a text asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Permits: one request per document named (a household), all for the same code, in
    /// text order, each document once.
    Permits(OneOrMore<PermitRequest>),
    /// How the service works: a help word, or a lone `?`, and no request.
    Help,
    /// Which permits these documents have today: a status word and documents.
    Status(OneOrMore<Document>),
}

impl Parsed {
    /// The permit requests, if the text asks for permits.
    pub fn into_permits(self) -> Option<OneOrMore<PermitRequest>> {
        match self {
            Parsed::Permits(requests) => Some(requests),
            _ => None,
        }
    }
}

/// Why a text is not a permit request; each variant maps to a reply with a hint.
///
/// Code problems come first, then the first document problem in the text (see the module's
/// "Which refusal"): `7 XYZ 1` is an unknown code, not an unknown series.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace: the citizen hit send by mistake, so the reply is the format.
    #[error("empty message")]
    Empty,
    /// The text has no permit code (no number of at most three digits), e.g.
    /// `AZE 11111111` or `salam`; the reply lists the codes.
    #[error("the message has no permit code")]
    NoCode,
    /// The only short numbers are no code of these rules (`7 AZE 11111111`); the reply
    /// echoes the first and lists the codes.
    #[error("unknown permit code {code}")]
    UnknownCode {
        /// The first such number.
        code: u32,
    },
    /// Two different codes (`2 AZE 11111111 3`): which one is meant cannot be guessed.
    #[error("two different permit codes {first} and {second}")]
    TwoCodes {
        /// The first code in the text.
        first: u8,
        /// The other one.
        second: u8,
    },
    /// A code and no document, or digits with no series (`2 11111111`, also beside a good
    /// document: `2 AZE 11111111 7654321`): the reply shows the full format.
    #[error("no document series and number")]
    NoDocument,
    /// The word after the code matches no document kind (`2 XYZ 1234567`, `2 M0M 1234567`);
    /// the reply echoes it and lists the series.
    #[error("unknown document series {series:?}")]
    UnknownSeries {
        /// The word as the citizen wrote it, at most [`MAX_ECHO_CHARS`] characters.
        series: String,
    },
    /// A known series but no digits after it (`2 AZE`); the reply asks for the number.
    #[error("no document number after series {series}")]
    NoNumber {
        /// The series as printed in replies (`MYİ`), not as typed.
        series: String,
    },
    /// The number has a digit count the kind does not allow (`2 AZE 111111111`); the reply
    /// says how many digits were read and how many are expected.
    #[error("a {series} number has {expected:?} digits, got {got}")]
    WrongDigitCount {
        /// The series as printed in replies (`MYİ`).
        series: String,
        /// How many digits the parser read as the number (see the module's rule on where the
        /// number ends).
        got: usize,
        /// The counts the kind allows, in the rules file's order.
        expected: Vec<u8>,
    },
    /// A number between two series that fits both (`AZE 1234567 AA`): whose is it?
    #[error("the number could be for {first} or for {second}")]
    AmbiguousNumber {
        /// The series before the number, as printed.
        first: String,
        /// The series after it.
        second: String,
    },
    /// More documents than one SMS may carry: the reply says the limit.
    #[error("{got} documents in one message, at most {max}")]
    TooManyDocuments {
        /// [`Parser::max_documents`].
        max: usize,
        /// How many distinct documents the text names.
        got: usize,
    },
}

impl ParseError {
    /// A stable snake_case key (`unknown_code`, …), the same as the reply template's name,
    /// so reply templates, JSON output and metrics label the refusal identically and a
    /// rewording of [`std::fmt::Display`] never breaks them.
    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::Empty => "empty",
            ParseError::NoCode => "no_code",
            ParseError::UnknownCode { .. } => "unknown_code",
            ParseError::TwoCodes { .. } => "two_codes",
            ParseError::NoDocument => "no_document",
            ParseError::UnknownSeries { .. } => "unknown_series",
            ParseError::NoNumber { .. } => "no_number",
            ParseError::WrongDigitCount { .. } => "wrong_digit_count",
            ParseError::AmbiguousNumber { .. } => "ambiguous_number",
            ParseError::TooManyDocuments { .. } => "too_many_documents",
        }
    }
}

/// Documents one SMS may name unless the rules say otherwise (`max_documents_per_sms`).
pub const DEFAULT_MAX_DOCUMENTS: usize = 5;
/// The most `max_documents_per_sms` may be: a reply listing more would not fit a few parts.
pub const MAX_DOCUMENTS: usize = read::MAX_DOCUMENTS;

/// Parses texts against the document kinds and codes of one rules snapshot.
#[derive(Debug, Clone)]
pub struct Parser {
    /// The kinds as the rules give them, for the series and counts errors report.
    kinds: Vec<DocumentKind>,
    /// One matcher per kind, same index.
    keys: Vec<KindKey>,
    /// Bit set of the codes.
    codes: [u64; 4],
    /// Most distinct documents in one text.
    max_documents: usize,
}

impl Parser {
    /// A parser for these document kinds and permit codes, taking up to
    /// [`DEFAULT_MAX_DOCUMENTS`] documents per text.
    ///
    /// Kinds are taken as the rules file has them (the parser knows no series of its own);
    /// a kind whose key is not 1–4 ASCII capitals never matches, and digit counts above
    /// [`crate::permit::document::MAX_DIGITS`] are never accepted, so every match packs
    /// into a [`Document`].
    pub fn new(kinds: &[DocumentKind], codes: impl IntoIterator<Item = u8>) -> Self {
        let mut set = [0u64; 4];
        for c in codes {
            set[usize::from(c >> 6)] |= 1 << (c & 63);
        }
        Parser {
            kinds: kinds.to_vec(),
            keys: kinds.iter().map(KindKey::new).collect(),
            codes: set,
            max_documents: DEFAULT_MAX_DOCUMENTS,
        }
    }

    /// The same parser taking up to `max` documents per text (clamped to
    /// 1..=[`MAX_DOCUMENTS`]); a text with more is [`ParseError::TooManyDocuments`].
    pub fn with_max_documents(mut self, max: usize) -> Self {
        self.max_documents = max.clamp(1, MAX_DOCUMENTS);
        self
    }

    /// Most distinct documents one text may name.
    pub fn max_documents(&self) -> usize {
        self.max_documents
    }

    /// Whether `code` is one of this snapshot's codes.
    fn has_code(&self, code: u32) -> bool {
        u8::try_from(code).is_ok_and(|c| self.codes[usize::from(c >> 6)] & (1 << (c & 63)) != 0)
    }

    /// Parses one text: permit requests for one code and up to
    /// [`Parser::max_documents`] documents, help, or a status request. See the module
    /// documentation for the spellings accepted and how ambiguous texts are read.
    pub fn parse(&self, text: &str) -> Result<Parsed, ParseError> {
        read::Reader::parse(self, text)
    }
}

/// The text after a request, trimmed, cut at [`MAX_EXTRA_BYTES`]; allocates only when
/// something is left.
fn extra(rest: &str) -> String {
    let rest = rest
        .trim_start_matches(|c| {
            let s = norm_char(c);
            matches!(s, SPACE | BREAK | JOIN | IGNORE)
                || matches!(
                    c,
                    ',' | ';' | ':' | '!' | '?' | '"' | '\'' | '，' | '»' | '”' | '/'
                )
        })
        .trim_end_matches(|c| matches!(norm_char(c), SPACE | BREAK | IGNORE));
    if rest.is_empty() {
        return String::new();
    }
    rest[..rest.floor_char_boundary(MAX_EXTRA_BYTES)].to_owned()
}
