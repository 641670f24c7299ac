//! Binds: checking an operator's bind against the config (as the MC) and taking the SMSC's
//! acceptance of ours (as a connector's ESME). The session has already checked that the
//! bind state allows a bind and answers in the form SMPP wants; this file decides who may.

use super::*;

impl Connection {
    /// A bind request the session admitted: accepted if the operator, its password, its
    /// address and its bind count say so.
    pub(super) fn on_bind(&mut self, command_id: CommandId, seq: u32, pdu: &Pdu) {
        let Some(request) = BindRequest::from_pdu(pdu) else {
            return;
        };
        let system_id = request.system_id;
        let refuse = |conn: &mut Connection, status: Status| {
            conn.session.refuse_bind(command_id, seq, status)
        };
        let Some(op) = self.gw.operators.get(system_id).cloned() else {
            tracing::info!(peer = %self.peer, system_id, "bind refused: unknown system_id");
            return refuse(self, Status::ESME_RINVSYSID);
        };
        if !op.config.password.matches(request.password) {
            tracing::info!(peer = %self.peer, system_id, "bind refused: wrong password");
            return refuse(self, Status::ESME_RINVPASWD);
        }
        if !op.config.allowed_ips.is_empty() && !op.config.allowed_ips.contains(&self.peer.ip()) {
            tracing::info!(peer = %self.peer, system_id, "bind refused: address not allowed");
            return refuse(self, Status::ESME_RBINDFAIL);
        }
        if self.session.is_draining() {
            return refuse(self, Status::ESME_RBINDFAIL);
        }
        if op.binds.fetch_add(1, Ordering::AcqRel) >= op.config.max_binds {
            op.binds.fetch_sub(1, Ordering::AcqRel);
            tracing::info!(peer = %self.peer, system_id, max = op.config.max_binds, "bind refused: too many binds");
            return refuse(self, Status::ESME_RBINDFAIL);
        }
        let policy = outbound::policy(op.config.window, self.gw.config.smpp.response_timeout);
        self.session
            .accept_bind(command_id, seq, &request, SYSTEM_ID, policy);
        tracing::info!(peer = %self.peer, system_id, kind = ?request.kind, "bound");
        self.operator = Some(op);
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
        self.operator = Some(op);
    }
}
