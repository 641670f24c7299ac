//! Binds: answering an operator's bind (as the MC) and the SMSC's answer to ours (as a
//! connector's ESME).

use super::*;

impl Connection {
    pub(super) fn on_bind(&mut self, command_id: CommandId, seq: u32, pdu: Pdu) {
        let Some(BindRequest {
            kind,
            system_id,
            password,
            interface_version: version,
        }) = BindRequest::from_pdu(&pdu)
        else {
            return;
        };
        let refuse = |out: &mut BytesMut, status: Status| {
            if let Some(r) = Response::error_for(command_id, seq, status) {
                r.encode(out);
            }
        };
        if let Err(status) = self.state.bind(kind) {
            return refuse(&mut self.out, status);
        }
        let Some(op) = self.gw.operators.get(system_id).cloned() else {
            tracing::info!(peer = %self.peer, system_id, "bind refused: unknown system_id");
            return refuse(&mut self.out, Status::ESME_RINVSYSID);
        };
        if !op.config.password.matches(password) {
            tracing::info!(peer = %self.peer, system_id, "bind refused: wrong password");
            return refuse(&mut self.out, Status::ESME_RINVPASWD);
        }
        if !op.config.allowed_ips.is_empty() && !op.config.allowed_ips.contains(&self.peer.ip()) {
            tracing::info!(peer = %self.peer, system_id, "bind refused: address not allowed");
            return refuse(&mut self.out, Status::ESME_RBINDFAIL);
        }
        if self.draining.is_some() {
            return refuse(&mut self.out, Status::ESME_RBINDFAIL);
        }
        if op.binds.fetch_add(1, Ordering::AcqRel) >= op.config.max_binds {
            op.binds.fetch_sub(1, Ordering::AcqRel);
            tracing::info!(peer = %self.peer, system_id, max = op.config.max_binds, "bind refused: too many binds");
            return refuse(&mut self.out, Status::ESME_RBINDFAIL);
        }
        self.state = BindState::Bound(kind);
        self.delivery = Delivery::new(outbound::policy(
            op.config.window,
            self.gw.config.smpp.response_timeout,
        ));
        tracing::info!(peer = %self.peer, system_id, ?kind, "bound");
        self.operator = Some(op);
        if let Some(r) = Response::bind_resp(command_id, seq, Status::ESME_ROK, SYSTEM_ID, version)
        {
            r.encode(&mut self.out);
        }
    }

    /// The SMSC's answer to our bind (connector mode).
    pub(super) fn on_bind_resp(&mut self, seq: u32, status: Status) {
        if self.bind_sent.is_none_or(|(s, _)| s != seq) {
            return;
        }
        self.bind_sent = None;
        let Some(dial) = self.dial.as_ref() else {
            return;
        };
        if !status.is_ok() {
            tracing::error!(connector = %dial.name, peer = %self.peer, %status, "bind refused by the SMSC");
            self.close = true;
            return;
        }
        let (kind, op) = (dial.kind, dial.operator.clone());
        self.state = BindState::Bound(kind);
        op.binds.fetch_add(1, Ordering::AcqRel);
        self.delivery = Delivery::new(outbound::policy(
            op.config.window,
            self.gw.config.smpp.response_timeout,
        ));
        tracing::info!(connector = %dial.name, peer = %self.peer, ?kind, "bound to the SMSC");
        self.operator = Some(op);
    }
}
