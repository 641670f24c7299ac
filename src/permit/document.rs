//! Identity documents: the kinds a rules file allows and the compact id of one document.
//!
//! A [`Document`] packs its series, digit count and number into one `u64`, so the engine can
//! key its tables on a plain integer (no allocation, one hash) and the key stays the same
//! when the rules file is reloaded or reordered: it depends on the letters, never on an index.

use std::fmt;

/// Bits of the packed number field: 9 decimal digits (999,999,999 < 2^30).
const NUMBER_BITS: u32 = 30;
/// Bits of the digit-count field.
const LEN_BITS: u32 = 4;
/// Bits per series letter (A–Z as 1–26, 0 = no letter).
const LETTER_BITS: u32 = 5;
/// Longest series we can pack.
pub const MAX_SERIES_LETTERS: usize = 4;
/// Most digits a document number may have.
pub const MAX_DIGITS: u8 = 9;
/// Bits a packed document uses; the engine may use the bits above for its own tags.
pub const DOCUMENT_BITS: u32 = NUMBER_BITS + LEN_BITS + LETTER_BITS * MAX_SERIES_LETTERS as u32;

/// One identity document, e.g. `AZE 11111111`, packed into 54 bits.
///
/// Leading zeros matter (`AA 0123456` is not `AA 123456`), so the digit count is part of the
/// identity. The series is kept as plain ASCII letters: `MYİ` is stored as `MYI`, and the
/// rules file decides how it is printed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Document(u64);

/// Why a series and number cannot form a [`Document`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// The series is empty, longer than [`MAX_SERIES_LETTERS`], or not all ASCII letters.
    #[error("series {0:?} must be 1 to 4 Latin letters")]
    BadSeries(String),
    /// The number has no digits, more than [`MAX_DIGITS`], or a non-digit.
    #[error("number {0:?} must be 1 to 9 digits")]
    BadNumber(String),
}

impl Document {
    /// Builds a document from an upper-case ASCII series and a string of ASCII digits.
    pub fn new(series: &[u8], digits: &[u8]) -> Result<Self, DocumentError> {
        // One pass each, checking and packing together: the parser builds one per request.
        let mut packed = 0u64;
        let mut good = !series.is_empty() && series.len() <= MAX_SERIES_LETTERS;
        for &c in series {
            good &= c.is_ascii_uppercase();
            packed =
                (packed << LETTER_BITS) | u64::from(c.wrapping_sub(b'A').wrapping_add(1) & 0x1f);
        }
        if !good {
            return Err(DocumentError::BadSeries(
                String::from_utf8_lossy(series).into_owned(),
            ));
        }
        let mut number = 0u64;
        let mut good = !digits.is_empty() && digits.len() <= MAX_DIGITS as usize;
        for &d in digits {
            good &= d.is_ascii_digit();
            number = number
                .wrapping_mul(10)
                .wrapping_add(u64::from(d.wrapping_sub(b'0')));
        }
        if !good {
            return Err(DocumentError::BadNumber(
                String::from_utf8_lossy(digits).into_owned(),
            ));
        }
        Ok(Self::from_parts(packed, digits.len() as u8, number))
    }

    /// The series as [`Document::from_series_bits`] takes it (letters 1–26, 5 bits each),
    /// or `None` unless it is 1 to 4 ASCII capitals. Computed once per document kind.
    pub(crate) fn series_bits(series: &[u8]) -> Option<u64> {
        let good = !series.is_empty()
            && series.len() <= MAX_SERIES_LETTERS
            && series.iter().all(u8::is_ascii_uppercase);
        good.then(|| {
            series.iter().fold(0u64, |acc, &c| {
                (acc << LETTER_BITS) | u64::from(c - b'A' + 1)
            })
        })
    }

