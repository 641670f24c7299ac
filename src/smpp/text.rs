//! data_coding: turn `short_message` octets into text and text into `short_message` parts.
//!
//! Citizens' phones and operators' SMSCs send data_coding 0 (SMSC default alphabet, which on
//! SMPP means GSM 03.38 septets, one per octet, "unpacked"), 1 (IA5/ASCII), 3 (Latin-1) and
//! 8 (UCS-2, which phones really fill with UTF-16BE, emoji surrogate pairs included). Replies
//! leave as GSM 7-bit when every character has a septet, else as UCS-2; Azerbaijani always
//! needs UCS-2 because `ə` is in no GSM table. Long replies are segmented behind a
//! concatenation UDH so the handset stitches them back together.
//!
//! Nothing here allocates more than the output it returns.

use bytes::Bytes;

use super::status::Status;

/// `data_coding` the SMSC default alphabet (GSM 03.38 on SMPP links).
pub const DCS_DEFAULT: u8 = 0x00;
/// `data_coding` IA5 (CCITT T.50), i.e. ASCII.
pub const DCS_IA5: u8 = 0x01;
/// `data_coding` ISO-8859-1.
pub const DCS_LATIN1: u8 = 0x03;
/// `data_coding` ISO-8859-5 (Cyrillic).
pub const DCS_CYRILLIC: u8 = 0x06;
/// `data_coding` UCS-2 big endian (UTF-16BE in practice).
pub const DCS_UCS2: u8 = 0x08;

/// Septets in a single GSM 7-bit message.
pub const GSM_SINGLE: usize = 160;
/// Septets per part of a concatenated GSM 7-bit message (160 minus a 6-octet UDH).
pub const GSM_PART: usize = 153;
/// UTF-16 code units in a single UCS-2 message (140 octets).
pub const UCS2_SINGLE: usize = 70;
/// UTF-16 code units per part of a concatenated UCS-2 message (134 octets after the UDH).
pub const UCS2_PART: usize = 67;
/// Length of the concatenation UDH we write: UDHL, IEI 0x00, IEL 3, ref, total, seq.
pub const CONCAT_UDH_LEN: usize = 6;

/// The GSM escape septet that selects the extension table for the next septet.
const ESC: u8 = 0x1B;

/// Why text could not be decoded or encoded. Each knows the `command_status` an MO carrying it
/// deserves, so the connection can answer precisely without a reply SMS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// A data_coding we do not interpret (compressed, reserved, or a non-ASCII-compatible
    /// national set carrying non-ASCII octets).
    #[error("data_coding {data_coding:#04x} is not supported")]
    UnsupportedDataCoding {
        /// The data_coding value from the PDU.
        data_coding: u8,
    },
    /// 8-bit binary data (data_coding 2, 4, 0xF4..): a ringtone or OTA payload, not a request.
    #[error("data_coding {data_coding:#04x} carries binary data, not text")]
    Binary {
        /// The data_coding value from the PDU.
        data_coding: u8,
    },
    /// UCS-2 needs an even number of octets; an odd count means a truncated message.
    #[error("UCS-2 text has an odd length of {len} octets")]
    OddUcs2Length {
        /// Octets in the user data.
        len: usize,
    },
    /// UDHI was set but the header's own length runs past the message.
    #[error("user data header of {udhl} octets does not fit in {len} octets of short_message")]
    BadUdh {
        /// UDHL, the header length announced by the first octet.
        udhl: usize,
        /// Octets available.
        len: usize,
    },
    /// A reply so long it would need more than 255 concatenated parts.
    #[error("text needs {parts} parts; concatenation allows at most 255")]
    TooManyParts {
        /// Parts the text would need.
        parts: usize,
    },
}

impl TextError {
    /// The `command_status` for an MO whose text fails this way.
    pub fn status(&self) -> Status {
        match self {
            TextError::UnsupportedDataCoding { .. } | TextError::Binary { .. } => {
                Status::ESME_RINVDCS
            }
            TextError::OddUcs2Length { .. } | TextError::BadUdh { .. } => Status::ESME_RINVMSGLEN,
            TextError::TooManyParts { .. } => Status::ESME_RINVMSGLEN,
        }
    }
}

