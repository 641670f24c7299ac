//! Replies owed to operators: one queue per operator that every receiver-capable bind of
//! that operator pulls from, so replies spread over its binds, wait while it has none, and
//! go out as soon as one binds; and the policy a bind delivers them with ([`policy`]).
//!
//! The bound is hard, and enforced at intake: an MO takes a place for its reply
//! ([`ReplyQueue::try_reserve`]) before anything is decided, and is refused with
//! ESME_RMSGQFUL when queued plus promised replies fill the queue; so MOs under way in
//! many batches at once cannot overfill it. A reply that is already owed is never dropped:
//! replies taken back from a closing bind re-enter even a full queue, at its front
//! ([`ReplyQueue::give_back`]), so they go out first on the next bind, and so does the hint
//! for a concatenated MO whose parts were acknowledged but never completed.

use crate::smpp::session::Policy;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// The wait after a reply's first transient refusal (ESME_RTHROTTLED, queue full); doubles
/// per attempt.
pub const BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between attempts of one reply. A reply is never given up on while the
/// peer answers; a peer that stops answering loses the bind instead (see [`policy`]).
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How a bind delivers replies: `window` parts at once; transient refusals retried after
/// [`BACKOFF`] doubling to [`MAX_BACKOFF`], as often as it takes; a part unanswered for
/// `response_timeout` makes the bind unresponsive, so it is closed and its replies go back
/// to the queue for the next bind.
pub fn policy(window: u32, response_timeout: Duration) -> Policy {
    Policy {
        window: window.max(1) as usize,
        response_timeout,
        backoff: BACKOFF,
        max_backoff: MAX_BACKOFF,
    }
}

/// One reply SMS (MT) owed to a citizen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mt {
    /// Our id for it, for logs and metrics.
    pub id: u64,
    /// Source address: the short number the citizen texted.
    pub source: String,
    /// The citizen's number, as it came in the MO.
    pub destination: String,
    /// Type of number of the destination, copied from the MO's source.
    pub dest_ton: u8,
    /// Numbering plan of the destination, copied from the MO's source.
    pub dest_npi: u8,
    /// The reply text.
    pub text: String,
    /// Transient refusals so far, on every bind it went to (for logs: a reply is never
    /// given up on for being refused for now).
    pub attempts: u32,
    /// When the MO it answers was read: its delivery ends the MO→MT time.
    pub owed_since: tokio::time::Instant,
    /// Whether the store's outbox holds it (and so must be told once it is delivered); a
    /// reply kept in memory only (a "try again" during an outage) is not.
    pub kept: bool,
}

impl Mt {
    /// The reply `owed` (durable in the store's outbox under the same id), for delivery;
    /// `owed_since` is when its MO was read (or, for a reply owed before a restart, when
    /// it was queued again).
    pub fn owed(owed: crate::store::outbox::OwedReply, owed_since: tokio::time::Instant) -> Mt {
        Mt {
            id: owed.id,
            source: owed.source,
            destination: owed.destination,
            dest_ton: owed.dest_ton,
            dest_npi: owed.dest_npi,
            text: owed.text,
            attempts: 0,
            owed_since,
            kept: true,
        }
    }

    /// The reply `owed`, which the store could not keep: in memory only, nothing to settle.
    pub fn in_memory(
        owed: crate::store::outbox::OwedReply,
        owed_since: tokio::time::Instant,
    ) -> Mt {
        Mt {
            kept: false,
            ..Mt::owed(owed, owed_since)
        }
    }
}

/// An operator's reply queue.
#[derive(Debug)]
pub struct ReplyQueue {
    items: Mutex<VecDeque<Mt>>,
    /// `items.len()`, kept beside the lock so intake checks room per MO without taking it.
    len: AtomicUsize,
    /// Places promised to MOs under way, whose replies are not queued yet.
    reserved: AtomicUsize,
    ready: Notify,
    capacity: usize,
}

impl ReplyQueue {
    /// A queue that accepts new replies while it holds fewer than `capacity`.
    pub fn new(capacity: usize) -> Self {
        ReplyQueue {
            items: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
            ready: Notify::new(),
            capacity,
        }
    }

    fn items(&self) -> std::sync::MutexGuard<'_, VecDeque<Mt>> {
        self.items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a place for a new MO's reply, if queued and promised replies leave one. Every
    /// place taken is given back by [`ReplyQueue::push_reserved`] (the reply is queued) or
    /// [`ReplyQueue::release`] (the MO ended without one).
    pub fn try_reserve(&self) -> bool {
        let mut promised = self.reserved.load(Ordering::Acquire);
        loop {
            if self.len() + promised >= self.capacity {
                return false;
            }
            match self.reserved.compare_exchange_weak(
                promised,
                promised + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => promised = now,
            }
        }
    }

