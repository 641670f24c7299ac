//! Delivery of our messages to the peer (deliver_sm as MC, submit_sm as ESME): a bounded
//! window, retry with back-off on a transient refusal, and a verdict when the peer stops
//! answering.
//!
//! A message is known by a key the caller picks (the gateway's reply id) and has one or
//! more parts; each part travels under its own sequence number. [`Delivery`] says which
//! part to send when, and what the peer's answer means; the caller encodes the parts and
//! owns the messages. It never gives a message up on its own: a peer that refuses one for
//! good ([`Answer::Refused`]) decides that, and a peer that leaves a part unanswered past
//! the response timeout is unresponsive ([`Delivery::timed_out`]), so the caller closes the
//! bind and hands the messages still owed ([`Delivery::owed`]) to another bind.

use crate::smpp::codec::Status;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;
use tokio::time::Instant;

/// A map keyed by our own sequence numbers and ids: no need for SipHash's DoS resistance.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// How one bind delivers: set by whoever owns the messages (the gateway's outbound policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Parts sent or waiting to be sent at once: a slow peer holds no more than this.
    pub window: usize,
    /// How long a sent part may go unanswered before the peer counts as unresponsive.
    pub response_timeout: Duration,
    /// The wait after the first transient refusal of a message; doubles per attempt.
    pub backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
}

impl Policy {
    /// The wait before attempt `attempts + 1` of a message refused `attempts` times.
    pub fn backoff(&self, attempts: u32) -> Duration {
        self.backoff
            .saturating_mul(1 << (attempts.clamp(1, 11) - 1))
            .min(self.max_backoff)
    }
}

/// What the peer's answer to one of our parts means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<K> {
    /// Not an answer to anything outstanding (late, duplicate, or for a refused message).
    Stray,
    /// The part is done; other parts of its message are still open.
    Part,
    /// The last open part is done: the message is delivered.
    Delivered(K),
    /// A transient refusal (throttled, queue full, system error): the part goes again after
    /// the back-off; on ESME_RTHROTTLED the whole bind pauses as long.
    Retry(K),
    /// A permanent refusal: the peer will never take this message.
    Refused(K, Status),
}

#[derive(Debug)]
struct Message {
    open: usize,
    attempts: u32,
}

#[derive(Debug)]
struct Inflight<K> {
    key: K,
    part: usize,
    sent: Instant,
}

/// The delivery state of one bind.
#[derive(Debug)]
pub struct Delivery<K> {
    policy: Policy,
    messages: FastMap<K, Message>,
    inflight: FastMap<u32, Inflight<K>>,
    /// Parts waiting to be sent, by due time.
    due: VecDeque<(Instant, K, usize)>,
    /// Parts sent, in sending order, with their sequence numbers; answered ones are dropped
    /// from the front lazily, so the front is the oldest unanswered part: the response
    /// timeout is checked in O(1) per turn instead of scanning the whole window.
    sent: VecDeque<(Instant, u32)>,
    paused_until: Option<Instant>,
}

impl<K: Copy + Eq + Hash> Delivery<K> {
    /// Nothing owed yet.
    pub fn new(policy: Policy) -> Self {
        Delivery {
            policy,
            messages: FastMap::default(),
            inflight: FastMap::default(),
            due: VecDeque::new(),
            sent: VecDeque::new(),
            paused_until: None,
        }
    }

    /// Whether the window takes another message now (not while paused by ESME_RTHROTTLED:
    /// a message taken then would only wait here instead of going to another bind).
    pub fn has_room(&self, now: Instant) -> bool {
        self.inflight.len() + self.due.len() < self.policy.window
            && self.paused_until.is_none_or(|t| t <= now)
    }

    /// Whether nothing is owed on this bind.
    pub fn is_idle(&self) -> bool {
        self.messages.is_empty()
    }

    /// Takes a message of `parts` parts, all due at `now`.
    pub fn start(&mut self, key: K, parts: usize, now: Instant) {
        self.messages.insert(
            key,
            Message {
                open: parts,
                attempts: 0,
            },
        );
        for part in 0..parts {
            self.schedule(now, key, part);
        }
    }

    fn schedule(&mut self, at: Instant, key: K, part: usize) {
        let i = self.due.partition_point(|(d, _, _)| *d <= at);
        self.due.insert(i, (at, key, part));
    }

