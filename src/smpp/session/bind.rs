//! Bind states and which commands each state allows, in both directions.
//!
//! One table, [`allowed`], says what a side (ESME or MC) may send in a state; the session
//! checks each incoming PDU with [`BindState::admit`] (answering the refusal status), and
//! the tests check that what we send is what the table lets us send. Pure logic: no I/O,
//! no clocks.
//!
//! One deliberate leniency: SMPP only lets an MC send deliver_sm, but some aggregators bind
//! to a short-number service as transmitter/transceiver and send citizens' messages as
//! deliver_sm. We accept that (and the deliver_sm_resp that answers it).

use rusmpp::{CommandId, Pdu};

use crate::smpp::codec::Status;

/// Which side of a bind a party plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that binds (operators' clients binding to our listener; us in connector mode).
    Esme,
    /// The side bound to (us as listener; the operator's SMSC in connector mode).
    Mc,
}

impl Role {
    /// The other side.
    pub const fn peer(self) -> Role {
        match self {
            Role::Esme => Role::Mc,
            Role::Mc => Role::Esme,
        }
    }

    /// The command that carries a message from this side to the other: deliver_sm from an
    /// MC, submit_sm from an ESME.
    pub const fn message_command(self) -> CommandId {
        match self {
            Role::Mc => CommandId::DeliverSm,
            Role::Esme => CommandId::SubmitSm,
        }
    }
}

/// The three kinds of bind: which way messages may flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindKind {
    /// bind_transmitter: ESME submits, receives nothing.
    Transmitter,
    /// bind_receiver: ESME only receives deliver_sm.
    Receiver,
    /// bind_transceiver: both.
    Transceiver,
}

impl BindKind {
    /// Whether the ESME may submit on this bind (Tx, Trx).
    pub const fn esme_transmits(self) -> bool {
        matches!(self, BindKind::Transmitter | BindKind::Transceiver)
    }

    /// Whether the MC may deliver to the ESME on this bind (Rx, Trx): where replies go.
    pub const fn esme_receives(self) -> bool {
        matches!(self, BindKind::Receiver | BindKind::Transceiver)
    }
}

/// What a bind request asks for, read once whichever of the three bind PDUs carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindRequest<'a> {
    /// The kind of bind asked for.
    pub kind: BindKind,
    /// Who binds.
    pub system_id: &'a str,
    /// Its password, as octets (compared in constant time by the caller).
    pub password: &'a [u8],
    /// The SMPP version it speaks; the bind response answers in kind.
    pub interface_version: u8,
}

impl<'a> BindRequest<'a> {
    /// The request in `pdu`; `None` if it is not a bind.
    pub fn from_pdu(pdu: &'a Pdu) -> Option<Self> {
        let (kind, system_id, password, version) = match pdu {
            Pdu::BindTransmitter(b) => (
                BindKind::Transmitter,
                &b.system_id,
                &b.password,
                b.interface_version,
            ),
            Pdu::BindReceiver(b) => (
                BindKind::Receiver,
                &b.system_id,
                &b.password,
                b.interface_version,
            ),
            Pdu::BindTransceiver(b) => (
                BindKind::Transceiver,
                &b.system_id,
                &b.password,
                b.interface_version,
            ),
            _ => return None,
        };
        Some(BindRequest {
            kind,
            system_id: system_id.as_str(),
            password: password.as_str().as_bytes(),
            interface_version: u8::from(version),
        })
    }
}

/// The state of one SMPP session (SMPP 5.0 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BindState {
    /// Connected, not yet bound: only bind, enquire_link, generic_nack (and outbind from an MC).
    #[default]
    Open,
    /// Bound with the given kind.
    Bound(BindKind),
    /// unbind sent or received: waiting for the unbind_resp / the close.
    Unbound,
}

/// Whether `sender` may send `command_id` in `state`; the error is the command_status the
/// receiver answers with. ESME_RALYBND for a second bind, ESME_RINVBNDSTS for everything else
/// out of place.
pub fn allowed(sender: Role, state: BindState, command_id: CommandId) -> Result<(), Status> {
    use BindState::{Bound, Open, Unbound};
    use CommandId as C;

    let refuse = Err(Status::ESME_RINVBNDSTS);
    let when = |ok: bool| if ok { Ok(()) } else { refuse };
    let esme_tx = matches!(state, Bound(k) if k.esme_transmits());
    let esme_rx = matches!(state, Bound(k) if k.esme_receives());
    let bound = matches!(state, Bound(_));

    match command_id {
        // Either side, any live state.
        C::EnquireLink | C::EnquireLinkResp | C::GenericNack => Ok(()),
        C::Unbind => when(bound),
        C::UnbindResp => when(bound || state == Unbound),
        _ => match sender {
            Role::Esme => match command_id {
                C::BindTransmitter | C::BindReceiver | C::BindTransceiver => match state {
                    Open => Ok(()),
                    Bound(_) => Err(Status::ESME_RALYBND),
                    _ => refuse,
                },
                C::SubmitSm
                | C::DataSm
                | C::SubmitMulti
                | C::QuerySm
                | C::CancelSm
                | C::ReplaceSm
                | C::BroadcastSm
                | C::QueryBroadcastSm
                | C::CancelBroadcastSm
                // Leniency: MO as deliver_sm from an aggregator bound Tx/Trx.
                | C::DeliverSm => when(esme_tx),
                C::DeliverSmResp | C::DataSmResp => when(esme_rx),
                _ => refuse,
            },
            Role::Mc => match command_id {
                C::BindTransmitterResp
                | C::BindReceiverResp
                | C::BindTransceiverResp
                | C::Outbind => when(state == Open),
                C::DeliverSm | C::DataSm | C::AlertNotification => when(esme_rx),
                C::SubmitSmResp
                | C::DataSmResp
                | C::SubmitMultiResp
                | C::QuerySmResp
                | C::CancelSmResp
                | C::ReplaceSmResp
                | C::BroadcastSmResp
                | C::QueryBroadcastSmResp
                | C::CancelBroadcastSmResp
                // Answer to the deliver_sm leniency above.
                | C::DeliverSmResp => when(esme_tx),
                _ => refuse,
            },
        },
    }
}