    /// Gives back `n` places of MOs that ended without a reply (refused, held parts,
    /// dropped with their connection).
    pub fn release(&self, n: usize) {
        if n > 0 {
            self.reserved.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// Queues the reply of an MO that took a place with [`ReplyQueue::try_reserve`].
    pub fn push_reserved(&self, mt: Mt) {
        // Queued first, promise dropped after: for a moment it counts twice, never zero.
        self.push(mt);
        self.release(1);
    }

    /// Replies waiting.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues a reply owed without a place taken for it (the hint for an incomplete
    /// concatenated MO): never refused, even by a full queue.
    pub fn push(&self, mt: Mt) {
        {
            let mut items = self.items();
            items.push_back(mt);
            self.len.store(items.len(), Ordering::Release);
        }
        self.ready.notify_one();
    }

    /// Puts replies a closing bind still owed back at the front, oldest first, so the next
    /// bind sends them before anything newer.
    pub fn give_back(&self, mut mts: Vec<Mt>) {
        mts.sort_unstable_by_key(|m| m.id);
        let n = mts.len();
        {
            let mut items = self.items();
            for mt in mts.into_iter().rev() {
                items.push_front(mt);
            }
            self.len.store(items.len(), Ordering::Release);
        }
        for _ in 0..n {
            self.ready.notify_one();
        }
    }

    /// Takes a reply if one waits.
    pub fn try_pop(&self) -> Option<Mt> {
        let mut items = self.items();
        let mt = items.pop_front();
        self.len.store(items.len(), Ordering::Release);
        mt
    }

    /// Waits for a reply. Cancel-safe: a dropped wait takes nothing (and passes its wake-up
    /// on to another waiter).
    pub async fn pop(&self) -> Mt {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(mt) = self.try_pop() {
                return mt;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mt(id: u64) -> Mt {
        Mt {
            id,
            source: "8103".into(),
            destination: "994501234567".into(),
            dest_ton: 1,
            dest_npi: 1,
            text: "ok".into(),
            attempts: 0,
            owed_since: tokio::time::Instant::now(),
            kept: true,
        }
    }

    #[tokio::test]
    async fn queue_bounds_intake_but_never_drops() {
        let q = ReplyQueue::new(2);
        assert!(q.try_reserve());
        q.push_reserved(mt(1));
        assert!(q.try_reserve());
        q.push_reserved(mt(2));
        assert!(!q.try_reserve());
        // A reply taken back from a closing bind still gets in.
        q.give_back(vec![mt(3)]);
        assert_eq!(q.try_pop().map(|m| m.id), Some(3));
        q.push(mt(3));
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop().await.id, 1);
        assert_eq!(q.try_pop().map(|m| m.id), Some(2));
        assert_eq!(q.try_pop().map(|m| m.id), Some(3));
        assert!(q.try_pop().is_none() && q.is_empty());
    }

    #[test]
    fn places_promised_to_mos_under_way_count_against_the_limit() {
        // MOs under way in several batches: each took a place before its reply is queued,
        // so they cannot together overfill the queue (they once reached 28,783 of 20,000).
        let q = ReplyQueue::new(3);
        assert!(q.try_reserve() && q.try_reserve() && q.try_reserve());
        assert!(!q.try_reserve(), "three replies promised: full");
        q.push_reserved(mt(1));
        assert!(!q.try_reserve(), "two promised and one queued: still full");
        // One MO refused: its place comes back.
        q.release(1);
        assert!(q.try_reserve());
        q.push_reserved(mt(2));
        q.push_reserved(mt(3));
        assert_eq!(q.len(), 3);
        assert!(!q.try_reserve());
        q.try_pop();
        assert!(q.try_reserve());
    }

    #[tokio::test]
    async fn given_back_replies_go_first_in_their_order() {
        let q = ReplyQueue::new(10);
        q.push(mt(7));
        q.give_back(vec![mt(5), mt(3), mt(4)]);
        let order: Vec<u64> = std::iter::from_fn(|| q.try_pop()).map(|m| m.id).collect();
        assert_eq!(order, [3, 4, 5, 7]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_bind_wakes_for_a_given_back_reply() {
        let q = std::sync::Arc::new(ReplyQueue::new(10));
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await.id }
        });
        tokio::task::yield_now().await;
        q.give_back(vec![mt(2)]);
        assert_eq!(waiter.await.unwrap(), 2);
    }

    #[test]
    fn policy_never_gives_up_and_caps_the_back_off() {
        let p = policy(0, Duration::from_secs(3));
        assert_eq!(p.window, 1, "a zero window would never deliver");
        assert_eq!(p.backoff(1), BACKOFF);
        assert_eq!(p.backoff(30), MAX_BACKOFF);
    }
}
