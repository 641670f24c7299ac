//! The few SMPP PDUs a load generator needs, encoded and read by hand.
//!
//! Written from the SMPP 3.4 spec rather than with the gateway's codec for two reasons: a
//! load generator must cost less per message than the gateway it loads (these are a few
//! `put_slice` calls and a field walk, no allocation), and a client that shares no wire code
//! with the server checks the server's encoding instead of agreeing with its bugs. Status
//! names and UDH parsing do come from the gateway's public `smpp` helpers.

use bytes::{Buf, BufMut, BytesMut};

/// `bind_receiver`.
pub const BIND_RECEIVER: u32 = 0x0000_0001;
/// `bind_transmitter`.
pub const BIND_TRANSMITTER: u32 = 0x0000_0002;
/// `submit_sm`.
pub const SUBMIT_SM: u32 = 0x0000_0004;
/// `deliver_sm`.
pub const DELIVER_SM: u32 = 0x0000_0005;
/// `unbind`.
pub const UNBIND: u32 = 0x0000_0006;
/// `bind_transceiver`.
pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
/// `enquire_link`.
pub const ENQUIRE_LINK: u32 = 0x0000_0015;
/// The response bit; `generic_nack` is this alone.
pub const RESP: u32 = 0x8000_0000;
/// `generic_nack`.
pub const GENERIC_NACK: u32 = 0x8000_0000;

/// Header octets.
pub const HEADER: usize = 16;
/// The largest PDU we accept: a reply part is a few hundred octets.
pub const MAX_PDU: usize = 64 * 1024;
/// esm_class bit: `short_message` starts with a UDH.
pub const UDHI: u8 = 0x40;
/// TLV tag of `message_payload`.
const TLV_MESSAGE_PAYLOAD: u16 = 0x0424;
/// TLV tags of the `sar_` concatenation fields.
const TLV_SAR_REF: u16 = 0x020C;
const TLV_SAR_TOTAL: u16 = 0x020E;
const TLV_SAR_SEQ: u16 = 0x020F;

/// A PDU header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Total octets.
    pub length: u32,
    /// command_id.
    pub command_id: u32,
    /// command_status.
    pub status: u32,
    /// sequence_number.
    pub sequence: u32,
}

/// Why the byte stream can no longer be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// A command_length outside 16..=64 KiB: nothing after it can be trusted.
    BadLength(u32),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::BadLength(n) => write!(f, "command_length {n} is out of bounds"),
        }
    }
}

impl std::error::Error for WireError {}

/// Takes the next complete PDU off `buf`: its header and body. `Ok(None)` means more octets
/// are needed.
pub fn next_pdu(buf: &mut BytesMut) -> Result<Option<(Header, BytesMut)>, WireError> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let length = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if (length as usize) < HEADER || length as usize > MAX_PDU {
        return Err(WireError::BadLength(length));
    }
    if buf.len() < length as usize {
        return Ok(None);
    }
    let mut pdu = buf.split_to(length as usize);
    let header = Header {
        length,
        command_id: pdu.get_u32_at(4),
        status: pdu.get_u32_at(8),
        sequence: pdu.get_u32_at(12),
    };
    pdu.advance(HEADER);
    Ok(Some((header, pdu)))
}

trait GetAt {
    fn get_u32_at(&self, at: usize) -> u32;
}

impl GetAt for BytesMut {
    fn get_u32_at(&self, at: usize) -> u32 {
        u32::from_be_bytes([self[at], self[at + 1], self[at + 2], self[at + 3]])
    }
}

/// Starts a PDU: reserves the length, returns where it starts for [`finish`].
fn begin(out: &mut BytesMut, command_id: u32, status: u32, sequence: u32) -> usize {
    let at = out.len();
    out.put_u32(0);
    out.put_u32(command_id);
    out.put_u32(status);
    out.put_u32(sequence);
    at
}

