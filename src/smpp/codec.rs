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

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rusmpp::{
    CommandId, Pdu,
    decode::{DecodeErrorKind, DecodeWithKeyOptional},
    encode::{Length, owned::Encode},
    pdus::{
        BindReceiverResp, BindTransceiverResp, BindTransmitterResp, BroadcastSmResp, DataSmResp,
        DeliverSm, DeliverSmResp, QueryBroadcastSmResp, QuerySmResp, SubmitMultiResp, SubmitSm,
        SubmitSmResp,
        parts::{DataSmParts, DeliverSmParts, SubmitSmParts},
    },
    tlvs::{Tlv, TlvValue},
    types::{AnyOctetString, COctetString, EmptyOrFullCOctetString, OctetString},
    values::{
        DataCoding, EsmClass, MessagePayload, Npi, PriorityFlag, RegisteredDelivery,
        ReplaceIfPresentFlag, ServiceType, Ton,
    },
};

pub use super::status::Status;
use super::text::{self, Concat, TextError};

/// Octets in the SMPP header: command_length, command_id, command_status, sequence_number.
pub const HEADER_LEN: usize = 16;

/// Default upper bound on `command_length`. A submit_sm is at most a few hundred octets; 64 KiB
/// leaves room for a large message_payload while keeping one peer from making us buffer
/// megabytes.
pub const DEFAULT_MAX_PDU_LEN: usize = 64 * 1024;

/// esm_class UDHI bit: `short_message` starts with a user data header.
pub const ESM_CLASS_UDHI: u8 = 0x40;

/// Bits 5..2 of esm_class: the message type (0 for a normal message; receipts and
/// acknowledgements otherwise).
pub const ESM_CLASS_MESSAGE_TYPE_MASK: u8 = 0x3C;

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
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    /// command_length smaller than the header itself.
    #[error(
        "command_length {} below the 16-octet header (command_id {:#x}, sequence_number {})",
        header.command_length, header.command_id, header.sequence_number
    )]
    LengthBelowHeader {
        /// The header as read (its other fields are probably garbage too).
        header: Header,
    },
    /// command_length beyond what we agree to buffer.
    #[error(
        "command_length {} above the {max}-octet limit (command_id {:#x}, sequence_number {})",
        header.command_length, header.command_id, header.sequence_number
    )]
    LengthAboveMax {
        /// The header as read.
        header: Header,
        /// The configured limit.
        max: usize,
    },
    /// The transport failed (only from the tokio codec).
    #[error("i/o error while reading SMPP frames: {0}")]
    Io(#[from] std::io::Error),
}

impl FramingError {
    /// The last word to the peer before closing: `generic_nack` ESME_RINVCMDLEN with the
    /// offending sequence number, so its logs show why the link dropped.
    pub fn response(&self) -> Option<Response> {
        match self {
            FramingError::LengthBelowHeader { header }
            | FramingError::LengthAboveMax { header, .. } => Some(Response::generic_nack(
                header.sequence_number,
                Status::ESME_RINVCMDLEN,
            )),
            FramingError::Io(_) => None,
        }
    }

    /// Always [`Status::ESME_RINVCMDLEN`] for length errors, [`Status::ESME_RSYSERR`] for i/o.
    pub fn status(&self) -> Status {
        match self {
            FramingError::Io(_) => Status::ESME_RSYSERR,
            _ => Status::ESME_RINVCMDLEN,
        }
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
#[derive(Debug, Clone, thiserror::Error)]
#[error("bad {command_id:?} body (sequence_number {sequence_number}): {kind:?}")]
pub struct BodyError {
    /// The command as read (`CommandId::Other` for unknown ids).
    pub command_id: CommandId,
    /// Its sequence number, to be echoed in the answer.
    pub sequence_number: u32,
    /// What went wrong.
    pub kind: BodyErrorKind,
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
            DecodeError::Framing(e) => e.response(),
            DecodeError::Body(e) => e.response(),
        }
    }

    /// The command_status this error deserves.
    pub fn status(&self) -> Status {
        match self {
            DecodeError::Framing(e) => e.status(),
            DecodeError::Body(e) => e.status(),
        }
    }
}