/// How to read data_coding 0. SMPP says "SMSC default alphabet"; nearly every SMSC means GSM
/// 03.38, but a few operators put ASCII or Latin-1 there, and the bind's config can say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultAlphabet {
    /// GSM 03.38 septets, one per octet (the usual meaning).
    #[default]
    Gsm7,
    /// ASCII (IA5).
    Ascii,
    /// ISO-8859-1.
    Latin1,
}

/// The character set a data_coding selects, as far as we interpret it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    /// GSM 03.38 default alphabet with its extension table, unpacked.
    Gsm7,
    /// IA5 / ASCII.
    Ia5,
    /// ISO-8859-1.
    Latin1,
    /// ISO-8859-5.
    Cyrillic,
    /// UCS-2 / UTF-16BE.
    Ucs2,
    /// A national set we do not map but whose lower half is ASCII (JIS, KS C 5601, Hebrew,
    /// ISO-2022-JP, pictograms): accepted when every octet is ASCII, which covers the
    /// `2 AZE 11111111` that matters here.
    AsciiCompatible,
    /// 8-bit data.
    Binary,
}

/// Which alphabet a data_coding selects, per SMPP 5.0 §4.7.7 and GSM 23.038 coding groups.
pub fn alphabet(data_coding: u8) -> Result<Alphabet, TextError> {
    let from_bits = |dcs: u8| match (dcs >> 2) & 0b11 {
        0b00 => Ok(Alphabet::Gsm7),
        0b01 => Ok(Alphabet::Binary),
        0b10 => Ok(Alphabet::Ucs2),
        _ => Err(TextError::UnsupportedDataCoding { data_coding: dcs }),
    };
    match data_coding {
        0x00 => Ok(Alphabet::Gsm7),
        0x01 => Ok(Alphabet::Ia5),
        0x02 | 0x04 => Ok(Alphabet::Binary),
        0x03 => Ok(Alphabet::Latin1),
        0x06 => Ok(Alphabet::Cyrillic),
        0x08 => Ok(Alphabet::Ucs2),
        0x05 | 0x07 | 0x09 | 0x0A | 0x0D | 0x0E => Ok(Alphabet::AsciiCompatible),
        // General data coding with message class, uncompressed (e.g. 0x18 = flash UCS-2).
        0x10..=0x1F => from_bits(data_coding),
        // Automatic-deletion group, uncompressed.
        0x40..=0x5F => from_bits(data_coding),
        // Message waiting indication groups.
        0xC0..=0xDF => Ok(Alphabet::Gsm7),
        0xE0..=0xEF => Ok(Alphabet::Ucs2),
        // Data coding / message class: bit 2 chooses 8-bit data over the default alphabet.
        0xF0..=0xFF => Ok(if data_coding & 0x04 == 0 {
            Alphabet::Gsm7
        } else {
            Alphabet::Binary
        }),
        _ => Err(TextError::UnsupportedDataCoding { data_coding }),
    }
}

/// Decodes user data (without UDH) to a `String`, reading data_coding 0 as GSM 03.38.
pub fn decode(data_coding: u8, bytes: &[u8]) -> Result<String, TextError> {
    let mut out = String::new();
    decode_into(data_coding, bytes, DefaultAlphabet::Gsm7, &mut out)?;
    Ok(out)
}

