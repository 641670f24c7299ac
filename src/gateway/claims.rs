//! Documents whose possible grant is with the store right now.
//!
//! The engine commits a grant only once the store has made it durable, so between the
//! engine's tentative "granted" and the store's answer the engine still says "no permit".
//! Another MO for the same document in that window (another bind, the same batch, a resend)
//! must neither be granted a second time nor be told "already active" about a grant that is
//! not durable yet. So a round claims each document it sends to the store; an MO whose
//! document is claimed waits until the claim is released, then is decided again against
//! what the store committed. A round holds no claim while it waits, so rounds cannot wait
//! for each other in a circle.
//!
//! Under `max_documents_per_phone` the asking phones are claimed the same way (a
//! `Claims<PhoneTag>`): two MOs of one phone on two binds cannot both pass the phone's
//! limit while neither grant is committed.

use crate::permit::document::Document;
use foldhash::fast::FixedState;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

const SHARDS: usize = 64;

/// The claimed documents (or phones), sharded so that rounds on different ones rarely meet.
#[derive(Debug)]
pub(super) struct Claims<K = Document> {
    shards: Box<[Shard<K>]>,
    hasher: FixedState,
}

#[derive(Debug)]
struct Shard<K> {
    held: Mutex<HashSet<K>>,
    released: Notify,
}

impl<K> Shard<K> {
    fn held(&self) -> MutexGuard<'_, HashSet<K>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: Copy + Eq + Hash> Claims<K> {
    pub(super) fn new() -> Self {
        Claims {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    held: Mutex::new(HashSet::new()),
                    released: Notify::new(),
                })
                .collect(),
            hasher: FixedState::default(),
        }
    }

    fn shard(&self, document: K) -> &Shard<K> {
        let h = self.hasher.hash_one(document);
        &self.shards[(h >> 58) as usize % SHARDS]
    }

    /// Claims `document` for `round`, or says it is claimed already (by another round, or
    /// earlier in this one).
    pub(super) fn try_claim(&self, round: &mut Round<'_, K>, document: K) -> bool {
        if self.shard(document).held().insert(document) {
            round.held.push(document);
            true
        } else {
            false
        }
    }

    /// Waits until `document` is not claimed (returns at once if it is not). May return
    /// early after another document of its shard was released: the caller decides again
    /// and claims again anyway.
    pub(super) async fn released(&self, document: K) {
        let shard = self.shard(document);
        let notified = shard.released.notified();
        tokio::pin!(notified);
        // Registered before looking, so a release between the look and the wait is not missed.
        notified.as_mut().enable();
        if !shard.held().contains(&document) {
            return;
        }
        notified.await;
    }

    /// A new round with nothing claimed.
    pub(super) fn round(&self) -> Round<'_, K> {
        Round {
            claims: self,
            held: Vec::new(),
        }
    }
}

/// The documents one round has claimed; released when it is dropped (also if the round's
/// future is dropped mid-way), waking whoever waits for them.
#[derive(Debug)]
pub(super) struct Round<'a, K: Copy + Eq + Hash = Document> {
    claims: &'a Claims<K>,
    held: Vec<K>,
}

impl<K: Copy + Eq + Hash> Round<'_, K> {
    /// Whether this round holds `key`.
    pub(super) fn holds(&self, key: K) -> bool {
        self.held.contains(&key)
    }

    /// Releases everything claimed so far; the round can claim again.
    pub(super) fn release(&mut self) {
        for document in self.held.drain(..) {
            let shard = self.claims.shard(document);
            shard.held().remove(&document);
            shard.released.notify_waiters();
        }
    }
}

impl<K: Copy + Eq + Hash> Drop for Round<'_, K> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn doc(n: u64) -> Document {
        Document::new(b"AZE", n.to_string().as_bytes()).expect("document")
    }

    #[test]
    fn a_claimed_document_cannot_be_claimed_again_until_released() {
        let claims = Claims::new();
        let mut first = claims.round();
        let mut second = claims.round();
        assert!(claims.try_claim(&mut first, doc(11111111)));
        assert!(
            !claims.try_claim(&mut first, doc(11111111)),
            "same round, same document"
        );
        assert!(!claims.try_claim(&mut second, doc(11111111)));
        assert!(claims.try_claim(&mut second, doc(22222222)));
        drop(first);
        assert!(claims.try_claim(&mut second, doc(11111111)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_wakes_when_the_claim_is_released_and_not_before() {
        let claims = Arc::new(Claims::new());
        let mut round = claims.round();
        assert!(claims.try_claim(&mut round, doc(11111111)));
        let waiter = tokio::spawn({
            let claims = claims.clone();
            async move { claims.released(doc(11111111)).await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiter.is_finished(), "woke while the claim was held");
        round.release();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken by the release")
            .expect("waiter ran");
        // An unclaimed document is not waited for.
        claims.released(doc(33333333)).await;
    }
}
