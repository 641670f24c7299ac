//! A citizen's text becomes a [`PermitRequest`], or a [`ParseError`] that knows what hint
//! the reply should carry.
//!
//! # What the parser reads
//!
//! `CODE SERIES NUMBER [EXTRA]`, e.g. `2 AZE 11111111`, `1 AA1234567`, `2 MYİ1234567`, as
//! people really type it on whatever phone they have:
//!
//! - any case; no spaces or many (`2aze11111111`, `2   AZE   11111111`);
//! - İ, i, ı and I all read as `I`; a combining dot above (`I` + U+0307) is ignored;
//! - Cyrillic look-alikes (А В Е К М Н О Р С Т У Х, lower case too, and І Ѕ Ј) read as the
//!   Latin letter they look like, so `2 АZЕ 11111111` typed on a Russian layout works;
//! - full-width digits and Latin letters (U+FF10.., U+FF21.., U+FF41..) and Arabic-Indic
//!   digits read as ASCII;
//! - any whitespace (tab, line break, NBSP, U+3000) and punctuation separate the parts:
//!   `2,AZE,11111111`, `2-AZE-11111111`, `2.AZE11111111`, `2 AZE: №11111111`;
//! - zero-width characters and soft hyphens (pasted from chat apps) are skipped.
//!
//! Every character maps to one normalised ASCII byte in a single pass, and the parser walks
//! the original text with a byte cursor: it needs no buffer, allocates nothing on success
//! unless there is extra text, and its work is bounded by where the number ends, not by the
//! length of the text.
//!
//! # Decisions on ambiguous texts
//!
//! - **Where the number ends.** The first digit run after the series is always part of the
//!   number. Further digit groups join it only when (a) the gap before them is horizontal
//!   whitespace with at most one dash or dot (`1111 1111`, `1111-1111`, `1111 - 1111`);
//!   a line break, comma or other punctuation always ends the number; (b) the group is a
//!   whole token (`10AB123` is a car plate, never digits of the number); (c) the total stays
//!   within the kind's largest digit count. Among the totals so reached, the longest allowed
//!   one wins. So `2 AZE 11111111 10AB123` and `2 AZE 1234567 10-AB-123` keep the plate in
//!   `extra`, while `2 AZE 1234567 8` reads as the 8-digit `12345678`: for AZE, whose cards
//!   carry 8 digits, a lone trailing digit is far more likely the rest of the number.
//! - **Code at the end** (`AZE 11111111 2`) is refused as [`ParseError::NoCode`]: with
//!   7-digit AZE numbers allowed, `AZE 1234567 2` could be either `AZE 12345672` without a
//!   code or code 2 for `AZE 1234567`, and a permit for the wrong document is worse than a
//!   hint to resend.
//! - **Digits right after the code** (`2 11111111`) mean the series is missing:
//!   [`ParseError::NoDocument`], whose reply shows the full format.
//! - **Leading symbols** (an emoji, a quote, a dash) before the code are skipped; leading
//!   letters (`Kod 2 AZE …`, `AZE …`) are [`ParseError::NoCode`].
//! - **A text of only whitespace** is [`ParseError::Empty`]; one of only punctuation or
//!   emoji is [`ParseError::NoCode`].

mod normalize;
mod scan;
#[cfg(test)]
mod tests;

use crate::permit::document::{Document, DocumentKind, MAX_DIGITS, MAX_SERIES_LETTERS};
use scan::{Lexer, echo, extra, pack_letters, wrong_count};

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
    /// Words after the document (a car plate, a note), kept for the record; empty if none.
    /// Trimmed of surrounding whitespace and leading separator punctuation, cut at
    /// [`MAX_EXTRA_BYTES`].
    pub extra: String,
}

