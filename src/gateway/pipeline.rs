//! The one path of every MO, whatever the store: parse, decide tentatively, make durable,
//! commit, render and queue the reply, acknowledge.
//!
//! A connection hands over the MOs of one read. Their texts are parsed; the requests are
//! decided by the engine's batch path without committing anything ([`QuotaEngine::peek_batch`]).
//! What the engine answers from its committed state (already active, limit used, blocked,
//! outside hours) is final: the engine holds only grants the store made durable. Each
//! possible grant claims its document (see `gateway/claims.rs`) and the claimed ones go to the
//! store in one round ([`Store::decide`]): the journal writes and syncs them, Redis decides
//! them against every node's state. Only the store's verdicts are committed to the engine.
//! An MO whose document another round has claimed waits for that round, then is decided
//! again, so it can be told "already active" only once that permit is durable.
//!
//! When the store fails, nothing of the round is committed: with the journal the MOs are
//! refused with `ESME_RSYSERR` (the operator retries, and the retry is decided afresh); with
//! Redis, after its `retry_for`, the citizen is told to try again later and the MO is
//! acknowledged; a store closing for shutdown refuses.
//!
//! [`QuotaEngine::peek_batch`]: crate::permit::engine::QuotaEngine::peek_batch
//! [`Store::decide`]: crate::store::Store::decide

use super::outbound::Mt;
use super::{Gateway, Mo, MoResult, OperatorState};
use crate::permit::answer::{Verdict, reply_text, request_of};
use crate::permit::clock::Moment;
use crate::permit::decision::{Decision, Denial, Outcome};
use crate::permit::reply::Replier;
use crate::permit::request::PermitRequest;
use crate::permit::rules::Rules;
use crate::smpp::Status;
use crate::store::redis::RedisVerdict;
use crate::store::{StoreError, Tentative};
use crate::telemetry::metrics::{Metrics, MoOutcome};

/// What became of one MO before its reply is rendered.
#[derive(Debug, Clone)]
enum Answer {
    /// Decided: the reply says so.
    Verdict(Verdict),
    /// The store could not decide in time: "try again in a few minutes", acknowledged.
    TryLater,
    /// Not acknowledged: the operator resends.
    Refuse(Status),
}

impl Gateway {
    /// Decides a batch of MOs from `operator`, makes their grants durable, queues their
    /// replies, and says for each how to answer it. Results are in MO order. Each MO took a
    /// place in the operator's reply queue ([`super::outbound::ReplyQueue::try_reserve`]);
    /// each is used by its reply or given back.
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
        let mut answers: Vec<Option<Answer>> = Vec::with_capacity(mos.len());
        let mut requests = Vec::with_capacity(mos.len());
        let mut owners = Vec::with_capacity(mos.len());
        for (i, mo) in mos.iter().enumerate() {
            match request_of(parser.parse(&mo.text)) {
                Ok(request) => {
                    requests.push(request);
                    owners.push(i);
                    answers.push(None);
                }
                Err(verdict) => answers.push(Some(Answer::Verdict(verdict))),
            }
        }
        self.decide(&rules, now, &requests, &owners, &mut answers)
            .await;