/// Decodes user data, appending to `out` so a caller (concatenation) can build one string from
/// many parts without intermediate allocations. On error `out` is left as it was.
pub fn decode_into(
    data_coding: u8,
    bytes: &[u8],
    default: DefaultAlphabet,
    out: &mut String,
) -> Result<(), TextError> {
    let alphabet = match alphabet(data_coding)? {
        Alphabet::Gsm7 if data_coding == DCS_DEFAULT => match default {
            DefaultAlphabet::Gsm7 => Alphabet::Gsm7,
            DefaultAlphabet::Ascii => Alphabet::Ia5,
            DefaultAlphabet::Latin1 => Alphabet::Latin1,
        },
        other => other,
    };
    match alphabet {
        Alphabet::Gsm7 => {
            if bytes.is_ascii() {
                decode_gsm_unpacked(bytes, out);
            } else {
                // Octets above 0x7F are no septets: the peer sent 8-bit text under DCS 0.
                // UTF-8 if it parses as such (some HTTP-to-SMPP bridges), else Latin-1.
                match std::str::from_utf8(bytes) {
                    Ok(s) => out.push_str(s),
                    Err(_) => decode_latin1(bytes, out),
                }
            }
        }
        Alphabet::Ia5 | Alphabet::Latin1 => decode_latin1(bytes, out),
        Alphabet::Cyrillic => decode_iso8859_5(bytes, out),
        Alphabet::Ucs2 => decode_utf16be(bytes, out)?,
        Alphabet::AsciiCompatible => {
            if !bytes.is_ascii() {
                return Err(TextError::UnsupportedDataCoding { data_coding });
            }
            decode_latin1(bytes, out);
        }
        Alphabet::Binary => return Err(TextError::Binary { data_coding }),
    }
    Ok(())
}

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
fn decode_gsm_unpacked(bytes: &[u8], out: &mut String) {
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

/// Latin-1 (and IA5, its lower half) map octet to code point one to one.
fn decode_latin1(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len());
    out.extend(bytes.iter().map(|&b| char::from(b)));
}

/// ISO-8859-5: the upper half is Cyrillic at a fixed offset, with three exceptions.
fn decode_iso8859_5(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        let c = match b {
            0x00..=0xA0 | 0xAD => char::from(b),
            0xF0 => '№',
            0xFD => '§',
            _ => char::from_u32(u32::from(b) + 0x360).unwrap_or(char::REPLACEMENT_CHARACTER),
        };
        out.push(c);
    }
}

/// UTF-16BE, accepting surrogate pairs (emoji); a lone surrogate becomes U+FFFD rather than
/// failing the whole message.
fn decode_utf16be(bytes: &[u8], out: &mut String) -> Result<(), TextError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(TextError::OddUcs2Length { len: bytes.len() });
    }
    out.reserve(bytes.len());
    let units = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    out.extend(char::decode_utf16(units).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)));
    Ok(())
}

