//! Delivery receipts in connector mode: which reply part each SMSC message_id stands for,
//! and what the receipts said of each reply.
//!
//! A connector with `registered_delivery` 1 or 2 asks the SMSC for a receipt on every
//! submit_sm part. Each part the SMSC accepts is booked under the message_id of its
//! submit_sm_resp; a receipt (on any of the connector's binds: with a transmitter +
//! receiver pair it arrives on the other session) is matched to its part by that id. SMSCs
//! and gateways re-render ids (Kannel and others print a hex id in decimal, or pad or strip
//! leading zeros), so a receipt id that matches nothing exactly is tried, in this order,
//! without leading zeros and case-blind, then read as decimal against ids that were hex,
//! then as hex against ids that were decimal.
//!
//! A reply is delivered once every part is; failed (DELETED, UNDELIV, REJECTD, SKIPPED) or
//! expired as soon as one part is; unknown when every part has a final receipt and one
//! said UNKNOWN, or (with `registered_delivery = 1`) when its parts' entries expire
//! without the receipts that would settle it. With `registered_delivery = 2` the SMSC
//! reports failures only, so silence is not counted.
//!
//! The book is bounded: an entry expires `receipt_expiry` after its part was accepted, and
//! past `receipt_limit` entries the oldest goes first. Counted per connector in
//! `icaze_receipts_total{connector,state}` (per receipt) and
//! `icaze_reply_delivery_total{connector,state}` (per reply).

use crate::smpp::receipt::{Receipt, Stat};
use crate::telemetry::mask_msisdn;
use crate::telemetry::metrics::ReceiptMetrics;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// A map keyed by SMSC ids and our reply ids: no need for SipHash's DoS resistance.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What a receipt said of one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartState {
    /// DELIVRD.
    Delivered,
    /// DELETED, UNDELIV, REJECTD, SKIPPED.
    Failed,
    /// EXPIRED.
    Expired,
    /// UNKNOWN, a state nobody names, or none at all.
    Unknown,
    /// ENROUTE, ACCEPTD: an intermediate notification; a final one is still to come.
    Enroute,
}

impl PartState {
    fn of(stat: Option<Stat>) -> PartState {
        match stat {
            Some(Stat::Delivered) => PartState::Delivered,
            Some(Stat::Expired) => PartState::Expired,
            Some(Stat::Deleted | Stat::Undeliverable | Stat::Rejected | Stat::Skipped) => {
                PartState::Failed
            }
            Some(Stat::Enroute | Stat::Accepted) => PartState::Enroute,
            Some(Stat::Unknown) | None => PartState::Unknown,
        }
    }

    /// Its place in [`crate::telemetry::metrics::RECEIPT_STATES`].
    fn index(self) -> usize {
        self as usize
    }
}

/// What became of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyState {
    /// Every part delivered.
    Delivered,
    /// A part failed.
    Failed,
    /// A part expired.
    Expired,
    /// Neither delivered nor failed, as far as the receipts tell.
    Unknown,
}

/// What one receipt matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// No part we know: counted as unmatched.
    Unmatched,
    /// A part of reply `reply`, now in `state`; `settled` when the receipt settled the whole
    /// reply.
    Part {
        /// The reply's id.
        reply: u64,
        /// What the receipt said of the part.
        state: PartState,
        /// The reply's state, when this receipt settled it.
        settled: Option<ReplyState>,
    },
}

/// A connector's `registered_delivery` and the book's bounds, from its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// 0 none, 1 always, 2 on failure only.
    pub registered_delivery: u8,
    /// How long an accepted part waits for its receipt.
    pub expiry: Duration,
    /// Most parts waiting at once.
    pub limit: usize,
}

/// Other spellings of a booked id, for receipts that re-render it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Alias {
    /// Lower case, leading zeros stripped (ids that are no number only).
    Text(String),
    /// Its value, read as decimal.
    Dec(u128),
    /// Its value, read as hex.
    Hex(u128),
}

#[derive(Debug)]
struct Booked {
    reply: u64,
    part: usize,
    at: Instant,
}

#[derive(Debug)]
struct Track {
    /// Each part's state, once a receipt told it.
    parts: Vec<Option<PartState>>,
    /// Booked ids that point here.
    live: usize,
    /// Which parts have been booked (accepted with an id) at least once.
    booked: Vec<bool>,
    /// When its first part was booked.
    since: Instant,
    /// Whether its state has been counted.
    settled: bool,
    /// The citizen's number, masked, for the log.
    msisdn: String,
}

#[derive(Debug, Default)]
struct Book {
    ids: FastMap<String, Booked>,
    aliases: FastMap<Alias, String>,
    /// Booked ids, oldest first; an id answered early stays until it reaches the front.
    order: VecDeque<(Instant, String)>,
    replies: FastMap<u64, Track>,
    /// Replies by when their first part was booked, oldest first (as `order`, lazily).
    tracks: VecDeque<(Instant, u64)>,
}

