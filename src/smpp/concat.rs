//! Reassembly of concatenated MO.
//!
//! A long message reaches us as parts, each with a reference, a total and a sequence number
//! (from a UDH, 8- or 16-bit reference, or from `sar_*` TLVs). Parts arrive out of order, and
//! twice when an operator retries after a lost response. We keep the parts of each message
//! under (link, source address, reference, total) until all are present, then return the text.
//!
//! Bounded in every direction: a deadline per message (time is passed in, never read), a cap
//! on pending messages (reject or evict the oldest), and a cap on parts per message. Each part
//! carries an opaque token (say, its sequence number and link) handed back when the message
//! completes, is dropped, or times out, so the caller can answer every part it deferred.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::codec::Status;
use super::text::{self, DefaultAlphabet, TextError};

/// What to do with a new message when `max_pending` messages are already waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Refuse the new part (the caller answers ESME_RMSGQFUL and the operator retries).
    Reject,
    /// Drop the oldest pending message (returned to the caller to answer) to make room:
    /// a flood of never-completed parts cannot block new citizens.
    #[default]
    EvictOldest,
}

/// Limits of a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// How long after its first part a message may wait for the rest.
    pub timeout: Duration,
    /// Most messages waiting at once.
    pub max_pending: usize,
    /// Most parts a message may announce; a permit request fits in one or two.
    pub max_parts: u8,
    /// Policy when `max_pending` is reached.
    pub when_full: WhenFull,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            timeout: Duration::from_secs(60),
            max_pending: 10_000,
            max_parts: 10,
            when_full: WhenFull::EvictOldest,
        }
    }
}

/// Identifies one concatenated message. Parts with the same reference from different senders
/// or different links are different messages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageKey<K> {
    /// The caller's connection or operator key.
    pub link: K,
    /// The sender's address octets.
    pub source: Bytes,
    /// The concatenation reference (8-bit references widened).
    pub reference: u16,
    /// Parts announced.
    pub total: u8,
}

/// One received part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<T> {
    /// 1-based position in the message.
    pub seq: u8,
    /// The part's own data_coding (parts of one message may differ).
    pub data_coding: u8,
    /// How this link reads data_coding 0.
    pub default_alphabet: DefaultAlphabet,
    /// The user data, UDH removed.
    pub user_data: Bytes,
    /// Handed back when the message completes, expires or is evicted.
    pub token: T,
}

/// A message whose parts are all in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complete<K, T> {
    /// Which message.
    pub key: MessageKey<K>,
    /// The text, parts decoded in order (an error if some part's coding cannot be read).
    pub text: Result<String, TextError>,
    /// The tokens of all parts, in arrival order.
    pub tokens: Vec<T>,
}

/// Why a message was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Its deadline passed.
    Timeout,
    /// It was the oldest when the table was full.
    Evicted,
}

/// A message given up before completion, with the tokens of the parts that did arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired<K, T> {
    /// Which message.
    pub key: MessageKey<K>,
    /// Parts received.
    pub received: u8,
    /// Their tokens, in arrival order.
    pub tokens: Vec<T>,
    /// Why.
    pub reason: Dropped,
}

/// Why a part was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// `max_pending` messages are waiting and the policy is [`WhenFull::Reject`].
    Full,
    /// The message announces more than `max_parts` parts.
    TooManyParts,
    /// seq is 0 or above total, or total is 0.
    InvalidSeq,
}

impl Rejection {
    /// The command_status to answer the refused part with.
    pub fn status(self) -> Status {
        match self {
            Rejection::Full => Status::ESME_RMSGQFUL,
            Rejection::TooManyParts | Rejection::InvalidSeq => Status::ESME_RINVMSGLEN,
        }
    }
}

/// The result of offering a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer<K, T> {
    /// Stored; more parts to come. `evicted` is the message pushed out to make room, if any.
    Incomplete {
        /// Parts held for this message now.
        received: u8,
        /// Parts announced.
        total: u8,
        /// A message dropped under [`WhenFull::EvictOldest`], to be answered.
        evicted: Option<Expired<K, T>>,
    },
    /// This seq was already held; the first copy is kept and this token is handed back.
    Duplicate(T),
    /// The last missing part arrived.
    Complete(Complete<K, T>),
    /// Refused; the token is handed back with the reason.
    Rejected(T, Rejection),
}

