//! What we send: the parts of a reply as [`MtPart`]s (deliver_sm as listener, submit_sm as
//! connector) or, on the hot path, as borrowed [`ReplyPart`]s written straight to the wire.

use bytes::{BufMut, Bytes, BytesMut};
use rusmpp::{
    CommandId, Pdu,
    pdus::{
        DeliverSm, SubmitSm,
        parts::{DeliverSmParts, SubmitSmParts},
    },
    tlvs::{Tlv, TlvValue},
    types::{AnyOctetString, EmptyOrFullCOctetString, OctetString},
    values::{
        DataCoding, EsmClass, MessagePayload, Npi, PriorityFlag, RegisteredDelivery,
        ReplaceIfPresentFlag, ServiceType, Ton,
    },
};

use super::codec::HEADER_LEN;
use super::message::{Address, ESM_CLASS_UDHI};
use super::text;

/// One MT part to send: addresses, coding and the `short_message` octets (with UDH if `udh`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtPart {
    /// Sender shown to the citizen (our short number).
    pub source: Address,
    /// The citizen's MSISDN.
    pub destination: Address,
    /// data_coding of `short_message` (0 or 8 from [`text::encode_mt`]).
    pub data_coding: u8,
    /// Whether `short_message` begins with a UDH; sets esm_class 0x40.
    pub udh: bool,
    /// The octets; more than 255 go into message_payload instead.
    pub short_message: Bytes,
}

impl MtPart {
    /// esm_class for this part, always explicit: rusmpp's `EsmClass::default()` encodes 0x08
    /// ("SME delivery acknowledgement"), which handsets and SMSCs would misread.
    pub fn esm_class(&self) -> u8 {
        if self.udh { ESM_CLASS_UDHI } else { 0 }
    }

    /// The short_message / message_payload pair for this part.
    fn body(&self) -> (OctetString<0, 255>, Vec<Tlv>) {
        match OctetString::from_bytes(self.short_message.clone()) {
            Ok(sm) => (sm, Vec::new()),
            Err(_) => (
                OctetString::empty(),
                vec![Tlv::new(TlvValue::MessagePayload(MessagePayload::new(
                    AnyOctetString::from_bytes(self.short_message.clone()),
                )))],
            ),
        }
    }

    /// A deliver_sm for the listener role (our reply to an operator's bind), with
    /// registered_delivery 0 and every flag explicit.
    pub fn deliver_sm(&self) -> Pdu {
        let (short_message, tlvs) = self.body();
        let sm_length = u8::try_from(short_message.len()).unwrap_or(0);
        Pdu::DeliverSm(DeliverSm::from_parts(DeliverSmParts {
            service_type: ServiceType::default(),
            source_addr_ton: Ton::from(self.source.ton),
            source_addr_npi: Npi::from(self.source.npi),
            source_addr: self.source.addr.clone(),
            dest_addr_ton: Ton::from(self.destination.ton),
            dest_addr_npi: Npi::from(self.destination.npi),
            destination_addr: self.destination.addr.clone(),
            esm_class: EsmClass::from(self.esm_class()),
            protocol_id: 0,
            priority_flag: PriorityFlag::from(0u8),
            schedule_delivery_time: EmptyOrFullCOctetString::empty(),
            validity_period: EmptyOrFullCOctetString::empty(),
            registered_delivery: RegisteredDelivery::from(0u8),
            replace_if_present_flag: ReplaceIfPresentFlag::DoNotReplace,
            data_coding: DataCoding::from(self.data_coding),
            sm_default_msg_id: 0,
            sm_length,
            short_message,
            tlvs,
        }))
    }

    /// A submit_sm for the connector role (we are the ESME), same fields as
    /// [`MtPart::deliver_sm`].
    pub fn submit_sm(&self) -> Pdu {
        let (short_message, tlvs) = self.body();
        let sm_length = u8::try_from(short_message.len()).unwrap_or(0);
        Pdu::SubmitSm(SubmitSm::from_parts(SubmitSmParts {
            service_type: ServiceType::default(),
            source_addr_ton: Ton::from(self.source.ton),
            source_addr_npi: Npi::from(self.source.npi),
            source_addr: self.source.addr.clone(),
            dest_addr_ton: Ton::from(self.destination.ton),
            dest_addr_npi: Npi::from(self.destination.npi),
            destination_addr: self.destination.addr.clone(),
            esm_class: EsmClass::from(self.esm_class()),
            protocol_id: 0,
            priority_flag: PriorityFlag::from(0u8),
            schedule_delivery_time: EmptyOrFullCOctetString::empty(),
            validity_period: EmptyOrFullCOctetString::empty(),
            registered_delivery: RegisteredDelivery::from(0u8),
            replace_if_present_flag: ReplaceIfPresentFlag::DoNotReplace,
            data_coding: DataCoding::from(self.data_coding),
            sm_default_msg_id: 0,
            sm_length,
            short_message,
            tlvs,
        }))
    }
}