    /// Sends every part due at `now` that fits the window: `send(key, part)` writes it and
    /// returns the sequence number it went under.
    pub fn send_due(&mut self, now: Instant, mut send: impl FnMut(K, usize) -> u32) {
        if self.paused_until.is_some_and(|t| t > now) {
            return;
        }
        self.paused_until = None;
        while self.inflight.len() < self.policy.window {
            match self.due.front() {
                Some(&(at, key, part)) if at <= now => {
                    self.due.pop_front();
                    let seq = send(key, part);
                    self.sent.push_back((now, seq));
                    self.inflight.insert(
                        seq,
                        Inflight {
                            key,
                            part,
                            sent: now,
                        },
                    );
                }
                _ => break,
            }
        }
    }

    /// Which message and part went out under `seq`, while it is unanswered.
    pub fn part_of(&self, seq: u32) -> Option<(K, usize)> {
        self.inflight.get(&seq).map(|f| (f.key, f.part))
    }

    /// The peer answered `seq` with `status` at `now`.
    pub fn answer(&mut self, seq: u32, status: Status, now: Instant) -> Answer<K> {
        let Some(f) = self.inflight.remove(&seq) else {
            return Answer::Stray;
        };
        self.prune();
        let Some(m) = self.messages.get_mut(&f.key) else {
            return Answer::Stray;
        };
        if status.is_ok() {
            m.open = m.open.saturating_sub(1);
            if m.open > 0 {
                return Answer::Part;
            }
            self.messages.remove(&f.key);
            return Answer::Delivered(f.key);
        }
        if status.is_transient() {
            m.attempts += 1;
            let wait = self.policy.backoff(m.attempts);
            if status == Status::ESME_RTHROTTLED {
                self.paused_until = Some(now + wait);
            }
            self.schedule(now + wait, f.key, f.part);
            return Answer::Retry(f.key);
        }
        self.messages.remove(&f.key);
        self.due.retain(|(_, k, _)| *k != f.key);
        Answer::Refused(f.key, status)
    }

    /// Whether a part has gone unanswered for the response timeout at `now`: the peer is
    /// unresponsive and the bind should close.
    pub fn timed_out(&self, now: Instant) -> bool {
        self.oldest_sent()
            .is_some_and(|sent| now >= sent + self.policy.response_timeout)
    }

    /// When the oldest unanswered part was sent.
    fn oldest_sent(&self) -> Option<Instant> {
        self.sent.front().map(|&(at, _)| at)
    }

    /// Drops answered parts from the front of `sent`.
    fn prune(&mut self) {
        while let Some(&(at, seq)) = self.sent.front() {
            if self.inflight.get(&seq).is_some_and(|f| f.sent == at) {
                break;
            }
            self.sent.pop_front();
        }
    }

