//! The one path of every MO, whatever the store: parse, decide tentatively, make durable,
//! commit, render and queue the reply, acknowledge.
//!
//! A connection hands over the MOs of one read. Their texts are parsed into requests, one
//! per document (a family in one text is several, each decided against its own quota as if
//! sent alone, and answered in one reply); the requests are decided by the engine's batch
//! path without committing anything ([`QuotaEngine::peek_batch`]).
//! What the engine answers from its committed state (already active, limit used, blocked,
//! outside hours) is final: the engine holds only grants the store made durable. Each
//! possible grant claims its document (see `gateway/claims.rs`) and the claimed ones go to the
//! store in one round ([`Store::decide`]): the journal writes and syncs them, Redis decides
//! them against every node's state. Only the store's verdicts are committed to the engine.
//! An MO whose document another round has claimed waits for that round, then is decided
//! again, so it can be told "already active" only once that permit is durable.
//!
//! An MO is acknowledged when every request of it is decided and durable. When the store
//! fails, nothing of the round is committed: with the journal the MOs are refused with `ESME_RSYSERR` (the operator retries, and the retry is decided afresh); with
//! Redis, after its `retry_for`, the citizen is told to try again later and the MO is
//! acknowledged; a store closing for shutdown refuses. A family with one document in such a
//! round is answered so as a whole, whatever became of its other documents.
//!
//! [`QuotaEngine::peek_batch`]: crate::permit::engine::QuotaEngine::peek_batch
//! [`Store::decide`]: crate::store::Store::decide

use super::outbound::Mt;
use super::{Gateway, Mo, MoResult, OperatorState};
use crate::permit::answer::{Verdict, reply_text, requests_of};
use crate::permit::clock::Moment;
use crate::permit::decision::{Decision, Denial, Outcome};
use crate::permit::engine::permits::Revocation;
use crate::permit::id::PhoneTag;
use crate::permit::reply::Replier;
use crate::permit::request::PermitRequest;
use crate::permit::rules::{DailyLimit, Rules};
use crate::smpp::Status;
use crate::store::outbox::OwedReply;
use crate::store::redis::{RedisError, RedisVerdict};
use crate::store::{Store, StoreError, Tentative};
use crate::telemetry::metrics::{Metrics, MoOutcome};
use std::collections::HashMap;
use std::ops::Range;

/// What became of one MO before its reply is rendered.
#[derive(Debug, Clone)]
pub(super) enum Answer {
    /// Decided: the reply says so.
    Verdict(Verdict),
    /// A family (several documents in one text): every document decided, in text order;
    /// one reply lists them.
    Family(Vec<Decision>),
    /// The store could not decide in time: "try again in a few minutes", acknowledged.
    TryLater,
    /// Not acknowledged: the operator resends.
    Refuse(Status),
}

/// The grants of a batch's last round on a store that grants as asked (the journal): made
/// durable with the batch's replies in one commit, and only then committed to the engine;
/// their documents stay claimed until this is dropped.
struct Deferred<'a> {
    tentative: Vec<Tentative>,
    #[allow(dead_code)] // held for its claims, released on drop
    round: super::claims::Round<'a>,
    #[allow(dead_code)] // the asking phones, under max_documents_per_phone
    phones: super::claims::Round<'a, PhoneTag>,
}

/// Where one MO's answer comes from: its text alone, or its requests (one per document).
enum Slot {
    /// Nothing to decide (invalid, help).
    Done(Answer),
    /// Its requests, at these indexes of the batch's requests.
    Requests(Range<usize>),
}

/// One MO's answer from its requests' answers: the decision of a single document; a
/// family's decisions when every document is decided; otherwise the whole MO is refused
/// (or told to try later) as a single one would be, so it is acknowledged only when all of
/// its documents are decided and durable. A retry then answers the documents already
/// granted with their same permit ("active") and decides the others afresh.
fn combine(answers: &mut [Option<Answer>]) -> Answer {
    // Every request gets an answer in `decide`; a gap would be a bug, and then the operator
    // resending is the safe way out.
    const GAP: Answer = Answer::Refuse(Status::ESME_RSYSERR);
    match answers {
        [] => return GAP,
        [one] => return one.take().unwrap_or(GAP),
        _ => {}
    }
    let mut decisions = Vec::with_capacity(answers.len());
    let mut try_later = false;
    for answer in answers.iter_mut() {
        match answer.take() {
            Some(Answer::Verdict(Verdict::Decided(d))) => decisions.push(d),
            Some(Answer::TryLater) => try_later = true,
            Some(refuse @ Answer::Refuse(_)) => return refuse,
            _ => return GAP,
        }
    }
    if try_later {
        Answer::TryLater
    } else {
        Answer::Family(decisions)
    }
}