/// [`gsm_septet`] for ASCII, precomputed: the septet, 0x80 set when escaped, 0xFF when
/// unrepresentable (`` ` `` is the only one). Replies are mostly ASCII; a table beats the
/// `match` by several times.
static ASCII_TO_GSM: [u8; 128] = {
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
fn gsm_septet(c: char) -> Option<(u8, bool)> {
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

/// An MT text ready for deliver_sm / submit_sm: the data_coding to declare and one
/// `short_message` per part, each starting with its concatenation UDH when `udh` is set (the
/// PDU then needs esm_class UDHI, 0x40).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// [`DCS_DEFAULT`] (GSM 7-bit, unpacked) or [`DCS_UCS2`].
    pub data_coding: u8,
    /// Whether each part begins with a UDH (set exactly when there is more than one part).
    pub udh: bool,
    /// The `short_message` octets of each part, in order. All parts share one allocation.
    pub parts: Vec<Bytes>,
}

/// Encodes a reply: GSM 7-bit when every character fits (160 septets single, 153 per part,
/// never splitting an escape pair), else UCS-2 (70 units single, 67 per part, never splitting
/// a surrogate pair). `ref_num` is the 8-bit concatenation reference the caller rotates per
/// destination so the handset does not merge two replies.
pub fn encode_mt(text: &str, ref_num: u8) -> Result<Encoded, TextError> {
    if let Some(single) = encode_ascii_single(text) {
        return Ok(single);
    }
    match gsm_septets(text) {
        Some(septets) => encode_parts(text, ref_num, DCS_DEFAULT, septets, GSM_SINGLE, GSM_PART),
        None => encode_ucs2(text, ref_num),
    }
}

/// UCS-2 (UTF-16BE) parts straight from the text's UTF-16 units: the same octets as
/// [`encode_parts`] with [`DCS_UCS2`] (tested), without deciding coding and width per
/// character. Azerbaijani and Russian replies take this path.
fn encode_ucs2(text: &str, ref_num: u8) -> Result<Encoded, TextError> {
    let total_units: usize = text.chars().map(char::len_utf16).sum();
    if total_units <= UCS2_SINGLE {
        let mut buf = Vec::with_capacity(total_units * 2);
        for unit in text.encode_utf16() {
            buf.extend_from_slice(&unit.to_be_bytes());
        }
        return Ok(one_part(buf, DCS_UCS2));
    }
    let estimate = total_units.div_ceil(UCS2_PART) + 1;
    let mut buf = Vec::with_capacity(total_units * 2 + estimate * CONCAT_UDH_LEN);
    let mut lengths: Vec<usize> = Vec::with_capacity(estimate);
    let mut units = text.encode_utf16().peekable();
    while units.peek().is_some() {
        let start = buf.len();
        let seq = u8::try_from(lengths.len() + 1).unwrap_or(u8::MAX);
        buf.extend_from_slice(&[0x05, 0x00, 0x03, ref_num, 0, seq]);
        let mut in_part = 0;
        while let Some(&unit) = units.peek() {
            // A high surrogate comes with its low one: the pair never straddles parts.
            let width = if (0xD800..0xDC00).contains(&unit) {
                2
            } else {
                1
            };
            if in_part + width > UCS2_PART {
                break;
            }
            for unit in units.by_ref().take(width) {
                buf.extend_from_slice(&unit.to_be_bytes());
            }
            in_part += width;
        }
        lengths.push(buf.len() - start);
    }
    concatenated(buf, &lengths, DCS_UCS2)
}

/// A message that fits one part: no UDH.
fn one_part(buf: Vec<u8>, data_coding: u8) -> Encoded {
    Encoded {
        data_coding,
        udh: false,
        parts: vec![Bytes::from(buf)],
    }
}

/// Parts laid end to end in `buf`, each of `lengths[i]` octets and starting with a
/// concatenation UDH whose total (its fifth octet) is not yet known: writes the total in
/// and splits the buffer into parts that share its allocation.
fn concatenated(
    mut buf: Vec<u8>,
    lengths: &[usize],
    data_coding: u8,
) -> Result<Encoded, TextError> {
    let total = lengths.len();
    let total_u8 = u8::try_from(total).map_err(|_| TextError::TooManyParts { parts: total })?;
    let mut offset = 0;
    for len in lengths {
        buf[offset + 4] = total_u8;
        offset += len;
    }
    let mut all = Bytes::from(buf);
    Ok(Encoded {
        data_coding,
        udh: true,
        parts: lengths.iter().map(|&len| all.split_to(len)).collect(),
    })
}

/// The common case, an ASCII reply that fits one GSM message, one octet at a time without
/// decoding UTF-8. `None` sends the text down the general path.
fn encode_ascii_single(text: &str) -> Option<Encoded> {
    let bytes = text.as_bytes();
    if bytes.len() > GSM_SINGLE || !bytes.is_ascii() {
        return None;
    }
    let mut septets = 0;
    for &b in bytes {
        match ASCII_TO_GSM[usize::from(b)] {
            0xFF => return None,
            v => septets += 1 + usize::from(v >> 7),
        }
    }
    if septets > GSM_SINGLE {
        return None;
    }
    let mut out = Vec::with_capacity(septets);
    for &b in bytes {
        let v = ASCII_TO_GSM[usize::from(b)];
        if v & 0x80 != 0 {
            out.push(ESC);
        }
        out.push(v & 0x7F);
    }
    Some(one_part(out, DCS_DEFAULT))
}

/// Size of `c` in the unit that limits a part: septets for GSM, UTF-16 units for UCS-2.
fn units_of(c: char, data_coding: u8) -> usize {
    if data_coding == DCS_UCS2 {
        c.len_utf16()
    } else {
        gsm_septet(c).map_or(1, |(_, escaped)| 1 + usize::from(escaped))
    }
}

/// Appends `c` in the chosen coding.
#[inline]
fn put_char(buf: &mut Vec<u8>, c: char, data_coding: u8) {
    if data_coding == DCS_UCS2 {
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            buf.extend_from_slice(&unit.to_be_bytes());
        }
    } else if let Some((septet, escaped)) = gsm_septet(c) {
        if escaped {
            buf.push(ESC);
        }
        buf.push(septet);
    }
}