/// Decodes one PDU from the front of `src`, consuming its octets unless the error is fatal.
///
/// `Ok(None)` means "need more bytes" (and `src` has been reserved for the rest of the PDU);
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
        src.reserve(len - src.len());
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

/// Octets of a body we keep aside for diagnosis: the mandatory fields before short_message
/// of a submit_sm/deliver_sm take at most 95, a bind at most 82.
const DIAGNOSIS_PREFIX: usize = 128;

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

fn needs_diagnosis(id: CommandId) -> bool {
    matches!(
        id,
        CommandId::BindTransmitter
            | CommandId::BindReceiver
            | CommandId::BindTransceiver
            | CommandId::SubmitSm
            | CommandId::DeliverSm
            | CommandId::DataSm
    )
}

/// A cursor over the copied front of a body that checks SMPP field syntax the way rusmpp
/// does. `total` is the real body length, so fields past the copy can still be measured.
struct Walk<'a> {
    buf: &'a [u8],
    pos: usize,
    total: usize,
}

/// Why a walk step failed.
enum Stop {
    /// The field is wrong (too long, not terminated, not ASCII, or the body ends inside it).
    Bad,
    /// The field's content lies beyond our copy; the body itself may be fine here.
    OutOfCopy,
}

impl Walk<'_> {
    fn skip(&mut self, n: usize) -> Result<(), Stop> {
        if self.pos + n > self.total {
            return Err(Stop::Bad);
        }
        self.pos += n;
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        if self.pos >= self.total {
            return Err(Stop::Bad);
        }
        let b = *self.buf.get(self.pos).ok_or(Stop::OutOfCopy)?;
        self.pos += 1;
        Ok(b)
    }

    /// A time field: empty, or exactly `max - 1` characters (rusmpp's
    /// `EmptyOrFullCOctetString`, as SMPP's absolute/relative time formats require).
    fn time(&mut self, max: usize) -> Result<(), Stop> {
        let start = self.pos;
        self.cstr(max)?;
        match self.pos - start {
            1 => Ok(()),
            n if n == max => Ok(()),
            _ => Err(Stop::Bad),
        }
    }

    /// A C-Octet String of at most `max` octets including the NUL.
    fn cstr(&mut self, max: usize) -> Result<(), Stop> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let window = &rest[..rest.len().min(max)];
        match window.iter().position(|&b| b == 0) {
            Some(i) if window[..i].is_ascii() => {
                self.pos += i + 1;
                Ok(())
            }
            Some(_) => Err(Stop::Bad),
            None if !window.is_ascii() => Err(Stop::Bad),
            None if window.len() >= max || self.pos + window.len() >= self.total => Err(Stop::Bad),
            None => Err(Stop::OutOfCopy),
        }
    }
}

/// Finds the first field of a failed body and the status the spec prescribes for it.
fn diagnose(id: CommandId, prefix: &[u8], total: usize) -> (&'static str, Status) {
    let mut w = Walk {
        buf: prefix,
        pos: 0,
        total,
    };
    let fallback = ("body", Status::ESME_RSYSERR);
    let step = |r: Result<(), Stop>, field: &'static str, status: Status| match r {
        Ok(()) => None,
        Err(Stop::Bad) => Some((field, status)),
        Err(Stop::OutOfCopy) => Some(fallback),
    };
    macro_rules! check {
        ($r:expr, $field:literal, $status:ident) => {
            if let Some(found) = step($r, $field, Status::$status) {
                return found;
            }
        };
    }
    match id {
        CommandId::BindTransmitter | CommandId::BindReceiver | CommandId::BindTransceiver => {
            check!(w.cstr(16), "system_id", ESME_RINVSYSID);
            check!(w.cstr(9), "password", ESME_RINVPASWD);
            check!(w.cstr(13), "system_type", ESME_RINVSYSTYP);
            check!(w.skip(3), "interface_version", ESME_RBINDFAIL);
            check!(w.cstr(41), "address_range", ESME_RBINDFAIL);
            ("body", Status::ESME_RBINDFAIL)
        }
        CommandId::SubmitSm | CommandId::DeliverSm | CommandId::DataSm => {
            check!(w.cstr(6), "service_type", ESME_RINVSERTYP);
            check!(w.skip(2), "source_addr_ton", ESME_RINVSRCADR);
            check!(w.cstr(21), "source_addr", ESME_RINVSRCADR);
            check!(w.skip(2), "dest_addr_ton", ESME_RINVDSTADR);
            check!(w.cstr(21), "destination_addr", ESME_RINVDSTADR);
            if id == CommandId::DataSm {
                check!(w.skip(3), "esm_class", ESME_RINVMSGLEN);
            } else {
                check!(w.skip(3), "esm_class", ESME_RINVMSGLEN);
                check!(w.time(17), "schedule_delivery_time", ESME_RINVSCHED);
                check!(w.time(17), "validity_period", ESME_RINVEXPIRY);
                check!(w.skip(4), "data_coding", ESME_RINVMSGLEN);
                let sm_length = match w.u8() {
                    Ok(n) => usize::from(n),
                    Err(Stop::Bad) => return ("sm_length", Status::ESME_RINVMSGLEN),
                    Err(Stop::OutOfCopy) => return fallback,
                };
                check!(w.skip(sm_length), "short_message", ESME_RINVMSGLEN);
            }
            diagnose_tlvs(&mut w)
        }
        _ => fallback,
    }
}

