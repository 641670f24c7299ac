//! MT encoding: a reply as GSM 7-bit or UCS-2 `short_message` parts, segmented behind a
//! concatenation UDH when it does not fit one message.

use bytes::Bytes;

use super::gsm::{ASCII_TO_GSM, ESC, gsm_septet, gsm_septets};
use super::{
    CONCAT_UDH_LEN, DCS_DEFAULT, DCS_UCS2, GSM_PART, GSM_SINGLE, TextError, UCS2_PART, UCS2_SINGLE,
};

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
pub(super) fn encode_ucs2(text: &str, ref_num: u8) -> Result<Encoded, TextError> {
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

pub(super) fn encode_parts(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smpp::text::{Concat, DefaultAlphabet, decode_into, parse_udh};

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
