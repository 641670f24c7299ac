//! What arrives: SMPP addresses, the MO-carrying PDUs (submit_sm, data_sm, deliver_sm) as
//! an [`IncomingSm`], and their [`Segment`]s (concatenation info and user data).

use bytes::Bytes;
use rusmpp::{
    CommandId, Pdu,
    pdus::parts::{DataSmParts, DeliverSmParts, SubmitSmParts},
    tlvs::{Tlv, TlvValue},
    types::COctetString,
    values::{Npi, Ton},
};

use super::text::{self, Concat, TextError};

/// esm_class UDHI bit: `short_message` starts with a user data header.
pub const ESM_CLASS_UDHI: u8 = 0x40;

/// Bits 5..2 of esm_class: the message type (0 for a normal message; receipts and
/// acknowledgements otherwise).
pub const ESM_CLASS_MESSAGE_TYPE_MASK: u8 = 0x3C;
/// Why an [`Address`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("address {addr:?} is not 0-20 ASCII characters without NUL")]
pub struct AddressError {
    /// The rejected address.
    pub addr: String,
}

/// An SMPP address: TON, NPI and up to 20 ASCII characters. Cheap to clone (shared bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// Type of number (1 international, 2 national, 3 network specific, 5 alphanumeric...).
    pub ton: u8,
    /// Numbering plan indicator (1 E.164 ...).
    pub npi: u8,
    pub(super) addr: COctetString<1, 21>,
}

impl Address {
    /// Builds an address; fails on non-ASCII, NUL, or more than 20 characters.
    pub fn new(ton: u8, npi: u8, addr: &str) -> Result<Address, AddressError> {
        Self::check(addr)?;
        let addr = addr.parse().map_err(|_| AddressError {
            addr: addr.to_owned(),
        })?;
        Ok(Address { ton, npi, addr })
    }

    /// Whether `addr` can be an SMPP address ([`Address::new`]'s rule, without building one).
    pub fn check(addr: &str) -> Result<(), AddressError> {
        if addr.len() > 20 || addr.bytes().any(|b| b == 0 || !b.is_ascii()) {
            return Err(AddressError {
                addr: addr.to_owned(),
            });
        }
        Ok(())
    }

    pub(super) fn from_parts(ton: Ton, npi: Npi, addr: COctetString<1, 21>) -> Address {
        Address {
            ton: ton.into(),
            npi: npi.into(),
            addr,
        }
    }

    /// The digits (or alphanumeric sender) as text.
    pub fn as_str(&self) -> &str {
        self.addr.as_str()
    }

    /// The address octets without the terminating NUL.
    pub fn as_bytes(&self) -> &[u8] {
        self.as_str().as_bytes()
    }

    /// The address octets as shared `Bytes` (no copy), e.g. for a reassembly key.
    pub fn to_bytes(&self) -> Bytes {
        let mut b = self.addr.clone().into_bytes();
        b.truncate(b.len().saturating_sub(1));
        b
    }
}

/// `sar_msg_ref_num` / `sar_total_segments` / `sar_segment_seqnum` TLVs: the SMPP way (as
/// opposed to a UDH) to say a message is one part of several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sar {
    /// sar_msg_ref_num.
    pub msg_ref_num: u16,
    /// sar_total_segments.
    pub total_segments: u8,
    /// sar_segment_seqnum (1-based).
    pub segment_seqnum: u8,
}

/// The parts of an MO-carrying PDU (submit_sm, data_sm, deliver_sm) the gateway reads, moved
/// out of the rusmpp value without copying the octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingSm {
    /// SubmitSm, DataSm or DeliverSm: it decides the response type.
    pub command_id: CommandId,
    /// The sender (the citizen's MSISDN).
    pub source: Address,
    /// Where it was sent (the short number).
    pub destination: Address,
    /// esm_class as sent: UDHI (0x40) and message type bits matter.
    pub esm_class: u8,
    /// registered_delivery as sent.
    pub registered_delivery: u8,
    /// data_coding as sent.
    pub data_coding: u8,
    /// short_message octets (empty for data_sm and for messages carried in message_payload).
    pub short_message: Bytes,
    /// message_payload TLV octets, which some clients use instead of short_message.
    pub message_payload: Option<Bytes>,
    /// sar_* TLVs, when all three are present.
    pub sar: Option<Sar>,
    /// receipted_message_id TLV: the message a delivery receipt reports on.
    pub receipted_message_id: Option<String>,
    /// message_state TLV: what became of that message.
    pub message_state: Option<u8>,
}

/// One part of a (possibly concatenated) message: its concatenation info and its user data
/// with any UDH removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// From the UDH (preferred) or the sar_* TLVs; `None` for a single message.
    pub concat: Option<Concat>,
    /// The text octets, in the message's data_coding.
    pub user_data: Bytes,
}

