//! The few SMPP PDUs the simulator needs, encoded and read by hand: both the ESME side
//! (loadgen binds, sends submit_sm, answers deliver_sm) and the SMSC side (smsc answers binds,
//! sends deliver_sm, answers submit_sm). icaze's integration tests (`tests/support/smpp.rs`)
//! drive the gateway through this same wire, with [`put_pdu`], [`put_sm`] and [`put_data_sm`]
//! for the odd PDUs a test sends on purpose.
//!
//! Written from the SMPP 3.4 spec rather than with the gateway's codec for two reasons: a
//! load generator must cost less per message than the gateway it loads (these are a few
//! `put_slice` calls and a field walk, no allocation), and a client that shares no wire code
//! with the server checks the server's encoding instead of agreeing with its bugs. Status
//! codes and names (`icaze::smpp::Status`) come from the gateway's public `smpp` helpers;
//! concatenation headers and texts are read by [`crate::text`].

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
/// `data_sm`: an MO some SMSCs send instead of deliver_sm, its text in `message_payload`.
pub const DATA_SM: u32 = 0x0000_0103;
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
/// TLV tag of `sc_interface_version` in a bind response.
const TLV_SC_INTERFACE_VERSION: u16 = 0x0210;
/// TLV tag of `message_payload`.
pub const TLV_MESSAGE_PAYLOAD: u16 = 0x0424;
/// TLV tags of the `sar_` concatenation fields.
/// esm_class of an SMSC delivery receipt.
pub const ESM_CLASS_RECEIPT: u8 = 0x04;
/// receipted_message_id TLV tag.
const TLV_RECEIPTED_MESSAGE_ID: u16 = 0x001E;
/// message_state TLV tag.
const TLV_MESSAGE_STATE: u16 = 0x0427;
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

/// Reads the C-Octet String at `*at` in `body` (without its NUL) and moves `at` past it;
/// `None` if no NUL ends it.
fn cstring<'a>(body: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let rest = body.get(*at..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    *at += end + 1;
    Some(&rest[..end])
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

/// Any PDU, its body given whole: for what the typed builders do not make, such as the
/// malformed or unknown PDUs a test sends to see how the gateway refuses them.
pub fn put_pdu(out: &mut BytesMut, command_id: u32, status: u32, sequence: u32, body: &[u8]) {
    let at = begin(out, command_id, status, sequence);
    out.put_slice(body);
    finish(out, at);
}

/// A citizen's MO from `msisdn` (international, ISDN) to the short number, as
/// `command_id`: `submit_sm` when an ESME sends it (loadgen), `deliver_sm` when an SMSC does
/// (smsc). Both have the same body; esm_class 0 (a plain message), no receipt asked.
pub fn put_mo(
    out: &mut BytesMut,
    command_id: u32,
    sequence: u32,
    msisdn: &str,
    short_number: &str,
    data_coding: u8,
    short_message: &[u8],
) {
    put_sm(
        out,
        command_id,
        sequence,
        &OutgoingSm {
            source: msisdn,
            destination: short_number,
            esm_class: 0,
            data_coding,
            short_message,
            tlvs: &[],
        },
    );
}

/// A short message to send with [`put_sm`]: more than an MO carries, for tests that send
/// concatenated parts (UDHI in `esm_class`, or `sar_` TLVs) or the text in
/// `message_payload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingSm<'a> {
    /// The sender (international, ISDN).
    pub source: &'a str,
    /// The recipient (unknown type and plan, as a short number is sent).
    pub destination: &'a str,
    /// esm_class: [`UDHI`] when `short_message` starts with a UDH.
    pub esm_class: u8,
    /// data_coding.
    pub data_coding: u8,
    /// short_message, at most 254 octets (longer is cut).
    pub short_message: &'a [u8],
    /// Optional parameters after the mandatory fields, (tag, value), in this order.
    pub tlvs: &'a [(u16, &'a [u8])],
}

/// A submit_sm or deliver_sm (`command_id`) carrying `sm`; no receipt asked.
pub fn put_sm(out: &mut BytesMut, command_id: u32, sequence: u32, sm: &OutgoingSm<'_>) {
    let at = begin(out, command_id, 0, sequence);
    cstr(out, b"");
    out.put_slice(&[1, 1]);
    cstr(out, sm.source.as_bytes());
    out.put_slice(&[0, 0]);
    cstr(out, sm.destination.as_bytes());
    // esm_class, protocol_id, priority_flag
    out.put_slice(&[sm.esm_class, 0, 0]);
    cstr(out, b"");
    cstr(out, b"");
    // registered_delivery, replace_if_present, data_coding, sm_default_msg_id
    out.put_slice(&[0, 0, sm.data_coding, 0]);
    let n = sm.short_message.len().min(254);
    out.put_u8(n as u8);
    out.put_slice(&sm.short_message[..n]);
    for (tag, value) in sm.tlvs {
        put_tlv(out, *tag, value);
    }
    finish(out, at);
}

