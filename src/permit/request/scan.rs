//! Finding the parts of a text: a cursor over normalised symbols, and one step per part
//! (the code, the series, the number), each reporting the first problem it meets.

use super::normalize::{
    ALIEN, ASCII, BREAK, IGNORE, JOIN, PUNCT, SPACE, is_separator, is_word, norm_char,
};
use super::{KindKey, MAX_ECHO_CHARS, MAX_EXTRA_BYTES, ParseError};
use crate::permit::document::{DocumentKind, MAX_DIGITS, MAX_SERIES_LETTERS};

/// A cursor over the original text that yields normalised symbols, skipping [`IGNORE`]d
/// characters; positions are byte offsets into the text, always on character boundaries.
pub(super) struct Lexer<'t> {
    pub(super) text: &'t str,
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

/// Skips leading separators; returns where the first other symbol starts. Whitespace only
/// is [`ParseError::Empty`], punctuation or emoji only [`ParseError::NoCode`].
#[inline]
pub(super) fn start(lex: &Lexer) -> Result<usize, ParseError> {
    let mut visible = false;
    let mut pos = 0;
    loop {
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
            Some(_) => return Ok(pos),
        }
    }
}

/// The code's digit run at `pos` (saturating, so a huge number is an unknown code) and
/// where it ends; [`ParseError::NoCode`] when `pos` holds no digit.
#[inline]
pub(super) fn code(lex: &Lexer, pos: usize) -> Result<(u32, usize), ParseError> {
    if !lex.next(pos).is_some_and(|(s, _, _)| s.is_ascii_digit()) {
        return Err(ParseError::NoCode);
    }
    let mut code = 0u32;
    let end = lex.digits(pos, |d| {
        code = code.saturating_mul(10).saturating_add(u32::from(d - b'0'));
    });
    Ok((code, end))
}

/// The series word as found: its letters, packed for matching, and where it lies.
pub(super) struct Series {
    /// The first [`MAX_SERIES_LETTERS`] letters, normalised.
    pub(super) letters: [u8; MAX_SERIES_LETTERS],
    /// How many letters the word has (may exceed the array).
    pub(super) count: usize,
    /// The letters packed as [`KindKey::packed`]; 0 when no kind can match (too long, or
    /// a letter with no ASCII reading).
    pub(super) packed: u32,
    /// Byte range of the word in the text.
    pub(super) start: usize,
    /// Where the word ends.
    pub(super) end: usize,
}

/// The series: the first word after `pos`, of letters. [`ParseError::NoDocument`] when
/// nothing follows or digits come first (`2 11111111`).
#[inline]
pub(super) fn series(lex: &Lexer, pos: usize) -> Result<Series, ParseError> {
    let Some((sym, start, _)) = lex.skip_separators(pos) else {
        return Err(ParseError::NoDocument);
    };
    if sym.is_ascii_digit() {
        return Err(ParseError::NoDocument);
    }
    let mut letters = [0u8; MAX_SERIES_LETTERS];
    let mut count = 0usize;
    let mut alien = false;
    let mut pos = start;
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
    Ok(Series {
        letters,
        count,
        packed,
        start,
        end: pos,
    })
}

/// The number after `pos` for a kind: its digits, how many, and where it ends. Further
/// digit groups join the first run as the module documentation says; the longest allowed
/// total wins.
#[inline]
pub(super) fn number(
    lex: &Lexer,
    pos: usize,
    key: KindKey,
    kind: &DocumentKind,
) -> Result<([u8; MAX_DIGITS as usize], usize, usize), ParseError> {
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
    match best {
        Some((len, end)) => Ok((digits, len, end)),
        None => Err(wrong_count(kind, total)),
    }
}

/// [`ParseError::NoNumber`] for `kind`.
pub(super) fn no_number(kind: &DocumentKind) -> ParseError {
    ParseError::NoNumber {
        series: kind.series.clone(),
    }
}

/// [`ParseError::WrongDigitCount`] for `kind` with `got` digits.
pub(super) fn wrong_count(kind: &DocumentKind, got: usize) -> ParseError {
    ParseError::WrongDigitCount {
        series: kind.series.clone(),
        got,
        expected: kind.digits.clone(),
    }
}

/// Packs up to four ASCII capitals into a `u32`, first letter lowest.
pub(super) fn pack_letters(letters: &[u8]) -> u32 {
    letters
        .iter()
        .rev()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
}

/// The unknown series as typed, cut to [`MAX_ECHO_CHARS`] characters.
pub(super) fn echo(word: &str) -> String {
    match word.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => word[..cut].to_owned(),
        None => word.to_owned(),
    }
}

/// The text after the number, trimmed, cut at [`MAX_EXTRA_BYTES`]; allocates only when
/// something is left.
pub(super) fn extra(rest: &str) -> String {
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