/// One connector's receipt book.
#[derive(Debug)]
pub struct ReceiptBook {
    name: String,
    bounds: Bounds,
    metrics: ReceiptMetrics,
    book: Mutex<Book>,
}

impl ReceiptBook {
    /// An empty book for connector `name`, counting into `metrics`.
    pub fn new(name: &str, bounds: Bounds, metrics: ReceiptMetrics) -> Self {
        ReceiptBook {
            name: name.to_string(),
            bounds,
            metrics,
            book: Mutex::new(Book::default()),
        }
    }

    /// The registered_delivery every submit_sm part of this connector carries.
    pub fn registered_delivery(&self) -> u8 {
        self.bounds.registered_delivery
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The SMSC accepted part `part` of `parts` of reply `reply` (to `msisdn`) as
    /// `message_id` at `now`: book it for its receipt (nothing when no receipt was asked).
    pub fn accepted(
        &self,
        message_id: &str,
        reply: u64,
        part: usize,
        parts: usize,
        msisdn: &str,
        now: Instant,
    ) {
        if self.bounds.registered_delivery == 0 || self.bounds.limit == 0 {
            return;
        }
        let mut book = self.lock();
        self.expire(&mut book, now);
        while book.ids.len() >= self.bounds.limit {
            if !self.evict_oldest(&mut book, now) {
                break;
            }
        }
        if book.ids.contains_key(message_id) {
            // The SMSC gave an id again (it wrapped, or a part went twice): the newer wins.
            self.remove(&mut book, message_id, now);
        }
        if !book.replies.contains_key(&reply) {
            while book.replies.len() >= self.bounds.limit {
                let Some((_, oldest)) = book.tracks.pop_front() else {
                    break;
                };
                self.finish(&mut book, oldest);
            }
            book.tracks.push_back((now, reply));
        }
        let track = book.replies.entry(reply).or_insert_with(|| Track {
            parts: vec![None; parts.max(1)],
            live: 0,
            booked: vec![false; parts.max(1)],
            since: now,
            settled: false,
            msisdn: mask_msisdn(msisdn),
        });
        track.live += 1;
        if let Some(b) = track.booked.get_mut(part) {
            *b = true;
        }
        for alias in aliases(message_id) {
            book.aliases.insert(alias, message_id.to_string());
        }
        book.ids.insert(
            message_id.to_string(),
            Booked {
                reply,
                part,
                at: now,
            },
        );
        book.order.push_back((now, message_id.to_string()));
        // Ids answered early stay in `order` until they reach its front: compact it before
        // it holds many more than the live ones.
        if book.order.len() > 2 * self.bounds.limit.max(16) {
            let Book { ids, order, .. } = &mut *book;
            order.retain(|(at, id)| ids.get(id).is_some_and(|b| b.at == *at));
        }
        if book.tracks.len() > 2 * self.bounds.limit.max(16) {
            let Book {
                replies, tracks, ..
            } = &mut *book;
            tracks.retain(|(at, r)| replies.get(r).is_some_and(|t| t.since == *at));
        }
    }

    /// A receipt arrived at `now`: match it, keep and count what it says.
    pub fn receipt(&self, receipt: &Receipt, now: Instant) -> Matched {
        let mut book = self.lock();
        self.expire(&mut book, now);
        let found = receipt.id.as_deref().and_then(|id| find(&book, id));
        let Some(id) = found else {
            self.metrics.receipts[5].inc();
            tracing::debug!(connector = %self.name, id = receipt.id.as_deref().unwrap_or(""), stat = ?receipt.stat, "receipt for no reply we know: answered, counted as unmatched");
            return Matched::Unmatched;
        };
        let state = PartState::of(receipt.stat);
        self.metrics.receipts[state.index()].inc();
        let Some(booked) = book.ids.get(&id) else {
            return Matched::Unmatched;
        };
        let (reply, part) = (booked.reply, booked.part);
        let mut settled = None;
        if let Some(track) = book.replies.get_mut(&reply) {
            if let Some(slot) = track.parts.get_mut(part)
                && state != PartState::Enroute
            {
                *slot = Some(state);
            }
            settled = (!track.settled).then(|| settles(&track.parts)).flatten();
            if let Some(s) = settled {
                track.settled = true;
                self.metrics.replies[s as usize].inc();
                tracing::debug!(connector = %self.name, msisdn = %track.msisdn, state = ?s, "reply's delivery state known");
            }
        }
        if state != PartState::Enroute {
            // Its fate is told: nothing more to wait for under this id.
            self.remove(&mut book, &id, now);
        }
        Matched::Part {
            reply,
            state,
            settled,
        }
    }

    /// Parts booked and waiting for their receipt.
    pub fn waiting(&self) -> usize {
        self.lock().ids.len()
    }

    /// Drops entries older than the expiry at `now`, and replies waiting that long for a
    /// part that was never booked.
    fn expire(&self, book: &mut Book, now: Instant) {
        while let Some((at, _)) = book.order.front() {
            if now < *at + self.bounds.expiry {
                break;
            }
            self.evict_oldest(book, now);
        }
        while let Some(&(at, reply)) = book.tracks.front() {
            if now < at + self.bounds.expiry {
                break;
            }
            book.tracks.pop_front();
            if book
                .replies
                .get(&reply)
                .is_some_and(|t| t.since == at && t.live == 0)
            {
                self.finish(book, reply);
            }
        }
    }

    /// Drops the oldest live entry; `false` when there is none.
    fn evict_oldest(&self, book: &mut Book, now: Instant) -> bool {
        while let Some((at, id)) = book.order.pop_front() {
            if book.ids.get(&id).is_some_and(|b| b.at == at) {
                self.remove(book, &id, now);
                return true;
            }
        }
        false
    }

    /// Forgets booked `id` and its aliases.
    fn remove(&self, book: &mut Book, id: &str, now: Instant) {
        let Some(b) = book.ids.remove(id) else {
            return;
        };
        for alias in aliases(id) {
            if book.aliases.get(&alias).is_some_and(|t| t == id) {
                book.aliases.remove(&alias);
            }
        }
        self.unlink(book, b.reply, now);
    }

    /// One booked id of `reply` fewer. With none left the reply is finished, unless a part
    /// of it has not been booked yet and may still be (an SMSC that answers a part and
    /// sends its receipt at once reports on the first part before the second is accepted).
    fn unlink(&self, book: &mut Book, reply: u64, now: Instant) {
        let Some(track) = book.replies.get_mut(&reply) else {
            return;
        };
        track.live = track.live.saturating_sub(1);
        let waits_for_parts = !track.booked.iter().all(|b| *b);
        if track.live > 0
            || (!track.settled && waits_for_parts && now < track.since + self.bounds.expiry)
        {
            return;
        }
        self.finish(book, reply);
    }

    /// Forgets `reply`, counted as unknown if no receipt settled it and every receipt was
    /// asked for.
    fn finish(&self, book: &mut Book, reply: u64) {
        let Some(track) = book.replies.remove(&reply) else {
            return;
        };
        if !track.settled && self.bounds.registered_delivery == 1 {
            self.metrics.replies[ReplyState::Unknown as usize].inc();
            tracing::debug!(connector = %self.name, msisdn = %track.msisdn, "no receipt settled the reply before its entries expired: unknown");
        }
    }
}

/// The reply's state, once the parts' states settle it.
fn settles(parts: &[Option<PartState>]) -> Option<ReplyState> {
    if parts.contains(&Some(PartState::Failed)) {
        return Some(ReplyState::Failed);
    }
    if parts.contains(&Some(PartState::Expired)) {
        return Some(ReplyState::Expired);
    }
    if parts.iter().all(|p| *p == Some(PartState::Delivered)) {
        return Some(ReplyState::Delivered);
    }
    parts
        .iter()
        .all(Option::is_some)
        .then_some(ReplyState::Unknown)
}

/// The booked id a receipt's `id` stands for: exactly; then the same digits without
/// leading zeros or in another case (the same value in the same radix); then the value
/// read as decimal against ids booked in hex, and as hex against ids booked in decimal;
/// then, for ids that are no number, case-blind without leading zeros.
fn find(book: &Book, id: &str) -> Option<String> {
    if book.ids.contains_key(id) {
        return Some(id.to_string());
    }
    let (dec, hex) = (decimal(id), hex(id));
    let tries = [
        dec.map(Alias::Dec),
        hex.map(Alias::Hex),
        dec.map(Alias::Hex),
        hex.map(Alias::Dec),
        Some(Alias::Text(normal(id))),
    ];
    tries
        .into_iter()
        .flatten()
        .find_map(|a| book.aliases.get(&a).cloned())
}

/// The aliases a booked id is found under: its value in each radix it can be read in, or
/// for an id that is no number, its text case-blind without leading zeros.
fn aliases(id: &str) -> impl Iterator<Item = Alias> {
    let (dec, hex) = (decimal(id), hex(id));
    let text = (dec.is_none() && hex.is_none()).then(|| Alias::Text(normal(id)));
    [dec.map(Alias::Dec), hex.map(Alias::Hex), text]
        .into_iter()
        .flatten()
}

/// Lower case, leading zeros stripped ("0" stays).
fn normal(id: &str) -> String {
    let t = id.trim_start_matches('0');
    let t = if t.is_empty() && !id.is_empty() {
        "0"
    } else {
        t
    };
    t.to_ascii_lowercase()
}

fn decimal(id: &str) -> Option<u128> {
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .then(|| id.parse().ok())
        .flatten()
}

fn hex(id: &str) -> Option<u128> {
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(id, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests;
