//! SMPP framing and PDU bodies: bytes in, [`Frame`]s out; [`Pdu`]s in, bytes out.
//!
//! We frame ourselves and hand only a complete, bounded body to rusmpp 0.4.0, because
//! rusmpp's own codec loses sync after a bad body. The rules:
//!
//! - fewer than 16 octets, or fewer than `command_length`: `Ok(None)`, read more;
//! - `command_length` below 16 or above the configured maximum: a fatal [`FramingError`] —
//!   nothing after it can be trusted, the connection answers `generic_nack` and closes;
//! - a complete frame whose body does not decode: a recoverable [`BodyError`] carrying the
//!   command_id and sequence_number; the frame's octets are consumed, the next PDU decodes, and
//!   [`BodyError::response`] says what to answer (`generic_nack` or the command's own
//!   `*_resp` with a precise `command_status`).
//!
//! Encoding appends to a caller's `BytesMut`, so a connection can batch every response of one
//! read into one write.

use bytes::{Buf, BufMut, BytesMut};
use rusmpp::{
    CommandId, Pdu,
    decode::{DecodeErrorKind, DecodeWithKeyOptional},
    encode::{Length, owned::Encode},
    pdus::{
        BindReceiverResp, BindTransceiverResp, BindTransmitterResp, BroadcastSmResp, DataSmResp,
        DeliverSmResp, QueryBroadcastSmResp, QuerySmResp, SubmitMultiResp, SubmitSmResp,
    },
    types::COctetString,
    values::{Npi, Ton},
};

use super::diagnose::{DIAGNOSIS_PREFIX, diagnose, needs_diagnosis};
pub use super::message::{Address, IncomingSm, Sar};
pub use super::mt::{MtPart, ReplyPart, mt_parts};
pub use super::response::Response;
pub use super::status::Status;

/// Octets in the SMPP header: command_length, command_id, command_status, sequence_number.
pub const HEADER_LEN: usize = 16;

/// Default upper bound on `command_length`. A submit_sm is at most a few hundred octets; 64 KiB
/// leaves room for a large message_payload while keeping one peer from making us buffer
/// megabytes.
pub const DEFAULT_MAX_PDU_LEN: usize = 64 * 1024;
/// The 16-octet SMPP header as read from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Total PDU length including this header.
    pub command_length: u32,
    /// Raw command_id (kept raw so unknown ids can be reported as sent).
    pub command_id: u32,
    /// command_status; zero on requests.
    pub command_status: Status,
    /// Correlates a response with its request.
    pub sequence_number: u32,
}

impl Header {
    /// Reads a header from the first 16 octets of `src` without consuming them.
    fn peek(src: &[u8]) -> Option<Header> {
        let word = |i: usize| -> Option<u32> {
            let b = src.get(i..i + 4)?;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        Some(Header {
            command_length: word(0)?,
            command_id: word(4)?,
            command_status: Status(word(8)?),
            sequence_number: word(12)?,
        })
    }
}

/// One decoded PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What the PDU is (unknown ids never reach a `Frame`; they are a [`BodyError`]).
    pub command_id: CommandId,
    /// command_status from the header.
    pub status: Status,
    /// sequence_number from the header, echoed in the response.
    pub sequence_number: u32,
    /// The body. A response that came without body (SMPP 3.4 omits it on error) gets the
    /// default body of its type, so callers always have one to match on.
    pub pdu: Pdu,
}

/// A framing failure: the byte stream can no longer be split into PDUs. Fatal: answer with
/// [`FramingError::response`] if there is one and close the connection.
///
/// Its message names no header field: a stream out of step has a citizen's text where the
/// header should be (a miscounted command_length once put "AZE 93223344" in a log as
/// command_id 0x33333434), and logs must not hold a document number.
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    /// command_length smaller than the header itself.
    #[error("command_length below the 16-octet header: the stream is out of step")]
    LengthBelowHeader {
        /// The header as read (its other fields are probably garbage too).
        header: Header,
    },
    /// command_length beyond what we agree to buffer.
    #[error("command_length above the {max}-octet limit: the stream is out of step")]
    LengthAboveMax {
        /// The header as read.
        header: Header,
        /// The configured limit.
        max: usize,
    },
}

