//! The simulator's own reading of reply texts: GSM 03.38 (unpacked septets, as SMPP carries
//! data_coding 0), IA5/Latin-1 and UCS-2, and the concatenation UDH. Written apart from
//! icaze's decoder on purpose: the load generator is the independent peer, so a bug in
//! icaze's text handling shows up as a mismatch here instead of cancelling out.

/// GSM 03.38 default alphabet, septet value to character.
const GSM: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The GSM 03.38 extension table: the septet after an escape (0x1B).
fn gsm_extension(septet: u8) -> Option<char> {
    Some(match septet {
        0x0A => '\u{c}',
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

/// Decodes a reply's user data in `data_coding`: 0 GSM 03.38 (one septet per octet), 1 IA5,
/// 3 Latin-1, 8 UCS-2 (big-endian, surrogate pairs joined). Anything else, an octet above
/// 0x7F under GSM, or an odd or unpaired UCS-2 is an error naming what is wrong.
pub fn decode(data_coding: u8, bytes: &[u8]) -> Result<String, String> {
    match data_coding {
        0 => decode_gsm(bytes),
        1 | 3 => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        8 => decode_ucs2(bytes),
        other => Err(format!("data_coding {other:#04x} is not one icaze sends")),
    }
}

fn decode_gsm(bytes: &[u8]) -> Result<String, String> {
    let mut out = String::with_capacity(bytes.len());
    let mut iter = bytes.iter();
    while let Some(&b) = iter.next() {
        if b > 0x7F {
            return Err(format!("octet {b:#04x} is not a GSM septet"));
        }
        if b == 0x1B {
            // An escape with nothing known after it reads as a space (03.38 says so).
            match iter.next() {
                Some(&next) => out.push(gsm_extension(next).unwrap_or(' ')),
                None => out.push(' '),
            }
        } else {
            out.push(GSM[usize::from(b)]);
        }
    }
    Ok(out)
}

fn decode_ucs2(bytes: &[u8]) -> Result<String, String> {
    if !bytes.len().is_multiple_of(2) {
        return Err(format!("UCS-2 of {} octets (odd)", bytes.len()));
    }
    let units = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|e| {
            format!(
                "UCS-2 with an unpaired surrogate {:#06x}",
                e.unpaired_surrogate()
            )
        })
}

/// A concatenated part: (reference, total, seq), 8-bit references widened.
pub type Concat = (u16, u8, u8);

/// Splits a short_message whose esm_class has UDHI into its concatenation IE (8-bit IEI 0x00
/// or 16-bit IEI 0x08; other IEs skipped) and the user data after the header. `None` when the
/// header does not fit in the message.
pub fn split_udh(short_message: &[u8]) -> Option<(Option<Concat>, &[u8])> {
    let (&udhl, rest) = short_message.split_first()?;
    let udhl = usize::from(udhl);
    if udhl > rest.len() {
        return None;
    }
    let (mut header, user_data) = rest.split_at(udhl);
    let mut concat = None;
    while let [iei, len, tail @ ..] = header {
        let len = usize::from(*len);
        if len > tail.len() {
            return None;
        }
        let (data, after) = tail.split_at(len);
        match (iei, data) {
            (0x00, [reference, total, seq]) => concat = Some((u16::from(*reference), *total, *seq)),
            (0x08, [hi, lo, total, seq]) => {
                concat = Some((u16::from_be_bytes([*hi, *lo]), *total, *seq));
            }
            _ => {}
        }
        header = after;
    }
    Some((concat, user_data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_default_alphabet_and_its_extension_table() {
        assert_eq!(decode(0, b"2 AZE 11111111").unwrap(), "2 AZE 11111111");
        assert_eq!(decode(0, &[0x00, 0x01, 0x02, 0x1F, 0x5F]).unwrap(), "@£$É§");
        let escaped = [
            0x1B, 0x65, 0x1B, 0x3C, 0x1B, 0x3E, 0x1B, 0x28, 0x1B, 0x29, 0x1B, 0x14, 0x1B, 0x3D,
            0x1B, 0x2F, 0x1B, 0x40,
        ];
        assert_eq!(decode(0, &escaped).unwrap(), "€[]{}^~\\|");
        assert!(decode(0, &[0x80]).is_err(), "not a septet");
    }

    #[test]
    fn ucs2_with_azerbaijani_letters_and_a_surrogate_pair() {
        let text = "İCAZƏ VERİLDİ: ı ə ş ç ğ ö ü 🙂";
        let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(&bytes[..4], &[0x01, 0x30, 0x00, 0x43], "İ is U+0130");
        assert_eq!(decode(8, &bytes).unwrap(), text);
        assert!(decode(8, &bytes[..3]).is_err(), "odd length");
        assert!(decode(8, &[0xD8, 0x3D]).is_err(), "lone high surrogate");
    }

    #[test]
    fn latin1_and_unknown_codings() {
        assert_eq!(decode(3, &[0x41, 0xE9]).unwrap(), "Aé");
        assert!(decode(4, b"x").is_err());
    }

    #[test]
    fn concatenation_headers_8_and_16_bit() {
        let eight = [0x05, 0x00, 0x03, 0x2A, 0x02, 0x01, b'h', b'i'];
        assert_eq!(split_udh(&eight), Some((Some((0x2A, 2, 1)), &b"hi"[..])));
        let sixteen = [0x06, 0x08, 0x04, 0x12, 0x34, 0x03, 0x03, b'x'];
        assert_eq!(split_udh(&sixteen), Some((Some((0x1234, 3, 3)), &b"x"[..])));
        // Another IE first, then concatenation.
        let mixed = [0x07, 0x70, 0x00, 0x00, 0x03, 0x01, 0x02, 0x02, b'y'];
        assert_eq!(split_udh(&mixed), Some((Some((1, 2, 2)), &b"y"[..])));
        assert_eq!(
            split_udh(&[0x09, 0x00]),
            None,
            "header longer than the message"
        );
    }
}