/// Writes the command_length of the PDU begun at `at`.
fn finish(out: &mut BytesMut, at: usize) {
    let len = (out.len() - at) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn cstr(out: &mut BytesMut, s: &[u8]) {
    out.put_slice(s);
    out.put_u8(0);
}

/// A bind of kind `command_id` (interface version 3.4).
pub fn put_bind(
    out: &mut BytesMut,
    command_id: u32,
    sequence: u32,
    system_id: &str,
    password: &str,
) {
    let at = begin(out, command_id, 0, sequence);
    cstr(out, system_id.as_bytes());
    cstr(out, password.as_bytes());
    cstr(out, b"");
    out.put_slice(&[0x34, 0, 0]);
    cstr(out, b"");
    finish(out, at);
}

/// A citizen's MO: from `msisdn` (international, ISDN) to the short number.
pub fn put_submit_sm(
    out: &mut BytesMut,
    sequence: u32,
    msisdn: &str,
    short_number: &str,
    data_coding: u8,
    short_message: &[u8],
) {
    let at = begin(out, SUBMIT_SM, 0, sequence);
    cstr(out, b"");
    out.put_slice(&[1, 1]);
    cstr(out, msisdn.as_bytes());
    out.put_slice(&[0, 0]);
    cstr(out, short_number.as_bytes());
    // esm_class, protocol_id, priority_flag
    out.put_slice(&[0, 0, 0]);
    cstr(out, b"");
    cstr(out, b"");
    // registered_delivery, replace_if_present, data_coding, sm_default_msg_id
    out.put_slice(&[0, 0, data_coding, 0]);
    let n = short_message.len().min(254);
    out.put_u8(n as u8);
    out.put_slice(&short_message[..n]);
    finish(out, at);
}

/// A response with an empty message_id (deliver_sm_resp) or no body at all
/// (enquire_link_resp, unbind_resp): `with_message_id` says which.
pub fn put_resp(out: &mut BytesMut, command_id: u32, sequence: u32, with_message_id: bool) {
    let at = begin(out, command_id | RESP, 0, sequence);
    if with_message_id {
        out.put_u8(0);
    }
    finish(out, at);
}

/// A request without a body (enquire_link, unbind).
pub fn put_plain(out: &mut BytesMut, command_id: u32, sequence: u32) {
    let at = begin(out, command_id, 0, sequence);
    finish(out, at);
}

/// The text as the MO carries it: the octets and their data_coding (0 for ASCII, 8 UCS-2).
pub fn encode_text(text: &str, out: &mut Vec<u8>) -> u8 {
    out.clear();
    if text.is_ascii() {
        out.extend_from_slice(text.as_bytes());
        0
    } else {
        for unit in text.encode_utf16() {
            out.extend_from_slice(&unit.to_be_bytes());
        }
        8
    }
}

/// The fields of a deliver_sm a load generator reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverSm<'a> {
    /// The citizen's number.
    pub destination: &'a [u8],
    /// esm_class.
    pub esm_class: u8,
    /// data_coding.
    pub data_coding: u8,
    /// The message octets: message_payload if present, else short_message.
    pub message: &'a [u8],
    /// `sar_` concatenation (reference, total, seq), if the TLVs are there.
    pub sar: Option<(u16, u8, u8)>,
}

/// Reads a deliver_sm body; `None` if it is malformed.
pub fn read_deliver_sm(body: &[u8]) -> Option<DeliverSm<'_>> {
    let mut at = 0usize;
    let cstring = |at: &mut usize| -> Option<&[u8]> {
        let rest = body.get(*at..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        *at += end + 1;
        Some(&rest[..end])
    };
    let byte = |at: &mut usize| -> Option<u8> {
        let b = *body.get(*at)?;
        *at += 1;
        Some(b)
    };
    cstring(&mut at)?; // service_type
    byte(&mut at)?;
    byte(&mut at)?;
    cstring(&mut at)?; // source_addr
    byte(&mut at)?;
    byte(&mut at)?;
    let destination = cstring(&mut at)?;
    let esm_class = byte(&mut at)?;
    byte(&mut at)?; // protocol_id
    byte(&mut at)?; // priority_flag
    cstring(&mut at)?; // schedule_delivery_time
    cstring(&mut at)?; // validity_period
    byte(&mut at)?; // registered_delivery
    byte(&mut at)?; // replace_if_present_flag
    let data_coding = byte(&mut at)?;
    byte(&mut at)?; // sm_default_msg_id
    let sm_length = usize::from(byte(&mut at)?);
    let mut message = body.get(at..at + sm_length)?;
    at += sm_length;
    let (mut sar_ref, mut sar_total, mut sar_seq) = (None, None, None);
    while at + 4 <= body.len() {
        let tag = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + len)?;
        at += 4 + len;
        match (tag, value) {
            (TLV_MESSAGE_PAYLOAD, v) => message = v,
            (TLV_SAR_REF, [a, b]) => sar_ref = Some(u16::from_be_bytes([*a, *b])),
            (TLV_SAR_TOTAL, [n]) => sar_total = Some(*n),
            (TLV_SAR_SEQ, [n]) => sar_seq = Some(*n),
            _ => {}
        }
    }
    let sar = match (sar_ref, sar_total, sar_seq) {
        (Some(r), Some(t), Some(s)) => Some((r, t, s)),
        _ => None,
    };
    Some(DeliverSm {
        destination,
        esm_class,
        data_coding,
        message,
        sar,
    })
}

