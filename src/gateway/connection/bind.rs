//! Binds: checking an operator's bind against the config (as the MC) and taking the SMSC's
//! acceptance of ours (as a connector's ESME). The session has already checked that the
//! bind state allows a bind and answers in the form SMPP wants; this file decides who may.

use super::*;
use crate::telemetry::mask_system_id;

impl Connection {
    /// A bind request the session admitted: accepted if the operator, its password, its
    /// address and its bind count say so.
    pub(super) fn on_bind(&mut self, command_id: CommandId, seq: u32, pdu: &Pdu) {
        let Some(request) = BindRequest::from_pdu(pdu) else {
            return;
        };
        let ip = self.peer.ip();
        let admission = self.gw.admission.clone();
        if !admission.may_bind(ip, self.now) {
            // Locked out: refused without looking at the credentials (logged at lock-out).
            return self.deny(command_id, seq, Status::ESME_RBINDFAIL, "locked out", "");
        }
        let system_id = request.system_id;
        let Some(op) = self.gw.operators.get(system_id).cloned() else {
            return self.deny(
                command_id,
                seq,
                Status::ESME_RINVSYSID,
                "unknown system_id",
                system_id,
            );
        };
        if !op.config.password.matches(request.password) {
            return self.deny(
                command_id,
                seq,
                Status::ESME_RINVPASWD,
                "wrong password",
                system_id,
            );
        }
        if !op.config.allowed_ips.is_empty() && !op.config.allowed_ips.contains(&ip) {
            return self.deny(
                command_id,
                seq,
                Status::ESME_RBINDFAIL,
                "address not allowed",
                system_id,
            );
        }
        if self.session.is_draining() {
            return self
                .session
                .refuse_bind(command_id, seq, Status::ESME_RBINDFAIL);
        }
        if op.binds.fetch_add(1, Ordering::AcqRel) >= op.config.max_binds {
            op.binds.fetch_sub(1, Ordering::AcqRel);
            tracing::info!(peer = %self.peer, system_id, max = op.config.max_binds, "bind refused: too many binds");
            self.gw.metrics.refused_bind("too_many_binds");
            return self
                .session
                .refuse_bind(command_id, seq, Status::ESME_RBINDFAIL);
        }
        admission.succeeded(ip);
        if let Some(ticket) = self.ticket.as_mut() {
            ticket.bound();
        }
        let policy = outbound::policy(op.config.window, self.gw.config.smpp.response_timeout);
        self.session
            .accept_bind(command_id, seq, &request, SYSTEM_ID, policy);
        tracing::info!(peer = %self.peer, system_id, kind = ?request.kind, "bound");
        self.bound(&op, request.kind);
        self.operator = Some(op);
    }

    /// A failed bind (wrong credentials, an address not allowed, a locked-out address):
    /// counted against the address, answered after its slow-down, and the connection closed.
    /// Logged once per window and address (and at lock-out), with the system_id masked: it
    /// is as often a mistyped password as a name.
    fn deny(
        &mut self,
        command_id: CommandId,
        seq: u32,
        status: Status,
        reason: &'static str,
        system_id: &str,
    ) {
        let ip = self.peer.ip();
        let failure = self.gw.admission.failed(ip, self.now);
        self.gw.metrics.refused_bind(reason);
        if failure.locked {
            tracing::warn!(%ip, failed = self.gw.admission.failed_binds(), lockout = ?self.gw.config.smpp.bind_lockout, "too many failed binds from this address: locked out");
        } else if failure.log {
            tracing::info!(%ip, reason, system_id = %mask_system_id(system_id), "bind refused (further failures from this address in the window are counted, not logged)");
        }
        self.answer_after = Some(self.now + failure.delay);
        self.session.refuse_bind(command_id, seq, status);
    }

    /// Counts a bind of `kind` up for `op` (counted down in `release`).
    fn bound(&mut self, op: &OperatorState, kind: BindKind) {
        let i = kind_index(kind);
        op.metrics.binds[i].inc();
        self.bound_kind = Some(kind);
    }

    /// The SMSC accepted our bind (connector mode): the connector's operator is ours now.
    pub(super) fn on_bound(&mut self, kind: BindKind) {
        let Some(dial) = self.dial.as_ref() else {
            return;
        };
        let op = dial.operator.clone();
        op.binds.fetch_add(1, Ordering::AcqRel);
        self.session.deliver_with(outbound::policy(
            op.config.window,
            self.gw.config.smpp.response_timeout,
        ));
        tracing::info!(connector = %dial.name, peer = %self.peer, ?kind, "bound to the SMSC");
        self.gw.metrics.connector(&dial.name, 1);
        self.bound(&op, kind);
        self.operator = Some(op);
    }
}

/// Where `kind` sits in [`crate::telemetry::metrics::BIND_KINDS`].
pub(super) fn kind_index(kind: BindKind) -> usize {
    match kind {
        BindKind::Transmitter => 0,
        BindKind::Receiver => 1,
        BindKind::Transceiver => 2,
    }
}