/// How long a batch waits for Redis to say whether its "already active" repeats were
/// revoked through another node.
const REVOCATION_CHECK_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

impl Gateway {
    /// Decides a batch of MOs from `operator`, makes their grants durable, queues their
    /// replies, and says for each how to answer it. Results are in MO order. Each MO took a
    /// place in the operator's reply queue ([`super::outbound::ReplyQueue::try_reserve`]);
    /// each is used by its reply or given back.
    ///
    /// A text naming several documents (a family) is one request per document, each
    /// decided and counted against its own quota as if sent alone; the MO gets one reply
    /// listing them all.
    pub async fn take_mos(
        &self,
        operator: &OperatorState,
        mos: &[Mo],
        results: &mut Vec<MoResult>,
    ) {
        let started = std::time::Instant::now();
        let rules = self.rules();
        let now = self.clock.now().timestamp();
        let parser = rules.parser();
        let mut slots = Vec::with_capacity(mos.len());
        let mut requests = Vec::with_capacity(mos.len());
        // The asking phone of each request, as grants keep it (a keyed hash).
        let mut phones = Vec::with_capacity(mos.len());
        for mo in mos {
            match requests_of(parser.parse(&mo.text)) {
                Ok(family) => {
                    let first = requests.len();
                    requests.extend(family);
                    phones.resize(requests.len(), self.key.phone_tag(&mo.source));
                    slots.push(Slot::Requests(first..requests.len()));
                }
                Err(mut verdict) => {
                    if matches!(verdict, Verdict::Status(_)) {
                        let phone = self.key.phone_tag(&mo.source);
                        self.status(&rules, &mut verdict, phone, now).await;
                    }
                    slots.push(Slot::Done(Answer::Verdict(verdict)));
                }
            }
        }
        let mut answers: Vec<Option<Answer>> = vec![None; requests.len()];
        let deferred = self
            .decide(
                &rules,
                now,
                &requests,
                &phones,
                mos.iter().map(|m| m.received).min(),
                &mut answers,
            )
            .await;
        self.revoked_elsewhere(&mut answers).await;

        // Every MO's answer and reply, then the replies made durable (with the deferred
        // grants, in one commit) before anything is counted, queued or acknowledged.
        let mut decided: Vec<(Answer, Option<OwedReply>)> = Vec::with_capacity(mos.len());
        for (mo, slot) in mos.iter().zip(slots) {
            let answer = match slot {
                Slot::Done(answer) => answer,
                Slot::Requests(range) => combine(&mut answers[range]),
            };
            let lang = operator.config.language.for_text(&mo.text);
            let text = match &answer {
                Answer::Refuse(_) => None,
                Answer::TryLater => Some(Replier::new(&rules, &self.key).try_later(lang)),
                Answer::Family(decisions) => {
                    Some(Replier::new(&rules, &self.key).family(lang, decisions))
                }
                Answer::Verdict(v) => Some(reply_text(&rules, &self.key, lang, v)),
            };
            let reply = text.map(|text| self.owed_reply(operator, mo, text, now));
            decided.push((answer, reply));
        }
        // "Try again later" answers a store that is away: it cannot be kept there, and is
        // queued as it is.
        let owed: Vec<&OwedReply> = decided
            .iter()
            .filter(|(answer, _)| !matches!(answer, Answer::TryLater))
            .filter_map(|(_, reply)| reply.as_ref())
            .collect();
        let grants = deferred.as_ref().map_or(&[][..], |d| &d.tentative[..]);
        let started_round = tokio::time::Instant::now();
        let durable = self.store.owe(self.node(), grants, &owed).await;
        if !(grants.is_empty() && owed.is_empty()) && self.store.kind() != "volatile" {
            Metrics::observe(&self.metrics.store_latency, started_round.elapsed());
        }
        let owed_count = owed.len();
        drop(owed);
        // Whether the outbox holds the replies it was given.
        let mut kept = true;
        match durable {
            Ok(()) => {
                if let Some(d) = &deferred {
                    for t in &d.tentative {
                        self.engine
                            .record_grant_by(&rules, t.code, t.document, t.validity, t.phone);
                    }
                }
            }
            // Redis decided (its grants are made and durable there) but the outbox write
            // failed (Redis lost right after): the citizen is told what Redis decided, the
            // replies kept in memory only, as a "try again" reply is during an outage.
            // (Refusing would leave a made grant unanswered.)
            Err(StoreError::Redis(e)) if grants.is_empty() && !matches!(e, RedisError::Closed) => {
                self.metrics.store_error(self.store.kind());
                tracing::warn!(error = %e, replies = owed_count, "redis: replies owed could not be kept in the outbox; queued in memory only");
                kept = false;
            }
            Err(e) => {
                let refused = self.failed(&e, owed_count);
                for (answer, reply) in &mut decided {
                    if reply.is_some() && !matches!(answer, Answer::TryLater) {
                        *answer = refused.clone();
                        *reply = None;
                    }
                }
            }
        }
        // The deferred grants are committed (or not): their documents are free again.
        drop(deferred);

        results.clear();
        let mut tally = super::stats::Tally::with_capacity(mos.len());
        for (mo, (answer, reply)) in mos.iter().zip(decided) {
            let (outcome, reason) = match &answer {
                Answer::Verdict(v) => (v.kind().name(), v.reason().unwrap_or("")),
                Answer::Family(decisions) => {
                    let first = Verdict::Decided(decisions[0]);
                    (first.kind().name(), first.reason().unwrap_or(""))
                }
                Answer::TryLater => ("try_later", ""),
                Answer::Refuse(_) => ("refused", ""),
            };
            match &answer {
                Answer::Verdict(v) => tally.add(&self.stats, &mo.source, outcome, reason, Some(v)),
                Answer::Family(decisions) => {
                    let first = Verdict::Decided(decisions[0]);
                    tally.add(&self.stats, &mo.source, outcome, reason, Some(&first));
                    for d in &decisions[1..] {
                        tally.add_document(d);
                    }
                }
                _ => tally.add(&self.stats, &mo.source, outcome, reason, None),
            }
            tracing::debug!(
                operator = %operator.config.system_id,
                msisdn = %crate::telemetry::mask_msisdn(&mo.source),
                text = %crate::telemetry::mask_text(&mo.text),
                outcome,
                reason,
                documents = match &answer {
                    Answer::Family(decisions) => decisions.len(),
                    _ => 1,
                },
                store = self.store.kind(),
                "MO decided"
            );
            self.count(operator, &answer);
            match (answer, reply) {
                (Answer::TryLater, Some(reply)) => {
                    operator
                        .queue
                        .push_reserved(Mt::in_memory(reply, mo.received));
                    results.push(MoResult::Accepted(self.message_id()));
                }
                (_, Some(reply)) => {
                    let mt = if kept {
                        Mt::owed(reply, mo.received)
                    } else {
                        Mt::in_memory(reply, mo.received)
                    };
                    operator.queue.push_reserved(mt);
                    results.push(MoResult::Accepted(self.message_id()));
                }
                (answer, None) => {
                    // No reply: the place the MO took in the queue goes back.
                    operator.queue.release(1);
                    results.push(MoResult::Refused(match answer {
                        Answer::Refuse(status) => status,
                        _ => Status::ESME_RSYSERR,
                    }));
                }
            }
        }
        let day = rules.calendar.moment(now).day;
        self.stats
            .record(&operator.config.system_id, day, &tally, started.elapsed());
    }