impl FramingError {
    /// The last word to the peer before closing: `generic_nack` ESME_RINVCMDLEN with the
    /// offending sequence number, so its logs show why the link dropped.
    pub fn response(&self) -> Response {
        let (FramingError::LengthBelowHeader { header }
        | FramingError::LengthAboveMax { header, .. }) = self;
        Response::generic_nack(header.sequence_number, self.status())
    }

    /// Always [`Status::ESME_RINVCMDLEN`]: the length field is what broke the stream.
    pub fn status(&self) -> Status {
        Status::ESME_RINVCMDLEN
    }
}

/// What was wrong with a body that arrived in a well-formed frame.
#[derive(Debug, Clone, Copy)]
pub enum BodyErrorKind {
    /// A command_id SMPP 3.4/5.0 does not define.
    UnknownCommand,
    /// A command that has no body (enquire_link, unbind) arrived with one.
    UnexpectedBody {
        /// Octets after the header.
        len: usize,
    },
    /// A request that needs a body arrived with none.
    MissingBody,
    /// The body does not parse; `field` is the first field found wrong, `status` what the
    /// spec says to answer.
    Malformed {
        /// The first field that does not parse (`"body"` when it cannot be pinned down).
        field: &'static str,
        /// The command_status to answer with.
        status: Status,
        /// rusmpp's own account of the failure.
        reason: DecodeErrorKind,
    },
}

/// A PDU whose frame was fine but whose body was not. Recoverable: the frame's octets have
/// been consumed, answer with [`BodyError::response`] and keep reading.
///
/// Its message shows an unknown command_id only when it looks like one (SMPP's ids are
/// small numbers, with the top bit for responses): four octets of a text are not shown.
#[derive(Debug, Clone, thiserror::Error)]
#[error("bad {} body (sequence_number {sequence_number}): {kind:?}", CommandName(*command_id))]
pub struct BodyError {
    /// The command as read (`CommandId::Other` for unknown ids).
    pub command_id: CommandId,
    /// Its sequence number, to be echoed in the answer.
    pub sequence_number: u32,
    /// What went wrong.
    pub kind: BodyErrorKind,
}

/// A command_id for a log line: its name, the number if it could be an SMPP command, and
/// nothing of it otherwise.
struct CommandName(CommandId);

impl std::fmt::Display for CommandName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            CommandId::Other(id) if id & 0x7FFF_FE00 == 0 => write!(f, "command_id {id:#010x}"),
            CommandId::Other(_) => f.write_str("command_id (not an SMPP command)"),
            known => write!(f, "{known:?}"),
        }
    }
}

impl BodyError {
    /// The command_status this error deserves.
    pub fn status(&self) -> Status {
        match self.kind {
            BodyErrorKind::UnknownCommand => Status::ESME_RINVCMDID,
            BodyErrorKind::UnexpectedBody { .. } | BodyErrorKind::MissingBody => {
                Status::ESME_RINVCMDLEN
            }
            BodyErrorKind::Malformed { status, .. } => status,
        }
    }

    /// What to send back: `generic_nack` RINVCMDID for unknown commands, `generic_nack`
    /// RINVCMDLEN for bodies of the wrong length, the command's own `*_resp` with a precise
    /// status for a malformed request body, and nothing for a malformed response (responses
    /// are never answered; the caller still has `sequence_number` to close its window slot).
    pub fn response(&self) -> Option<Response> {
        match self.kind {
            BodyErrorKind::UnknownCommand
            | BodyErrorKind::UnexpectedBody { .. }
            | BodyErrorKind::MissingBody => {
                let unknown = matches!(self.kind, BodyErrorKind::UnknownCommand);
                if self.command_id.is_response() && !unknown {
                    None
                } else {
                    Some(Response::generic_nack(self.sequence_number, self.status()))
                }
            }
            BodyErrorKind::Malformed { status, .. } => {
                Response::error_for(self.command_id, self.sequence_number, status)
            }
        }
    }
}