        let lang = operator.config.language;
        results.clear();
        let mut tally = super::stats::Tally::with_capacity(mos.len());
        for (mo, answer) in mos.iter().zip(answers) {
            // Every request gets an answer above; a gap would be a bug, and then the operator
            // resending is the safe way out.
            let answer = answer.unwrap_or(Answer::Refuse(Status::ESME_RSYSERR));
            let (outcome, reason) = match &answer {
                Answer::Verdict(v) => (v.kind().name(), v.reason().unwrap_or("")),
                Answer::TryLater => ("try_later", ""),
                Answer::Refuse(_) => ("refused", ""),
            };
            let verdict = match &answer {
                Answer::Verdict(v) => Some(v),
                _ => None,
            };
            tally.add(&self.stats, &mo.source, outcome, reason, verdict);
            tracing::debug!(
                operator = %operator.config.system_id,
                msisdn = %crate::telemetry::mask_msisdn(&mo.source),
                text = %crate::telemetry::mask_text(&mo.text),
                outcome,
                reason,
                store = self.store.kind(),
                "MO decided"
            );
            self.count(operator, &answer);
            let text = match answer {
                Answer::Refuse(status) => {
                    // No reply: the place the MO took in the queue goes back.
                    operator.queue.release(1);
                    results.push(MoResult::Refused(status));
                    continue;
                }
                Answer::TryLater => Replier::new(&rules, &self.key).try_later(lang),
                Answer::Verdict(v) => reply_text(&rules, &self.key, lang, &v),
            };
            results.push(self.answer(operator, mo, text));
        }
        let day = rules.calendar.moment(now).day;
        self.stats
            .record(&operator.config.system_id, day, &tally, started.elapsed());
    }

    /// Counts one MO's answer: by operator and outcome, and its decision by code or its
    /// text's fault by reason.
    fn count(&self, operator: &OperatorState, answer: &Answer) {
        let outcome = match answer {
            Answer::Verdict(Verdict::Decided(d)) => {
                let (mo, name) = match d.outcome {
                    Outcome::Granted(_) => (MoOutcome::Granted, "granted"),
                    Outcome::Active(_) => (MoOutcome::Active, "active"),
                    Outcome::Denied(denial) => (MoOutcome::Denied, denial.reason()),
                };
                self.metrics.decision(d.code, name);
                mo
            }
            Answer::Verdict(Verdict::Invalid(e)) => {
                self.metrics.invalid(e.reason());
                MoOutcome::Invalid
            }
            Answer::Verdict(Verdict::Help) => MoOutcome::Help,
            Answer::TryLater => MoOutcome::TryLater,
            Answer::Refuse(_) => MoOutcome::Refused,
        };
        operator.metrics.mo(outcome);
    }

    /// Decides `requests` (those of `answers`' MOs at `owners`) for good: rounds of
    /// tentative decisions, claims and one store call each, until every request has an
    /// answer. Rounds after the first hold only the requests whose document was claimed.
    async fn decide(
        &self,
        rules: &Rules,
        now: i64,
        requests: &[PermitRequest],
        owners: &[usize],
        answers: &mut [Option<Answer>],
    ) {
        if requests.is_empty() {
            return;
        }
        let moment = rules.calendar.moment(now);
        let mut round = self.claims.round();
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
            for (&k, decision) in pending.iter().zip(&decisions) {
                let rule = match decision.outcome {
                    Outcome::Granted(_) => rules.code(decision.code),
                    _ => None,
                };
                let (Outcome::Granted(validity), Some(rule)) = (decision.outcome, rule) else {
                    answers[owners[k]] = Some(Answer::Verdict(Verdict::Decided(*decision)));
                    continue;
                };
                if !self.claims.try_claim(&mut round, decision.document) {
                    waiting.push(k);
                    continue;
                }
                tentative.push(Tentative {
                    document: decision.document,
                    code: rule.code,
                    validity,
                });
                sent.push(k);
            }

            let started = tokio::time::Instant::now();
            let decided = self.store.decide(rules, now, &tentative).await;
            if !tentative.is_empty() {
                Metrics::observe(&self.metrics.store_latency, started.elapsed());
            }
            match decided {
                Ok(verdicts) => {
                    for ((t, &k), verdict) in tentative.iter().zip(&sent).zip(verdicts) {
                        let outcome = self.commit(rules, t, verdict, &moment);
                        answers[owners[k]] = Some(Answer::Verdict(Verdict::Decided(Decision {
                            code: t.code,
                            document: t.document,
                            outcome,
                        })));
                    }
                }
                Err(e) => {
                    let answer = self.failed(&e, sent.len());
                    for &k in &sent {
                        answers[owners[k]] = Some(answer.clone());
                    }
                }
            }
            round.release();
            if waiting.is_empty() {
                return;
            }
            // Holding no claim now, so no round waits for this one while it waits.
            for &k in &waiting {
                self.claims.released(requests[k].document).await;
            }
            std::mem::swap(&mut pending, &mut waiting);
        }
    }

    /// How the MOs of a round the store could not decide are answered.
    fn failed(&self, error: &StoreError, mos: usize) -> Answer {
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
                self.engine.record_grant(rules, ask.code, ask.document, v);
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
            RedisVerdict::DailyLimit { limit } => Outcome::Denied(Denial::DailyLimit { limit }),
        }
    }

    /// Queues `text` as the reply to `mo` (in the place it took at intake) and gives the
    /// MO's acknowledgement.
    fn answer(&self, operator: &OperatorState, mo: &Mo, text: String) -> MoResult {
        operator.queue.push_reserved(Mt {
            id: operator.queue.next_id(),
            source: mo.destination.clone(),
            destination: mo.source.clone(),
            dest_ton: mo.source_ton,
            dest_npi: mo.source_npi,
            text,
            attempts: 0,
            owed_since: mo.received,
        });
        MoResult::Accepted(self.message_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::permit::clock::FakeClock;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    const MONDAY_10AM: i64 = 1_586_152_800; // 2020-04-06T10:00:00+04:00

    fn gateway() -> Arc<Gateway> {
        let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/config/rules.toml");
        let text = format!(
            "rules = {rules:?}\n[permit]\nkey = \"pipeline-unit-test-key\"\n[smpp]\nlisten = \"127.0.0.1:0\"\n\
             [[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\n"
        );
        let config = Config::from_toml(Path::new("/unit/icaze.toml"), &text, &|_| None)
            .expect("unit test config");
        let at = chrono::DateTime::from_timestamp(MONDAY_10AM, 0).expect("time");
        let clock = Arc::new(FakeClock::new(at));
        Arc::new(Gateway::open(config, clock, true).expect("volatile gateway"))
    }

    /// Decides `texts` as one batch; each answer's outcome.
    async fn decide(gw: &Gateway, texts: &[&str]) -> Vec<Outcome> {
        let rules = gw.rules();
        let requests: Vec<PermitRequest> = texts
            .iter()
            .map(|t| request_of(rules.parser().parse(t)).expect("a request"))
            .collect();
        let owners: Vec<usize> = (0..requests.len()).collect();
        let mut answers = vec![None; requests.len()];
        gw.decide(&rules, MONDAY_10AM, &requests, &owners, &mut answers)
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
}