/// Why a text is not a permit request; each variant maps to a reply with a hint.
///
/// The first problem from the left wins: `7 XYZ 1` is an unknown code, not an unknown series,
/// because the citizen fixes a text from its start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace: the citizen hit send by mistake, so the reply is the format.
    #[error("empty message")]
    Empty,
    /// The text does not start with a permit code (after any leading symbols), e.g.
    /// `AZE 11111111` or `AZE 11111111 2`; the reply lists the codes.
    #[error("the message does not start with a permit code")]
    NoCode,
    /// The leading number is not a code of these rules (`7 AZE 11111111`); the reply echoes
    /// it and lists the codes. Numbers beyond `u32` saturate at `u32::MAX`.
    #[error("unknown permit code {code}")]
    UnknownCode {
        /// The number the text starts with.
        code: u32,
    },
    /// A code and nothing after it, or digits with no series (`2 11111111`): the reply shows
    /// the full format with an example.
    #[error("no document series and number after the code")]
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
            ParseError::NoDocument => "no_document",
            ParseError::UnknownSeries { .. } => "unknown_series",
            ParseError::NoNumber { .. } => "no_number",
            ParseError::WrongDigitCount { .. } => "wrong_digit_count",
        }
    }
}

/// A document kind prepared for matching: the key packed into one `u32` (letters are
/// non-zero, so zero padding tells `AA` from `AAA`) and the allowed counts as a bit set.
#[derive(Debug, Clone, Copy)]
struct KindKey {
    /// The key's letters, little-endian, zero-padded; 0 for a key that can never match.
    packed: u32,
    /// Bit `n` set when `n` digits are allowed.
    lens: u16,
    /// The largest allowed count (0 if none).
    max: u8,
}

/// Parses texts against the document kinds and codes of one rules snapshot.
#[derive(Debug, Clone)]
pub struct Parser {
    /// The kinds as the rules give them, for the series and counts errors report.
    kinds: Vec<DocumentKind>,
    /// One matcher per kind, same index.
    keys: Vec<KindKey>,
    /// Bit set of the codes.
    codes: [u64; 4],
}

impl Parser {
    /// A parser for these document kinds and permit codes.
    ///
    /// Kinds are taken as the rules file has them (the parser knows no series of its own);
    /// a kind whose key is not 1–4 ASCII capitals never matches, and digit counts above
    /// [`MAX_DIGITS`] are never accepted, so every match packs into a [`Document`].
    pub fn new(kinds: &[DocumentKind], codes: impl IntoIterator<Item = u8>) -> Self {
        let keys = kinds
            .iter()
            .map(|k| {
                let key = k.key.as_bytes();
                let packed = if !key.is_empty()
                    && key.len() <= MAX_SERIES_LETTERS
                    && key.iter().all(u8::is_ascii_uppercase)
                {
                    pack_letters(key)
                } else {
                    0
                };
                let mut lens = 0u16;
                let mut max = 0u8;
                for &d in &k.digits {
                    if (1..=MAX_DIGITS).contains(&d) {
                        lens |= 1 << d;
                        max = max.max(d);
                    }
                }
                KindKey { packed, lens, max }
            })
            .collect();
        let mut set = [0u64; 4];
        for c in codes {
            set[usize::from(c >> 6)] |= 1 << (c & 63);
        }
        Parser {
            kinds: kinds.to_vec(),
            keys,
            codes: set,
        }
    }

    /// Whether `code` is one of this snapshot's codes.
    fn has_code(&self, code: u32) -> bool {
        u8::try_from(code).is_ok_and(|c| self.codes[usize::from(c >> 6)] & (1 << (c & 63)) != 0)
    }

    /// Parses one text: the code, then the series, then the number; anything after the
    /// number goes to `extra`. See the module documentation for the spellings accepted and
    /// how ambiguous texts are read.
    pub fn parse(&self, text: &str) -> Result<PermitRequest, ParseError> {
        let lex = Lexer { text };
        let pos = scan::start(&lex)?;
        let (code, pos) = scan::code(&lex, pos)?;
        if !self.has_code(code) {
            return Err(ParseError::UnknownCode { code });
        }
        let series = scan::series(&lex, pos)?;
        let Some(index) = self
            .keys
            .iter()
            .position(|k| series.packed != 0 && k.packed == series.packed)
        else {
            return Err(ParseError::UnknownSeries {
                series: echo(&text[series.start..series.end]),
            });
        };
        let kind = &self.kinds[index];
        let (digits, len, end) = scan::number(&lex, series.end, self.keys[index], kind)?;
        let document = Document::new(&series.letters[..series.count], &digits[..len])
            .map_err(|_| wrong_count(kind, len))?;
        Ok(PermitRequest {
            code: code as u8,
            document,
            extra: extra(&text[end..]),
        })
    }
}
