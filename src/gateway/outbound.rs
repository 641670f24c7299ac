//! Replies to operators: one queue per operator that every receiver-capable bind of that
//! operator pulls from, so replies spread over its binds, wait while it has none, and go
//! out as soon as one binds.
//!
//! The bound is enforced at intake (an MO is refused with ESME_RMSGQFUL while its
//! operator's queue is full, before anything is decided), so a reply that is already owed
//! is never dropped: replies taken back from a closing bind re-enter even a full queue.

use std::sync::atomic::{AtomicU64, Ordering};

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
    /// Delivery attempts so far (throttled or timed out ones count).
    pub attempts: u32,
}

/// An operator's reply queue.
#[derive(Debug)]
pub struct ReplyQueue {
    tx: async_channel::Sender<Mt>,
    rx: async_channel::Receiver<Mt>,
    capacity: usize,
    next_id: AtomicU64,
}

impl ReplyQueue {
    /// A queue that accepts new replies while it holds fewer than `capacity`.
    pub fn new(capacity: usize) -> Self {
        let (tx, rx) = async_channel::unbounded();
        ReplyQueue {
            tx,
            rx,
            capacity,
            next_id: AtomicU64::new(1),
        }
    }

    /// Whether a new MO may be taken: its reply will have room.
    pub fn has_room(&self) -> bool {
        self.rx.len() < self.capacity
    }

    /// Replies waiting.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// A fresh id for a new reply.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues a reply (never refused: the bound was checked when the MO was taken).
    pub fn push(&self, mt: Mt) {
        // The queue holds both ends, so it is never closed and send cannot fail.
        let _ = self.tx.try_send(mt);
    }

    /// Takes a reply if one waits.
    pub fn try_pop(&self) -> Option<Mt> {
        self.rx.try_recv().ok()
    }

    /// Waits for a reply. Cancel-safe: a dropped wait takes nothing.
    pub async fn pop(&self) -> Mt {
        loop {
            if let Ok(mt) = self.rx.recv().await {
                return mt;
            }
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
        }
    }

    #[tokio::test]
    async fn queue_bounds_intake_but_never_drops() {
        let q = ReplyQueue::new(2);
        assert!(q.has_room());
        q.push(mt(1));
        q.push(mt(2));
        assert!(!q.has_room());
        // A reply taken back from a closing bind still gets in.
        q.push(mt(3));
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop().await.id, 1);
        assert_eq!(q.try_pop().map(|m| m.id), Some(2));
        assert_eq!(q.try_pop().map(|m| m.id), Some(3));
        assert!(q.try_pop().is_none() && q.is_empty());
    }
}