/// How an SMSC writes the message_id in its receipts (SMSCs and the gateways between them
/// re-render ids, and the gateway must match them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptIds {
    /// As the submit_sm_resp gave it: lower-case hex.
    Hex,
    /// The same number in decimal (what Kannel prints for a hex id).
    Decimal,
    /// Upper-case hex padded with leading zeros to 16 digits.
    Padded,
}

impl ReceiptIds {
    /// `message_id` (the number [`put_resp_with_id`] wrote) as this format writes it.
    pub fn render(self, message_id: u64) -> String {
        match self {
            ReceiptIds::Hex => format!("{message_id:x}"),
            ReceiptIds::Decimal => message_id.to_string(),
            ReceiptIds::Padded => format!("{message_id:016X}"),
        }
    }
}

/// A delivery receipt as an SMSC sends it: a deliver_sm from the citizen (`msisdn`) to the
/// short number with esm_class 0x04, SMPP 3.4 Appendix B's text
/// (`id:… sub:001 dlvrd:… stat:… err:… text:`) and, with `tlvs`, the receipted_message_id
/// and message_state TLVs too. `stat` is the 7-letter state (DELIVRD, UNDELIV, …).
pub fn put_receipt(
    out: &mut BytesMut,
    sequence: u32,
    msisdn: &str,
    short_number: &str,
    id: &str,
    stat: &str,
    tlvs: bool,
) {
    let delivered = u8::from(stat == "DELIVRD");
    let text = format!(
        "id:{id} sub:001 dlvrd:00{delivered} submit date:2004061000 done date:2004061001 stat:{stat} err:000 text:"
    );
    let mut receipted = id.as_bytes().to_vec();
    receipted.push(0);
    let state = [message_state(stat)];
    let with: [(u16, &[u8]); 2] = [
        (TLV_RECEIPTED_MESSAGE_ID, &receipted),
        (TLV_MESSAGE_STATE, &state),
    ];
    put_sm(
        out,
        DELIVER_SM,
        sequence,
        &OutgoingSm {
            source: msisdn,
            destination: short_number,
            esm_class: ESM_CLASS_RECEIPT,
            data_coding: 0,
            short_message: text.as_bytes(),
            tlvs: if tlvs { &with } else { &[] },
        },
    );
}

/// The message_state TLV value of a 7-letter receipt state (SMPP 5.0 §4.8.4.37).
fn message_state(stat: &str) -> u8 {
    match stat {
        "ENROUTE" => 1,
        "DELIVRD" => 2,
        "EXPIRED" => 3,
        "DELETED" => 4,
        "UNDELIV" => 5,
        "ACCEPTD" => 6,
        "REJECTD" => 8,
        _ => 7,
    }
}

/// A data_sm from `source` to `destination`: the submit_sm fields up to data_coding, then
/// the text in `message_payload` (at most 65,535 octets; longer is cut).
pub fn put_data_sm(
    out: &mut BytesMut,
    sequence: u32,
    source: &str,
    destination: &str,
    data_coding: u8,
    payload: &[u8],
) {
    let at = begin(out, DATA_SM, 0, sequence);
    cstr(out, b"");
    out.put_slice(&[1, 1]);
    cstr(out, source.as_bytes());
    out.put_slice(&[0, 0]);
    cstr(out, destination.as_bytes());
    // esm_class, registered_delivery, data_coding
    out.put_slice(&[0, 0, data_coding]);
    put_tlv(out, TLV_MESSAGE_PAYLOAD, payload);
    finish(out, at);
}

/// One TLV; a value longer than a u16 length can say is cut to 65,535 octets.
fn put_tlv(out: &mut BytesMut, tag: u16, value: &[u8]) {
    let n = value.len().min(usize::from(u16::MAX));
    out.put_u16(tag);
    out.put_u16(n as u16);
    out.put_slice(&value[..n]);
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

/// A submit_sm_resp (or any response whose body is a message_id) carrying `message_id`
/// as hexadecimal digits: what an SMSC answers an accepted message with.
pub fn put_resp_with_id(out: &mut BytesMut, command_id: u32, sequence: u32, message_id: u64) {
    let at = begin(out, command_id | RESP, 0, sequence);
    let mut digits = [0u8; 16];
    let mut n = message_id;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 0xF) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    cstr(out, &digits[i..]);
    finish(out, at);
}

