//! Permit ids: a short code printed in the reply, derived from the grant with a keyed MAC,
//! so a checkpoint holding the key can tell a real permit from a forged SMS.
//!
//! The id is 8 symbols from a 30-letter alphabet without `0 O 1 I L U` (nothing to mix up
//! when read aloud or from a cracked screen), printed as `K7QM-4RTX`: about 39 bits of
//! BLAKE3 keyed hash over the document, the code and the validity window.

use crate::permit::document::Document;
use std::fmt;

/// The symbols of a permit id: digits 2–9 and letters without I, L, O, U.
const ALPHABET: &[u8; 30] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Symbols per id.
const SYMBOLS: usize = 8;
/// 30^8: ids are below this.
const SPACE: u64 = 656_100_000_000;

/// The secret behind permit ids. Whoever holds it can mint ids, so it comes from config or
/// the environment, never from the source.
#[derive(Clone)]
pub struct PermitKey {
    key: [u8; 32],
    /// A second key from the same secret, for [`PermitKey::phone_tag`]: a phone's tag must
    /// not be computable without the secret (phone numbers are few enough to try them all).
    phone_key: [u8; 32],
}

impl fmt::Debug for PermitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PermitKey(..)")
    }
}

impl PermitKey {
    /// Derives the MAC key from a secret of any length (a passphrase or random bytes).
    pub fn from_secret(secret: &[u8]) -> Self {
        PermitKey {
            key: blake3::derive_key("icaze 2020 permit id v1", secret),
            phone_key: blake3::derive_key("icaze 2020 phone tag v1", secret),
        }
    }

    /// A phone number's tag: 64 bits of a keyed hash of the number written as digits only
    /// (`+994 50 123-45-67`, `00994501234567` and `994501234567` are one phone), never 0 (0
    /// means "no phone known"). Grants keep this instead of the number: enough to answer
    /// "same phone?" for status requests and to count a phone's documents, in 8 bytes, and
    /// useless to whoever reads a journal without the secret. The same on every node and
    /// after a restart, as long as the secret is.
    pub fn phone_tag(&self, msisdn: &str) -> PhoneTag {
        let mut digits = [0u8; 32];
        let mut n = 0;
        for c in msisdn.chars().filter_map(|c| c.to_digit(10)) {
            if n == digits.len() {
                break;
            }
            digits[n] = b'0' + c as u8;
            n += 1;
        }
        let mut number = &digits[..n];
        // International prefix: 00994… is +994….
        if number.starts_with(b"00") {
            number = &number[2..];
        }
        if number.is_empty() {
            return PhoneTag::NONE;
        }
        let hash = blake3::keyed_hash(&self.phone_key, number);
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        PhoneTag(u64::from_le_bytes(first).max(1))
    }

    /// The id of a permit: a MAC over what the reply prints (document, code, window).
    pub fn permit_id(&self, document: Document, code: u8, from: i64, until: i64) -> PermitId {
        let mut msg = [0u8; 25];
        msg[..8].copy_from_slice(&document.packed().to_le_bytes());
        msg[8] = code;
        msg[9..17].copy_from_slice(&from.to_le_bytes());
        msg[17..25].copy_from_slice(&until.to_le_bytes());
        let hash = blake3::keyed_hash(&self.key, &msg);
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        PermitId(u64::from_le_bytes(first) % SPACE)
    }

    /// Whether `id` is the one this key gives the permit; constant-time compare is not needed
    /// as the id is not a secret once printed, only unforgeable.
    pub fn verify(
        &self,
        id: PermitId,
        document: Document,
        code: u8,
        from: i64,
        until: i64,
    ) -> bool {
        self.permit_id(document, code, from, until) == id
    }
}

/// The tag of the phone that asked for a grant (see [`PermitKey::phone_tag`]); 0 when not
/// known (grants journaled before phones were kept, `icaze decide` without `--phone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct PhoneTag(pub u64);

