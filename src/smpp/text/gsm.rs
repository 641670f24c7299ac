//! GSM 03.38: the default alphabet and its extension table, both ways. SMPP carries the
//! septets unpacked, one per octet.

/// The GSM escape septet that selects the extension table for the next septet.
pub(super) const ESC: u8 = 0x1B;

/// GSM 03.38 default alphabet, indexed by septet.
const GSM_BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{A0}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The GSM 03.38 extension table entry for the septet after an escape.
fn gsm_extension(septet: u8) -> Option<char> {
    Some(match septet {
        0x0A => '\u{0C}',
        0x14 => '^',
        0x28 => '{',
        0x29 => '}',
        0x2F => '\\',
        0x3C => '[',
        0x3D => '~',
        0x3E => ']',
        0x40 => '|',
        0x65 => '€',
        _ => return None,
    })
}

/// Decodes unpacked GSM septets. An escape followed by a septet with no extension entry shows
/// the basic character (23.038 §6.2.1.1); a trailing escape shows as a space.
pub(super) fn decode_gsm_unpacked(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len());
    let mut iter = bytes.iter();
    while let Some(&b) = iter.next() {
        let septet = b & 0x7F;
        if septet == ESC {
            match iter.next() {
                Some(&next) => {
                    let next = next & 0x7F;
                    out.push(gsm_extension(next).unwrap_or(GSM_BASIC[usize::from(next)]));
                }
                None => out.push(' '),
            }
        } else {
            out.push(GSM_BASIC[usize::from(septet)]);
        }
    }
}

/// [`gsm_septet`] for ASCII, precomputed: the septet, 0x80 set when escaped, 0xFF when
/// unrepresentable (`` ` `` is the only one). Replies are mostly ASCII; a table beats the
/// `match` by several times.
pub(super) static ASCII_TO_GSM: [u8; 128] = {
    let mut table = [0xFF; 128];
    let mut i = 0;
    while i < 128 {
        if let Some((septet, escaped)) = gsm_septet_slow(i as u8 as char) {
            table[i] = septet | if escaped { 0x80 } else { 0 };
        }
        i += 1;
    }
    table
};

/// The GSM septet(s) for a character: `Some((septet, escaped))`, or `None` when the character
/// has no place in the default alphabet or its extension table.
pub(super) fn gsm_septet(c: char) -> Option<(u8, bool)> {
    if c.is_ascii() {
        match ASCII_TO_GSM[c as usize] {
            0xFF => None,
            v => Some((v & 0x7F, v & 0x80 != 0)),
        }
    } else {
        gsm_septet_slow(c)
    }
}

const fn gsm_septet_slow(c: char) -> Option<(u8, bool)> {
    const fn basic(s: u8) -> Option<(u8, bool)> {
        Some((s, false))
    }
    const fn ext(s: u8) -> Option<(u8, bool)> {
        Some((s, true))
    }
    match c {
        'A'..='Z' | 'a'..='z' | '0'..='9' => basic(c as u8),
        ' ' | '!' | '"' | '#' | '%' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | '-' | '.'
        | '/' | ':' | ';' | '<' | '=' | '>' | '?' => basic(c as u8),
        '\n' => basic(0x0A),
        '\r' => basic(0x0D),
        '@' => basic(0x00),
        '£' => basic(0x01),
        '$' => basic(0x02),
        '¥' => basic(0x03),
        'è' => basic(0x04),
        'é' => basic(0x05),
        'ù' => basic(0x06),
        'ì' => basic(0x07),
        'ò' => basic(0x08),
        'Ç' => basic(0x09),
        'Ø' => basic(0x0B),
        'ø' => basic(0x0C),
        'Å' => basic(0x0E),
        'å' => basic(0x0F),
        'Δ' => basic(0x10),
        '_' => basic(0x11),
        'Φ' => basic(0x12),
        'Γ' => basic(0x13),
        'Λ' => basic(0x14),
        'Ω' => basic(0x15),
        'Π' => basic(0x16),
        'Ψ' => basic(0x17),
        'Σ' => basic(0x18),
        'Θ' => basic(0x19),
        'Ξ' => basic(0x1A),
        'Æ' => basic(0x1C),
        'æ' => basic(0x1D),
        'ß' => basic(0x1E),
        'É' => basic(0x1F),
        '¤' => basic(0x24),
        '¡' => basic(0x40),
        'Ä' => basic(0x5B),
        'Ö' => basic(0x5C),
        'Ñ' => basic(0x5D),
        'Ü' => basic(0x5E),
        '§' => basic(0x5F),
        '¿' => basic(0x60),
        'ä' => basic(0x7B),
        'ö' => basic(0x7C),
        'ñ' => basic(0x7D),
        'ü' => basic(0x7E),
        'à' => basic(0x7F),
        '\u{0C}' => ext(0x0A),
        '^' => ext(0x14),
        '{' => ext(0x28),
        '}' => ext(0x29),
        '\\' => ext(0x2F),
        '[' => ext(0x3C),
        '~' => ext(0x3D),
        ']' => ext(0x3E),
        '|' => ext(0x40),
        '€' => ext(0x65),
        _ => None,
    }
}