    /// A document from [`Document::series_bits`] and 1 to [`MAX_DIGITS`] ASCII digits (the
    /// parser's hot path, which has checked the digits; a non-digit would give a wrong
    /// number, never a panic); `None` for a count out of range.
    pub(crate) fn from_series_bits(series: u64, digits: &[u8]) -> Option<Self> {
        if digits.is_empty() || digits.len() > MAX_DIGITS as usize || series == 0 {
            return None;
        }
        let number = digits
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d.wrapping_sub(b'0')));
        Some(Self::from_parts(series, digits.len() as u8, number))
    }

    /// Packs already-checked parts: `series` is its letters as 1–26, 5 bits each, first
    /// letter highest.
    fn from_parts(series: u64, len: u8, number: u64) -> Self {
        Document((series << (NUMBER_BITS + LEN_BITS)) | (u64::from(len) << NUMBER_BITS) | number)
    }

    /// Parses the form `Display` prints (`AZE11111111`, also `AZE 11111111`), ASCII only.
    /// For citizens' spellings use the request parser, which normalises first.
    pub fn parse_canonical(s: &str) -> Result<Self, DocumentError> {
        let s = s.trim();
        let split = s
            .find(|c: char| c.is_ascii_digit() || c == ' ')
            .unwrap_or(s.len());
        let (series, rest) = s.split_at(split);
        Self::new(
            series.to_ascii_uppercase().as_bytes(),
            rest.trim().as_bytes(),
        )
    }

    /// The packed form: stable across restarts and rule reloads, so the journal and Redis
    /// can store it as is.
    pub fn packed(self) -> u64 {
        self.0
    }

    /// Rebuilds a document from [`Document::packed`]; `None` if the bits are not a document.
    pub fn from_packed(bits: u64) -> Option<Self> {
        if bits >> DOCUMENT_BITS != 0 {
            return None;
        }
        let doc = Document(bits);
        let len = doc.digit_count();
        if doc.series_len() == 0 || len == 0 || len > MAX_DIGITS {
            return None;
        }
        if doc.number() >= 10u64.pow(u32::from(len)) {
            return None;
        }
        Some(doc)
    }

    /// The series as upper-case ASCII letters, e.g. `b"MYI"`, in a fixed buffer (no allocation).
    pub fn series_bytes(self) -> ([u8; MAX_SERIES_LETTERS], usize) {
        let mut out = [0u8; MAX_SERIES_LETTERS];
        let packed = self.0 >> (NUMBER_BITS + LEN_BITS);
        let mut n = 0;
        for i in (0..MAX_SERIES_LETTERS).rev() {
            let letter = (packed >> (LETTER_BITS * i as u32)) & 0x1f;
            if letter != 0 {
                out[n] = b'A' + letter as u8 - 1;
                n += 1;
            }
        }
        (out, n)
    }

    /// The series as a `String`, e.g. `"AZE"`.
    pub fn series(self) -> String {
        let (bytes, n) = self.series_bytes();
        String::from_utf8_lossy(&bytes[..n]).into_owned()
    }

    fn series_len(self) -> usize {
        self.series_bytes().1
    }

    /// How many digits the number was written with (leading zeros count).
    pub fn digit_count(self) -> u8 {
        ((self.0 >> NUMBER_BITS) & ((1 << LEN_BITS) - 1)) as u8
    }

    /// The number's value.
    pub fn number(self) -> u64 {
        self.0 & ((1 << NUMBER_BITS) - 1)
    }

    /// The number with its leading zeros, e.g. `"0123456"`.
    pub fn number_string(self) -> String {
        let mut out = String::with_capacity(16);
        self.push_number(&mut out);
        out
    }

    /// [`Document::number_string`] written onto `out`.
    pub fn push_number(self, out: &mut String) {
        let mut digits = [0u8; 20];
        let mut n = self.number();
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for _ in (digits.len() - i)..self.digit_count() as usize {
            out.push('0');
        }
        // ASCII digits only.
        out.push_str(std::str::from_utf8(&digits[i..]).unwrap_or_default());
    }

    /// The number with all but the last two digits hidden, for logs (`AZE******11`).
    pub fn masked(self) -> String {
        let digits = self.number_string();
        let keep = digits.len().min(2);
        format!(
            "{}{}{}",
            self.series(),
            "*".repeat(digits.len() - keep),
            &digits[digits.len() - keep..]
        )
    }
}

