//! Which document kind a word names: exactly, with a letter an SMSC lost (`MY?`), or with
//! a Cyrillic И standing for a Й whose breve was dropped (`МИИ`).

use super::normalize::QMARK;
use crate::permit::document::{Document, DocumentKind, MAX_DIGITS, MAX_SERIES_LETTERS};

/// A document kind prepared for matching: the key packed into one `u32` (letters are
/// non-zero, so zero padding tells `AA` from `AAA`) and the allowed counts as a bit set.
#[derive(Debug, Clone, Copy)]
pub(super) struct KindKey {
    /// The key's letters, little-endian, zero-padded; 0 for a key that can never match.
    pub(super) packed: u32,
    /// Bit `n` set when `n` digits are allowed.
    pub(super) lens: u16,
    /// The largest allowed count (0 if none).
    pub(super) max: u8,
    /// The key as [`Document::series_bits`] packs it (0 for a key that never matches).
    pub(super) series: u64,
}

impl KindKey {
    /// The matcher of one kind. A key that is not 1–4 ASCII capitals never matches, and
    /// digit counts above [`MAX_DIGITS`] are never accepted.
    pub(super) fn new(kind: &DocumentKind) -> KindKey {
        let key = kind.key.as_bytes();
        let packed = if !key.is_empty()
            && key.len() <= MAX_SERIES_LETTERS
            && key.iter().all(u8::is_ascii_uppercase)
        {
            pack(key)
        } else {
            0
        };
        let mut lens = 0u16;
        let mut max = 0u8;
        for &d in &kind.digits {
            if (1..=MAX_DIGITS).contains(&d) {
                lens |= 1 << d;
                max = max.max(d);
            }
        }
        let series = if packed != 0 {
            Document::series_bits(key).unwrap_or(0)
        } else {
            0
        };
        KindKey {
            packed,
            lens,
            max,
            series,
        }
    }

    /// Whether a number of `n` digits fits this kind.
    pub(super) fn accepts(&self, n: usize) -> bool {
        n <= usize::from(self.max) && self.lens & (1 << n) != 0
    }

    /// The key's letters.
    fn letters(&self) -> [u8; 4] {
        self.packed.to_le_bytes()
    }
}

/// Packs up to four ASCII capitals into a `u32`, first letter lowest.
pub(super) fn pack(letters: &[u8]) -> u32 {
    letters
        .iter()
        .take(4)
        .rev()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
}

/// A word's letters as the matcher needs them.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Letters {
    /// Upper-case ASCII letters, [`QMARK`] for a lost one; zero-padded.
    pub(super) chars: [u8; 8],
    /// How many.
    pub(super) len: usize,
    /// Bit `n`: letter `n` is lost.
    pub(super) wild: u16,
    /// Bit `n`: letter `n` is a Cyrillic И.
    pub(super) cyrillic_i: u16,
}

impl Letters {
    /// The same letters without the one at `at`.
    fn without(&self, at: usize) -> Letters {
        let mut out = Letters::default();
        for i in 0..self.len {
            if i == at {
                continue;
            }
            let j = out.len;
            out.chars[j] = self.chars[i];
            out.wild |= ((self.wild >> i) & 1) << j;
            out.cyrillic_i |= ((self.cyrillic_i >> i) & 1) << j;
            out.len += 1;
        }
        out
    }
}

/// The index of the kind `letters` name, if exactly one.
///
/// Tried in order: the letters as they are; with each Cyrillic И also read as Y; without a
/// lost letter at either end (`AZE?` is AZE followed by a question mark); each lost letter
/// as any letter, when at most half the letters are lost and one kind alone fits.
pub(super) fn kind_of(keys: &[KindKey], letters: &Letters) -> Option<usize> {
    let n = letters.len;
    if n == 0 || n > 8 {
        return None;
    }
    if letters.wild == 0 {
        if n > MAX_SERIES_LETTERS {
            return None;
        }
        let packed = pack(&letters.chars[..n]);
        if let Some(i) = keys.iter().position(|k| k.packed == packed && packed != 0) {
            return Some(i);
        }
        if letters.cyrillic_i == 0 {
            return None;
        }
        return unique(keys, |key| {
            fits(key, letters, |i, want, got| {
                want == got || (want == b'Y' && letters.cyrillic_i >> i & 1 == 1)
            })
        });
    }
    if letters.wild >> (n - 1) & 1 == 1
        && let Some(i) = kind_of(keys, &letters.without(n - 1))
    {
        return Some(i);
    }
    if letters.wild & 1 == 1
        && let Some(i) = kind_of(keys, &letters.without(0))
    {
        return Some(i);
    }
    if n > MAX_SERIES_LETTERS || letters.wild.count_ones() as usize * 2 > n {
        return None;
    }
    unique(keys, |key| {
        fits(key, letters, |i, want, got| {
            got == QMARK || want == got || (want == b'Y' && letters.cyrillic_i >> i & 1 == 1)
        })
    })
}

/// Whether a key has `letters`' length and every letter passes `same(index, want, got)`.
fn fits(key: &KindKey, letters: &Letters, same: impl Fn(usize, u8, u8) -> bool) -> bool {
    let want = key.letters();
    let len = want.iter().take_while(|&&b| b != 0).count();
    key.packed != 0 && len == letters.len && (0..len).all(|i| same(i, want[i], letters.chars[i]))
}

/// The one key index for which `fits` holds, or `None` for none or several.
fn unique(keys: &[KindKey], fits: impl Fn(&KindKey) -> bool) -> Option<usize> {
    let mut found = None;
    for (i, key) in keys.iter().enumerate() {
        if fits(key) {
            if found.is_some() {
                return None;
            }
            found = Some(i);
        }
    }
    found
}
