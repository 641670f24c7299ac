//! MOs in: the wire checks, concatenated parts, holding MOs while batches are under way,
//! handing a read's MOs to the gateway as one batch, and acknowledging each batch once it is done.

use super::*;
use crate::smpp::receipt::Receipt;
use crate::telemetry::metrics::MoOutcome;

/// An MO of the current read that passed the wire checks, with where its answer goes.
pub(super) struct Taken {
    pub(super) command_id: CommandId,
    pub(super) sequence_number: u32,
    pub(super) mo: Mo,
}

impl Connection {
    pub(super) fn on_mo(
        &mut self,
        command_id: CommandId,
        seq: u32,
        pdu: Pdu,
        intake: &mut Vec<Taken>,
    ) {
        let Ok(sm) = IncomingSm::from_pdu(pdu) else {
            return;
        };
        if sm.is_receipt() {
            // A delivery receipt for one of our replies: never a citizen's SMS, whatever its
            // text says, and always answered with status 0 (matched or not, readable or
            // not), or the SMSC would send it again and again.
            self.on_receipt(&sm);
            return self.session.respond(command_id, seq, Status::ESME_ROK, "");
        }
        if !self.gw.is_short_number(sm.destination.as_str()) {
            return self
                .session
                .respond(command_id, seq, Status::ESME_RINVDSTADR, "");
        }
        if self.session.is_draining() {
            return self
                .session
                .respond(command_id, seq, Status::ESME_RTHROTTLED, "");
        }
        let Some(op) = self.operator.clone() else {
            return self
                .session
                .respond(command_id, seq, Status::ESME_RINVBNDSTS, "");
        };
        // A place for the reply, taken now and given back unless a reply is queued.
        if !op.queue.try_reserve() {
            op.metrics.mo(MoOutcome::QueueFull);
            return self
                .session
                .respond(command_id, seq, Status::ESME_RMSGQFUL, "");
        }
        if op.throttle.take(1, self.now) == 0 {
            op.queue.release(1);
            op.metrics.mo(MoOutcome::Throttled);
            return self
                .session
                .respond(command_id, seq, Status::ESME_RTHROTTLED, "");
        }
        let mut abandoned = None;
        let text = match self
            .session
            .intake
            .text(&sm, self.now, |a| abandoned = Some(a))
        {
            Text::Whole(t) => t,
            Text::Held => {
                // Held: acknowledged now; the last part carries the decision (and its
                // place in the queue).
                op.queue.release(1);
                self.session.respond(command_id, seq, Status::ESME_ROK, "");
                if let Some(a) = abandoned {
                    self.incomplete(a);
                }
                return;
            }
            Text::Refused(status) => {
                op.queue.release(1);
                return self.session.respond(command_id, seq, status, "");
            }
        };
        intake.push(Taken {
            command_id,
            sequence_number: seq,
            mo: Mo {
                source: sm.source.as_str().to_string(),
                source_ton: sm.source.ton,
                source_npi: sm.source.npi,
                destination: sm.destination.as_str().to_string(),
                text,
                received: self.now,
            },
        });
    }

    /// A receipt from a connector's SMSC: matched to its reply part and counted (a
    /// listener's peer sending one is only answered: we asked it for none).
    fn on_receipt(&mut self, sm: &IncomingSm) {
        let Some(book) = self.operator.as_ref().and_then(|o| o.receipts.as_ref()) else {
            return;
        };
        let receipt = Receipt::of(sm);
        book.receipt(&receipt, self.now);
    }

    /// A concatenated MO that will never complete: its parts were acknowledged, so the
    /// citizen gets the "not understood, send CODE SERIES NUMBER" reply.
    pub(super) fn incomplete(&mut self, a: Abandoned) {
        let Some(op) = self.operator.clone() else {
            return;
        };
        let rules = self.gw.rules();
        let text = Replier::new(&rules, &self.gw.key).invalid(op.config.language);
        tracing::info!(msisdn = %mask_msisdn(&a.source), parts = a.parts, "concatenated MO incomplete: hint sent");
        let reply = crate::store::outbox::OwedReply {
            id: self.gw.next_reply_id(),
            queue: op.name.clone(),
            source: a.destination,
            destination: a.source,
            dest_ton: a.source_ton,
            dest_npi: a.source_npi,
            text,
            owed_at: self.gw.clock.now().timestamp(),
        };
        self.gw.owe_later(op, reply);
    }

    /// Hands a read's MOs to the gateway: one batch per lane (see `gateway/lanes.rs`), or
    /// held while every batch slot of its lane is taken.
    pub(super) fn admit(&mut self, intake: Vec<Taken>) {
        let Some(lanes) = self.gw.lanes_of(intake.iter().map(|t| t.mo.text.as_str())) else {
            return self.admit_lane(0, intake);
        };
        if let Some(&first) = lanes.first()
            && lanes.iter().all(|&l| l == first)
        {
            return self.admit_lane(first, intake);
        }
        let mut split: [Vec<Taken>; LANES] = Default::default();
        for (taken, lane) in intake.into_iter().zip(lanes) {
            split[usize::from(lane)].push(taken);
        }
        for (lane, mos) in (0..).zip(split) {
            if !mos.is_empty() {
                self.admit_lane(lane, mos);
            }
        }
    }

    /// Hands `mos` of `lane` to the gateway as one batch, or holds them behind the lane's
    /// held MOs while its batch slots are all taken.
    fn admit_lane(&mut self, lane: Lane, mos: Vec<Taken>) {
        let l = usize::from(lane);
        if self.in_flight[l] < MAX_BATCHES && self.held[l].is_empty() {
            self.take(lane, mos);
        } else {
            self.held_count += mos.len();
            self.held[l].extend(mos);
        }
    }

    /// Hands held MOs to the gateway, [`MAX_HELD_BATCH`] at a time, while their lane's
    /// batch slots are free.
    pub(super) fn take_held(&mut self) {
        if self.held_count == 0 {
            return;
        }
        for lane in 0..LANES {
            while !self.held[lane].is_empty() && self.in_flight[lane] < MAX_BATCHES {
                let rest = self.held[lane].split_off(self.held[lane].len().min(MAX_HELD_BATCH));
                let batch = std::mem::replace(&mut self.held[lane], rest);
                self.held_count -= batch.len();
                self.take(lane as Lane, batch);
            }
        }
    }

    /// Hands MOs of `lane` to the gateway as one batch, answered when it is done.
    fn take(&mut self, lane: Lane, intake: Vec<Taken>) {
        let Some(op) = self.operator.clone() else {
            return;
        };
        let mut owed = Vec::with_capacity(intake.len());
        let mut mos = Vec::with_capacity(intake.len());
        for i in intake {
            owed.push((i.command_id, i.sequence_number));
            mos.push(i.mo);
        }
        self.in_flight[usize::from(lane)] += 1;
        let gw = self.gw.clone();
        self.batches.push(Box::pin(async move {
            let mut results = Vec::with_capacity(mos.len());
            gw.take_mos(&op, &mos, &mut results).await;
            (lane, owed, results)
        }));
    }

    /// Acknowledges (or refuses) the MOs of a finished batch.
    pub(super) fn answer_batch(&mut self, lane: Lane, owed: Owed, results: Vec<MoResult>) {
        self.in_flight[usize::from(lane)] -= 1;
        for ((command_id, seq), result) in owed.into_iter().zip(results) {
            match result {
                MoResult::Accepted(id) => {
                    self.session.respond(command_id, seq, Status::ESME_ROK, &id)
                }
                MoResult::Refused(status) => self.session.respond(command_id, seq, status, ""),
            }
        }
        self.fill_window();
    }
}