/// Walks a TLV stream: every TLV needs a 4-octet header and its value inside the body, and
/// the fixed-size TLVs we read (sar_*) must have their spec length.
fn diagnose_tlvs(w: &mut Walk<'_>) -> (&'static str, Status) {
    loop {
        let left = w.total - w.pos;
        if left == 0 {
            // Every TLV is well formed; rusmpp refused one of the values.
            return ("tlvs", Status::ESME_RINVTLVVAL);
        }
        if left < 4 {
            return ("tlvs", Status::ESME_RINVTLVSTREAM);
        }
        let Some(head) = w.buf.get(w.pos..w.pos + 4) else {
            return ("body", Status::ESME_RSYSERR);
        };
        let tag = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let expected = match tag {
            TAG_SAR_MSG_REF_NUM => Some(2),
            TAG_SAR_TOTAL_SEGMENTS | TAG_SAR_SEGMENT_SEQNUM => Some(1),
            _ => None,
        };
        if expected.is_some_and(|n| n != len) {
            return ("tlvs", Status::ESME_RINVTLVLEN);
        }
        w.pos += 4;
        if w.skip(len).is_err() {
            return ("tlvs", Status::ESME_RINVTLVSTREAM);
        }
    }
}

const TAG_SAR_MSG_REF_NUM: u16 = 0x020C;
const TAG_SAR_TOTAL_SEGMENTS: u16 = 0x020E;
const TAG_SAR_SEGMENT_SEQNUM: u16 = 0x020F;

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

/// A PDU to send back with its header fields, for answers computed away from the socket
/// (errors, session refusals) and for the tokio `Encoder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Echo of the request's sequence_number.
    pub sequence_number: u32,
    /// command_status.
    pub status: Status,
    /// The body (its type gives the command_id).
    pub pdu: Pdu,
}

impl Response {
    /// `generic_nack`: the answer to a PDU we cannot even attribute to a command.
    pub fn generic_nack(sequence_number: u32, status: Status) -> Response {
        Response {
            sequence_number,
            status,
            pdu: Pdu::GenericNack,
        }
    }