    /// When something is next due: a part to send, or a response that would be late.
    pub fn deadline(&self) -> Option<Instant> {
        let late = self.oldest_sent().map(|t| t + self.policy.response_timeout);
        let send = self.due.front().map(|&(at, _, _)| match self.paused_until {
            Some(p) => at.max(p),
            None => at,
        });
        match (late, send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Forgets everything and returns the keys of the messages still owed (in no order),
    /// for the caller to hand to another bind.
    pub fn owed(&mut self) -> impl Iterator<Item = K> + '_ {
        self.inflight.clear();
        self.sent.clear();
        self.due.clear();
        self.paused_until = None;
        self.messages.drain().map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy(window: usize) -> Policy {
        Policy {
            window,
            response_timeout: 10_000 * MS,
            backoff: 200 * MS,
            max_backoff: 10_000 * MS,
        }
    }

    /// Sends what is due, returning (seq, key, part) in sending order.
    fn send(d: &mut Delivery<u64>, now: Instant, seq: &mut u32) -> Vec<(u32, u64, usize)> {
        let mut sent = Vec::new();
        d.send_due(now, |key, part| {
            *seq += 1;
            sent.push((*seq, key, part));
            *seq
        });
        sent
    }

    #[test]
    fn window_limits_what_is_taken_and_sent() {
        let t0 = Instant::now();
        let mut d = Delivery::new(policy(2));
        let mut seq = 0;
        assert!(d.has_room(t0));
        d.start(1, 1, t0);
        d.start(2, 1, t0);
        assert!(!d.has_room(t0), "two parts fill a window of two");
        assert_eq!(send(&mut d, t0, &mut seq), [(1, 1, 0), (2, 2, 0)]);
        assert!(!d.has_room(t0));
        assert_eq!(d.answer(1, Status::ESME_ROK, t0), Answer::Delivered(1));
        assert!(d.has_room(t0));
        // A three-part message: only what fits goes out.
        d.start(3, 3, t0);
        assert_eq!(send(&mut d, t0, &mut seq), [(3, 3, 0)]);
        assert_eq!(d.answer(2, Status::ESME_ROK, t0), Answer::Delivered(2));
        assert_eq!(send(&mut d, t0, &mut seq), [(4, 3, 1)]);
        assert_eq!(d.answer(3, Status::ESME_ROK, t0), Answer::Part);
        assert_eq!(send(&mut d, t0, &mut seq), [(5, 3, 2)]);
        assert_eq!(d.answer(5, Status::ESME_ROK, t0), Answer::Part);
        assert_eq!(d.answer(4, Status::ESME_ROK, t0), Answer::Delivered(3));
        assert_eq!(d.answer(4, Status::ESME_ROK, t0), Answer::Stray);
        assert!(d.is_idle());
    }

    #[test]
    fn transient_refusals_back_off_doubling_to_the_cap() {
        let t0 = Instant::now();
        let mut d = Delivery::new(policy(4));
        let mut seq = 0;
        d.start(9, 1, t0);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let sent = send(&mut d, now, &mut seq);
            assert_eq!(sent.len(), 1, "one attempt at {:?}", now - t0);
            assert_eq!(
                d.answer(sent[0].0, Status::ESME_RMSGQFUL, now),
                Answer::Retry(9)
            );
            let next = d.deadline().expect("a retry is due");
            // Not a moment early.
            assert!(send(&mut d, next - MS, &mut seq).is_empty());
            waits.push((next - now).as_millis());
            now = next;
        }
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
        // Never given up: the ninth attempt goes, and is delivered.
        let sent = send(&mut d, now, &mut seq);
        assert_eq!(
            d.answer(sent[0].0, Status::ESME_ROK, now),
            Answer::Delivered(9)
        );
    }

    #[test]
    fn throttled_pauses_the_whole_bind() {
        let t0 = Instant::now();
        let mut d = Delivery::new(policy(4));
        let mut seq = 0;
        d.start(1, 1, t0);
        let sent = send(&mut d, t0, &mut seq);
        assert_eq!(
            d.answer(sent[0].0, Status::ESME_RTHROTTLED, t0),
            Answer::Retry(1)
        );
        assert!(!d.has_room(t0), "a paused bind takes nothing new");
        d.start(2, 1, t0);
        assert!(send(&mut d, t0 + 199 * MS, &mut seq).is_empty());
        let sent = send(&mut d, t0 + 200 * MS, &mut seq);
        assert_eq!(sent.len(), 2);
        assert!(d.has_room(t0 + 200 * MS));
    }

    #[test]
    fn permanent_refusal_drops_the_message_and_its_other_parts() {
        let t0 = Instant::now();
        let mut d = Delivery::new(policy(1));
        let mut seq = 0;
        d.start(5, 2, t0);
        let sent = send(&mut d, t0, &mut seq);
        assert_eq!(
            d.answer(sent[0].0, Status::ESME_RINVDSTADR, t0),
            Answer::Refused(5, Status::ESME_RINVDSTADR)
        );
        assert!(send(&mut d, t0, &mut seq).is_empty());
        assert!(d.is_idle());
    }

    #[test]
    fn an_unanswered_part_makes_the_peer_unresponsive_and_everything_is_owed() {
        let t0 = Instant::now();
        let mut d = Delivery::new(policy(2));
        let mut seq = 0;
        d.start(1, 1, t0);
        d.start(2, 1, t0);
        send(&mut d, t0, &mut seq);
        d.start(3, 1, t0 + 5_000 * MS);
        assert_eq!(d.deadline(), Some(t0 + 5_000 * MS));
        assert!(!d.timed_out(t0 + 9_999 * MS));
        assert!(d.timed_out(t0 + 10_000 * MS));
        let mut owed: Vec<u64> = d.owed().collect();
        owed.sort_unstable();
        assert_eq!(owed, [1, 2, 3]);
        assert!(d.is_idle() && d.deadline().is_none());
        // A late answer after the hand-back is stray.
        assert_eq!(d.answer(1, Status::ESME_ROK, t0), Answer::Stray);
    }
}