/// A generic_nack with `status` for the request `sequence`.
pub fn put_nack(out: &mut BytesMut, sequence: u32, status: u32) {
    let at = begin(out, GENERIC_NACK, status, sequence);
    finish(out, at);
}

/// The response to a bind of kind `command_id`. Accepted: the SMSC's `system_id`, and
/// `sc_interface_version` 3.4 when the ESME said it speaks 3.4 or later (an SMPP 3.3 peer
/// would not understand the TLV). Refused: the status and no body, as SMPP 3.4 says.
pub fn put_bind_resp(
    out: &mut BytesMut,
    command_id: u32,
    sequence: u32,
    status: u32,
    system_id: &str,
    interface_version: u8,
) {
    let at = begin(out, command_id | RESP, status, sequence);
    if status == 0 {
        cstr(out, system_id.as_bytes());
        if interface_version >= 0x34 {
            out.put_u16(TLV_SC_INTERFACE_VERSION);
            out.put_u16(1);
            out.put_u8(0x34);
        }
    }
    finish(out, at);
}

/// The fields of a bind an SMSC checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindRequest<'a> {
    /// Who binds.
    pub system_id: &'a [u8],
    /// Its password.
    pub password: &'a [u8],
    /// interface_version (0x34 for SMPP 3.4, 0x50 for 5.0).
    pub interface_version: u8,
}

/// Reads a bind_transmitter / bind_receiver / bind_transceiver body; `None` if it is
/// malformed.
pub fn read_bind(body: &[u8]) -> Option<BindRequest<'_>> {
    let mut at = 0usize;
    let system_id = cstring(body, &mut at)?;
    let password = cstring(body, &mut at)?;
    cstring(body, &mut at)?; // system_type
    let interface_version = *body.get(at)?;
    Some(BindRequest {
        system_id,
        password,
        interface_version,
    })
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

/// The fields of a short message the simulator reads: a deliver_sm from the gateway
/// (loadgen) or a submit_sm from it (smsc), whose bodies have the same layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverSm<'a> {
    /// source_addr_ton.
    pub source_ton: u8,
    /// source_addr_npi.
    pub source_npi: u8,
    /// The sender: the short number on a reply.
    pub source: &'a [u8],
    /// The citizen's number.
    pub destination: &'a [u8],
    /// esm_class.
    pub esm_class: u8,
    /// registered_delivery: whether (and when) the sender wants a receipt.
    pub registered_delivery: u8,
    /// data_coding.
    pub data_coding: u8,
    /// The message octets: message_payload if present, else short_message.
    pub message: &'a [u8],
    /// `sar_` concatenation (reference, total, seq), if the TLVs are there.
    pub sar: Option<(u16, u8, u8)>,
}

