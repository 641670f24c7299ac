//! The citizen-facing answers that need more than one document's quota: status requests
//! (the asking phone's permits of today) and, with Redis, the phone's documents of the day
//! shared by every node. The journal's single node answers both from its engine; with
//! Redis the engine knows only this node's grants, so Redis is asked too.

use super::Gateway;
use super::pipeline::Answer;
use crate::permit::answer::{Verdict, fill_status};
use crate::permit::decision::{Decision, Denial, Outcome};
use crate::permit::engine::permits::Issued;
use crate::permit::id::PhoneTag;
use crate::permit::rules::Rules;
use crate::store::redis::{GrantAsk, PhoneAsk, RedisError, RedisVerdict};
use crate::store::{Store, Tentative};

impl Gateway {
    /// Fills a status request's permits (see [`fill_status`]): from this node's permit
    /// book (every grant made here or replayed from the journal) and, with Redis, from the
    /// status lists every node writes. If Redis cannot answer, this node's book answers.
    pub(super) async fn status(
        &self,
        rules: &Rules,
        verdict: &mut Verdict,
        phone: PhoneTag,
        now: i64,
    ) {
        fill_status(&self.engine, rules, verdict, phone, now);
        let (Store::Redis(redis), Verdict::Status(documents)) = (&self.store, verdict) else {
            return;
        };
        if !phone.is_known() {
            return;
        }
        let since = rules.calendar.moment(now).day_start;
        for (document, permits) in documents.iter_mut() {
            match redis.status_of(*document).await {
                Ok(entries) => {
                    for e in entries {
                        if e.phone != phone || e.validity.from < since {
                            continue;
                        }
                        let id = self.key.permit_id(
                            *document,
                            e.code,
                            e.validity.from,
                            e.validity.until,
                        );
                        if permits.iter().all(|p| p.id != id) {
                            permits.push(Issued {
                                id,
                                document: *document,
                                code: e.code,
                                validity: e.validity,
                                phone,
                            });
                        }
                    }
                    permits.sort_by_key(|p| (p.validity.from, p.code));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "redis: a status list could not be read; answered from this node's permits");
                }
            }
        }
    }

    /// With Redis and `max_documents_per_phone`: asks Redis, for every possible grant of the
    /// round from a known phone, whether the phone may have its document (counted for it if
    /// so), so the limit holds across nodes. A refused one is answered as abuse and leaves
    /// the round; if Redis cannot answer, those MOs get the store-failure answer.
    pub(super) async fn phones_in_redis(
        &self,
        rules: &Rules,
        now: i64,
        tentative: &mut Vec<Tentative>,
        sent: &mut Vec<usize>,
        answers: &mut [Option<Answer>],
    ) {
        let (Store::Redis(redis), Some(max)) = (&self.store, rules.max_documents_per_phone) else {
            return;
        };
        let asking: Vec<usize> = (0..tentative.len())
            .filter(|&i| tentative[i].phone.is_known())
            .collect();
        if asking.is_empty() {
            return;
        }
        let asks: Vec<PhoneAsk> = asking
            .iter()
            .filter_map(|&i| {
                let t = tentative[i];
                let rule = rules.code(t.code)?;
                Some(PhoneAsk {
                    phone: t.phone,
                    document: t.document,
                    max,
                    expire_at: GrantAsk::for_rule(
                        t.document,
                        rule,
                        &rules.calendar,
                        now,
                        rules.longest_validity_secs,
                    )
                    .expire_at,
                })
            })
            .collect();
        let mut dropped = vec![false; tentative.len()];
        match redis.phone_admits(&asks).await {
            Ok(admitted) => {
                for (&i, ok) in asking.iter().zip(admitted) {
                    if !ok {
                        let t = tentative[i];
                        answers[sent[i]] = Some(Answer::Verdict(Verdict::Decided(Decision {
                            code: t.code,
                            document: t.document,
                            outcome: Outcome::Denied(Denial::Abuse),
                        })));
                        dropped[i] = true;
                    }
                }
            }
            Err(e) => {
                let answer = self.failed(&e.into(), asking.len());
                for &i in &asking {
                    answers[sent[i]] = Some(answer.clone());
                    dropped[i] = true;
                }
            }
        }
        let mut i = 0;
        tentative.retain(|_| {
            i += 1;
            !dropped[i - 1]
        });
        let mut i = 0;
        sent.retain(|_| {
            i += 1;
            !dropped[i - 1]
        });
    }

    /// With Redis: adds the round's new permits from known phones to their documents'
    /// status lists, before their MOs are acknowledged. A failure is logged: the permits
    /// stand, only status answers on other nodes miss them.
    pub(super) async fn note_in_redis(
        &self,
        rules: &Rules,
        now: i64,
        tentative: &[Tentative],
        verdicts: &[Result<RedisVerdict, RedisError>],
    ) {
        let Store::Redis(redis) = &self.store else {
            return;
        };
        let granted: Vec<_> = tentative
            .iter()
            .zip(verdicts)
            .filter_map(|(t, v)| match v {
                Ok(RedisVerdict::Granted(validity)) if t.phone.is_known() => {
                    let rule = rules.code(t.code)?;
                    let expire_at = GrantAsk::for_rule(
                        t.document,
                        rule,
                        &rules.calendar,
                        now,
                        rules.longest_validity_secs,
                    )
                    .expire_at;
                    Some((t.document, t.code, *validity, t.phone, expire_at))
                }
                _ => None,
            })
            .collect();
        if granted.is_empty() {
            return;
        }
        if let Err(e) = redis.note_grants(&granted).await {
            tracing::warn!(error = %e, permits = granted.len(), "redis: permits not added to status lists");
        }
    }
}
