//! The answers we build away from the socket: error responses, bind responses and
//! `generic_nack`, as a PDU with the header fields it goes out with.

use bytes::BytesMut;
use rusmpp::{
    CommandId, Pdu,
    pdus::{
        BindReceiverResp, BindTransceiverResp, BindTransmitterResp, BroadcastSmResp, DataSmResp,
        DeliverSmResp, QueryBroadcastSmResp, QuerySmResp, SubmitMultiResp, SubmitSmResp,
    },
    types::COctetString,
};

use super::codec::encode;
use super::status::Status;

/// A PDU to send back with its header fields, for answers computed away from the socket
/// (errors, session refusals).
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
