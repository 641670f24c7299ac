//! Helpers shared by the fuzz targets: SMPP PDUs written octet by octet (so the targets do
//! not depend on how rusmpp builds its values), and the few checks more than one target
//! makes.
#![forbid(unsafe_code)]

/// Octets in an SMPP header.
pub const HEADER_LEN: usize = 16;

/// A whole PDU: header with the right command_length, then `body`.
pub fn pdu(command_id: u32, status: u32, sequence_number: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + body.len());
    let len = u32::try_from(HEADER_LEN + body.len()).unwrap_or(u32::MAX);
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&command_id.to_be_bytes());
    v.extend_from_slice(&status.to_be_bytes());
    v.extend_from_slice(&sequence_number.to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Appends `s` as a C-Octet String: at most `max - 1` octets of it, no NUL inside, then NUL.
pub fn cstr(out: &mut Vec<u8>, s: &[u8], max: usize) {
    out.extend(
        s.iter()
            .copied()
            .filter(|&b| b != 0)
            .take(max.saturating_sub(1)),
    );
    out.push(0);
}

/// The body of a bind_transmitter / bind_receiver / bind_transceiver.
pub fn bind_body(system_id: &[u8], password: &[u8], interface_version: u8) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, system_id, 16);
    cstr(&mut b, password, 9);
    cstr(&mut b, b"", 13); // system_type
    b.push(interface_version);
    b.push(0); // addr_ton
    b.push(0); // addr_npi
    cstr(&mut b, b"", 41); // address_range
    b
}

/// The fields of a submit_sm / deliver_sm body that matter to an MO.
#[derive(Debug, Clone, Default)]
pub struct Sm<'a> {
    /// Source address (the citizen).
    pub source: &'a [u8],
    /// Destination address (the short number).
    pub destination: &'a [u8],
    /// esm_class (0x40: UDHI).
    pub esm_class: u8,
    /// data_coding.
    pub data_coding: u8,
    /// short_message (at most 254 octets are written; the rest is cut).
    pub short_message: &'a [u8],
    /// Optional TLVs, written as they are after the mandatory fields.
    pub tlvs: &'a [u8],
}

/// The body of a submit_sm or deliver_sm (same layout).
pub fn sm_body(sm: &Sm<'_>) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, b"", 6); // service_type
    b.extend_from_slice(&[1, 1]);
    cstr(&mut b, sm.source, 21);
    b.extend_from_slice(&[0, 0]);
    cstr(&mut b, sm.destination, 21);
    b.push(sm.esm_class);
    b.push(0); // protocol_id
    b.push(0); // priority_flag
    cstr(&mut b, b"", 17); // schedule_delivery_time
    cstr(&mut b, b"", 17); // validity_period
    b.push(0); // registered_delivery
    b.push(0); // replace_if_present_flag
    b.push(sm.data_coding);
    b.push(0); // sm_default_msg_id
    let short = &sm.short_message[..sm.short_message.len().min(254)];
    b.push(u8::try_from(short.len()).unwrap_or(254));
    b.extend_from_slice(short);
    b.extend_from_slice(sm.tlvs);
    b
}

/// A TLV: tag, length, value.
pub fn tlv(out: &mut Vec<u8>, tag: u16, value: &[u8]) {
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(value);
}

/// A concatenation UDH (IEI 0x00, 8-bit reference) in front of `user_data`.
pub fn udh8(reference: u8, total: u8, seq: u8, user_data: &[u8]) -> Vec<u8> {
    let mut v = vec![0x05, 0x00, 0x03, reference, total, seq];
    v.extend_from_slice(user_data);
    v
}