fn encode_parts(
    text: &str,
    ref_num: u8,
    data_coding: u8,
    total_units: usize,
    single: usize,
    per_part: usize,
) -> Result<Encoded, TextError> {
    let octets_per_unit = if data_coding == DCS_UCS2 { 2 } else { 1 };
    if total_units <= single {
        let mut buf = Vec::with_capacity(total_units * octets_per_unit);
        for c in text.chars() {
            put_char(&mut buf, c, data_coding);
        }
        return Ok(one_part(buf, data_coding));
    }

    // Parts can come out shorter than `per_part` when a pair would straddle a boundary, so
    // reserve for one spare part; the exact count is patched into the UDHs at the end.
    let estimate = total_units.div_ceil(per_part) + 1;
    let mut buf = Vec::with_capacity(total_units * octets_per_unit + estimate * CONCAT_UDH_LEN);
    let mut lengths: Vec<usize> = Vec::with_capacity(estimate);
    let mut part_start = 0usize;
    let mut in_part = per_part; // forces a UDH before the first character
    for c in text.chars() {
        let n = units_of(c, data_coding);
        if in_part + n > per_part {
            if !lengths.is_empty() || buf.len() > part_start {
                lengths.push(buf.len() - part_start);
            }
            part_start = buf.len();
            let seq = u8::try_from(lengths.len() + 1).unwrap_or(u8::MAX);
            buf.extend_from_slice(&[0x05, 0x00, 0x03, ref_num, 0, seq]);
            in_part = 0;
        }
        put_char(&mut buf, c, data_coding);
        in_part += n;
    }
    lengths.push(buf.len() - part_start);
    concatenated(buf, &lengths, data_coding)
}

/// Concatenation information from a UDH (IEI 0x00 or 0x08) or from SMPP `sar_` TLVs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Concat {
    /// Reference shared by all parts of one message (8-bit references widened).
    pub reference: u16,
    /// Number of parts in the message, at least 1.
    pub total: u8,
    /// This part's position, 1-based and at most `total`.
    pub seq: u8,
}

impl Concat {
    /// Builds a concatenation description if the numbers are usable (23.040 says a receiver
    /// ignores an IE with total 0, seq 0 or seq above total).
    pub fn new(reference: u16, total: u8, seq: u8) -> Option<Concat> {
        (total >= 1 && seq >= 1 && seq <= total).then_some(Concat {
            reference,
            total,
            seq,
        })
    }
}

/// A `short_message` split into its user data header (as far as we use it) and user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udh<'a> {
    /// Concatenation IE, if present and valid.
    pub concat: Option<Concat>,
    /// The octets after the UDH: the text in the message's data_coding.
    pub user_data: &'a [u8],
}