impl PhoneTag {
    /// No phone known: matches no status request and counts against no phone.
    pub const NONE: PhoneTag = PhoneTag(0);

    /// Whether a phone is known.
    pub fn is_known(self) -> bool {
        self.0 != 0
    }
}

/// A permit id, e.g. `K7QM-4RTX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PermitId(u64);

impl PermitId {
    /// An id from its number (no check: for keys that only need to be distinct).
    pub(crate) fn from_bits(bits: u64) -> PermitId {
        PermitId(bits)
    }

    /// The id as a number below 30^8 (for sharding tables by id).
    pub fn bits(self) -> u64 {
        self.0
    }

    /// Reads an id as a person types it back: any case, with or without the hyphen or
    /// spaces; `0`/`O` are read as nothing valid and refused.
    pub fn parse(text: &str) -> Option<PermitId> {
        let mut value: u64 = 0;
        let mut n = 0;
        for c in text.chars() {
            if c == '-' || c == ' ' {
                continue;
            }
            let c = c.to_ascii_uppercase();
            let digit = ALPHABET.iter().position(|&a| char::from(a) == c)?;
            value = value * 30 + digit as u64;
            n += 1;
            if n > SYMBOLS {
                return None;
            }
        }
        (n == SYMBOLS).then_some(PermitId(value))
    }
}

impl fmt::Display for PermitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; SYMBOLS + 1];
        let mut v = self.0;
        for i in (0..SYMBOLS).rev() {
            let pos = if i >= 4 { i + 1 } else { i };
            out[pos] = ALPHABET[(v % 30) as usize];
            v /= 30;
        }
        out[4] = b'-';
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_readable_and_keyed() {
        let doc = Document::new(b"AZE", b"11111111").unwrap();
        let key = PermitKey::from_secret(b"test secret");
        let id = key.permit_id(doc, 2, 1_586_152_800, 1_586_163_600);
        let text = id.to_string();
        assert_eq!(text.len(), 9);
        assert_eq!(&text[4..5], "-");
        assert!(!text.contains(['0', 'O', '1', 'I', 'L', 'U']));
        assert_eq!(PermitId::parse(&text), Some(id));
        assert_eq!(
            PermitId::parse(&text.to_lowercase().replace('-', " ")),
            Some(id)
        );
        assert!(key.verify(id, doc, 2, 1_586_152_800, 1_586_163_600));
        // Any change to what the SMS prints gives another id.
        assert_ne!(key.permit_id(doc, 1, 1_586_152_800, 1_586_163_600), id);
        assert_ne!(key.permit_id(doc, 2, 1_586_152_860, 1_586_163_600), id);
        let other = Document::new(b"AZE", b"11111112").unwrap();
        assert_ne!(key.permit_id(other, 2, 1_586_152_800, 1_586_163_600), id);
        // Another key gives another id: a forger without the key cannot mint one.
        let forged =
            PermitKey::from_secret(b"guess").permit_id(doc, 2, 1_586_152_800, 1_586_163_600);
        assert_ne!(forged, id);
        assert_eq!(PermitId::parse("O000-0000"), None);
        assert_eq!(PermitId::parse("ABCD-EFG"), None);
    }

    #[test]
    fn phone_tags_ignore_how_the_number_is_written_and_need_the_key() {
        let key = PermitKey::from_secret(b"test secret");
        let tag = key.phone_tag("994501234567");
        assert!(tag.is_known());
        assert_eq!(key.phone_tag("+994 50 123-45-67"), tag);
        assert_eq!(key.phone_tag("00994501234567"), tag);
        assert_ne!(key.phone_tag("994501234568"), tag);
        assert_ne!(
            PermitKey::from_secret(b"guess").phone_tag("994501234567"),
            tag
        );
        assert_eq!(key.phone_tag("no digits"), PhoneTag::NONE);
    }
}