/// One reply part borrowed from where it lives (the reply's addresses, one part of its
/// [`text::Encoded`]), written straight into the output buffer: the gateway's hot path,
/// which builds no [`Pdu`] and allocates nothing per part. The octets are exactly those
/// rusmpp writes for the same [`MtPart::deliver_sm`] / [`MtPart::submit_sm`] (tested).
#[derive(Debug, Clone, Copy)]
pub struct ReplyPart<'a> {
    /// Sender shown to the citizen (TON/NPI 0/0).
    pub source: &'a str,
    /// The citizen's type of number.
    pub dest_ton: u8,
    /// The citizen's numbering plan.
    pub dest_npi: u8,
    /// The citizen's number.
    pub destination: &'a str,
    /// 0 or 8.
    pub data_coding: u8,
    /// Whether `short_message` begins with a UDH (esm_class 0x40, else 0: always explicit).
    pub udh: bool,
    /// registered_delivery: 0 no receipt, 1 a receipt whatever happens, 2 a receipt on
    /// failure only (a connector's `registered_delivery`; 0 for deliver_sm).
    pub registered_delivery: u8,
    /// The octets; more than 255 go into message_payload.
    pub short_message: &'a [u8],
}

impl ReplyPart<'_> {
    /// Appends this part as a `command_id` PDU (deliver_sm as listener, submit_sm as
    /// connector). The addresses must have passed [`Address::check`].
    pub fn encode(&self, dst: &mut BytesMut, command_id: CommandId, sequence_number: u32) {
        let payload = self.short_message.len() > 255;
        let body = 1 // service_type ""
            + 2 + self.source.len() + 1
            + 2 + self.destination.len() + 1
            + 3 // esm_class, protocol_id, priority_flag
            + 2 // schedule_delivery_time "", validity_period ""
            + 5 // registered_delivery, replace_if_present, data_coding, sm_default_msg_id, sm_length
            + if payload { 4 } else { 0 }
            + self.short_message.len();
        let total = HEADER_LEN + body;
        dst.reserve(total);
        dst.put_u32(u32::try_from(total).unwrap_or(u32::MAX));
        dst.put_u32(command_id.into());
        dst.put_u32(0);
        dst.put_u32(sequence_number);
        dst.put_u8(0);
        dst.put_slice(&[0, 0]);
        dst.put_slice(self.source.as_bytes());
        dst.put_u8(0);
        dst.put_slice(&[self.dest_ton, self.dest_npi]);
        dst.put_slice(self.destination.as_bytes());
        dst.put_u8(0);
        let esm_class = if self.udh { ESM_CLASS_UDHI } else { 0 };
        let rd = self.registered_delivery;
        dst.put_slice(&[esm_class, 0, 0, 0, 0, rd, 0, self.data_coding, 0]);
        if payload {
            dst.put_u8(0);
            dst.put_u16(0x0424);
            dst.put_u16(u16::try_from(self.short_message.len()).unwrap_or(u16::MAX));
        } else {
            dst.put_u8(self.short_message.len() as u8);
        }
        dst.put_slice(self.short_message);
    }
}

