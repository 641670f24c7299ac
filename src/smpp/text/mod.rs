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

use super::status::Status;

mod gsm;
mod segment;

use gsm::decode_gsm_unpacked;
pub use gsm::gsm_septets;
pub use segment::{Encoded, encode_mt};

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
}