/// Reads a deliver_sm or submit_sm body; `None` if it is malformed.
pub fn read_deliver_sm(body: &[u8]) -> Option<DeliverSm<'_>> {
    let mut at = 0usize;
    let byte = |at: &mut usize| -> Option<u8> {
        let b = *body.get(*at)?;
        *at += 1;
        Some(b)
    };
    cstring(body, &mut at)?; // service_type
    let source_ton = byte(&mut at)?;
    let source_npi = byte(&mut at)?;
    let source = cstring(body, &mut at)?;
    byte(&mut at)?;
    byte(&mut at)?;
    let destination = cstring(body, &mut at)?;
    let esm_class = byte(&mut at)?;
    byte(&mut at)?; // protocol_id
    byte(&mut at)?; // priority_flag
    cstring(body, &mut at)?; // schedule_delivery_time
    cstring(body, &mut at)?; // validity_period
    let registered_delivery = byte(&mut at)?;
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
        source_ton,
        source_npi,
        source,
        destination,
        esm_class,
        registered_delivery,
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
    use icaze::smpp::Status;

    #[test]
    fn mo_is_framed_and_reads_back_through_the_gateway_codec_as_either_command() {
        let mut text = Vec::new();
        let dc = encode_text("2 MYİ 1234567", &mut text);
        assert_eq!(dc, 8);
        for (command, name) in [(SUBMIT_SM, "SubmitSm"), (DELIVER_SM, "DeliverSm")] {
            let mut out = BytesMut::new();
            put_mo(&mut out, command, 7, "994501234567", "8103", dc, &text);
            let frame = icaze::smpp::codec::decode(&mut out, MAX_PDU)
                .unwrap()
                .unwrap();
            assert_eq!(format!("{:?}", frame.command_id), name);
            assert_eq!(frame.sequence_number, 7);
            let sm = icaze::smpp::codec::IncomingSm::from_pdu(frame.pdu).unwrap();
            assert_eq!(sm.source.as_str(), "994501234567");
            assert_eq!(sm.destination.as_str(), "8103");
            assert!(!sm.has_udhi() && !sm.is_receipt());
            assert_eq!(sm.text().unwrap(), "2 MYİ 1234567");
        }
    }

    #[test]
    fn parts_payloads_and_data_sm_read_back_through_the_gateway_codec() {
        let udh_part = [0x05, 0x00, 0x03, 0x2A, 0x02, 0x01, b'2', b' ', b'A'];
        let sar: [(u16, &[u8]); 3] = [(0x020C, &[0, 7]), (0x020E, &[2]), (0x020F, &[1])];
        let payload: [(u16, &[u8]); 1] = [(TLV_MESSAGE_PAYLOAD, b"2 AA7654321")];
        let mut out = BytesMut::new();
        for (seq, esm_class, short_message, tlvs) in [
            (1, UDHI, &udh_part[..], &[][..]),
            (2, 0, &b"1 AA 12"[..], &sar[..]),
            (3, 0, &[][..], &payload[..]),
        ] {
            let sm = OutgoingSm {
                source: "994509998877",
                destination: "8103",
                esm_class,
                data_coding: 0,
                short_message,
                tlvs,
            };
            put_sm(&mut out, SUBMIT_SM, seq, &sm);
        }
        put_data_sm(&mut out, 4, "994551112244", "8103", 8, &[0x01, 0x30]);
        put_pdu(&mut out, 0x0777, 0, 5, &[1, 2, 3]);
        let mut read = |seq: u32| {
            let frame = icaze::smpp::codec::decode(&mut out, MAX_PDU)
                .unwrap()
                .unwrap();
            assert_eq!(frame.sequence_number, seq);
            icaze::smpp::codec::IncomingSm::from_pdu(frame.pdu).unwrap()
        };
        let first = read(1);
        assert!(first.has_udhi());
        assert_eq!(first.source.as_str(), "994509998877");
        let second = read(2);
        assert!(!second.has_udhi());
        assert_eq!(second.text().unwrap(), "1 AA 12");
        assert_eq!(read(3).text().unwrap(), "2 AA7654321");
        assert_eq!(read(4).text().unwrap(), "İ");
        let (h, body) = next_pdu(&mut out).unwrap().unwrap();
        assert_eq!(
            (h.command_id, h.length, &body[..]),
            (0x0777, 19, &[1u8, 2, 3][..])
        );
        assert!(out.is_empty());

        let mut again = BytesMut::new();
        put_sm(
            &mut again,
            DELIVER_SM,
            6,
            &OutgoingSm {
                source: "8103",
                destination: "994509998877",
                esm_class: 0,
                data_coding: 0,
                short_message: b"x",
                tlvs: &sar,
            },
        );
        let (_, body) = next_pdu(&mut again).unwrap().unwrap();
        let d = read_deliver_sm(&body).unwrap();
        assert_eq!((d.source_ton, d.source_npi, d.sar), (1, 1, Some((7, 2, 1))));
    }

    #[test]
    fn a_reply_as_submit_sm_from_the_gateway_codec_is_read_like_a_deliver_sm() {
        use icaze::smpp::codec::{Address, mt_parts};
        let encoded = icaze::smpp::text::encode_mt("İCAZƏ VERİLDİ", 5).unwrap();
        let parts: Vec<_> = mt_parts(
            &Address::new(0, 0, "8103").unwrap(),
            &Address::new(1, 1, "994501234567").unwrap(),
            encoded,
        )
        .collect();
        let mut buf = BytesMut::new();
        icaze::smpp::codec::encode(&mut buf, 11, Status::ESME_ROK, &parts[0].submit_sm());
        let (h, body) = next_pdu(&mut buf).unwrap().unwrap();
        assert_eq!((h.command_id, h.sequence), (SUBMIT_SM, 11));
        let d = read_deliver_sm(&body).unwrap();
        assert_eq!(
            (d.source, d.destination),
            (&b"8103"[..], &b"994501234567"[..])
        );
        assert_eq!((d.data_coding, d.esm_class), (8, 0));
        assert_eq!(
            icaze::smpp::text::decode(d.data_coding, d.message).unwrap(),
            "İCAZƏ VERİLDİ"
        );
    }

    #[test]
    fn binds_are_read_and_answered_as_the_gateway_codec_expects() {
        let mut out = BytesMut::new();
        put_bind(&mut out, BIND_RECEIVER, 5, "icaze", "secret");
        let (h, body) = next_pdu(&mut out).unwrap().unwrap();
        assert_eq!((h.command_id, h.sequence), (BIND_RECEIVER, 5));
        let bind = read_bind(&body).unwrap();
        assert_eq!(
            (bind.system_id, bind.password, bind.interface_version),
            (&b"icaze"[..], &b"secret"[..], 0x34)
        );
        assert_eq!(read_bind(b"icaze\0secret"), None);

        put_bind_resp(&mut out, BIND_RECEIVER, 5, 0, "icaze-sim", 0x34);
        put_bind_resp(
            &mut out,
            BIND_TRANSCEIVER,
            6,
            Status::ESME_RINVPASWD.code(),
            "icaze-sim",
            0x34,
        );
        let ok = icaze::smpp::codec::decode(&mut out, MAX_PDU)
            .unwrap()
            .unwrap();
        assert_eq!(format!("{:?}", ok.command_id), "BindReceiverResp");
        assert_eq!((ok.status.0, ok.sequence_number), (0, 5));
        let refused = icaze::smpp::codec::decode(&mut out, MAX_PDU)
            .unwrap()
            .unwrap();
        assert_eq!(format!("{:?}", refused.command_id), "BindTransceiverResp");
        assert_eq!(refused.status.name(), Some("ESME_RINVPASWD"));
        assert!(out.is_empty());
    }

    #[test]
    fn receipts_read_as_icaze_reads_them() {
        use icaze::smpp::IncomingSm;
        use icaze::smpp::codec::decode;
        use icaze::smpp::receipt::{Receipt, Stat};
        assert_eq!(ReceiptIds::Hex.render(0xab12f0), "ab12f0");
        assert_eq!(ReceiptIds::Decimal.render(0xab12f0), "11211504");
        assert_eq!(ReceiptIds::Padded.render(0xab12f0), "0000000000AB12F0");
        for tlvs in [false, true] {
            let mut out = BytesMut::new();
            put_receipt(
                &mut out,
                5,
                "994501234567",
                "8103",
                "11211504",
                "UNDELIV",
                tlvs,
            );
            let frame = decode(&mut out, 64 * 1024).unwrap().unwrap();
            let sm = IncomingSm::from_pdu(frame.pdu).unwrap();
            assert!(sm.is_receipt());
            assert_eq!(sm.receipted_message_id.is_some(), tlvs);
            assert_eq!(
                Receipt::of(&sm),
                Receipt {
                    id: Some("11211504".into()),
                    stat: Some(Stat::Undeliverable)
                }
            );
        }
    }

    #[test]
    fn submit_sm_resp_carries_a_hex_message_id_and_nacks_their_status() {
        let mut out = BytesMut::new();
        put_resp_with_id(&mut out, SUBMIT_SM, 9, 0);
        put_resp_with_id(&mut out, SUBMIT_SM, 10, 0xDEAD_BEEF);
        put_resp_with_id(&mut out, SUBMIT_SM, 11, u64::MAX);
        put_nack(&mut out, 12, Status::ESME_RINVCMDID.code());
        for (seq, id) in [(9, &b"0"[..]), (10, b"deadbeef"), (11, b"ffffffffffffffff")] {
            let (h, body) = next_pdu(&mut out).unwrap().unwrap();
            assert_eq!(
                (h.command_id, h.status, h.sequence),
                (SUBMIT_SM | RESP, 0, seq)
            );
            assert_eq!(read_message_id(&body), id);
            assert_eq!(body.last(), Some(&0));
        }
        let (h, body) = next_pdu(&mut out).unwrap().unwrap();
        assert_eq!((h.command_id, h.status, h.sequence), (GENERIC_NACK, 3, 12));
        assert!(body.is_empty());
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
        icaze::smpp::codec::encode(&mut buf, 9, Status::ESME_ROK, &parts[0].deliver_sm());
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
