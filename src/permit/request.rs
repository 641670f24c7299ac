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

use crate::permit::document::{Document, DocumentKind, MAX_DIGITS, MAX_SERIES_LETTERS};

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

        // Leading separators; whitespace only means an empty message.
        let mut visible = false;
        let mut pos = 0;
        let (sym, _, _) = loop {
            match lex.next(pos) {
                None => {
                    return Err(if visible {
                        ParseError::NoCode
                    } else {
                        ParseError::Empty
                    });
                }
                Some((s, _, end)) if is_separator(s) => {
                    visible |= s == JOIN || s == PUNCT;
                    pos = end;
                }
                Some(found) => break found,
            }
        };

        // The code.
        if !sym.is_ascii_digit() {
            return Err(ParseError::NoCode);
        }
        let mut code = 0u32;
        pos = lex.digits(pos, |d| {
            code = code.saturating_mul(10).saturating_add(u32::from(d - b'0'));
        });
        if !self.has_code(code) {
            return Err(ParseError::UnknownCode { code });
        }

        // The series: one word of letters.
        let Some((sym, start, _)) = lex.skip_separators(pos) else {
            return Err(ParseError::NoDocument);
        };
        if sym.is_ascii_digit() {
            return Err(ParseError::NoDocument);
        }
        let mut letters = [0u8; MAX_SERIES_LETTERS];
        let mut count = 0usize;
        let mut alien = false;
        pos = start;
        while let Some((s, _, end)) = lex.next(pos) {
            if s.is_ascii_uppercase() {
                if let Some(slot) = letters.get_mut(count) {
                    *slot = s;
                }
                count += 1;
            } else if s == ALIEN {
                alien = true;
            } else {
                break;
            }
            pos = end;
        }
        let packed = if alien || count > MAX_SERIES_LETTERS {
            0
        } else {
            pack_letters(&letters[..count])
        };
        let Some(index) = self
            .keys
            .iter()
            .position(|k| packed != 0 && k.packed == packed)
        else {
            return Err(ParseError::UnknownSeries {
                series: echo(&text[start..pos]),
            });
        };
        let key = self.keys[index];
        let kind = &self.kinds[index];

        // The number.
        let Some((sym, start, _)) = lex.skip_separators(pos) else {
            return Err(no_number(kind));
        };
        if !sym.is_ascii_digit() {
            return Err(no_number(kind));
        }
        let max = usize::from(key.max);
        let mut digits = [0u8; MAX_DIGITS as usize];
        let mut total = 0usize;
        let mut end = lex.digits(start, |d| {
            if let Some(slot) = digits.get_mut(total) {
                *slot = d;
            }
            total += 1;
        });
        let allowed = |n: usize| n <= max && key.lens & (1 << n) != 0;
        let mut best = allowed(total).then_some((total, end));
        while total < max {
            let Some(group) = lex.gap_then_group(end) else {
                break;
            };
            let mut n = total;
            let group_end = lex.digits(group, |d| {
                if let Some(slot) = digits.get_mut(n) {
                    *slot = d;
                }
                n += 1;
            });
            if n > max || lex.next(group_end).is_some_and(|(s, _, _)| is_word(s)) {
                break;
            }
            total = n;
            end = group_end;
            if allowed(total) {
                best = Some((total, end));
            }
        }
        let Some((len, end)) = best else {
            return Err(wrong_count(kind, total));
        };
        let document =
            Document::new(&letters[..count], &digits[..len]).map_err(|_| wrong_count(kind, len))?;
        Ok(PermitRequest {
            code: code as u8,
            document,
            extra: extra(&text[end..]),
        })
    }
}

/// [`ParseError::NoNumber`] for `kind`.
fn no_number(kind: &DocumentKind) -> ParseError {
    ParseError::NoNumber {
        series: kind.series.clone(),
    }
}

/// [`ParseError::WrongDigitCount`] for `kind` with `got` digits.
fn wrong_count(kind: &DocumentKind, got: usize) -> ParseError {
    ParseError::WrongDigitCount {
        series: kind.series.clone(),
        got,
        expected: kind.digits.clone(),
    }
}

/// Packs up to four ASCII capitals into a `u32`, first letter lowest.
fn pack_letters(letters: &[u8]) -> u32 {
    letters
        .iter()
        .rev()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
}