/// The message_id of a submit_sm_resp body (empty if absent).
pub fn read_message_id(body: &[u8]) -> &[u8] {
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    &body[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_sm_is_framed_and_reads_back_through_the_gateway_codec() {
        let mut out = BytesMut::new();
        let mut text = Vec::new();
        let dc = encode_text("2 MYİ 1234567", &mut text);
        assert_eq!(dc, 8);
        put_submit_sm(&mut out, 7, "994501234567", "8103", dc, &text);
        let frame = icaze::smpp::codec::decode(&mut out, MAX_PDU)
            .unwrap()
            .unwrap();
        assert_eq!(frame.sequence_number, 7);
        let sm = icaze::smpp::codec::IncomingSm::from_pdu(frame.pdu).unwrap();
        assert_eq!(sm.source.as_str(), "994501234567");
        assert_eq!(sm.destination.as_str(), "8103");
        assert_eq!(sm.text().unwrap(), "2 MYİ 1234567");
    }

    #[test]
    fn deliver_sm_from_the_gateway_codec_is_read() {
        use icaze::smpp::codec::{Address, mt_parts};
        let encoded = icaze::smpp::text::encode_mt(&"İCAZƏ VERİLDİ ".repeat(8), 5).unwrap();
        let parts: Vec<_> = mt_parts(
            &Address::new(0, 0, "8103").unwrap(),
            &Address::new(1, 1, "994501234567").unwrap(),
            encoded,
        )
        .collect();
        assert!(parts.len() > 1);
        let mut buf = BytesMut::new();
        icaze::smpp::codec::encode(
            &mut buf,
            9,
            icaze::smpp::Status::ESME_ROK,
            &parts[0].deliver_sm(),
        );
        let (h, body) = next_pdu(&mut buf).unwrap().unwrap();
        assert_eq!((h.command_id, h.sequence), (DELIVER_SM, 9));
        let d = read_deliver_sm(&body).unwrap();
        assert_eq!(d.destination, b"994501234567");
        assert_eq!(d.data_coding, 8);
        assert_ne!(d.esm_class & UDHI, 0);
        let udh = icaze::smpp::text::parse_udh(d.message).unwrap();
        assert_eq!(
            udh.concat.map(|c| (c.seq, c.total as usize)),
            Some((1, parts.len()))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn framing_waits_for_whole_pdus_and_refuses_bad_lengths() {
        let mut out = BytesMut::new();
        put_plain(&mut out, ENQUIRE_LINK, 3);
        put_resp(&mut out, DELIVER_SM, 4, true);
        let mut partial = BytesMut::from(&out[..20]);
        assert!(next_pdu(&mut partial).unwrap().is_some());
        assert!(next_pdu(&mut partial).unwrap().is_none());
        let (h, _) = next_pdu(&mut out).unwrap().unwrap();
        assert_eq!((h.command_id, h.length), (ENQUIRE_LINK, 16));
        let (h, body) = next_pdu(&mut out).unwrap().unwrap();
        assert_eq!((h.command_id, &body[..]), (DELIVER_SM | RESP, &[0u8][..]));
        let mut bad = BytesMut::from(&[0u8, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]);
        assert_eq!(next_pdu(&mut bad), Err(WireError::BadLength(3)));
    }
}