/// Either kind of decode failure, for the plain-function API. Check [`DecodeError::is_fatal`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The stream is broken; close the connection.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// One PDU was bad; answer it and carry on.
    #[error(transparent)]
    Body(#[from] BodyError),
}

impl DecodeError {
    /// Whether the connection must close.
    pub fn is_fatal(&self) -> bool {
        matches!(self, DecodeError::Framing(_))
    }

    /// What to answer, if anything (see [`FramingError::response`], [`BodyError::response`]).
    pub fn response(&self) -> Option<Response> {
        match self {
            DecodeError::Framing(e) => Some(e.response()),
            DecodeError::Body(e) => e.response(),
        }
    }
}

/// Decodes one PDU from the front of `src`, consuming its octets unless the error is fatal.
///
/// `Ok(None)` means "need more bytes" (nothing is reserved for them: buffers grow with what
/// arrives, not with what a header announces);
/// loop until it returns `Ok(None)` to handle every complete PDU of one read.
pub fn decode(src: &mut BytesMut, max_len: usize) -> Result<Option<Frame>, DecodeError> {
    let Some(header) = Header::peek(src) else {
        return Ok(None);
    };
    let len = header.command_length as usize;
    if len < HEADER_LEN {
        return Err(FramingError::LengthBelowHeader { header }.into());
    }
    if len > max_len {
        return Err(FramingError::LengthAboveMax {
            header,
            max: max_len,
        }
        .into());
    }
    if src.len() < len {
        // No reserve of the announced length: a peer announcing 64 KiB and sending nothing
        // must not make us hold 64 KiB. The caller's buffer grows as bytes arrive.
        return Ok(None);
    }
    let mut body = src.split_to(len);
    body.advance(HEADER_LEN);
    decode_body(header, body)
        .map(Some)
        .map_err(DecodeError::Body)
}

/// PDUs whose body is always empty.
fn empty_body_pdu(id: CommandId) -> Option<Pdu> {
    Some(match id {
        CommandId::Unbind => Pdu::Unbind,
        CommandId::UnbindResp => Pdu::UnbindResp,
        CommandId::EnquireLink => Pdu::EnquireLink,
        CommandId::EnquireLinkResp => Pdu::EnquireLinkResp,
        CommandId::GenericNack => Pdu::GenericNack,
        CommandId::CancelSmResp => Pdu::CancelSmResp,
        CommandId::ReplaceSmResp => Pdu::ReplaceSmResp,
        CommandId::CancelBroadcastSmResp => Pdu::CancelBroadcastSmResp,
        _ => return None,
    })
}