impl BindState {
    /// Checks a PDU received while we play `role`: `Err(status)` is what to answer with (via
    /// `Response::error_for`).
    pub fn admit(self, role: Role, command_id: CommandId) -> Result<(), Status> {
        allowed(role.peer(), self, command_id)
    }

    /// Whether the session is bound in any kind.
    pub const fn is_bound(self) -> bool {
        matches!(self, BindState::Bound(_))
    }

    /// Whether replies (deliver_sm as listener) may be routed to this session.
    pub const fn can_receive_mt(self) -> bool {
        matches!(self, BindState::Bound(kind) if kind.esme_receives())
    }

    /// Whether we, playing `role`, may send messages to the peer on this session: deliver_sm
    /// to a receiver or transceiver as MC, submit_sm on our transmitter or transceiver as
    /// ESME.
    pub const fn sends_messages(self, role: Role) -> bool {
        match (role, self) {
            (Role::Mc, state) => state.can_receive_mt(),
            (Role::Esme, BindState::Bound(kind)) => kind.esme_transmits(),
            (Role::Esme, _) => false,
        }
    }

    /// The state after a successful bind of `kind`. Only an open session binds:
    /// ESME_RALYBND if already bound, ESME_RINVBNDSTS after unbind.
    pub fn bind(self, kind: BindKind) -> Result<BindState, Status> {
        match self {
            BindState::Open => Ok(BindState::Bound(kind)),
            BindState::Bound(_) => Err(Status::ESME_RALYBND),
            BindState::Unbound => Err(Status::ESME_RINVBNDSTS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BindKind::{Receiver, Transceiver, Transmitter};
    use BindState::{Bound, Open, Unbound};

    const ALL: [BindState; 5] = [
        Open,
        Bound(Transmitter),
        Bound(Receiver),
        Bound(Transceiver),
        Unbound,
    ];

    /// Whether we, playing `role`, may send `command_id` in `state`: the table read from
    /// the other side.
    fn may_send(state: BindState, role: Role, command_id: CommandId) -> bool {
        allowed(role, state, command_id).is_ok()
    }

    #[test]
    fn bind_only_when_open() {
        for id in [
            CommandId::BindTransmitter,
            CommandId::BindReceiver,
            CommandId::BindTransceiver,
        ] {
            assert_eq!(Open.admit(Role::Mc, id), Ok(()));
            for kind in [Transmitter, Receiver, Transceiver] {
                assert_eq!(Bound(kind).admit(Role::Mc, id), Err(Status::ESME_RALYBND));
            }
            assert_eq!(Unbound.admit(Role::Mc, id), Err(Status::ESME_RINVBNDSTS));
        }
        assert_eq!(Open.bind(Transceiver), Ok(Bound(Transceiver)));
        assert_eq!(Bound(Receiver).bind(Transmitter), Err(Status::ESME_RALYBND));
        assert_eq!(Unbound.bind(Receiver), Err(Status::ESME_RINVBNDSTS));
    }

    #[test]
    fn submit_needs_a_transmitting_bind() {
        for id in [CommandId::SubmitSm, CommandId::DataSm, CommandId::DeliverSm] {
            assert_eq!(Bound(Transmitter).admit(Role::Mc, id), Ok(()));
            assert_eq!(Bound(Transceiver).admit(Role::Mc, id), Ok(()));
            assert_eq!(
                Bound(Receiver).admit(Role::Mc, id),
                Err(Status::ESME_RINVBNDSTS)
            );
            assert_eq!(Open.admit(Role::Mc, id), Err(Status::ESME_RINVBNDSTS));
            assert_eq!(Unbound.admit(Role::Mc, id), Err(Status::ESME_RINVBNDSTS));
        }
    }

    #[test]
    fn enquire_link_in_any_live_state() {
        for state in ALL {
            assert_eq!(state.admit(Role::Mc, CommandId::EnquireLink), Ok(()));
            assert_eq!(state.admit(Role::Esme, CommandId::EnquireLink), Ok(()));
            assert_eq!(state.admit(Role::Mc, CommandId::GenericNack), Ok(()));
        }
    }

    #[test]
    fn which_side_sends_messages() {
        for (state, mc, esme) in [
            (Bound(Receiver), true, false),
            (Bound(Transmitter), false, true),
            (Bound(Transceiver), true, true),
            (Open, false, false),
            (Unbound, false, false),
        ] {
            assert_eq!(state.sends_messages(Role::Mc), mc, "{state:?} as MC");
            assert_eq!(state.sends_messages(Role::Esme), esme, "{state:?} as ESME");
            // What we may send is exactly what the table lets us send.
            let id = Role::Mc.message_command();
            assert_eq!(may_send(state, Role::Mc, id), mc, "{state:?}");
            let id = Role::Esme.message_command();
            assert_eq!(may_send(state, Role::Esme, id), esme, "{state:?}");
        }
    }

    #[test]
    fn unbind_only_when_bound() {
        assert!(Open.admit(Role::Mc, CommandId::Unbind).is_err());
        assert!(Bound(Receiver).admit(Role::Mc, CommandId::Unbind).is_ok());
        assert!(Unbound.admit(Role::Mc, CommandId::UnbindResp).is_ok());
    }

    #[test]
    fn listener_delivers_only_to_receiver_capable_binds() {
        assert!(may_send(Bound(Receiver), Role::Mc, CommandId::DeliverSm));
        assert!(may_send(Bound(Transceiver), Role::Mc, CommandId::DeliverSm));
        assert!(!may_send(
            Bound(Transmitter),
            Role::Mc,
            CommandId::DeliverSm
        ));
        assert!(!may_send(Open, Role::Mc, CommandId::DeliverSm));
        assert!(Bound(Receiver).can_receive_mt());
        assert!(Bound(Transceiver).can_receive_mt());
        assert!(!Bound(Transmitter).can_receive_mt());
        assert!(!Open.can_receive_mt());
    }

    #[test]
    fn listener_answers_what_it_receives() {
        assert!(may_send(Open, Role::Mc, CommandId::BindTransceiverResp));
        assert!(may_send(
            Bound(Transmitter),
            Role::Mc,
            CommandId::SubmitSmResp
        ));
        assert!(may_send(
            Bound(Transmitter),
            Role::Mc,
            CommandId::DeliverSmResp
        ));
        assert!(may_send(
            Bound(Transmitter),
            Role::Mc,
            CommandId::DataSmResp
        ));
        assert!(!may_send(
            Bound(Receiver),
            Role::Mc,
            CommandId::SubmitSmResp
        ));
        // Replies to our deliver_sm come back on the receiver bind.
        assert_eq!(
            Bound(Receiver).admit(Role::Mc, CommandId::DeliverSmResp),
            Ok(())
        );
        assert!(
            Bound(Transmitter)
                .admit(Role::Mc, CommandId::DeliverSmResp)
                .is_err()
        );
        // An ESME never sends outbind or alert_notification.
        assert!(Open.admit(Role::Mc, CommandId::Outbind).is_err());
        assert!(
            Bound(Transceiver)
                .admit(Role::Mc, CommandId::AlertNotification)
                .is_err()
        );
    }

    #[test]
    fn connector_rules() {
        assert!(may_send(Open, Role::Esme, CommandId::BindTransceiver));
        assert!(
            Open.admit(Role::Esme, CommandId::BindTransceiverResp)
                .is_ok()
        );
        assert!(Open.admit(Role::Esme, CommandId::Outbind).is_ok());
        assert!(may_send(
            Bound(Transceiver),
            Role::Esme,
            CommandId::SubmitSm
        ));
        assert!(!may_send(Bound(Receiver), Role::Esme, CommandId::SubmitSm));
        assert!(
            Bound(Receiver)
                .admit(Role::Esme, CommandId::DeliverSm)
                .is_ok()
        );
        assert!(
            Bound(Transmitter)
                .admit(Role::Esme, CommandId::DeliverSm)
                .is_err()
        );
        assert!(
            Bound(Transmitter)
                .admit(Role::Esme, CommandId::SubmitSmResp)
                .is_ok()
        );
        assert!(may_send(
            Bound(Receiver),
            Role::Esme,
            CommandId::DeliverSmResp
        ));
        assert!(
            Bound(Transceiver)
                .admit(Role::Esme, CommandId::SubmitSm)
                .is_err()
        );
    }

    #[test]
    fn bind_request_read_from_each_kind() {
        for kind in [Transmitter, Receiver, Transceiver] {
            let pdu = crate::smpp::codec::bind_request(kind, "demo", "pw", "", 0x34)
                .expect("a bind request");
            let bind = BindRequest::from_pdu(&pdu).expect("read back");
            assert_eq!(
                (
                    bind.kind,
                    bind.system_id,
                    bind.password,
                    bind.interface_version
                ),
                (kind, "demo", &b"pw"[..], 0x34)
            );
        }
        assert!(BindRequest::from_pdu(&Pdu::EnquireLink).is_none());
    }
}