    /// The reply owed to `mo`, with a fresh outbox id.
    fn owed_reply(&self, operator: &OperatorState, mo: &Mo, text: String, now: i64) -> OwedReply {
        OwedReply {
            id: self.next_reply_id(),
            queue: operator.name.clone(),
            source: mo.destination.clone(),
            destination: mo.source.clone(),
            dest_ton: mo.source_ton,
            dest_npi: mo.source_npi,
            text,
            owed_at: now,
        }
    }

    /// Counts one MO's answer: by operator and outcome (once per MO), and each of its
    /// decisions by code (once per document) or its text's fault by reason.
    fn count(&self, operator: &OperatorState, answer: &Answer) {
        let outcome = match answer {
            Answer::Verdict(Verdict::Decided(d)) => self.count_decision(d),
            Answer::Family(decisions) => {
                // The MO's outcome is the best of its documents': granted if any was.
                let mut best = MoOutcome::Denied;
                for d in decisions {
                    match (self.count_decision(d), best) {
                        (MoOutcome::Granted, _) => best = MoOutcome::Granted,
                        (MoOutcome::Active, MoOutcome::Denied) => best = MoOutcome::Active,
                        _ => {}
                    }
                }
                best
            }
            Answer::Verdict(Verdict::Invalid(e)) => {
                self.metrics.invalid(e.reason());
                MoOutcome::Invalid
            }
            Answer::Verdict(Verdict::Help) => MoOutcome::Help,
            Answer::Verdict(Verdict::Status(_)) => MoOutcome::Status,
            Answer::TryLater => MoOutcome::TryLater,
            Answer::Refuse(_) => MoOutcome::Refused,
        };
        operator.metrics.mo(outcome);
    }