/// The default body of a response that came without one (SMPP 3.4 error responses).
fn default_response_pdu(id: CommandId) -> Option<Pdu> {
    Some(match id {
        CommandId::BindTransmitterResp => Pdu::BindTransmitterResp(BindTransmitterResp::default()),
        CommandId::BindReceiverResp => Pdu::BindReceiverResp(BindReceiverResp::default()),
        CommandId::BindTransceiverResp => Pdu::BindTransceiverResp(BindTransceiverResp::default()),
        CommandId::SubmitSmResp => Pdu::SubmitSmResp(SubmitSmResp::default()),
        CommandId::DeliverSmResp => Pdu::DeliverSmResp(DeliverSmResp::default()),
        CommandId::DataSmResp => Pdu::DataSmResp(DataSmResp::default()),
        CommandId::QuerySmResp => Pdu::QuerySmResp(QuerySmResp::default()),
        CommandId::SubmitMultiResp => Pdu::SubmitMultiResp(SubmitMultiResp::default()),
        CommandId::BroadcastSmResp => Pdu::BroadcastSmResp(BroadcastSmResp::default()),
        CommandId::QueryBroadcastSmResp => {
            Pdu::QueryBroadcastSmResp(QueryBroadcastSmResp::default())
        }
        _ => return None,
    })
}
fn decode_body(header: Header, mut body: BytesMut) -> Result<Frame, BodyError> {
    let command_id = CommandId::from(header.command_id);
    let frame = |pdu| Frame {
        command_id,
        status: header.command_status,
        sequence_number: header.sequence_number,
        pdu,
    };
    let error = |kind| BodyError {
        command_id,
        sequence_number: header.sequence_number,
        kind,
    };
    if matches!(command_id, CommandId::Other(_)) {
        return Err(error(BodyErrorKind::UnknownCommand));
    }
    if let Some(pdu) = empty_body_pdu(command_id) {
        // Responses with stray octets are tolerated; requests are answered RINVCMDLEN.
        if body.is_empty() || command_id.is_response() {
            return Ok(frame(pdu));
        }
        return Err(error(BodyErrorKind::UnexpectedBody { len: body.len() }));
    }
    let len = body.len();
    if len == 0 {
        return match default_response_pdu(command_id) {
            Some(pdu) => Ok(frame(pdu)),
            None => Err(error(BodyErrorKind::MissingBody)),
        };
    }

    // rusmpp consumes the body as it parses, so keep a copy of its front for diagnosis of
    // the requests we answer with a field-specific status. A stack copy, no allocation.
    let mut prefix = [0u8; DIAGNOSIS_PREFIX];
    let kept = if needs_diagnosis(command_id) {
        let n = len.min(DIAGNOSIS_PREFIX);
        prefix[..n].copy_from_slice(&body[..n]);
        n
    } else {
        0
    };

    match Pdu::decode(command_id, &mut body, len) {
        Ok(Some((pdu, _))) => Ok(frame(pdu)),
        Ok(None) => Err(error(BodyErrorKind::MissingBody)),
        Err(e) => {
            let (field, status) = diagnose(command_id, &prefix[..kept], len);
            Err(error(BodyErrorKind::Malformed {
                field,
                status,
                reason: e.kind(),
            }))
        }
    }
}

/// Appends one PDU (header and body) to `dst`. Append many, write once.
pub fn encode(dst: &mut BytesMut, sequence_number: u32, status: Status, pdu: &Pdu) {
    let total = HEADER_LEN + pdu.length();
    dst.reserve(total);
    dst.put_u32(u32::try_from(total).unwrap_or(u32::MAX));
    dst.put_u32(pdu.command_id().into());
    dst.put_u32(status.0);
    dst.put_u32(sequence_number);
    Encode::encode(pdu, dst);
}

/// Appends a `*_resp` whose body is just a message_id (submit_sm_resp, data_sm_resp,
/// deliver_sm_resp) without building a rusmpp value: the hot path answers every MO with one.
/// A message_id that is not ASCII or is longer than 64 octets is sent empty (SMPP allows an
/// empty id; a wrong one would break the peer's parser).
pub fn encode_message_id_resp(
    dst: &mut BytesMut,
    command_id: CommandId,
    sequence_number: u32,
    status: Status,
    message_id: &str,
) {
    let id = if message_id.len() <= 64 && message_id.bytes().all(|b| b != 0 && b.is_ascii()) {
        message_id.as_bytes()
    } else {
        &[]
    };
    let total = HEADER_LEN + id.len() + 1;
    dst.reserve(total);
    dst.put_u32(u32::try_from(total).unwrap_or(u32::MAX));
    dst.put_u32(command_id.into());
    dst.put_u32(status.0);
    dst.put_u32(sequence_number);
    dst.put_slice(id);
    dst.put_u8(0);
}