/// The parts of an encoded reply as [`MtPart`]s, in order.
pub fn mt_parts(
    source: &Address,
    destination: &Address,
    encoded: text::Encoded,
) -> impl Iterator<Item = MtPart> {
    let (source, destination) = (source.clone(), destination.clone());
    let (data_coding, udh) = (encoded.data_coding, encoded.udh);
    encoded.parts.into_iter().map(move |short_message| MtPart {
        source: source.clone(),
        destination: destination.clone(),
        data_coding,
        udh,
        short_message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smpp::codec::{
        DEFAULT_MAX_PDU_LEN, decode, encode,
        tests::{addr, wire},
    };
    use crate::smpp::{IncomingSm, Status};

    /// A reply part from 8103 to 994501234567 (international, E.164).
    fn to_citizen(data_coding: u8, udh: bool, short_message: &[u8]) -> ReplyPart<'_> {
        ReplyPart {
            source: "8103",
            dest_ton: 1,
            dest_npi: 1,
            destination: "994501234567",
            data_coding,
            udh,
            registered_delivery: 0,
            short_message,
        }
    }

    #[test]
    fn reply_parts_written_by_hand_are_rusmpps_octets() {
        let texts = [
            "PERMIT GRANTED: code 2 (food), AZE 11111111, 10:00-13:00. Permit no. K7QM-4RTX",
            "İCAZƏ VERİLDİ: kod 2 (ərzaq, dərman, bank, poçt), AZE 11111111, 10:00–13:00. İcazə № K7QM-4RTX",
            &"x".repeat(400),
            "",
        ];
        for (i, text) in texts.iter().enumerate() {
            let encoded = text::encode_mt(text, 7).unwrap();
            let source = Address::new(0, 0, "8103").unwrap();
            let destination = Address::new(1, 1, "994501234567").unwrap();
            let parts: Vec<MtPart> = mt_parts(&source, &destination, encoded.clone()).collect();
            for (part, octets) in parts.iter().zip(&encoded.parts) {
                let by_hand = to_citizen(encoded.data_coding, encoded.udh, octets);
                for (id, pdu) in [
                    (CommandId::DeliverSm, part.deliver_sm()),
                    (CommandId::SubmitSm, part.submit_sm()),
                ] {
                    let mut mine = BytesMut::new();
                    by_hand.encode(&mut mine, id, 77);
                    let mut theirs = BytesMut::new();
                    encode(&mut theirs, 77, Status::ESME_ROK, &pdu);
                    assert_eq!(mine, theirs, "text {i} as {id:?}");
                }
            }
        }
        // A part longer than 255 octets goes into message_payload.
        let long = [0x41u8; 300];
        let mut out = BytesMut::new();
        to_citizen(0, false, &long).encode(&mut out, CommandId::DeliverSm, 5);
        let frame = decode(&mut out, DEFAULT_MAX_PDU_LEN).unwrap().unwrap();
        let sm = IncomingSm::from_pdu(frame.pdu).unwrap();
        assert_eq!(sm.segment().unwrap().user_data.as_ref(), &long[..]);
        assert!(Address::check("994501234567").is_ok());
        assert!(Address::check("123456789012345678901").is_err());
        assert!(Address::check("99450\u{0}").is_err());
    }
    #[test]
    fn mt_builders_set_esm_class_explicitly() {
        let part = MtPart {
            source: addr(3, 0, "8103"),
            destination: addr(1, 1, "994501234567"),
            data_coding: 8,
            udh: false,
            short_message: Bytes::from_static(&[0x02, 0x59]),
        };
        for pdu in [part.deliver_sm(), part.submit_sm()] {
            let buf = wire(1, Status::ESME_ROK, &pdu);
            let body = &buf[HEADER_LEN..];
            // service_type "", ton 3, npi 0, "8103", ton 1, npi 1, "994501234567", esm_class
            let esm_at = 1 + 2 + 5 + 2 + 13;
            assert_eq!(body[esm_at], 0x00, "esm_class must be 0, not rusmpp's 0x08");
            assert_eq!(body[esm_at + 5], 0, "registered_delivery");
            assert_eq!(body[esm_at + 7], 8, "data_coding");
        }
        let udh = MtPart {
            udh: true,
            ..part.clone()
        };
        let buf = wire(1, Status::ESME_ROK, &udh.deliver_sm());
        assert_eq!(buf[HEADER_LEN + 23], 0x40);
        // Longer than 255 octets goes to message_payload.
        let big = MtPart {
            short_message: Bytes::from(vec![0u8; 300]),
            ..part
        };
        let mo = IncomingSm::from_pdu(big.deliver_sm()).unwrap();
        assert!(mo.short_message.is_empty());
        assert_eq!(mo.payload().len(), 300);
    }

    #[test]
    fn a_reply_part_asks_for_a_receipt_when_told() {
        let mut buf = BytesMut::new();
        let part = ReplyPart {
            registered_delivery: 1,
            ..to_citizen(0, false, b"hi")
        };
        part.encode(&mut buf, CommandId::SubmitSm, 3);
        let frame = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap().unwrap();
        let sm = IncomingSm::from_pdu(frame.pdu).unwrap();
        assert_eq!(sm.registered_delivery, 1);
        assert_eq!(&sm.short_message[..], b"hi");
    }

    #[test]
    fn mt_parts_from_encoded_reply() {
        let enc = text::encode_mt(&"İcazə ".repeat(20), 5).unwrap();
        let n = enc.parts.len();
        let parts: Vec<_> =
            mt_parts(&addr(3, 0, "8103"), &addr(1, 1, "994501234567"), enc).collect();
        assert_eq!(parts.len(), n);
        assert!(parts.iter().all(|p| p.udh && p.data_coding == 8));
    }
}