    /// The `*_resp` to request `command_id` carrying `status` and an empty body, or
    /// `generic_nack` when the command is unknown. `None` for commands that are never answered
    /// (responses, outbind, alert_notification).
    ///
    /// Error responses keep a body (empty message_id / system_id) as SMPP 5.0 does; SMPP 3.4
    /// peers ignore it, and parsers that insist on the field find it.
    pub fn error_for(
        command_id: CommandId,
        sequence_number: u32,
        status: Status,
    ) -> Option<Response> {
        let pdu = match command_id {
            CommandId::BindTransmitter => Pdu::BindTransmitterResp(BindTransmitterResp::default()),
            CommandId::BindReceiver => Pdu::BindReceiverResp(BindReceiverResp::default()),
            CommandId::BindTransceiver => Pdu::BindTransceiverResp(BindTransceiverResp::default()),
            CommandId::SubmitSm => Pdu::SubmitSmResp(SubmitSmResp::default()),
            CommandId::DeliverSm => Pdu::DeliverSmResp(DeliverSmResp::default()),
            CommandId::DataSm => Pdu::DataSmResp(DataSmResp::default()),
            CommandId::SubmitMulti => Pdu::SubmitMultiResp(SubmitMultiResp::default()),
            CommandId::QuerySm => Pdu::QuerySmResp(QuerySmResp::default()),
            CommandId::CancelSm => Pdu::CancelSmResp,
            CommandId::ReplaceSm => Pdu::ReplaceSmResp,
            CommandId::BroadcastSm => Pdu::BroadcastSmResp(BroadcastSmResp::default()),
            CommandId::QueryBroadcastSm => {
                Pdu::QueryBroadcastSmResp(QueryBroadcastSmResp::default())
            }
            CommandId::CancelBroadcastSm => Pdu::CancelBroadcastSmResp,
            CommandId::EnquireLink => Pdu::EnquireLinkResp,
            CommandId::Unbind => Pdu::UnbindResp,
            CommandId::Other(_) => Pdu::GenericNack,
            _ => return None,
        };
        Some(Response {
            sequence_number,
            status,
            pdu,
        })
    }

    /// A successful bind response of the kind matching `bind` (a bind_* command id) with our
    /// system_id, and the sc_interface_version TLV when the peer spoke 3.4 or later (3.3 peers
    /// do not understand TLVs). `None` if `bind` is not a bind or `system_id` is not a valid
    /// SMPP system_id (ASCII, at most 15 characters).
    pub fn bind_resp(
        bind: CommandId,
        sequence_number: u32,
        status: Status,
        system_id: &str,
        peer_interface_version: u8,
    ) -> Option<Response> {
        let system_id: COctetString<1, 16> = system_id.parse().ok()?;
        let version =
            (peer_interface_version >= 0x34).then_some(rusmpp::values::InterfaceVersion::Smpp5_0);
        let pdu = match bind {
            CommandId::BindTransmitter => {
                Pdu::BindTransmitterResp(BindTransmitterResp::new(system_id, version))
            }
            CommandId::BindReceiver => {
                Pdu::BindReceiverResp(BindReceiverResp::new(system_id, version))
            }
            CommandId::BindTransceiver => {
                Pdu::BindTransceiverResp(BindTransceiverResp::new(system_id, version))
            }
            _ => return None,
        };
        Some(Response {
            sequence_number,
            status,
            pdu,
        })
    }

