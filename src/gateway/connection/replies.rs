//! Replies out: pulling from the operator's queue while the window has room, encoding and
//! sending parts, and what the peer's answers to them mean.

use super::*;
use crate::smpp::session::AcceptedPart;
use crate::telemetry::metrics::Metrics;

/// A reply being delivered on this bind, with its encoded parts.
pub(super) struct Outgoing {
    pub(super) mt: Mt,
    pub(super) encoded: text::Encoded,
}

impl Connection {
    /// Whether this bind should take another reply from the operator's queue now.
    pub(super) fn can_pull(&self, now: Instant) -> bool {
        self.operator.is_some() && self.session.can_send(now)
    }

    /// Encodes a reply into parts and sends as many as the window allows.
    pub(super) fn start_mt(&mut self, mt: Mt) {
        let dropped = |conn: &Connection| {
            conn.gw.settle(&mt);
            if let Some(op) = &conn.operator {
                op.metrics.reply_drops.inc();
            }
        };
        let encoded = match text::encode_mt(&mt.text, mt.id as u8) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, msisdn = %mask_msisdn(&mt.destination), "reply cannot be encoded: dropped");
                return dropped(self);
            }
        };
        if Address::check(&mt.source).is_err() || Address::check(&mt.destination).is_err() {
            tracing::error!(msisdn = %mask_msisdn(&mt.destination), "reply address invalid: dropped");
            return dropped(self);
        }
        let id = mt.id;
        self.session.start(id, encoded.parts.len(), self.now);
        self.outgoing.insert(id, Outgoing { mt, encoded });
        self.send_due(self.now);
    }

    /// Sends the parts whose time has come, within the window.
    pub(super) fn send_due(&mut self, now: Instant) {
        let Connection {
            session,
            outgoing,
            operator,
            ..
        } = self;
        let outgoing = &*outgoing;
        let registered_delivery = operator
            .as_ref()
            .and_then(|o| o.receipts.as_ref())
            .map_or(0, |r| r.registered_delivery());
        session.send_due(now, |id, part| {
            let o = outgoing.get(&id)?;
            Some(ReplyPart {
                source: &o.mt.source,
                dest_ton: o.mt.dest_ton,
                dest_npi: o.mt.dest_npi,
                destination: &o.mt.destination,
                data_coding: o.encoded.data_coding,
                udh: o.encoded.udh,
                registered_delivery,
                short_message: o.encoded.parts.get(part)?,
            })
        });
    }

    /// Pulls replies from the operator's queue while the window has room.
    pub(super) fn fill_window(&mut self) {
        let now = self.now;
        self.send_due(now);
        let Some(op) = self.operator.clone() else {
            return;
        };
        while self.can_pull(now) {
            let Some(mt) = op.queue.try_pop() else {
                break;
            };
            self.start_mt(mt);
        }
    }

    /// The SMSC accepted a part and named it: booked for its receipt (connector mode).
    pub(super) fn on_accepted(&mut self, part: &AcceptedPart) {
        let (Some(op), Some(o)) = (&self.operator, self.outgoing.get(&part.id)) else {
            return;
        };
        if let Some(book) = &op.receipts {
            let parts = o.encoded.parts.len();
            book.accepted(
                &part.message_id,
                part.id,
                part.part,
                parts,
                &o.mt.destination,
                self.now,
            );
        }
    }

    /// What the peer's answer to one of our parts means for the reply.
    pub(super) fn on_mt_resp(&mut self, answer: Answer<u64>) {
        match answer {
            Answer::Stray | Answer::Part => {}
            Answer::Delivered(id) => {
                let Some(o) = self.outgoing.remove(&id) else {
                    return;
                };
                self.gw.settle(&o.mt);
                if let Some(op) = &self.operator {
                    op.metrics.replies_delivered.inc();
                    let took = self.now.saturating_duration_since(o.mt.owed_since);
                    Metrics::observe(&self.gw.metrics.mo_to_mt, took);
                    self.replied.add(took);
                }
            }
            Answer::Retry(id) => {
                if let Some(o) = self.outgoing.get_mut(&id) {
                    o.mt.attempts += 1;
                    tracing::debug!(msisdn = %mask_msisdn(&o.mt.destination), attempts = o.mt.attempts, "reply refused for now: retrying");
                }
            }
            Answer::Refused(id, status) => {
                if let Some(o) = self.outgoing.remove(&id) {
                    self.gw.settle(&o.mt);
                    if let Some(op) = &self.operator {
                        op.metrics.reply_drops.inc();
                    }
                    tracing::warn!(msisdn = %mask_msisdn(&o.mt.destination), %status, "reply refused by the operator: dropped");
                }
            }
        }
    }
}

pub(super) async fn pop(op: &Option<Arc<OperatorState>>) -> Mt {
    match op {
        Some(o) => o.queue.pop().await,
        None => std::future::pending().await,
    }
}