struct Entry<T> {
    parts: Vec<Option<(u8, DefaultAlphabet, Bytes)>>,
    tokens: Vec<T>,
    received: u8,
    deadline: (Instant, u64),
}

/// Pending concatenated messages. `K` is the caller's link key, `T` the per-part token.
pub struct Reassembler<K, T> {
    config: ReassemblyConfig,
    pending: HashMap<MessageKey<K>, Entry<T>>,
    by_deadline: BTreeMap<(Instant, u64), MessageKey<K>>,
    next_id: u64,
}

impl<K, T> std::fmt::Debug for Reassembler<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reassembler")
            .field("config", &self.config)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl<K: Clone + Eq + Hash, T> Reassembler<K, T> {
    /// An empty reassembler with these limits.
    pub fn new(config: ReassemblyConfig) -> Self {
        Reassembler {
            config,
            pending: HashMap::new(),
            by_deadline: BTreeMap::new(),
            next_id: 0,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &ReassemblyConfig {
        &self.config
    }

    /// Messages waiting for parts.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The earliest deadline, for a timer that calls [`Reassembler::expire`].
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.keys().next().map(|(at, _)| *at)
    }

    /// Offers one part of message `key` at time `now`.
    pub fn offer(&mut self, key: MessageKey<K>, part: Part<T>, now: Instant) -> Offer<K, T> {
        let total = key.total;
        if total == 0 || part.seq == 0 || part.seq > total {
            return Offer::Rejected(part.token, Rejection::InvalidSeq);
        }
        if total > self.config.max_parts {
            return Offer::Rejected(part.token, Rejection::TooManyParts);
        }
        let index = usize::from(part.seq - 1);

        if let Some(entry) = self.pending.get_mut(&key) {
            if entry.parts[index].is_some() {
                return Offer::Duplicate(part.token);
            }
            entry.parts[index] = Some((part.data_coding, part.default_alphabet, part.user_data));
            entry.tokens.push(part.token);
            entry.received += 1;
            if entry.received < total {
                return Offer::Incomplete {
                    received: entry.received,
                    total,
                    evicted: None,
                };
            }
            return match self.pending.remove_entry(&key) {
                Some((key, entry)) => {
                    self.by_deadline.remove(&entry.deadline);
                    Offer::Complete(Self::complete(key, entry))
                }
                None => Offer::Incomplete {
                    received: total,
                    total,
                    evicted: None,
                },
            };
        }

        let single = total == 1;
        let mut evicted = None;
        if !single && self.pending.len() >= self.config.max_pending {
            if self.config.when_full == WhenFull::EvictOldest {
                evicted = self.pop_oldest(Dropped::Evicted);
            }
            // Reject policy, or nothing to evict (max_pending 0).
            if evicted.is_none() {
                return Offer::Rejected(part.token, Rejection::Full);
            }
        }
        let mut entry = Entry {
            parts: (0..total).map(|_| None).collect(),
            tokens: Vec::with_capacity(usize::from(total)),
            received: 1,
            deadline: (now + self.config.timeout, self.next_id),
        };
        entry.parts[index] = Some((part.data_coding, part.default_alphabet, part.user_data));
        entry.tokens.push(part.token);
        if single {
            return Offer::Complete(Self::complete(key, entry));
        }
        self.next_id += 1;
        self.by_deadline.insert(entry.deadline, key.clone());
        self.pending.insert(key, entry);
        Offer::Incomplete {
            received: 1,
            total,
            evicted,
        }
    }

    /// Removes and returns every message whose deadline is at or before `now`, oldest first.
    pub fn expire(&mut self, now: Instant) -> Vec<Expired<K, T>> {
        let mut out = Vec::new();
        while self
            .by_deadline
            .first_key_value()
            .is_some_and(|((at, _), _)| *at <= now)
        {
            match self.pop_oldest(Dropped::Timeout) {
                Some(expired) => out.push(expired),
                None => break,
            }
        }
        out
    }

    fn pop_oldest(&mut self, reason: Dropped) -> Option<Expired<K, T>> {
        let (_, key) = self.by_deadline.pop_first()?;
        let entry = self.pending.remove(&key)?;
        Some(Expired {
            key,
            received: entry.received,
            tokens: entry.tokens,
            reason,
        })
    }

    /// Decodes the parts in order. Consecutive parts with the same coding are joined before
    /// decoding, so a surrogate pair or GSM escape split across a part boundary survives.
    fn complete(key: MessageKey<K>, entry: Entry<T>) -> Complete<K, T> {
        let mut text = String::new();
        let mut run: Vec<u8> = Vec::new();
        let mut run_coding: Option<(u8, DefaultAlphabet)> = None;
        let mut result = Ok(());
        for (dcs, alphabet, data) in entry.parts.into_iter().flatten() {
            if run_coding.is_some_and(|c| c != (dcs, alphabet)) {
                if let Some((d, a)) = run_coding {
                    result = result.and_then(|()| text::decode_into(d, &run, a, &mut text));
                }
                run.clear();
            }
            run_coding = Some((dcs, alphabet));
            run.extend_from_slice(&data);
        }
        if let Some((d, a)) = run_coding {
            result = result.and_then(|()| text::decode_into(d, &run, a, &mut text));
        }
        Complete {
            key,
            text: result.map(|()| text),
            tokens: entry.tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smpp::codec::{Address, IncomingSm, MtPart};
    use crate::smpp::text::{DCS_DEFAULT, DCS_UCS2, encode_mt, parse_udh};

    type R = Reassembler<&'static str, u32>;

    fn key(
        link: &'static str,
        source: &'static str,
        reference: u16,
        total: u8,
    ) -> MessageKey<&'static str> {
        MessageKey {
            link,
            source: Bytes::from_static(source.as_bytes()),
            reference,
            total,
        }
    }

    fn part(seq: u8, dcs: u8, data: &'static [u8], token: u32) -> Part<u32> {
        Part {
            seq,
            data_coding: dcs,
            default_alphabet: DefaultAlphabet::Gsm7,
            user_data: Bytes::from_static(data),
            token,
        }
    }

    fn complete_text(offer: Offer<&'static str, u32>) -> (String, Vec<u32>) {
        match offer {
            Offer::Complete(c) => (c.text.unwrap(), c.tokens),
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn out_of_order_and_duplicates_with_8_bit_udh() {
        let now = Instant::now();
        let mut r = R::new(ReassemblyConfig::default());
        // The reply encoder makes realistic 8-bit-reference parts.
        let text = "2 AZE 11111111 ".repeat(12);
        let enc = encode_mt(&text, 0x7A).unwrap();
        assert_eq!(enc.parts.len(), 2);
        let parsed: Vec<_> = enc
            .parts
            .iter()
            .map(|p| {
                let udh = parse_udh(p).unwrap();
                let c = udh.concat.unwrap();
                let offset = p.len() - udh.user_data.len();
                (c, p.slice(offset..))
            })
            .collect();
        let offer = |r: &mut R, i: usize, token| {
            let (c, data) = &parsed[i];
            r.offer(
                key("op1", "994501234567", c.reference, c.total),
                Part {
                    seq: c.seq,
                    data_coding: DCS_DEFAULT,
                    default_alphabet: DefaultAlphabet::Gsm7,
                    user_data: data.clone(),
                    token,
                },
                now,
            )
        };
        assert!(matches!(
            offer(&mut r, 1, 10),
            Offer::Incomplete {
                received: 1,
                total: 2,
                evicted: None
            }
        ));
        assert_eq!(offer(&mut r, 1, 11), Offer::Duplicate(11));
        let (got, tokens) = complete_text(offer(&mut r, 0, 12));
        assert_eq!(got, text);
        assert_eq!(tokens, vec![10, 12]);
        assert!(r.is_empty());
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn sixteen_bit_reference_three_parts() {
        let now = Instant::now();
        let mut r = R::new(ReassemblyConfig::default());
        let k = || key("op1", "994501234567", 0xBEEF, 3);
        let sm = [0x06, 0x08, 0x04, 0xBE, 0xEF, 0x03, 0x02, b'A', b'Z', b'E'];
        let udh = parse_udh(&sm).unwrap();
        let c = udh.concat.unwrap();
        assert_eq!((c.reference, c.total, c.seq), (0xBEEF, 3, 2));
        assert!(matches!(
            r.offer(k(), part(3, 0, b" 11111111", 3), now),
            Offer::Incomplete { .. }
        ));
        assert!(matches!(
            r.offer(k(), part(2, 0, b"AZE", 2), now),
            Offer::Incomplete { received: 2, .. }
        ));
        let (got, tokens) = complete_text(r.offer(k(), part(1, 0, b"2 ", 1), now));
        assert_eq!(got, "2 AZE 11111111");
        assert_eq!(tokens, vec![3, 2, 1]);
    }

    #[test]
    fn sar_tlvs_via_incoming_sm() {
        let now = Instant::now();
        let mut r = R::new(ReassemblyConfig::default());
        let source = Address::new(1, 1, "994501234567").unwrap();
        let dest = Address::new(0, 0, "8103").unwrap();
        let chunks: [&[u8]; 2] = [
            &[0x00, 0x32, 0x00, 0x20, 0x00, 0x4D, 0x00, 0x59],
            &[0x01, 0x30, 0x00, 0x31],
        ];
        let mut last = None;
        for (i, chunk) in chunks.iter().enumerate().rev() {
            let mut pdu = MtPart {
                source: source.clone(),
                destination: dest.clone(),
                data_coding: DCS_UCS2,
                udh: false,
                short_message: Bytes::copy_from_slice(chunk),
            }
            .submit_sm();
            if let rusmpp::Pdu::SubmitSm(sm) = &mut pdu {
                use rusmpp::tlvs::MessageSubmissionRequestTlvValue as V;
                sm.push_tlv(V::SarMsgRefNum(513));
                sm.push_tlv(V::SarTotalSegments(2));
                sm.push_tlv(V::SarSegmentSeqnum(i as u8 + 1));
            }
            let mo = IncomingSm::from_pdu(pdu).unwrap();
            let seg = mo.segment().unwrap();
            let c = seg.concat.unwrap();
            last = Some(r.offer(
                MessageKey {
                    link: "op2",
                    source: mo.source.to_bytes(),
                    reference: c.reference,
                    total: c.total,
                },
                Part {
                    seq: c.seq,
                    data_coding: mo.data_coding,
                    default_alphabet: DefaultAlphabet::Gsm7,
                    user_data: seg.user_data,
                    token: i as u32,
                },
                now,
            ));
        }
        let (got, _) = complete_text(last.unwrap());
        assert_eq!(got, "2 MYİ1");
    }

    #[test]
    fn surrogate_pair_split_across_parts_survives() {
        let now = Instant::now();
        let mut r = R::new(ReassemblyConfig::default());
        // U+1F600 = D83D DE00, split between part 1 and part 2.
        let k = || key("op1", "1", 1, 2);
        r.offer(k(), part(1, DCS_UCS2, &[0x00, 0x41, 0xD8, 0x3D], 1), now);
        let (got, _) = complete_text(r.offer(k(), part(2, DCS_UCS2, &[0xDE, 0x00], 2), now));
        assert_eq!(got, "A😀");
    }

    #[test]
    fn parts_may_differ_in_coding() {
        let now = Instant::now();
        let mut r = R::new(ReassemblyConfig::default());
        let k = || key("op1", "1", 1, 2);
        r.offer(k(), part(1, DCS_DEFAULT, b"2 MY", 1), now);
        let (got, _) = complete_text(r.offer(k(), part(2, DCS_UCS2, &[0x01, 0x30], 2), now));
        assert_eq!(got, "2 MYİ");
        // An undecodable part makes the whole text an error, tokens still returned.
        r.offer(k(), part(1, 0x04, b"\x01", 1), now);
        match r.offer(k(), part(2, DCS_DEFAULT, b"x", 2), now) {
            Offer::Complete(c) => {
                assert!(c.text.is_err());
                assert_eq!(c.tokens, vec![1, 2]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn same_reference_from_other_sender_or_link_is_another_message() {
        let now = Instant::now();
        let mut r = R::new(ReassemblyConfig::default());
        r.offer(key("op1", "111", 5, 2), part(1, 0, b"a", 1), now);
        r.offer(key("op1", "222", 5, 2), part(1, 0, b"b", 2), now);
        r.offer(key("op2", "111", 5, 2), part(1, 0, b"c", 3), now);
        assert_eq!(r.len(), 3);
        let (got, _) = complete_text(r.offer(key("op1", "222", 5, 2), part(2, 0, b"B", 4), now));
        assert_eq!(got, "bB");
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn missing_parts_time_out() {
        let t0 = Instant::now();
        let config = ReassemblyConfig {
            timeout: Duration::from_secs(30),
            ..ReassemblyConfig::default()
        };
        let mut r = R::new(config);
        r.offer(key("op1", "1", 1, 3), part(1, 0, b"a", 1), t0);
        r.offer(
            key("op1", "1", 1, 3),
            part(3, 0, b"c", 3),
            t0 + Duration::from_secs(5),
        );
        r.offer(
            key("op1", "2", 1, 2),
            part(1, 0, b"x", 9),
            t0 + Duration::from_secs(10),
        );
        assert_eq!(r.next_deadline(), Some(t0 + Duration::from_secs(30)));
        assert!(r.expire(t0 + Duration::from_secs(29)).is_empty());
        let gone = r.expire(t0 + Duration::from_secs(30));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].key, key("op1", "1", 1, 3));
        assert_eq!(gone[0].received, 2);
        assert_eq!(gone[0].tokens, vec![1, 3]);
        assert_eq!(gone[0].reason, Dropped::Timeout);
        assert_eq!(r.len(), 1);
        let gone = r.expire(t0 + Duration::from_secs(3600));
        assert_eq!(gone[0].tokens, vec![9]);
        assert!(r.is_empty());
        // A late part after expiry starts a fresh message.
        assert!(matches!(
            r.offer(
                key("op1", "1", 1, 3),
                part(2, 0, b"b", 2),
                t0 + Duration::from_secs(31)
            ),
            Offer::Incomplete { received: 1, .. }
        ));
    }

    #[test]
    fn full_table_rejects_or_evicts_oldest() {
        let now = Instant::now();
        let config = ReassemblyConfig {
            max_pending: 2,
            when_full: WhenFull::Reject,
            ..ReassemblyConfig::default()
        };
        let mut r = R::new(config);
        r.offer(key("l", "1", 1, 2), part(1, 0, b"a", 1), now);
        r.offer(key("l", "2", 1, 2), part(1, 0, b"a", 2), now);
        assert_eq!(
            r.offer(key("l", "3", 1, 2), part(1, 0, b"a", 3), now),
            Offer::Rejected(3, Rejection::Full)
        );
        assert_eq!(Rejection::Full.status(), Status::ESME_RMSGQFUL);
        // Parts of messages already held still complete.
        assert!(matches!(
            r.offer(key("l", "1", 1, 2), part(2, 0, b"b", 4), now),
            Offer::Complete(_)
        ));

        let config = ReassemblyConfig {
            max_pending: 2,
            when_full: WhenFull::EvictOldest,
            ..ReassemblyConfig::default()
        };
        let mut r = R::new(config);
        r.offer(key("l", "1", 1, 2), part(1, 0, b"a", 1), now);
        r.offer(
            key("l", "2", 1, 2),
            part(1, 0, b"a", 2),
            now + Duration::from_secs(1),
        );
        match r.offer(
            key("l", "3", 1, 2),
            part(1, 0, b"a", 3),
            now + Duration::from_secs(2),
        ) {
            Offer::Incomplete {
                evicted: Some(e), ..
            } => {
                assert_eq!(e.key, key("l", "1", 1, 2));
                assert_eq!(e.tokens, vec![1]);
                assert_eq!(e.reason, Dropped::Evicted);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn invalid_parts_are_rejected() {
        let now = Instant::now();
        let mut r = R::new(ReassemblyConfig {
            max_parts: 4,
            ..ReassemblyConfig::default()
        });
        assert_eq!(
            r.offer(key("l", "1", 1, 2), part(0, 0, b"a", 1), now),
            Offer::Rejected(1, Rejection::InvalidSeq)
        );
        assert_eq!(
            r.offer(key("l", "1", 1, 2), part(3, 0, b"a", 2), now),
            Offer::Rejected(2, Rejection::InvalidSeq)
        );
        assert_eq!(
            r.offer(key("l", "1", 1, 5), part(1, 0, b"a", 3), now),
            Offer::Rejected(3, Rejection::TooManyParts)
        );
        // A "concatenated" message of one part completes at once and holds nothing.
        let (got, _) = complete_text(r.offer(key("l", "1", 1, 1), part(1, 0, b"solo", 4), now));
        assert_eq!(got, "solo");
        assert!(r.is_empty());
    }
}