/// Parses the UDH at the front of `short_message` (call only when esm_class has UDHI, 0x40).
/// Recognises 8-bit (IEI 0x00) and 16-bit (IEI 0x08) concatenation; other IEs are skipped.
pub fn parse_udh(short_message: &[u8]) -> Result<Udh<'_>, TextError> {
    let Some((&udhl, rest)) = short_message.split_first() else {
        return Err(TextError::BadUdh { udhl: 0, len: 0 });
    };
    let udhl = usize::from(udhl);
    if udhl > rest.len() {
        return Err(TextError::BadUdh {
            udhl,
            len: short_message.len(),
        });
    }
    let (mut header, user_data) = rest.split_at(udhl);
    let mut concat = None;
    while let [iei, iel, tail @ ..] = header {
        let iel = usize::from(*iel);
        if iel > tail.len() {
            return Err(TextError::BadUdh {
                udhl,
                len: short_message.len(),
            });
        }
        let (data, next) = tail.split_at(iel);
        match (iei, data) {
            (0x00, &[reference, total, seq]) => {
                concat = Concat::new(u16::from(reference), total, seq);
            }
            (0x08, &[hi, lo, total, seq]) => {
                concat = Concat::new(u16::from_be_bytes([hi, lo]), total, seq);
            }
            _ => {}
        }
        header = next;
    }
    Ok(Udh { concat, user_data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_gsm(text: &str) {
        let enc = encode_mt(text, 1).unwrap();
        assert_eq!(enc.data_coding, DCS_DEFAULT, "{text:?} should be GSM");
        assert_eq!(enc.parts.len(), 1);
        assert_eq!(decode(enc.data_coding, &enc.parts[0]).unwrap(), text);
    }

    /// Reassembles the parts of an encoding, checking each UDH.
    fn join(enc: &Encoded, ref_num: u8) -> String {
        let mut out = String::new();
        let total = enc.parts.len();
        for (i, part) in enc.parts.iter().enumerate() {
            let data = if enc.udh {
                let udh = parse_udh(part).unwrap();
                assert_eq!(
                    udh.concat,
                    Some(Concat {
                        reference: u16::from(ref_num),
                        total: total as u8,
                        seq: (i + 1) as u8
                    })
                );
                udh.user_data
            } else {
                &part[..]
            };
            decode_into(enc.data_coding, data, DefaultAlphabet::Gsm7, &mut out).unwrap();
        }
        out
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

    #[test]
    fn dcs0_with_high_octets_falls_back_to_utf8_then_latin1() {
        assert_eq!(decode(DCS_DEFAULT, "şəhər".as_bytes()).unwrap(), "şəhər");
        assert_eq!(decode(DCS_DEFAULT, &[0x41, 0xE9]).unwrap(), "Aé");
    }

    #[test]
    fn default_alphabet_can_be_ascii_or_latin1() {
        let mut s = String::new();
        decode_into(DCS_DEFAULT, b"a@b$", DefaultAlphabet::Ascii, &mut s).unwrap();
        assert_eq!(s, "a@b$");
        s.clear();
        decode_into(DCS_DEFAULT, b"a@b$", DefaultAlphabet::Gsm7, &mut s).unwrap();
        assert_eq!(s, "a¡b¤");
    }

    #[test]
    fn ia5_latin1_cyrillic() {
        assert_eq!(
            decode(DCS_IA5, b"2 AZE 11111111").unwrap(),
            "2 AZE 11111111"
        );
        assert_eq!(decode(DCS_LATIN1, &[0x63, 0xE7, 0xFC]).unwrap(), "cçü");
        assert_eq!(
            decode(DCS_CYRILLIC, &[0xB0, 0xB5, 0xBC, 0xF0, 0xF1, 0xFD]).unwrap(),
            "АЕМ№ё§"
        );
    }

    #[test]
    fn ucs2_azerbaijani_and_emoji() {
        let text = "Əə Ğğ Iı Öö Üü Çç Şş İi 👍";
        let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(decode(DCS_UCS2, &bytes).unwrap(), text);
        let enc = encode_mt(text, 9).unwrap();
        assert_eq!(enc.data_coding, DCS_UCS2);
        assert!(!enc.udh);
        assert_eq!(&enc.parts[0][..], &bytes[..]);
    }

    #[test]
    fn ucs2_lone_surrogate_and_odd_length() {
        assert_eq!(
            decode(DCS_UCS2, &[0xD8, 0x3D, 0x00, 0x41]).unwrap(),
            "\u{FFFD}A"
        );
        assert_eq!(
            decode(DCS_UCS2, &[0x00, 0x41, 0x00]),
            Err(TextError::OddUcs2Length { len: 3 })
        );
        assert_eq!(
            TextError::OddUcs2Length { len: 3 }.status(),
            Status::ESME_RINVMSGLEN
        );
    }

    #[test]
    fn data_coding_groups() {
        assert_eq!(decode(0x18, &[0x00, 0x41]).unwrap(), "A");
        assert_eq!(decode(0xF0, b"AB").unwrap(), "AB");
        assert_eq!(decode(0x0E, b"AB").unwrap(), "AB");
        assert_eq!(
            decode(0x0E, &[0xB0, 0xA1]),
            Err(TextError::UnsupportedDataCoding { data_coding: 0x0E })
        );
        assert_eq!(
            decode(0x04, b"x"),
            Err(TextError::Binary { data_coding: 0x04 })
        );
        assert_eq!(
            decode(0xF4, b"x"),
            Err(TextError::Binary { data_coding: 0xF4 })
        );
        let err = decode(0x2C, b"x").unwrap_err();
        assert_eq!(err.status(), Status::ESME_RINVDCS);
        assert!(decode(0x90, b"x").is_err());
    }

    #[test]
    fn gsm_160_is_single_161_is_two_parts() {
        let text = "a".repeat(160);
        let enc = encode_mt(&text, 7).unwrap();
        assert!(!enc.udh);
        assert_eq!(enc.parts.len(), 1);
        assert_eq!(enc.parts[0].len(), 160);

        let text = "a".repeat(161);
        let enc = encode_mt(&text, 7).unwrap();
        assert!(enc.udh);
        assert_eq!(enc.parts.len(), 2);
        assert_eq!(enc.parts[0].len(), CONCAT_UDH_LEN + 153);
        assert_eq!(enc.parts[1].len(), CONCAT_UDH_LEN + 8);
        assert_eq!(join(&enc, 7), text);
    }

    #[test]
    fn gsm_escape_pair_is_never_split() {
        // 152 plain septets then '€' (2 septets): 154 > 153, so '€' moves to part 2.
        let text = format!("{}€{}", "b".repeat(152), "c".repeat(10));
        let enc = encode_mt(&text, 3).unwrap();
        assert_eq!(enc.data_coding, DCS_DEFAULT);
        assert_eq!(enc.parts.len(), 2);
        assert_eq!(enc.parts[0].len(), CONCAT_UDH_LEN + 152);
        assert_eq!(
            &enc.parts[1][CONCAT_UDH_LEN..CONCAT_UDH_LEN + 2],
            &[0x1B, 0x65]
        );
        assert_eq!(join(&enc, 3), text);
        // 80 escaped chars are exactly 160 septets: still a single message.
        let text = "€".repeat(80);
        assert_eq!(encode_mt(&text, 0).unwrap().parts.len(), 1);
        assert_eq!(encode_mt(&format!("{text}a"), 0).unwrap().parts.len(), 2);
    }

    #[test]
    fn ucs2_70_is_single_71_is_two_parts() {
        let text = "ə".repeat(70);
        let enc = encode_mt(&text, 1).unwrap();
        assert_eq!(enc.data_coding, DCS_UCS2);
        assert_eq!(enc.parts.len(), 1);
        assert_eq!(enc.parts[0].len(), 140);

        let text = "ə".repeat(71);
        let enc = encode_mt(&text, 1).unwrap();
        assert!(enc.udh);
        assert_eq!(enc.parts.len(), 2);
        assert_eq!(enc.parts[0].len(), CONCAT_UDH_LEN + 134);
        assert_eq!(enc.parts[1].len(), CONCAT_UDH_LEN + 8);
        assert_eq!(join(&enc, 1), text);
    }

    #[test]
    fn ucs2_surrogate_pair_is_never_split() {
        let text = format!("{}😀{}", "ş".repeat(66), "ü".repeat(5));
        let enc = encode_mt(&text, 200).unwrap();
        assert_eq!(enc.parts.len(), 2);
        assert_eq!(enc.parts[0].len(), CONCAT_UDH_LEN + 66 * 2);
        assert_eq!(join(&enc, 200), text);
    }

    #[test]
    fn long_texts_get_consistent_totals() {
        let text = "İcazə verildi. ".repeat(40);
        let enc = encode_mt(&text, 42).unwrap();
        assert!(enc.parts.len() > 5);
        assert_eq!(join(&enc, 42), text);
        let too_long = "x".repeat(153 * 256);
        assert_eq!(
            encode_mt(&too_long, 0),
            Err(TextError::TooManyParts { parts: 256 })
        );
    }

    #[test]
    fn empty_text_is_one_empty_part() {
        let enc = encode_mt("", 0).unwrap();
        assert_eq!(enc.parts.len(), 1);
        assert!(enc.parts[0].is_empty());
    }

    #[test]
    fn udh_8_and_16_bit_references() {
        let sm = [0x05, 0x00, 0x03, 0xAB, 0x02, 0x01, b'h', b'i'];
        let udh = parse_udh(&sm).unwrap();
        assert_eq!(udh.concat, Concat::new(0xAB, 2, 1));
        assert_eq!(udh.user_data, b"hi");

        let sm = [0x06, 0x08, 0x04, 0x12, 0x34, 0x03, 0x03, 0x00, 0x41];
        let udh = parse_udh(&sm).unwrap();
        assert_eq!(udh.concat, Concat::new(0x1234, 3, 3));
        assert_eq!(udh.user_data, &[0x00, 0x41]);
    }

    #[test]
    fn udh_other_ies_skipped_and_bad_concat_ignored() {
        // Port addressing IE (0x05, 4 octets) then a concat IE with seq 0 (invalid).
        let sm = [
            0x0B, 0x05, 0x04, 0, 0, 0, 0, 0x00, 0x03, 0x01, 0x02, 0x00, b'x',
        ];
        let udh = parse_udh(&sm).unwrap();
        assert_eq!(udh.concat, None);
        assert_eq!(udh.user_data, b"x");
    }

    #[test]
    fn udh_truncated_is_an_error() {
        assert!(parse_udh(&[]).is_err());
        assert!(parse_udh(&[0x05, 0x00, 0x03]).is_err());
        assert!(parse_udh(&[0x02, 0x00, 0x03]).is_err());
    }

    proptest::proptest! {
        /// Any text encodes into parts within the SMS limits that decode back to it.
        #[test]
        fn any_text_segments_and_reassembles(text in "\\PC{0,400}", ref_num in 0u8..=255) {
            let enc = encode_mt(&text, ref_num).unwrap();
            for part in &enc.parts {
                proptest::prop_assert!(part.len() <= 140 + usize::from(enc.data_coding == DCS_DEFAULT) * 20);
            }
            proptest::prop_assert_eq!(enc.udh, enc.parts.len() > 1);
            proptest::prop_assert_eq!(join(&enc, ref_num), text);
        }

        /// The UCS-2 fast path writes exactly what the general per-character path writes.
        #[test]
        fn ucs2_fast_path_matches_the_general_one(text in "[ə😀İş]\\PC{0,300}", ref_num in 0u8..=255) {
            let units = text.chars().map(char::len_utf16).sum();
            let general = encode_parts(&text, ref_num, DCS_UCS2, units, UCS2_SINGLE, UCS2_PART);
            proptest::prop_assert_eq!(encode_ucs2(&text, ref_num), general);
        }

        /// GSM-only texts (with extension characters) stay GSM and never split an escape.
        #[test]
        fn gsm_texts_round_trip(text in "[a-zA-Z0-9 @£$_€\\[\\]{}^~|\\\\]{0,500}") {
            let enc = encode_mt(&text, 1).unwrap();
            proptest::prop_assert_eq!(enc.data_coding, DCS_DEFAULT);
            for part in &enc.parts {
                let data = if enc.udh { parse_udh(part).unwrap().user_data } else { &part[..] };
                let limit = if enc.udh { GSM_PART } else { GSM_SINGLE };
                proptest::prop_assert!(data.len() <= limit);
                proptest::prop_assert!(data.last() != Some(&ESC));
            }
            proptest::prop_assert_eq!(join(&enc, 1), text);
        }
    }
}