    /// Counts one document's decision by code and outcome; its MO outcome.
    fn count_decision(&self, d: &Decision) -> MoOutcome {
        let (mo, name) = match d.outcome {
            Outcome::Granted(_) => (MoOutcome::Granted, "granted"),
            Outcome::Active(_) => (MoOutcome::Active, "active"),
            Outcome::Denied(denial) => (MoOutcome::Denied, denial.reason()),
        };
        self.metrics.decision(d.code, name);
        mo
    }

    /// Decides `requests` for good, `answers[k]` for `requests[k]`: rounds of tentative
    /// decisions, claims and one store call each, until every request has an answer. Rounds
    /// after the first hold only the requests whose document was claimed.
    ///
    /// A possible grant the asking phone (`phones[k]`) may not have under
    /// `max_documents_per_phone` is refused as abuse here, counting the documents of the
    /// same phone granted earlier in this call as if they were committed already.
    async fn decide(
        &self,
        rules: &Rules,
        now: i64,
        requests: &[PermitRequest],
        phones: &[PhoneTag],
        read_at: Option<tokio::time::Instant>,
        answers: &mut [Option<Answer>],
    ) -> Option<Deferred<'_>> {
        if requests.is_empty() {
            return None;
        }
        let moment = rules.calendar.moment(now);
        // Documents each phone is being granted in this call (only kept under a limit).
        let mut granting: HashMap<PhoneTag, Vec<crate::permit::document::Document>> =
            HashMap::new();
        let mut round = self.claims.round();
        // Under a per-phone limit a phone is claimed before its limit is looked at, so two
        // rounds (two binds, two batches) cannot both admit one phone's documents.
        let mut phone_round = self.phone_claims.round();
        let mut phone_waiting = Vec::new();
        let mut decisions = Vec::with_capacity(requests.len());
        let mut pending: Vec<usize> = (0..requests.len()).collect();
        let mut again: Vec<PermitRequest> = Vec::new();
        let mut tentative = Vec::new();
        let mut sent = Vec::new();
        let mut waiting = Vec::new();
        loop {
            decisions.clear();
            let batch = if pending.len() == requests.len() {
                requests
            } else {
                again.clear();
                again.extend(pending.iter().map(|&k| requests[k].clone()));
                &again[..]
            };
            self.engine.peek_batch(rules, batch, now, &mut decisions);

            tentative.clear();
            sent.clear();
            waiting.clear();
            phone_waiting.clear();
            for (&k, decision) in pending.iter().zip(&decisions) {
                let rule = match decision.outcome {
                    Outcome::Granted(_) => rules.code(decision.code),
                    _ => None,
                };
                let (Outcome::Granted(validity), Some(rule)) = (decision.outcome, rule) else {
                    answers[k] = Some(Answer::Verdict(Verdict::Decided(*decision)));
                    continue;
                };
                let phone = phones.get(k).copied().unwrap_or_default();
                if rules.max_documents_per_phone.is_some() {
                    if phone.is_known()
                        && !phone_round.holds(phone)
                        && !self.phone_claims.try_claim(&mut phone_round, phone)
                    {
                        phone_waiting.push(k);
                        continue;
                    }
                    let pending = granting.get(&phone).map_or(&[][..], Vec::as_slice);
                    if !self
                        .engine
                        .phone_admits(rules, phone, decision.document, &moment, pending)
                    {
                        answers[k] = Some(Answer::Verdict(Verdict::Decided(Decision {
                            outcome: Outcome::Denied(Denial::Abuse),
                            ..*decision
                        })));
                        continue;
                    }
                }
                if !self.claims.try_claim(&mut round, decision.document) {
                    waiting.push(k);
                    continue;
                }
                if rules.max_documents_per_phone.is_some() {
                    granting.entry(phone).or_default().push(decision.document);
                }
                tentative.push(Tentative {
                    document: decision.document,
                    code: rule.code,
                    validity,
                    phone,
                });
                sent.push(k);
            }

            if waiting.is_empty()
                && phone_waiting.is_empty()
                && !tentative.is_empty()
                && self.store.grants_as_asked()
            {
                // The last round, on a store that grants as the engine computed: the grants
                // are written with the batch's replies in one commit (see `take_mos`), and
                // their documents stay claimed until then.
                for (t, &k) in tentative.iter().zip(&sent) {
                    answers[k] = Some(Answer::Verdict(Verdict::Decided(Decision {
                        code: t.code,
                        document: t.document,
                        outcome: Outcome::Granted(t.validity),
                    })));
                }
                return Some(Deferred {
                    tentative,
                    round,
                    phones: phone_round,
                });
            }
            if rules.max_documents_per_phone.is_some() {
                self.phones_in_redis(rules, now, &mut tentative, &mut sent, answers)
                    .await;
            }
            let started = tokio::time::Instant::now();
            let decided = self.store.decide(rules, now, &tentative, read_at).await;
            if !tentative.is_empty() {
                Metrics::observe(&self.metrics.store_latency, started.elapsed());
            }
            match decided {
                Ok(verdicts) => {
                    self.note_in_redis(rules, now, &tentative, &verdicts).await;
                    // Each grant stands on its own: a shard that is away fails only its
                    // asks, and what the others granted is granted.
                    let mut failed: Vec<usize> = Vec::new();
                    let mut error = None;
                    for ((t, &k), verdict) in tentative.iter().zip(&sent).zip(verdicts) {
                        match verdict {
                            Ok(verdict) => {
                                let outcome = self.commit(rules, t, verdict, &moment);
                                answers[k] = Some(Answer::Verdict(Verdict::Decided(Decision {
                                    code: t.code,
                                    document: t.document,
                                    outcome,
                                })));
                            }
                            Err(e) => {
                                failed.push(k);
                                error.get_or_insert(e);
                            }
                        }
                    }
                    if let Some(e) = error {
                        let answer = self.failed(&StoreError::Redis(e), failed.len());
                        for k in failed {
                            answers[k] = Some(answer.clone());
                        }
                    }
                }
                Err(e) => {
                    let answer = self.failed(&e, sent.len());
                    for &k in &sent {
                        answers[k] = Some(answer.clone());
                    }
                }
            }
            round.release();
            phone_round.release();
            if waiting.is_empty() && phone_waiting.is_empty() {
                return None;
            }
            // Holding no claim now, so no round waits for this one while it waits.
            for &k in &waiting {
                self.claims.released(requests[k].document).await;
            }
            for &k in &phone_waiting {
                self.phone_claims.released(phones[k]).await;
            }
            waiting.append(&mut phone_waiting);
            // In the order asked, so a phone's documents are decided in that order again.
            waiting.sort_unstable();
            std::mem::swap(&mut pending, &mut waiting);
        }
    }

    /// With Redis, a permit answered "already active" (by this node's engine, or by Redis
    /// for another node's grant) may have been revoked through another node a moment ago
    /// (this node hears of it within a second from the stream it follows): every such
    /// answer is checked in Redis first, so from the moment a revocation is answered no
    /// node gives the permit again. Only repeats pay for it (one `GET` each, all at once);
    /// if Redis cannot answer, the answer stands.
    async fn revoked_elsewhere(&self, answers: &mut [Option<Answer>]) {
        let (Store::Redis(redis), Some(permits)) = (&self.store, self.engine.permits()) else {
            return;
        };
        let active: Vec<(usize, crate::permit::id::PermitId)> = answers
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Some(Answer::Verdict(Verdict::Decided(d))) => match d.outcome {
                    Outcome::Active(v) => Some((i, permits.id_of(d.document, d.code, v))),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        if active.is_empty() {
            return;
        }
        let asked = active.iter().map(|&(_, id)| redis.revocation(id));
        // Waited for only briefly (the revocation stream tells this node within a second
        // anyway): a primary that is away must not hold the batch up.
        let Ok(found) =
            tokio::time::timeout(REVOCATION_CHECK_WAIT, futures_util::future::join_all(asked))
                .await
        else {
            tracing::warn!(
                repeats = active.len(),
                "redis: repeats not checked for a revocation in time; answered as active"
            );
            return;
        };
        for (&(i, id), found) in active.iter().zip(found) {
            match found {
                Ok(Some((at, reason))) => {
                    permits.revoke(id, Revocation { reason, at });
                    if let Some(Answer::Verdict(Verdict::Decided(d))) = &mut answers[i] {
                        d.outcome = Outcome::Denied(Denial::Revoked);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "redis: could not check a repeat for a revocation; answered as active");
                }
            }
        }
    }

    /// How the MOs of a round the store could not decide are answered.
    pub(super) fn failed(&self, error: &StoreError, mos: usize) -> Answer {
        let closed = error.is_closed();
        self.metrics.store_error(self.store.kind());
        tracing::error!(
            error = %error,
            mos,
            retryable = error.is_retryable(),
            store = self.store.kind(),
            "store could not make grants durable: nothing committed"
        );
        match error {
            // Redis kept failing for its whole `retry_for`: answer the citizen rather than
            // have the operator resend into an outage.
            StoreError::Redis(_) if !closed => Answer::TryLater,
            _ => Answer::Refuse(Status::ESME_RSYSERR),
        }
    }

    /// Commits the store's verdict on `ask` to the engine and says what the citizen is told,
    /// so a repeat is answered here without asking the store again.
    fn commit(&self, rules: &Rules, ask: &Tentative, verdict: RedisVerdict, m: &Moment) -> Outcome {
        match verdict {
            RedisVerdict::Granted(v) => {
                self.engine
                    .record_grant_by(rules, ask.code, ask.document, v, ask.phone);
                Outcome::Granted(v)
            }
            RedisVerdict::Active(v) => {
                // Granted by another node: record it so the next repeat is answered here
                // (unless this node knows it already, which must not count twice).
                if self
                    .engine
                    .peek_at(rules, ask.code, ask.document, m)
                    .outcome
                    != Outcome::Active(v)
                {
                    self.engine.record_grant(rules, ask.code, ask.document, v);
                }
                Outcome::Active(v)
            }
            // An unlimited code's "limit" in Redis is its `abuse_after`.
            RedisVerdict::DailyLimit { .. }
                if rules
                    .code(ask.code)
                    .is_some_and(|r| r.limit == DailyLimit::Unlimited) =>
            {
                Outcome::Denied(Denial::Abuse)
            }
            RedisVerdict::DailyLimit { limit } => Outcome::Denied(Denial::DailyLimit { limit }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::permit::answer::request_of;
    use crate::permit::clock::FakeClock;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    const MONDAY_10AM: i64 = 1_586_152_800; // 2020-04-06T10:00:00+04:00

    fn gateway() -> Arc<Gateway> {
        gateway_and_clock().0
    }

    fn gateway_and_clock() -> (Arc<Gateway>, Arc<FakeClock>) {
        let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/config/rules.toml");
        let text = format!(
            "rules = {rules:?}\n[permit]\nkey = \"pipeline-unit-test-key\"\n[smpp]\nlisten = \"127.0.0.1:0\"\n\
             [[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\n"
        );
        let config = Config::from_toml(Path::new("/unit/icaze.toml"), &text, &|_| None)
            .expect("unit test config");
        let at = chrono::DateTime::from_timestamp(MONDAY_10AM, 0).expect("time");
        let clock = Arc::new(FakeClock::new(at));
        let gw = Gateway::open(config, clock.clone(), true).expect("volatile gateway");
        (Arc::new(gw), clock)
    }

    /// Decides `texts` as one batch; each answer's outcome.
    async fn decide(gw: &Gateway, texts: &[&str]) -> Vec<Outcome> {
        let rules = gw.rules();
        let requests: Vec<PermitRequest> = texts
            .iter()
            .map(|t| request_of(rules.parser().parse(t)).expect("a request"))
            .collect();
        let mut answers = vec![None; requests.len()];
        let phones = vec![PhoneTag(1); requests.len()];
        gw.decide(&rules, MONDAY_10AM, &requests, &phones, None, &mut answers)
            .await;
        answers
            .into_iter()
            .map(|a| match a {
                Some(Answer::Verdict(Verdict::Decided(d))) => d.outcome,
                other => panic!("not decided: {other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn the_same_document_twice_in_one_batch_is_granted_once_and_then_active() {
        let gw = gateway();
        let outcomes = decide(&gw, &["2 AZE 11111111", "2 aze11111111", "2 AZE 22222222"]).await;
        let Outcome::Granted(v) = outcomes[0] else {
            panic!("first: {:?}", outcomes[0]);
        };
        assert_eq!(
            outcomes[1],
            Outcome::Active(v),
            "the repeat sees the first grant"
        );
        assert!(matches!(outcomes[2], Outcome::Granted(_)));
        // A later batch sees the committed grants.
        assert_eq!(decide(&gw, &["2 AZE 11111111"]).await, [Outcome::Active(v)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_document_another_round_holds_waits_for_that_round() {
        let gw = gateway();
        let document = request_of(gw.rules().parser().parse("2 AZE 11111111"))
            .expect("request")
            .document;
        let mut other = gw.claims.round();
        assert!(gw.claims.try_claim(&mut other, document));
        let waiting = tokio::spawn({
            let gw = gw.clone();
            async move { decide(&gw, &["2 AZE 11111111", "2 AZE 22222222"]).await }
        });
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(
            !waiting.is_finished(),
            "decided while the document was claimed"
        );
        // The other round's store call failed: nothing committed, so this one grants.
        other.release();
        let outcomes = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("decided once released")
            .expect("task ran");
        assert!(matches!(outcomes[0], Outcome::Granted(_)), "{outcomes:?}");
        assert!(matches!(outcomes[1], Outcome::Granted(_)), "{outcomes:?}");
    }

    /// Takes `texts` as one batch from the demo operator, as a connection would: each MO's
    /// acknowledgement and the reply queued for it (none when refused).
    async fn take(gw: &Gateway, texts: &[&str]) -> Vec<(MoResult, Option<String>)> {
        take_as(gw, gw.config.operators[0].clone(), texts).await
    }

    /// [`take`] from an operator configured as `config`.
    async fn take_as(
        gw: &Gateway,
        config: crate::config::Operator,
        texts: &[&str],
    ) -> Vec<(MoResult, Option<String>)> {
        let op = OperatorState::new(config.clone(), config.system_id.clone(), &gw.metrics);
        let mos: Vec<Mo> = texts
            .iter()
            .map(|t| {
                assert!(op.queue.try_reserve(), "room in the reply queue");
                Mo {
                    source: "994501234567".into(),
                    source_ton: 1,
                    source_npi: 1,
                    destination: "8103".into(),
                    text: (*t).into(),
                    received: tokio::time::Instant::now(),
                }
            })
            .collect();
        let mut results = Vec::new();
        gw.take_mos(&op, &mos, &mut results).await;
        results
            .into_iter()
            .map(|r| {
                let reply = matches!(r, MoResult::Accepted(_))
                    .then(|| op.queue.try_pop().expect("a reply queued").text);
                (r, reply)
            })
            .collect()
    }

    /// The reply's line naming `document`.
    fn line<'r>(reply: &'r str, document: &str) -> &'r str {
        let mut lines = reply.lines().filter(|l| l.starts_with(document));
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("no {document} in {reply:?}"));
        assert!(lines.next().is_none(), "{document} twice in {reply:?}");
        line
    }

    /// The permit id at the end of a line (`… № K7QM-4RTX`).
    fn permit_id(line: &str) -> &str {
        line.rsplit(' ').next().expect("an id")
    }

    #[tokio::test]
    async fn each_document_of_a_family_is_decided_against_its_own_quota() {
        let (gw, clock) = gateway_and_clock();
        let first = take(&gw, &["2 AZE 11111111 AA 1234567 MYİ 7654321"]).await;
        let [(MoResult::Accepted(_), Some(reply))] = &first[..] else {
            panic!("{first:?}");
        };
        assert!(
            reply.starts_with("Kod 2 (ərzaq, dərman, bank, poçt), 3 sənəd:"),
            "{reply}"
        );
        assert_eq!(reply.lines().count(), 4, "{reply}");
        let mut ids = Vec::new();
        for document in ["AZE 11111111", "AA 1234567", "MYİ 7654321"] {
            let l = line(reply, document);
            assert!(l.contains("VERİLDİ 10:00\u{2013}13:00"), "{l}");
            ids.push(permit_id(l).to_owned());
        }
        ids.dedup();
        assert_eq!(ids.len(), 3, "one permit per document: {ids:?}");

        // An hour later: a document already active in a family keeps its permit, a new one
        // is granted beside it.
        clock.advance(Duration::from_secs(3600));
        let again = take(&gw, &["2 AA 1234567 DYİ 1111111"]).await;
        let reply = again[0].1.as_deref().expect("a reply");
        let aa = line(reply, "AA 1234567");
        assert!(aa.contains("artıq var 10:00\u{2013}13:00"), "{aa}");
        assert_eq!(permit_id(aa), ids[1], "the same permit again");
        assert!(
            line(reply, "DYİ 1111111").contains("VERİLDİ 11:00"),
            "{reply}"
        );

        // After the permits expired: each document that had today's permit is at its limit,
        // alone or in a family, and a new one is still granted.
        clock.advance(Duration::from_secs(3 * 3600));
        let late = take(&gw, &["2 MYİ 7654321 MOM 2222222", "2 AZE 11111111"]).await;
        let reply = late[0].1.as_deref().expect("a reply");
        assert!(line(reply, "MYİ 7654321").contains("verilmədi"), "{reply}");
        assert!(
            line(reply, "MOM 2222222").contains("VERİLDİ 14:00"),
            "{reply}"
        );
        let alone = late[1].1.as_deref().expect("a reply");
        assert!(alone.contains("artıq alıb"), "{alone}");

        // Stats and metrics count each document's decision, and each MO once.
        let rules = gw.rules();
        let day = gw
            .stats
            .day(rules.calendar.moment(MONDAY_10AM).day)
            .expect("today's stats");
        assert_eq!(day.mos, 4);
        assert_eq!(day.by_code[&(2, "granted", "")], 5);
        assert_eq!(day.by_code[&(2, "active", "")], 1);
        assert_eq!(day.by_code[&(2, "denied", "daily_limit")], 2);
        assert_eq!(day.distinct_documents(), 5);
    }

    #[tokio::test]
    async fn a_document_named_twice_in_a_family_is_decided_once() {
        let gw = gateway();
        let taken = take(&gw, &["2 AZE 33333333 aze3333 3333 AA 7777777"]).await;
        let reply = taken[0].1.as_deref().expect("a reply");
        assert_eq!(reply.lines().count(), 3, "two documents: {reply}");
        assert!(line(reply, "AZE 33333333").contains("VERİLDİ"), "{reply}");
        assert!(line(reply, "AA 7777777").contains("VERİLDİ"), "{reply}");
        let rules = gw.rules();
        let day = gw
            .stats
            .day(rules.calendar.moment(MONDAY_10AM).day)
            .expect("today's stats");
        assert_eq!(day.by_code[&(2, "granted", "")], 2);
    }

    #[tokio::test]
    async fn a_single_document_still_gets_the_single_reply() {
        let gw = gateway();
        let taken = take(&gw, &["2 AZE 11111111", "salam"]).await;
        let reply = taken[0].1.as_deref().expect("a reply");
        assert!(reply.starts_with("İCAZƏ VERİLDİ: kod 2"), "{reply}");
        assert_eq!(reply.lines().count(), 1, "{reply}");
        assert!(matches!(taken[1].0, MoResult::Accepted(_)));
    }

    #[tokio::test]
    async fn an_auto_language_operator_answers_in_the_language_of_the_text() {
        use crate::permit::reply::{Language, ReplyLanguage};
        let gw = gateway();
        let mut config = gw.config.operators[0].clone();
        config.language = ReplyLanguage::Auto(Language::Az);
        let taken = take_as(
            &gw,
            config,
            &[
                "Код 2 AZE 11111111",
                "2 AZE 22222222 please",
                "2 AZE 33333333",
                "2 АЗЕ 44444444 AA 1234567",
            ],
        )
        .await;
        let replies: Vec<&str> = taken
            .iter()
            .map(|t| t.1.as_deref().expect("a reply"))
            .collect();
        assert!(replies[0].contains("РАЗРЕШ"), "{}", replies[0]);
        assert!(replies[1].starts_with("PERMIT GRANTED"), "{}", replies[1]);
        assert!(
            replies[2].starts_with("İCAZƏ VERİLDİ"),
            "the default: {}",
            replies[2]
        );
        assert!(replies[3].starts_with("Код 2"), "{}", replies[3]);
    }

    #[test]
    fn a_family_is_acknowledged_only_when_every_document_is_decided() {
        let gw = gateway();
        let rules = gw.rules();
        let decided = |text: &str| {
            let request = request_of(rules.parser().parse(text)).expect("a request");
            Some(Answer::Verdict(Verdict::Decided(Decision {
                code: request.code,
                document: request.document,
                outcome: Outcome::Denied(Denial::Blocked),
            })))
        };
        let mut all = [decided("2 AZE 11111111"), decided("2 AA 1234567")];
        assert!(matches!(combine(&mut all), Answer::Family(d) if d.len() == 2));
        let refused = Some(Answer::Refuse(Status::ESME_RSYSERR));
        let mut one_refused = [decided("2 AZE 11111111"), refused, Some(Answer::TryLater)];
        assert!(matches!(
            combine(&mut one_refused),
            Answer::Refuse(Status::ESME_RSYSERR)
        ));
        let mut one_later = [decided("2 AZE 11111111"), Some(Answer::TryLater)];
        assert!(matches!(combine(&mut one_later), Answer::TryLater));
        let mut gap = [decided("2 AZE 11111111"), None];
        assert!(matches!(
            combine(&mut gap),
            Answer::Refuse(Status::ESME_RSYSERR)
        ));
    }
}