impl fmt::Display for Document {
    /// `AZE11111111`: the canonical ASCII form, also what [`Document::parse_canonical`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.series(), self.number_string())
    }
}

impl fmt::Debug for Document {
    /// Masked, so a `{:?}` in a log line never holds a whole document number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Document({})", self.masked())
    }
}

/// One kind of document the rules accept: its series as printed, the ASCII spellings that
/// mean it, and the digit counts its numbers may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentKind {
    /// The series as printed in replies, e.g. `MYİ`.
    pub series: String,
    /// The upper-case ASCII form the parser matches and the engine stores, e.g. `MYI`.
    /// Every alias normalises to one such key.
    pub key: String,
    /// A short human name, e.g. "residence permit".
    pub name: String,
    /// Allowed digit counts, e.g. `[8, 7]` for the old ID card.
    pub digits: Vec<u8>,
}

impl DocumentKind {
    /// Whether a number of `len` digits fits this kind.
    pub fn accepts_len(&self, len: usize) -> bool {
        self.digits.iter().any(|&d| usize::from(d) == len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks() {
        let d = Document::new(b"AZE", b"01111111").unwrap();
        assert_eq!(d.series(), "AZE");
        assert_eq!(d.number_string(), "01111111");
        assert_eq!(d.to_string(), "AZE01111111");
        assert_eq!(Document::from_packed(d.packed()), Some(d));
        assert_ne!(d, Document::new(b"AZE", b"1111111").unwrap());
        assert_ne!(
            Document::new(b"AA", b"1234567").unwrap(),
            Document::new(b"AAA", b"1234567").unwrap()
        );
        assert!(d.packed() < 1 << DOCUMENT_BITS);
    }

    #[test]
    fn numbers_print_with_every_leading_zero_they_were_typed_with() {
        for digits in [
            "0",
            "00",
            "7",
            "0000000",
            "0000001",
            "1000000",
            "01111111",
            "99999999",
            "000000000",
            "123456789",
        ] {
            let d = Document::new(b"AA", digits.as_bytes()).unwrap();
            assert_eq!(d.number_string(), digits);
            let mut out = String::from("x");
            d.push_number(&mut out);
            assert_eq!(out, format!("x{digits}"));
        }
    }

    #[test]
    fn the_parser_s_constructor_builds_the_same_documents() {
        let bits = Document::series_bits(b"MYI").unwrap();
        assert_eq!(
            Document::from_series_bits(bits, b"0123456"),
            Document::new(b"MYI", b"0123456").ok()
        );
        assert_eq!(Document::series_bits(b"myi"), None);
        assert_eq!(Document::from_series_bits(bits, b""), None);
        assert_eq!(Document::from_series_bits(bits, b"1234567890"), None);
    }

    #[test]
    fn rejects_bad_parts() {
        assert!(Document::new(b"", b"1").is_err());
        assert!(Document::new(b"ABCDE", b"1").is_err());
        assert!(Document::new(b"az", b"1").is_err());
        assert!(Document::new(b"AZ", b"").is_err());
        assert!(Document::new(b"AZ", b"1234567890").is_err());
        assert_eq!(Document::from_packed(u64::MAX), None);
        assert_eq!(Document::from_packed(0), None);
    }

    #[test]
    fn canonical_round_trip_and_mask() {
        let d = Document::parse_canonical("myi 1234567").unwrap();
        assert_eq!(d.to_string(), "MYI1234567");
        assert_eq!(Document::parse_canonical(&d.to_string()), Ok(d));
        assert_eq!(d.masked(), "MYI*****67");
        assert!(!format!("{d:?}").contains("12345"));
    }
}