/// The bind request we send in connector mode: `kind`'s bind_* PDU with our credentials.
/// `None` when a field does not fit SMPP (system_id up to 15 ASCII characters, password up
/// to 8, system_type up to 12); config validation keeps them within those bounds.
pub fn bind_request(
    kind: super::session::BindKind,
    system_id: &str,
    password: &str,
    system_type: &str,
    interface_version: u8,
) -> Option<Pdu> {
    use super::session::BindKind;
    use rusmpp::pdus::{BindReceiver, BindTransceiver, BindTransmitter};
    use rusmpp::values::InterfaceVersion;
    let system_id: COctetString<1, 16> = system_id.parse().ok()?;
    let password: COctetString<1, 9> = password.parse().ok()?;
    let system_type: COctetString<1, 13> = system_type.parse().ok()?;
    let version = if interface_version >= 0x50 {
        InterfaceVersion::Smpp5_0
    } else {
        InterfaceVersion::Smpp3_4
    };
    // The three bind PDUs have the same fields; only the type differs.
    macro_rules! bind {
        ($pdu:ident) => {
            Pdu::$pdu($pdu::new(
                system_id,
                password,
                system_type,
                version,
                Ton::Unknown,
                Npi::Unknown,
                COctetString::default(),
            ))
        };
    }
    Some(match kind {
        BindKind::Transmitter => bind!(BindTransmitter),
        BindKind::Receiver => bind!(BindReceiver),
        BindKind::Transceiver => bind!(BindTransceiver),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use bytes::Bytes;
    use rusmpp::{
        pdus::{BindReceiver, BindTransceiver, BindTransmitter, DataSm, Outbind},
        tlvs::MessageSubmissionRequestTlvValue,
        types::AnyOctetString,
        values::{DataCoding, EsmClass, InterfaceVersion, MessagePayload},
    };

    use super::*;

    pub(crate) fn addr(ton: u8, npi: u8, s: &str) -> Address {
        Address::new(ton, npi, s).unwrap()
    }

    pub(crate) fn wire(seq: u32, status: Status, pdu: &Pdu) -> BytesMut {
        let mut b = BytesMut::new();
        encode(&mut b, seq, status, pdu);
        b
    }

    pub(crate) fn raw_pdu(id: u32, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_be_bytes());
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&0u32.to_be_bytes());
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn a_header_announcing_a_large_pdu_reserves_nothing_for_it() {
        // 64 KiB announced, 16 octets sent: the buffer holds what arrived, not what was
        // announced (1,000 such connections once cost 64 MB).
        let mut buf = BytesMut::with_capacity(16);
        buf.extend_from_slice(&raw_pdu(0x0000_0004, 1, &[])[..]);
        buf[0..4].copy_from_slice(&(64u32 * 1024).to_be_bytes());
        assert!(decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap().is_none());
        assert!(buf.capacity() < 1024, "reserved {} octets", buf.capacity());
        assert_eq!(buf.len(), 16);
    }

    fn sample_submit_sm() -> Pdu {
        MtPart {
            source: addr(1, 1, "994501234567"),
            destination: addr(3, 0, "8103"),
            data_coding: 0,
            udh: false,
            short_message: Bytes::from_static(b"2 AZE 11111111"),
        }
        .submit_sm()
    }

    fn roundtrip(pdu: Pdu, status: Status) {
        let mut buf = wire(42, status, &pdu);
        let frame = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap().unwrap();
        assert!(buf.is_empty());
        assert_eq!(frame.sequence_number, 42);
        assert_eq!(frame.status, status);
        assert_eq!(frame.command_id, pdu.command_id());
        assert_eq!(frame.pdu, pdu);
    }

    fn bind_fields() -> (COctetString<1, 16>, COctetString<1, 9>) {
        ("azercell".parse().unwrap(), "secret".parse().unwrap())
    }

    #[test]
    fn round_trips_every_pdu_we_use() {
        let (system_id, password) = bind_fields();
        let bind = |v| {
            (
                system_id.clone(),
                password.clone(),
                "".parse::<COctetString<1, 13>>().unwrap(),
                v,
            )
        };
        let (s, p, t, v) = bind(InterfaceVersion::Smpp3_4);
        roundtrip(
            Pdu::BindTransmitter(BindTransmitter::new(
                s,
                p,
                t,
                v,
                Ton::Unknown,
                Npi::Unknown,
                Default::default(),
            )),
            Status::ESME_ROK,
        );
        let (s, p, t, v) = bind(InterfaceVersion::Smpp5_0);
        roundtrip(
            Pdu::BindReceiver(BindReceiver::new(
                s,
                p,
                t,
                v,
                Ton::International,
                Npi::Isdn,
                "^994".parse().unwrap(),
            )),
            Status::ESME_ROK,
        );
        let (s, p, t, v) = bind(InterfaceVersion::Smpp3_4);
        roundtrip(
            Pdu::BindTransceiver(BindTransceiver::new(
                s,
                p,
                t,
                v,
                Ton::Unknown,
                Npi::Unknown,
                Default::default(),
            )),
            Status::ESME_ROK,
        );
        for bind in [
            CommandId::BindTransmitter,
            CommandId::BindReceiver,
            CommandId::BindTransceiver,
        ] {
            let r = Response::bind_resp(bind, 1, Status::ESME_ROK, "icaze", 0x34).unwrap();
            roundtrip(r.pdu, Status::ESME_ROK);
            let r = Response::bind_resp(bind, 1, Status::ESME_RINVPASWD, "icaze", 0x33).unwrap();
            roundtrip(r.pdu, Status::ESME_RINVPASWD);
        }
        roundtrip(sample_submit_sm(), Status::ESME_ROK);
        roundtrip(
            Pdu::SubmitSmResp(SubmitSmResp::new("abc123".parse().unwrap(), vec![])),
            Status::ESME_ROK,
        );
        let deliver = MtPart {
            source: addr(3, 0, "8103"),
            destination: addr(1, 1, "994501234567"),
            data_coding: 8,
            udh: true,
            short_message: Bytes::from_static(&[5, 0, 3, 1, 2, 1, 0x02, 0x59]),
        }
        .deliver_sm();
        roundtrip(deliver, Status::ESME_ROK);
        roundtrip(
            Pdu::DeliverSmResp(DeliverSmResp::default()),
            Status::ESME_ROK,
        );
        let mut data_sm = DataSm::builder()
            .source_addr("994501234567".parse().unwrap())
            .destination_addr("8103".parse().unwrap())
            .esm_class(EsmClass::from(0u8))
            .data_coding(DataCoding::from(0u8))
            .build();
        data_sm.push_tlv(MessageSubmissionRequestTlvValue::MessagePayload(
            MessagePayload::new(AnyOctetString::from_static_slice(b"2 AZE 11111111")),
        ));
        roundtrip(Pdu::DataSm(data_sm), Status::ESME_ROK);
        roundtrip(
            Pdu::DataSmResp(DataSmResp::new("7".parse().unwrap(), vec![])),
            Status::ESME_ROK,
        );
        roundtrip(Pdu::EnquireLink, Status::ESME_ROK);
        roundtrip(Pdu::EnquireLinkResp, Status::ESME_ROK);
        roundtrip(Pdu::Unbind, Status::ESME_ROK);
        roundtrip(Pdu::UnbindResp, Status::ESME_ROK);
        roundtrip(Pdu::GenericNack, Status::ESME_RINVCMDID);
        let (s, p) = bind_fields();
        roundtrip(Pdu::Outbind(Outbind::new(s, p)), Status::ESME_ROK);
    }

    #[test]
    fn short_input_is_none_at_every_prefix() {
        let full = wire(7, Status::ESME_ROK, &sample_submit_sm());
        for n in 0..full.len() {
            let mut buf = BytesMut::from(&full[..n]);
            assert!(
                decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap().is_none(),
                "prefix {n}"
            );
            assert_eq!(buf.len(), n, "nothing consumed at prefix {n}");
        }
    }

    #[test]
    fn truncated_body_then_good_pdu_decodes_the_good_one() {
        // submit_sm whose short_message claims 50 octets but the frame ends after 3.
        let good = wire(2, Status::ESME_ROK, &sample_submit_sm());
        let body = &good[HEADER_LEN..];
        let sm_len_at = body.len() - 15; // "2 AZE 11111111" is 14 octets, sm_length before it
        let mut bad_body = body[..sm_len_at].to_vec();
        bad_body.extend_from_slice(&[50, b'a', b'b', b'c']);
        let mut buf = BytesMut::from(&raw_pdu(0x04, 1, &bad_body)[..]);
        buf.extend_from_slice(&good);

        let err = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap_err();
        assert!(!err.is_fatal());
        let DecodeError::Body(body_err) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(body_err.sequence_number, 1);
        assert_eq!(body_err.command_id, CommandId::SubmitSm);
        assert!(matches!(
            body_err.kind,
            BodyErrorKind::Malformed {
                field: "short_message",
                ..
            }
        ));
        let resp = err.response().unwrap();
        assert_eq!(resp.sequence_number, 1);
        assert_eq!(resp.status, Status::ESME_RINVMSGLEN);
        assert_eq!(resp.pdu.command_id(), CommandId::SubmitSmResp);

        let frame = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap().unwrap();
        assert_eq!(frame.sequence_number, 2);
        assert_eq!(frame.pdu, sample_submit_sm());
        assert!(buf.is_empty());
    }

    #[test]
    fn huge_command_length_is_fatal_and_nacked() {
        let mut buf = BytesMut::from(&raw_pdu(0x04, 9, &[])[..]);
        buf[0..4].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
        let err = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap_err();
        assert!(err.is_fatal());
        let resp = err.response().unwrap();
        assert_eq!(resp.pdu, Pdu::GenericNack);
        assert_eq!(resp.status, Status::ESME_RINVCMDLEN);
        assert_eq!(resp.sequence_number, 9);
        // Nothing consumed: the caller closes, it does not try to resync.
        assert_eq!(buf.len(), HEADER_LEN);
    }

    #[test]
    fn command_length_below_header_is_fatal() {
        let mut buf = BytesMut::from(&raw_pdu(0x15, 3, &[])[..]);
        buf[0..4].copy_from_slice(&8u32.to_be_bytes());
        let err = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap_err();
        assert!(err.is_fatal());
        assert_eq!(err.response().unwrap().status, Status::ESME_RINVCMDLEN);
    }

    #[test]
    fn max_len_is_configurable() {
        let pdu = wire(1, Status::ESME_ROK, &sample_submit_sm());
        let mut buf = pdu.clone();
        assert!(decode(&mut buf, pdu.len()).unwrap().is_some());
        let mut buf = pdu.clone();
        assert!(decode(&mut buf, pdu.len() - 1).unwrap_err().is_fatal());
    }

    #[test]
    fn unknown_command_id_gets_generic_nack_rinvcmdid() {
        let mut buf = BytesMut::from(&raw_pdu(0x0000_0099, 77, &[1, 2, 3])[..]);
        buf.extend_from_slice(&wire(78, Status::ESME_ROK, &Pdu::EnquireLink));
        let err = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap_err();
        assert_eq!(err.response().unwrap().status, Status::ESME_RINVCMDID);
        let resp = err.response().unwrap();
        assert_eq!(resp, Response::generic_nack(77, Status::ESME_RINVCMDID));
        let mut out = BytesMut::new();
        resp.encode(&mut out);
        assert_eq!(
            &out[..],
            &[0, 0, 0, 16, 0x80, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 77]
        );
        let next = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap().unwrap();
        assert_eq!(next.pdu, Pdu::EnquireLink);
    }

    #[test]
    fn wrong_body_lengths_get_rinvcmdlen() {
        let mut buf = BytesMut::from(&raw_pdu(0x15, 5, &[0])[..]);
        let err = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap_err();
        assert_eq!(
            err.response().unwrap(),
            Response::generic_nack(5, Status::ESME_RINVCMDLEN)
        );
        let mut buf = BytesMut::from(&raw_pdu(0x04, 6, &[])[..]);
        let err = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap_err();
        assert_eq!(
            err.response().unwrap(),
            Response::generic_nack(6, Status::ESME_RINVCMDLEN)
        );
    }

    #[test]
    fn bodyless_error_responses_are_accepted() {
        // SMPP 3.4 peers omit the body of an error submit_sm_resp / bind_resp.
        let mut v = raw_pdu(0x8000_0004, 11, &[]);
        v[8..12].copy_from_slice(&0x58u32.to_be_bytes());
        let mut buf = BytesMut::from(&v[..]);
        let frame = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap().unwrap();
        assert_eq!(frame.command_id, CommandId::SubmitSmResp);
        assert_eq!(frame.status, Status::ESME_RTHROTTLED);
        assert!(frame.status.is_transient());
        let mut buf = BytesMut::from(&raw_pdu(0x8000_0009, 1, &[])[..]);
        assert!(decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap().is_some());
        // A generic_nack with stray octets is still a generic_nack.
        let mut buf = BytesMut::from(&raw_pdu(0x8000_0000, 1, &[0, 0])[..]);
        assert_eq!(
            decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap().unwrap().pdu,
            Pdu::GenericNack
        );
    }

    #[test]
    fn malformed_response_is_not_answered() {
        let mut buf = BytesMut::from(&raw_pdu(0x8000_0004, 3, b"no-nul")[..]);
        let err = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap_err();
        let DecodeError::Body(e) = &err else { panic!() };
        assert_eq!(e.sequence_number, 3);
        assert!(err.response().is_none());
    }

    #[test]
    fn many_responses_batch_into_one_buffer() {
        let mut out = BytesMut::new();
        for seq in 0..100u32 {
            encode_message_id_resp(
                &mut out,
                CommandId::SubmitSmResp,
                seq,
                Status::ESME_ROK,
                "m1",
            );
            Response::error_for(CommandId::EnquireLink, seq, Status::ESME_ROK)
                .unwrap()
                .encode(&mut out);
        }
        for seq in 0..100u32 {
            let f = decode(&mut out, DEFAULT_MAX_PDU_LEN).unwrap().unwrap();
            assert_eq!(f.sequence_number, seq);
            let Pdu::SubmitSmResp(resp) = f.pdu else {
                panic!()
            };
            assert_eq!(resp.message_id().as_str(), "m1");
            let f = decode(&mut out, DEFAULT_MAX_PDU_LEN).unwrap().unwrap();
            assert_eq!(f.pdu, Pdu::EnquireLinkResp);
        }
        assert!(out.is_empty());
    }

    #[test]
    fn invalid_message_id_is_sent_empty() {
        let mut out = BytesMut::new();
        encode_message_id_resp(&mut out, CommandId::DeliverSmResp, 1, Status::ESME_ROK, "ə");
        assert_eq!(out.len(), HEADER_LEN + 1);
    }

    proptest::proptest! {
        /// Any body inside a well-formed frame, for any command id, is either a frame or a
        /// recoverable error, and the PDU after it still decodes.
        #[test]
        fn never_loses_sync(
            id in proptest::prop_oneof![
                proptest::sample::select(vec![
                    1u32, 2, 4, 5, 6, 9, 0x0B, 0x15, 0x21, 0x102, 0x103,
                    0x8000_0000, 0x8000_0001, 0x8000_0004, 0x8000_0005, 0x8000_0009, 0x8000_0103,
                ]),
                proptest::num::u32::ANY,
            ],
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let mut buf = BytesMut::from(&raw_pdu(id, 1, &body)[..]);
            buf.extend_from_slice(&wire(2, Status::ESME_ROK, &Pdu::EnquireLink));
            match decode(&mut buf, DEFAULT_MAX_PDU_LEN) {
                Ok(Some(f)) => proptest::prop_assert_eq!(f.sequence_number, 1),
                Ok(None) => proptest::prop_assert!(false, "complete frame reported short"),
                Err(e) => {
                    proptest::prop_assert!(!e.is_fatal());
                    if let Some(r) = e.response() {
                        proptest::prop_assert_eq!(r.sequence_number, 1);
                    }
                }
            }
            let next = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap().unwrap();
            proptest::prop_assert_eq!(next.pdu, Pdu::EnquireLink);
            proptest::prop_assert!(buf.is_empty());
        }
    }
}