/// The unknown series as typed, cut to [`MAX_ECHO_CHARS`] characters.
fn echo(word: &str) -> String {
    match word.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => word[..cut].to_owned(),
        None => word.to_owned(),
    }
}

/// The text after the number, trimmed, cut at [`MAX_EXTRA_BYTES`]; allocates only when
/// something is left.
fn extra(rest: &str) -> String {
    let rest = rest
        .trim_start_matches(|c| {
            let s = norm_char(c);
            matches!(s, SPACE | BREAK | JOIN | IGNORE)
                || matches!(
                    c,
                    ',' | ';' | ':' | '!' | '?' | '"' | '\'' | '，' | '»' | '”'
                )
        })
        .trim_end_matches(|c| matches!(norm_char(c), SPACE | BREAK | IGNORE));
    if rest.is_empty() {
        return String::new();
    }
    rest[..rest.floor_char_boundary(MAX_EXTRA_BYTES)].to_owned()
}

/// Normalised symbol: horizontal whitespace.
const SPACE: u8 = b' ';
/// Normalised symbol: a line break; ends a number.
const BREAK: u8 = b'\n';
/// Normalised symbol: a dash or dot, the punctuation people put inside numbers.
const JOIN: u8 = b'-';
/// Normalised symbol: other punctuation, symbols and emoji; separates, ends a number.
const PUNCT: u8 = b',';
/// Normalised symbol: a letter or digit with no ASCII reading (ə, Д, ²); part of a word.
const ALIEN: u8 = b'?';
/// Normalised symbol: a character to skip as if absent (zero-width, combining marks).
const IGNORE: u8 = 0;

/// Whether a normalised symbol separates words.
fn is_separator(s: u8) -> bool {
    matches!(s, SPACE | BREAK | JOIN | PUNCT)
}

/// Whether a normalised symbol belongs to a word (a letter, a digit or an alien).
fn is_word(s: u8) -> bool {
    s.is_ascii_alphanumeric() || s == ALIEN
}

/// The normalised symbol of each ASCII byte: digits stay, letters go upper case,
/// whitespace to [`SPACE`]/[`BREAK`], `-` and `.` to [`JOIN`], the rest to [`PUNCT`].
const ASCII: [u8; 128] = {
    let mut table = [PUNCT; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        table[b] = match c {
            b'0'..=b'9' | b'A'..=b'Z' => c,
            b'a'..=b'z' => c - 32,
            b' ' | b'\t' => SPACE,
            b'\n' | b'\r' | 0x0b | 0x0c => BREAK,
            b'-' | b'.' => JOIN,
            _ => PUNCT,
        };
        b += 1;
    }
    table
};

/// Maps one character to its normalised ASCII symbol: a digit, an upper-case letter, or one
/// of [`SPACE`], [`BREAK`], [`JOIN`], [`PUNCT`], [`ALIEN`], [`IGNORE`].
fn norm_char(c: char) -> u8 {
    if c.is_ascii() {
        return ASCII[c as usize];
    }
    match c {
        '０'..='９' => b'0' + (c as u32 - '０' as u32) as u8,
        '٠'..='٩' => b'0' + (c as u32 - '٠' as u32) as u8,
        '۰'..='۹' => b'0' + (c as u32 - '۰' as u32) as u8,
        'Ａ'..='Ｚ' => b'A' + (c as u32 - 'Ａ' as u32) as u8,
        'ａ'..='ｚ' => b'A' + (c as u32 - 'ａ' as u32) as u8,
        'İ' | 'ı' | 'І' | 'і' => b'I',
        'А' | 'а' => b'A',
        'В' | 'в' => b'B',
        'Е' | 'е' => b'E',
        'К' | 'к' => b'K',
        'М' | 'м' => b'M',
        'Н' | 'н' => b'H',
        'О' | 'о' => b'O',
        'Р' | 'р' => b'P',
        'С' | 'с' => b'C',
        'Т' | 'т' => b'T',
        'У' | 'у' => b'Y',
        'Х' | 'х' => b'X',
        'Ѕ' | 'ѕ' => b'S',
        'Ј' | 'ј' => b'J',
        '\u{200B}'..='\u{200D}'
        | '\u{2060}'
        | '\u{FEFF}'
        | '\u{00AD}'
        | '\u{0300}'..='\u{036F}'
        | '\u{FE00}'..='\u{FE0F}' => IGNORE,
        '\u{0085}' | '\u{2028}' | '\u{2029}' => BREAK,
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{2024}' | '－' | '．' => JOIN,
        c if c.is_whitespace() => SPACE,
        c if c.is_alphanumeric() => ALIEN,
        _ => PUNCT,
    }
}