impl IncomingSm {
    /// Takes the MO fields out of a submit_sm, data_sm or deliver_sm; gives any other PDU back.
    // The PDU is handed back by move; boxing it to please the lint would allocate instead.
    #[allow(clippy::result_large_err)]
    pub fn from_pdu(pdu: Pdu) -> Result<IncomingSm, Pdu> {
        match pdu {
            Pdu::SubmitSm(sm) => {
                let SubmitSmParts {
                    source_addr_ton,
                    source_addr_npi,
                    source_addr,
                    dest_addr_ton,
                    dest_addr_npi,
                    destination_addr,
                    esm_class,
                    registered_delivery,
                    data_coding,
                    short_message,
                    tlvs,
                    ..
                } = sm.into_parts();
                Ok(IncomingSm::assemble(
                    CommandId::SubmitSm,
                    Address::from_parts(source_addr_ton, source_addr_npi, source_addr),
                    Address::from_parts(dest_addr_ton, dest_addr_npi, destination_addr),
                    esm_class.into(),
                    registered_delivery.into(),
                    data_coding.into(),
                    short_message.into_bytes(),
                    tlvs,
                ))
            }
            Pdu::DeliverSm(sm) => {
                let DeliverSmParts {
                    source_addr_ton,
                    source_addr_npi,
                    source_addr,
                    dest_addr_ton,
                    dest_addr_npi,
                    destination_addr,
                    esm_class,
                    registered_delivery,
                    data_coding,
                    short_message,
                    tlvs,
                    ..
                } = sm.into_parts();
                Ok(IncomingSm::assemble(
                    CommandId::DeliverSm,
                    Address::from_parts(source_addr_ton, source_addr_npi, source_addr),
                    Address::from_parts(dest_addr_ton, dest_addr_npi, destination_addr),
                    esm_class.into(),
                    registered_delivery.into(),
                    data_coding.into(),
                    short_message.into_bytes(),
                    tlvs,
                ))
            }
            Pdu::DataSm(sm) => {
                let DataSmParts {
                    source_addr_ton,
                    source_addr_npi,
                    source_addr,
                    dest_addr_ton,
                    dest_addr_npi,
                    destination_addr,
                    esm_class,
                    registered_delivery,
                    data_coding,
                    tlvs,
                    ..
                } = sm.into_parts();
                Ok(IncomingSm::assemble(
                    CommandId::DataSm,
                    Address::from_parts(source_addr_ton, source_addr_npi, source_addr),
                    Address::from_parts(dest_addr_ton, dest_addr_npi, destination_addr),
                    esm_class.into(),
                    registered_delivery.into(),
                    data_coding.into(),
                    Bytes::new(),
                    tlvs,
                ))
            }
            other => Err(other),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        command_id: CommandId,
        source: Address,
        destination: Address,
        esm_class: u8,
        registered_delivery: u8,
        data_coding: u8,
        short_message: Bytes,
        tlvs: Vec<Tlv>,
    ) -> IncomingSm {
        let mut message_payload = None;
        let (mut ref_num, mut total, mut seq) = (None, None, None);
        let (mut receipted_message_id, mut message_state) = (None, None);
        for tlv in tlvs {
            match tlv.into_parts().value {
                Some(TlvValue::MessagePayload(p)) => message_payload = Some(p.value.into_bytes()),
                Some(TlvValue::SarMsgRefNum(n)) => ref_num = Some(n),
                Some(TlvValue::SarTotalSegments(n)) => total = Some(n),
                Some(TlvValue::SarSegmentSeqnum(n)) => seq = Some(n),
                Some(TlvValue::ReceiptedMessageId(id)) => {
                    receipted_message_id = Some(id.as_str().to_string())
                }
                Some(TlvValue::MessageState(state)) => message_state = Some(u8::from(state)),
                _ => {}
            }
        }
        let sar = match (ref_num, total, seq) {
            (Some(msg_ref_num), Some(total_segments), Some(segment_seqnum)) => Some(Sar {
                msg_ref_num,
                total_segments,
                segment_seqnum,
            }),
            _ => None,
        };
        IncomingSm {
            command_id,
            source,
            destination,
            esm_class,
            registered_delivery,
            data_coding,
            short_message,
            message_payload,
            sar,
            receipted_message_id,
            message_state,
        }
    }

    /// The message octets: message_payload when present (it wins per SMPP 5.0 §4.8.4.36),
    /// else short_message.
    pub fn payload(&self) -> &Bytes {
        self.message_payload.as_ref().unwrap_or(&self.short_message)
    }

    /// Whether the payload begins with a user data header (esm_class UDHI).
    pub fn has_udhi(&self) -> bool {
        self.esm_class & ESM_CLASS_UDHI != 0
    }

    /// Whether this is a delivery receipt or acknowledgement rather than a message someone
    /// typed: esm_class message type bits non-zero (0x04 SMSC receipt, 0x08 / 0x10
    /// acknowledgements, 0x20 intermediate notification), or a receipted_message_id TLV.
    /// A receipt is never a permit request, whatever its text says.
    pub fn is_receipt(&self) -> bool {
        self.esm_class & ESM_CLASS_MESSAGE_TYPE_MASK != 0 || self.receipted_message_id.is_some()
    }

    /// Splits the payload into concatenation info and user data (no copy).
    pub fn segment(&self) -> Result<Segment, TextError> {
        let payload = self.payload();
        let sar = self
            .sar
            .and_then(|s| Concat::new(s.msg_ref_num, s.total_segments, s.segment_seqnum));
        if !self.has_udhi() {
            return Ok(Segment {
                concat: sar,
                user_data: payload.clone(),
            });
        }
        let udh = text::parse_udh(payload)?;
        let offset = payload.len() - udh.user_data.len();
        Ok(Segment {
            concat: udh.concat.or(sar),
            user_data: payload.slice(offset..),
        })
    }

    /// The text of a single (unsegmented) message, or of this part alone.
    pub fn text(&self) -> Result<String, TextError> {
        let segment = self.segment()?;
        text::decode(self.data_coding, &segment.user_data)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use rusmpp::{
        pdus::{DataSm, SubmitSm},
        tlvs::MessageSubmissionRequestTlvValue,
        types::AnyOctetString,
        values::{DataCoding, EsmClass, MessagePayload},
    };

    use super::*;
    use crate::smpp::codec::{
        DEFAULT_MAX_PDU_LEN, decode,
        tests::{addr, wire},
    };
    use crate::smpp::{MtPart, Status};

    #[test]
    fn incoming_submit_sm_with_payload_and_sar() {
        let mut sm = SubmitSm::builder()
            .source_addr("994501234567".parse().unwrap())
            .source_addr_ton(Ton::International)
            .source_addr_npi(Npi::Isdn)
            .destination_addr("8103".parse().unwrap())
            .esm_class(EsmClass::from(0u8))
            .data_coding(DataCoding::Ucs2)
            .build();
        sm.push_tlv(MessageSubmissionRequestTlvValue::MessagePayload(
            MessagePayload::new(AnyOctetString::from_static_slice(&[0x00, 0x32])),
        ));
        sm.push_tlv(MessageSubmissionRequestTlvValue::SarMsgRefNum(0x1234));
        sm.push_tlv(MessageSubmissionRequestTlvValue::SarTotalSegments(2));
        sm.push_tlv(MessageSubmissionRequestTlvValue::SarSegmentSeqnum(1));
        let mut buf = wire(1, Status::ESME_ROK, &Pdu::SubmitSm(sm));
        let frame = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap().unwrap();
        let mo = IncomingSm::from_pdu(frame.pdu).unwrap();
        assert_eq!(mo.command_id, CommandId::SubmitSm);
        assert_eq!(mo.source.as_str(), "994501234567");
        assert_eq!((mo.source.ton, mo.source.npi), (1, 1));
        assert_eq!(mo.destination.as_str(), "8103");
        assert_eq!(mo.data_coding, 8);
        assert!(mo.short_message.is_empty());
        assert_eq!(mo.payload().as_ref(), &[0x00, 0x32]);
        assert_eq!(
            mo.sar,
            Some(Sar {
                msg_ref_num: 0x1234,
                total_segments: 2,
                segment_seqnum: 1
            })
        );
        let seg = mo.segment().unwrap();
        assert_eq!(seg.concat, Concat::new(0x1234, 2, 1));
        assert_eq!(mo.text().unwrap(), "2");
        assert!(!mo.is_receipt());
    }

    #[test]
    fn incoming_deliver_sm_with_udh_and_data_sm() {
        let part = MtPart {
            source: addr(1, 1, "994501234567"),
            destination: addr(0, 0, "8103"),
            data_coding: 0,
            udh: true,
            short_message: Bytes::from_static(&[5, 0, 3, 9, 2, 2, b'1', b'1']),
        };
        let mut buf = wire(1, Status::ESME_ROK, &part.deliver_sm());
        let frame = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap().unwrap();
        let mo = IncomingSm::from_pdu(frame.pdu).unwrap();
        assert_eq!(mo.command_id, CommandId::DeliverSm);
        assert!(mo.has_udhi());
        let seg = mo.segment().unwrap();
        assert_eq!(seg.concat, Concat::new(9, 2, 2));
        assert_eq!(&seg.user_data[..], b"11");

        let mut data_sm = DataSm::builder()
            .source_addr("994501234567".parse().unwrap())
            .destination_addr("8103".parse().unwrap())
            .esm_class(EsmClass::from(0u8))
            .data_coding(DataCoding::from(1u8))
            .build();
        data_sm.push_tlv(MessageSubmissionRequestTlvValue::MessagePayload(
            MessagePayload::new(AnyOctetString::from_static_slice(b"2 AZE 11111111")),
        ));
        let mo = IncomingSm::from_pdu(Pdu::DataSm(data_sm)).unwrap();
        assert_eq!(mo.text().unwrap(), "2 AZE 11111111");
        assert!(IncomingSm::from_pdu(Pdu::EnquireLink).is_err());
    }

    #[test]
    fn address_validation() {
        assert!(Address::new(1, 1, "994501234567").is_ok());
        assert!(Address::new(5, 0, "ICAZE").is_ok());
        assert!(Address::new(1, 1, "123456789012345678901").is_err());
        assert!(Address::new(1, 1, "ə").is_err());
        assert_eq!(&addr(1, 1, "123").to_bytes()[..], b"123");
    }
}
