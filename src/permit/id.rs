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
        }
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

/// A permit id, e.g. `K7QM-4RTX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PermitId(u64);

impl PermitId {
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
}