/// A cursor over the original text that yields normalised symbols, skipping [`IGNORE`]d
/// characters; positions are byte offsets into the text, always on character boundaries.
struct Lexer<'t> {
    text: &'t str,
}

impl Lexer<'_> {
    /// The next symbol at or after `pos`: `(symbol, its byte start, byte end)`.
    #[inline]
    fn next(&self, mut pos: usize) -> Option<(u8, usize, usize)> {
        let bytes = self.text.as_bytes();
        loop {
            let &b = bytes.get(pos)?;
            let (sym, len) = if b.is_ascii() {
                (ASCII[usize::from(b)], 1)
            } else {
                let c = self.text[pos..].chars().next()?;
                (norm_char(c), c.len_utf8())
            };
            if sym != IGNORE {
                return Some((sym, pos, pos + len));
            }
            pos += len;
        }
    }

    /// The first non-separator symbol at or after `pos`.
    fn skip_separators(&self, mut pos: usize) -> Option<(u8, usize, usize)> {
        loop {
            let found = self.next(pos)?;
            if !is_separator(found.0) {
                return Some(found);
            }
            pos = found.2;
        }
    }

    /// Feeds the digits of the run starting at `pos` to `each` (as ASCII); returns where
    /// the run ends.
    fn digits(&self, mut pos: usize, mut each: impl FnMut(u8)) -> usize {
        while let Some((s, _, end)) = self.next(pos) {
            if !s.is_ascii_digit() {
                break;
            }
            each(s);
            pos = end;
        }
        pos
    }

    /// If `pos` starts a gap that may sit inside a number (horizontal whitespace with at
    /// most one dash or dot, not empty) followed by a digit, where that digit starts.
    fn gap_then_group(&self, mut pos: usize) -> Option<usize> {
        let mut gap = false;
        let mut joins = 0;
        loop {
            let (s, start, end) = self.next(pos)?;
            match s {
                SPACE => gap = true,
                JOIN if joins == 0 => {
                    gap = true;
                    joins += 1;
                }
                _ if gap && s.is_ascii_digit() => return Some(start),
                _ => return None,
            }
            pos = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The April 2020 document kinds, as the rules file lists them.
    fn kinds() -> Vec<DocumentKind> {
        let kind = |series: &str, key: &str, name: &str, digits: &[u8]| DocumentKind {
            series: series.into(),
            key: key.into(),
            name: name.into(),
            digits: digits.to_vec(),
        };
        vec![
            kind("AZE", "AZE", "old ID card", &[8, 7]),
            kind("AA", "AA", "biometric ID card", &[7]),
            kind("MYİ", "MYI", "permanent residence permit", &[7]),
            kind("DYİ", "DYI", "temporary residence permit", &[7]),
            kind("MOM", "MOM", "stay extension decision", &[7]),
        ]
    }

    fn parser() -> Parser {
        Parser::new(&kinds(), [1, 2, 3])
    }

    /// An accepted text: code, series key, number digits, extra.
    fn ok(code: u8, series: &str, number: &str, extra: &str) -> Result<PermitRequest, ParseError> {
        Ok(PermitRequest {
            code,
            document: Document::new(series.as_bytes(), number.as_bytes()).expect("test document"),
            extra: extra.into(),
        })
    }

    fn unknown_code(code: u32) -> Result<PermitRequest, ParseError> {
        Err(ParseError::UnknownCode { code })
    }

    fn unknown_series(series: &str) -> Result<PermitRequest, ParseError> {
        Err(ParseError::UnknownSeries {
            series: series.into(),
        })
    }

    fn no_number(series: &str) -> Result<PermitRequest, ParseError> {
        Err(ParseError::NoNumber {
            series: series.into(),
        })
    }

    fn wrong(series: &str, got: usize, expected: &[u8]) -> Result<PermitRequest, ParseError> {
        Err(ParseError::WrongDigitCount {
            series: series.into(),
            got,
            expected: expected.to_vec(),
        })
    }

    const AZE: &[u8] = &[8, 7];
    const SEVEN: &[u8] = &[7];

    #[allow(clippy::type_complexity)]
    fn cases() -> Vec<(&'static str, Result<PermitRequest, ParseError>)> {
        vec![
            // Every kind, clean.
            ("2 AZE 11111111", ok(2, "AZE", "11111111", "")),
            ("1 AA1234567", ok(1, "AA", "1234567", "")),
            ("2 MYİ1234567", ok(2, "MYI", "1234567", "")),
            ("3 DYİ 1234567", ok(3, "DYI", "1234567", "")),
            ("2 MOM 1234567", ok(2, "MOM", "1234567", "")),
            ("2 MYI 1234567", ok(2, "MYI", "1234567", "")),
            ("2 DYI1234567", ok(2, "DYI", "1234567", "")),
            ("1 aa1234567", ok(1, "AA", "1234567", "")),
            // Case and spacing.
            ("2 aze 11111111", ok(2, "AZE", "11111111", "")),
            ("2 Aze 11111111", ok(2, "AZE", "11111111", "")),
            ("2aze11111111", ok(2, "AZE", "11111111", "")),
            ("2AZE 11111111", ok(2, "AZE", "11111111", "")),
            ("2   AZE   11111111", ok(2, "AZE", "11111111", "")),
            ("  2 AZE 11111111  ", ok(2, "AZE", "11111111", "")),
            ("2 mom1234567", ok(2, "MOM", "1234567", "")),
            // Separators inside the number.
            ("2 aze 1111 1111", ok(2, "AZE", "11111111", "")),
            ("2 AZE 1111-1111", ok(2, "AZE", "11111111", "")),
            ("2 AZE 1111.1111", ok(2, "AZE", "11111111", "")),
            ("2 AZE 1111 - 1111", ok(2, "AZE", "11111111", "")),
            ("2 AZE 1111  1111", ok(2, "AZE", "11111111", "")),
            ("2 AZE 11 11 11 11", ok(2, "AZE", "11111111", "")),
            ("1 aa 123 45 67", ok(1, "AA", "1234567", "")),
            ("2 AZE 1111–1111", ok(2, "AZE", "11111111", "")),
            ("2 AZE\u{A0}1111\u{A0}1111", ok(2, "AZE", "11111111", "")),
            // The dotted and dotless i, both cases, and a combining dot.
            ("2 myi 1234567", ok(2, "MYI", "1234567", "")),
            ("2 myı 1234567", ok(2, "MYI", "1234567", "")),
            ("2 MYı1234567", ok(2, "MYI", "1234567", "")),
            ("2 mYİ 1234567", ok(2, "MYI", "1234567", "")),
            ("2 DYi 1234567", ok(2, "DYI", "1234567", "")),
            ("2 dyİ 1234567", ok(2, "DYI", "1234567", "")),
            ("2 dyı 1234567", ok(2, "DYI", "1234567", "")),
            ("2 MYI\u{307} 1234567", ok(2, "MYI", "1234567", "")),
            // Cyrillic look-alikes, alone and mixed with Latin.
            ("2 АZЕ 11111111", ok(2, "AZE", "11111111", "")),
            ("2 azе 11111111", ok(2, "AZE", "11111111", "")),
            ("1 АА 1234567", ok(1, "AA", "1234567", "")),
            ("1 аа1234567", ok(1, "AA", "1234567", "")),
            ("2 МОМ 1234567", ok(2, "MOM", "1234567", "")),
            ("2 мом 1234567", ok(2, "MOM", "1234567", "")),
            ("2 МУІ 1234567", ok(2, "MYI", "1234567", "")),
            ("2 DУİ 1234567", ok(2, "DYI", "1234567", "")),
            ("3 d\u{443}\u{456} 1234567", ok(3, "DYI", "1234567", "")),
            // Full-width and Arabic-Indic digits, full-width letters.
            ("２ ＡＺＥ １１１１１１１１", ok(2, "AZE", "11111111", "")),
            ("2 ａｚｅ 11111111", ok(2, "AZE", "11111111", "")),
            ("２AZE１２３４５６７８", ok(2, "AZE", "12345678", "")),
            ("1 ＡＡ１２３４５６７", ok(1, "AA", "1234567", "")),
            ("٢ AZE ١١١١١١١١", ok(2, "AZE", "11111111", "")),
            // Other whitespace.
            ("2\tAZE\t11111111", ok(2, "AZE", "11111111", "")),
            ("2\nAZE\n11111111", ok(2, "AZE", "11111111", "")),
            ("2\r\nAZE\r\n11111111\r\n", ok(2, "AZE", "11111111", "")),
            ("2\u{A0}AZE\u{A0}11111111", ok(2, "AZE", "11111111", "")),
            ("2\u{3000}AZE\u{3000}11111111", ok(2, "AZE", "11111111", "")),
            ("2 AZE\u{200B}11111111", ok(2, "AZE", "11111111", "")),
            ("\u{FEFF}2 AZE 11111111", ok(2, "AZE", "11111111", "")),
            // Punctuation separators.
            ("2,AZE,11111111", ok(2, "AZE", "11111111", "")),
            ("2-AZE-11111111", ok(2, "AZE", "11111111", "")),
            ("2.AZE11111111", ok(2, "AZE", "11111111", "")),
            ("2;AZE;11111111", ok(2, "AZE", "11111111", "")),
            ("2 AZE: 11111111", ok(2, "AZE", "11111111", "")),
            ("2 AZE №11111111", ok(2, "AZE", "11111111", "")),
            ("2—AZE—11111111", ok(2, "AZE", "11111111", "")),
            ("2, aze, 1111-1111.", ok(2, "AZE", "11111111", "")),
            ("\"2 AZE 11111111\"", ok(2, "AZE", "11111111", "")),
            ("👍 2 AZE 11111111", ok(2, "AZE", "11111111", "")),
            // Plates and extra words stay in `extra`.
            (
                "2 AZE 11111111 10-AB-123",
                ok(2, "AZE", "11111111", "10-AB-123"),
            ),
            ("2 AZE 11111111 market", ok(2, "AZE", "11111111", "market")),
            (
                "2 AZE 11111111 10AB123",
                ok(2, "AZE", "11111111", "10AB123"),
            ),
            ("2 AZE 1234567 10AB123", ok(2, "AZE", "1234567", "10AB123")),
            (
                "2 AZE 1234567 10-AB-123",
                ok(2, "AZE", "1234567", "10-AB-123"),
            ),
            (
                "1 AA 1234567 10 AB 123",
                ok(1, "AA", "1234567", "10 AB 123"),
            ),
            ("2 AZE 11111111, market", ok(2, "AZE", "11111111", "market")),
            ("2 AZE 11111111 👍", ok(2, "AZE", "11111111", "👍")),
            ("2 AZE11111111market", ok(2, "AZE", "11111111", "market")),
            ("3 MOM 7654321 qohum", ok(3, "MOM", "7654321", "qohum")),
            (
                "2 Aze 11111111 10-AB-123 bazar",
                ok(2, "AZE", "11111111", "10-AB-123 bazar"),
            ),
            (
                "2 AZE 11111111 2 AA 1234567",
                ok(2, "AZE", "11111111", "2 AA 1234567"),
            ),
            ("2 AZE 1111 1111 1111", ok(2, "AZE", "11111111", "1111")),
            ("2 AZE 1234567 1AB", ok(2, "AZE", "1234567", "1AB")),
            ("2 AZE 1234\n5678", wrong("AZE", 4, AZE)),
            ("1 AA 1234567\n8", ok(1, "AA", "1234567", "8")),
            // Digit counts: 7-digit AZE, leading zeros, the longest allowed match.
            ("2 AZE 1234567", ok(2, "AZE", "1234567", "")),
            ("2 AZE 1234567 8", ok(2, "AZE", "12345678", "")),
            ("2 AZE 01111111", ok(2, "AZE", "01111111", "")),
            ("2 AZE 0111111", ok(2, "AZE", "0111111", "")),
            ("1 AA 0000001", ok(1, "AA", "0000001", "")),
            ("02 AZE 11111111", ok(2, "AZE", "11111111", "")),
            // Refusals: empty.
            ("", Err(ParseError::Empty)),
            ("   ", Err(ParseError::Empty)),
            ("\t\n\u{A0}\u{3000}", Err(ParseError::Empty)),
            ("\u{200B}", Err(ParseError::Empty)),
            // No code.
            ("AZE 11111111", Err(ParseError::NoCode)),
            ("AZE 11111111 2", Err(ParseError::NoCode)),
            ("Kod 2 AZE 11111111", Err(ParseError::NoCode)),
            ("salam", Err(ParseError::NoCode)),
            ("😀", Err(ParseError::NoCode)),
            ("...", Err(ParseError::NoCode)),
            ("ə 2 AZE 11111111", Err(ParseError::NoCode)),
            // Unknown code.
            ("7 AZE 11111111", unknown_code(7)),
            ("0 AZE 11111111", unknown_code(0)),
            ("256 AZE 11111111", unknown_code(256)),
            ("99999999999 AZE 11111111", unknown_code(u32::MAX)),
            ("11111111", unknown_code(11_111_111)),
            ("7 XYZ 1", unknown_code(7)),
            // No document.
            ("2", Err(ParseError::NoDocument)),
            ("2   ", Err(ParseError::NoDocument)),
            ("2 11111111", Err(ParseError::NoDocument)),
            ("2, 😀", Err(ParseError::NoDocument)),
            // Unknown series.
            ("2 XYZ 1234567", unknown_series("XYZ")),
            ("2 xyz 1234567", unknown_series("xyz")),
            ("2 AZ 11111111", unknown_series("AZ")),
            ("2 AZEN 11111111", unknown_series("AZEN")),
            ("2 M0M 1234567", unknown_series("M")),
            ("2 ŞƏK 1234567", unknown_series("ŞƏK")),
            ("2 ДУИ 1234567", unknown_series("ДУИ")),
            ("2 market", unknown_series("market")),
            ("2 AZƏ 11111111", unknown_series("AZƏ")),
            // No number.
            ("2 AZE", no_number("AZE")),
            ("2 AZE market", no_number("AZE")),
            ("1 AA", no_number("AA")),
            ("2 MYİ ", no_number("MYİ")),
            ("2 myi, ?", no_number("MYİ")),
            // Wrong digit count.
            ("2 AZE 111111111", wrong("AZE", 9, AZE)),
            ("2 AZE 123", wrong("AZE", 3, AZE)),
            ("1 AA 12345678", wrong("AA", 8, SEVEN)),
            ("1 AA 123456", wrong("AA", 6, SEVEN)),
            ("2 MOM 12345", wrong("MOM", 5, SEVEN)),
            ("2 DYİ 12345678", wrong("DYİ", 8, SEVEN)),
            ("2 MYI 123456", wrong("MYİ", 6, SEVEN)),
            ("1 AA 1234 56", wrong("AA", 6, SEVEN)),
            ("2 AZE 1234,5678", wrong("AZE", 4, AZE)),
            ("2 AZE 1111O111", wrong("AZE", 4, AZE)),
            ("2 AZE 1111 1111AB", wrong("AZE", 4, AZE)),
            ("2 AZE 1234--5678", wrong("AZE", 4, AZE)),
            ("2 AZE 1111111111111111111111", wrong("AZE", 22, AZE)),
        ]
    }

    #[test]
    fn table() {
        let parser = parser();
        let cases = cases();
        assert!(cases.len() >= 80, "only {} cases", cases.len());
        let mut failures = Vec::new();
        for (text, want) in &cases {
            let got = parser.parse(text);
            if &got != want {
                failures.push(format!("{text:?}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn long_texts_are_bounded() {
        let parser = parser();
        let tail = "x".repeat(10_000);
        let got = parser
            .parse(&format!("2 AZE 11111111 {tail}"))
            .expect("accepted");
        assert_eq!(got.extra.len(), MAX_EXTRA_BYTES);
        let got = parser
            .parse(&format!("2 AZE 11111111 {}", "ə".repeat(200)))
            .expect("accepted");
        assert!(got.extra.len() <= MAX_EXTRA_BYTES && got.extra.chars().all(|c| c == 'ə'));
        let lead = " ".repeat(10_000);
        assert_eq!(
            parser.parse(&format!("{lead}2 AZE 11111111")),
            ok(2, "AZE", "11111111", "")
        );
        assert_eq!(
            parser.parse(&format!("2 {}", "A".repeat(10_000))),
            unknown_series(&"A".repeat(MAX_ECHO_CHARS))
        );
        assert_eq!(parser.parse(&"9".repeat(10_000)), unknown_code(u32::MAX));
        assert_eq!(
            parser.parse(&format!("2 AZE {}", "1".repeat(10_000))),
            wrong("AZE", 10_000, AZE)
        );
        assert_eq!(parser.parse(&" ".repeat(10_000)), Err(ParseError::Empty));
    }

    #[test]
    fn reasons_are_the_reply_keys() {
        let errors = [
            (ParseError::Empty, "empty"),
            (ParseError::NoCode, "no_code"),
            (ParseError::UnknownCode { code: 7 }, "unknown_code"),
            (ParseError::NoDocument, "no_document"),
            (
                ParseError::UnknownSeries {
                    series: "XYZ".into(),
                },
                "unknown_series",
            ),
            (
                ParseError::NoNumber {
                    series: "AZE".into(),
                },
                "no_number",
            ),
            (
                ParseError::WrongDigitCount {
                    series: "AZE".into(),
                    got: 9,
                    expected: vec![8, 7],
                },
                "wrong_digit_count",
            ),
        ];
        for (error, reason) in errors {
            assert_eq!(error.reason(), reason);
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn kinds_come_from_the_rules() {
        let kinds = vec![DocumentKind {
            series: "ÇX".into(),
            key: "CX".into(),
            name: "test".into(),
            digits: vec![5, 12],
        }];
        let parser = Parser::new(&kinds, [9]);
        assert_eq!(parser.parse("9 CX 12345"), ok(9, "CX", "12345", ""));
        assert_eq!(parser.parse("2 AZE 11111111"), unknown_code(2));
        assert_eq!(parser.parse("9 AZE 11111111"), unknown_series("AZE"));
        assert_eq!(
            parser.parse("9 CX 123456789012"),
            Err(ParseError::WrongDigitCount {
                series: "ÇX".into(),
                got: 12,
                expected: vec![5, 12],
            })
        );
    }

    /// The series as printed in the rules, with their keys.
    const PRINTED: &[(&str, &str, &[u8])] = &[
        ("AZE", "AZE", &[8, 7]),
        ("AA", "AA", &[7]),
        ("MYİ", "MYI", &[7]),
        ("DYİ", "DYI", &[7]),
        ("MOM", "MOM", &[7]),
    ];

    /// A request as a citizen might spell it: the kind, an allowed digit count, digits, a
    /// separator style and a case.
    fn request() -> impl proptest::strategy::Strategy<Value = (u8, usize, String)> {
        use proptest::prelude::*;
        (1u8..=3, 0..PRINTED.len()).prop_flat_map(|(code, kind)| {
            let lens = PRINTED[kind].2;
            proptest::sample::select(lens.to_vec()).prop_flat_map(move |len| {
                proptest::collection::vec(0u8..10, usize::from(len)).prop_map(move |d| {
                    let number: String = d.iter().map(|d| char::from(b'0' + d)).collect();
                    (code, kind, number)
                })
            })
        })
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,80}") {
            let _ = parser().parse(&text);
        }

        #[test]
        fn never_panics_on_near_misses(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "2", "1", "AZE", "aze", "MYİ", "ı", " ", "  ", "-", ".", ",", "\n", "1111",
                    "1234567", "8", "10AB123", "😀", "ə", "\u{200B}", "\u{307}", "９", "Ａ",
                ]),
                0..12,
            )
        ) {
            let text: String = parts.concat();
            if let Ok(req) = parser().parse(&text) {
                proptest::prop_assert!(req.extra.len() <= MAX_EXTRA_BYTES);
            }
        }

        #[test]
        fn formatted_requests_round_trip(
            (code, kind, number) in request(),
            style in 0usize..4,
        ) {
            let (series, key, _) = PRINTED[kind];
            let text = match style {
                0 => format!("{code} {series} {number}"),
                1 => format!("{code}{}{number}", series.to_lowercase()),
                2 => format!("{code},{series},{number}"),
                _ => format!("  {code}   {series}\u{A0}{number}\n"),
            };
            let want = PermitRequest {
                code,
                document: Document::new(key.as_bytes(), number.as_bytes()).expect("valid"),
                extra: String::new(),
            };
            proptest::prop_assert_eq!(parser().parse(&text), Ok(want));
        }
    }
}