/// Septets `text` takes in GSM 7-bit (escaped characters count two), or `None` if some
/// character needs UCS-2.
pub fn gsm_septets(text: &str) -> Option<usize> {
    text.chars().try_fold(0usize, |n, c| {
        gsm_septet(c).map(|(_, escaped)| n + 1 + usize::from(escaped))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smpp::text::*;

    fn roundtrip_gsm(text: &str) {
        let enc = encode_mt(text, 1).unwrap();
        assert_eq!(enc.data_coding, DCS_DEFAULT, "{text:?} should be GSM");
        assert_eq!(enc.parts.len(), 1);
        assert_eq!(decode(enc.data_coding, &enc.parts[0]).unwrap(), text);
    }

    #[test]
    fn gsm_basic_table_round_trips() {
        roundtrip_gsm("2 AZE 11111111");
        roundtrip_gsm("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà");
        let all: Vec<u8> = (0u8..0x80).filter(|&b| b != ESC).collect();
        let s = decode(DCS_DEFAULT, &all).unwrap();
        assert_eq!(s.chars().count(), all.len());
    }

    #[test]
    fn gsm_extension_chars_encode_as_escape_pairs() {
        let text = "€[]{}^~\\|";
        let enc = encode_mt(text, 0).unwrap();
        assert_eq!(enc.data_coding, DCS_DEFAULT);
        assert_eq!(
            &enc.parts[0][..],
            &[
                0x1B, 0x65, 0x1B, 0x3C, 0x1B, 0x3E, 0x1B, 0x28, 0x1B, 0x29, 0x1B, 0x14, 0x1B, 0x3D,
                0x1B, 0x2F, 0x1B, 0x40
            ]
        );
        assert_eq!(decode(DCS_DEFAULT, &enc.parts[0]).unwrap(), text);
        assert_eq!(gsm_septets(text), Some(18));
    }

    #[test]
    fn backtick_and_azerbaijani_letters_force_ucs2() {
        assert_eq!(gsm_septets("`"), None);
        for c in ["ə", "ş", "ç", "ğ", "ı", "İ"] {
            assert_eq!(encode_mt(c, 0).unwrap().data_coding, DCS_UCS2, "{c}");
        }
        // ö and ü alone are in the GSM table.
        assert_eq!(encode_mt("öü", 0).unwrap().data_coding, DCS_DEFAULT);
    }

    #[test]
    fn gsm_unknown_escape_and_trailing_escape_are_tolerated() {
        assert_eq!(decode(DCS_DEFAULT, &[0x1B, 0x41, 0x1B]).unwrap(), "A ");
    }
}