    /// Appends this response to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        encode(dst, self.sequence_number, self.status, &self.pdu);
    }
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
    addr: COctetString<1, 21>,
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

    fn from_parts(ton: Ton, npi: Npi, addr: COctetString<1, 21>) -> Address {
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
        for tlv in tlvs {
            match tlv.into_parts().value {
                Some(TlvValue::MessagePayload(p)) => message_payload = Some(p.value.into_bytes()),
                Some(TlvValue::SarMsgRefNum(n)) => ref_num = Some(n),
                Some(TlvValue::SarTotalSegments(n)) => total = Some(n),
                Some(TlvValue::SarSegmentSeqnum(n)) => seq = Some(n),
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

    /// Whether esm_class marks this as a delivery receipt or acknowledgement rather than a
    /// message someone typed (message type bits non-zero). Connector mode must not treat a
    /// receipt as a permit request.
    pub fn is_receipt(&self) -> bool {
        self.esm_class & ESM_CLASS_MESSAGE_TYPE_MASK != 0
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
        dst.put_slice(&[esm_class, 0, 0, 0, 0, 0, 0, self.data_coding, 0]);
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

/// [`decode`] and [`encode`] as a tokio-util codec for `FramedRead`/`FramedWrite`. A bad body
/// is an `Ok(Some(Err(_)))` item, not a stream error, because tokio-util ends the stream after
/// the first `Err`.
#[derive(Debug, Clone, Copy)]
pub struct SmppCodec {
    max_len: usize,
}

impl SmppCodec {
    /// A codec refusing PDUs longer than `max_len` octets.
    pub fn new(max_len: usize) -> SmppCodec {
        SmppCodec { max_len }
    }

    /// The configured maximum PDU length.
    pub fn max_len(&self) -> usize {
        self.max_len
    }
}

impl Default for SmppCodec {
    fn default() -> Self {
        SmppCodec::new(DEFAULT_MAX_PDU_LEN)
    }
}

impl tokio_util::codec::Decoder for SmppCodec {
    type Item = Result<Frame, BodyError>;
    type Error = FramingError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match decode(src, self.max_len) {
            Ok(frame) => Ok(frame.map(Ok)),
            Err(DecodeError::Body(e)) => Ok(Some(Err(e))),
            Err(DecodeError::Framing(e)) => Err(e),
        }
    }
}

impl tokio_util::codec::Encoder<Response> for SmppCodec {
    type Error = FramingError;

    fn encode(&mut self, item: Response, dst: &mut BytesMut) -> Result<(), Self::Error> {
        item.encode(dst);
        Ok(())
    }
}

impl tokio_util::codec::Encoder<&Response> for SmppCodec {
    type Error = FramingError;

    fn encode(&mut self, item: &Response, dst: &mut BytesMut) -> Result<(), Self::Error> {
        item.encode(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply part from 8103 to 994501234567 (international, E.164).
    fn to_citizen(data_coding: u8, udh: bool, short_message: &[u8]) -> ReplyPart<'_> {
        ReplyPart {
            source: "8103",
            dest_ton: 1,
            dest_npi: 1,
            destination: "994501234567",
            data_coding,
            udh,
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
    use rusmpp::{
        pdus::{BindReceiver, BindTransceiver, BindTransmitter, DataSm, Outbind},
        tlvs::MessageSubmissionRequestTlvValue,
        values::InterfaceVersion,
    };
    use tokio_util::codec::Decoder as _;

    fn addr(ton: u8, npi: u8, s: &str) -> Address {
        Address::new(ton, npi, s).unwrap()
    }

    fn wire(seq: u32, status: Status, pdu: &Pdu) -> BytesMut {
        let mut b = BytesMut::new();
        encode(&mut b, seq, status, pdu);
        b
    }

    fn raw_pdu(id: u32, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_be_bytes());
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&0u32.to_be_bytes());
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(body);
        v
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
        assert_eq!(err.status(), Status::ESME_RINVCMDLEN);
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
        assert_eq!(err.status(), Status::ESME_RINVCMDID);
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

    fn submit_body(
        service_type: &[u8],
        source: &[u8],
        dest: &[u8],
        sm: &[u8],
        tlvs: &[u8],
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(service_type);
        b.extend_from_slice(&[1, 1]);
        b.extend_from_slice(source);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(dest);
        b.extend_from_slice(&[0, 0, 0]); // esm_class, protocol_id, priority_flag
        b.extend_from_slice(&[0, 0]); // schedule, validity
        b.extend_from_slice(&[0, 0, 0, 0]); // registered_delivery .. sm_default_msg_id
        b.push(sm.len() as u8);
        b.extend_from_slice(sm);
        b.extend_from_slice(tlvs);
        b
    }

    fn status_of(id: u32, body: &[u8]) -> (Status, CommandId) {
        let mut buf = BytesMut::from(&raw_pdu(id, 1, body)[..]);
        let err = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap_err();
        assert!(buf.is_empty());
        let resp = err.response().unwrap();
        (resp.status, resp.pdu.command_id())
    }

    #[test]
    fn malformed_fields_get_precise_statuses() {
        let long = [b'9'; 30];
        let mut long_src = long.to_vec();
        long_src.push(0);
        assert_eq!(
            status_of(0x04, &submit_body(b"\0", &long_src, b"8103\0", b"x", &[])),
            (Status::ESME_RINVSRCADR, CommandId::SubmitSmResp)
        );
        assert_eq!(
            status_of(0x05, &submit_body(b"\0", b"1\0", &long_src, b"x", &[])),
            (Status::ESME_RINVDSTADR, CommandId::DeliverSmResp)
        );
        assert_eq!(
            status_of(
                0x04,
                &submit_body(b"TOOLONGTYPE\0", b"1\0", b"2\0", b"x", &[])
            ),
            (Status::ESME_RINVSERTYP, CommandId::SubmitSmResp)
        );
        assert_eq!(
            status_of(
                0x04,
                &submit_body(b"\0", b"1\0", b"2\0", b"x", &[0x04, 0x24, 0, 9, 1])
            ),
            (Status::ESME_RINVTLVSTREAM, CommandId::SubmitSmResp)
        );
        assert_eq!(
            status_of(
                0x04,
                &submit_body(b"\0", b"1\0", b"2\0", b"x", &[0x02, 0x0C, 0, 1, 7])
            ),
            (Status::ESME_RINVTLVLEN, CommandId::SubmitSmResp)
        );
        assert_eq!(
            status_of(0x04, &submit_body(b"\0", b"1\xC3\0", b"2\0", b"x", &[])),
            (Status::ESME_RINVSRCADR, CommandId::SubmitSmResp)
        );
        // validity_period must be empty or a full 16-character SMPP time.
        let mut body = submit_body(b"\0", b"1\0", b"2\0", b"x", &[]);
        let at = 1 + 2 + 2 + 2 + 2 + 3 + 1;
        body.splice(at..at + 1, b"2405011200\0".iter().copied());
        assert_eq!(
            status_of(0x04, &body),
            (Status::ESME_RINVEXPIRY, CommandId::SubmitSmResp)
        );
        // A long short_message cut short, past the diagnosis copy.
        let mut body = submit_body(b"\0", b"1\0", b"2\0", &[b'x'; 150], &[]);
        let at = body.len() - 151;
        body[at] = 200;
        assert_eq!(
            status_of(0x04, &body),
            (Status::ESME_RINVMSGLEN, CommandId::SubmitSmResp)
        );
        // bind_transceiver with a 20-character system_id.
        let mut bind = b"abcdefghijabcdefghij\0pw\0\0".to_vec();
        bind.extend_from_slice(&[0x34, 0, 0, 0]);
        assert_eq!(
            status_of(0x09, &bind),
            (Status::ESME_RINVSYSID, CommandId::BindTransceiverResp)
        );
        let mut bind = b"sys\0password-too-long\0\0".to_vec();
        bind.extend_from_slice(&[0x34, 0, 0, 0]);
        assert_eq!(
            status_of(0x02, &bind),
            (Status::ESME_RINVPASWD, CommandId::BindTransmitterResp)
        );
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
    fn mt_parts_from_encoded_reply() {
        let enc = text::encode_mt(&"İcazə ".repeat(20), 5).unwrap();
        let n = enc.parts.len();
        let parts: Vec<_> =
            mt_parts(&addr(3, 0, "8103"), &addr(1, 1, "994501234567"), enc).collect();
        assert_eq!(parts.len(), n);
        assert!(parts.iter().all(|p| p.udh && p.data_coding == 8));
    }

    #[test]
    fn address_validation() {
        assert!(Address::new(1, 1, "994501234567").is_ok());
        assert!(Address::new(5, 0, "ICAZE").is_ok());
        assert!(Address::new(1, 1, "123456789012345678901").is_err());
        assert!(Address::new(1, 1, "ə").is_err());
        assert_eq!(&addr(1, 1, "123").to_bytes()[..], b"123");
    }

    #[test]
    fn tokio_codec_keeps_going_after_bad_body() {
        let mut codec = SmppCodec::default();
        let mut buf = BytesMut::from(&raw_pdu(0x99, 1, &[])[..]);
        buf.extend_from_slice(&wire(2, Status::ESME_ROK, &Pdu::EnquireLink));
        let first = codec.decode(&mut buf).unwrap().unwrap();
        assert!(first.is_err());
        let second = codec.decode(&mut buf).unwrap().unwrap().unwrap();
        assert_eq!(second.pdu, Pdu::EnquireLink);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        let mut big = BytesMut::from(&raw_pdu(0x04, 1, &[])[..]);
        big[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(codec.decode(&mut big).is_err());
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
