//! The documents each phone got permits for today: what `max_documents_per_phone` counts
//! (an abuser texting every document number they know, seed 004's "abuse of any code").
//!
//! Filled like the permit book, by [`QuotaEngine::record_grant_by`](super::QuotaEngine::record_grant_by):
//! the gateway's commits, a journal replay at start (grants carry their phone's tag) and
//! another node's grants learnt through Redis. Keyed by the phone's tag (a keyed hash,
//! never the number). Bounded: a phone holds at most the limit's documents (a grant past it
//! is refused), and [`Phones::sweep`] drops every phone whose day is over, so the table
//! holds today's phones only, about 48 bytes each (the first document inline), plus a list
//! for a phone past one document.

use super::listed::Listed;
use super::shards::{self, Map, SHARDS};
use crate::permit::document::Document;
use crate::permit::id::PhoneTag;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One phone's documents of one local day.
#[derive(Debug, Default)]
struct PhoneDay {
    /// The Unix second the day starts: documents of an earlier day no longer count.
    day_start: i64,
    /// One or a few (the limit is small): kept inline, see [`Listed`].
    documents: Listed<Document>,
}

type Shard = Mutex<Map<PhoneTag, PhoneDay>>;

/// Each phone's documents of the day. Safe to share.
#[derive(Debug)]
pub struct Phones {
    shards: Box<[Shard]>,
}

impl Default for Phones {
    fn default() -> Self {
        Phones {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Phones {
    /// Room for `phones` phones before any shard's map grows (a growth copies the shard
    /// under its lock while the MOs committing grants there wait).
    pub fn with_capacity(phones: usize) -> Self {
        Phones {
            shards: shards::maps(shards::room(phones)),
        }
    }

    /// Touches the room reserved (as the permit book does); at start, before any grant.
    pub fn warm(&self) {
        for shard in self.shards.iter() {
            let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shards::warm(&mut map, |n| Some(PhoneTag(n + 1)), PhoneDay::default);
        }
    }

    /// Phones the smallest shard holds before it grows.
    #[cfg(test)]
    fn room(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).capacity())
            .min()
            .unwrap_or(0)
    }

    fn shard(&self, phone: PhoneTag) -> MutexGuard<'_, Map<PhoneTag, PhoneDay>> {
        // The tag is a keyed hash already: its top bits spread phones evenly.
        // A panic cannot leave a map half-changed (each write is one map operation).
        self.shards[(phone.0 >> 60) as usize % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes that `phone` got a permit for `document` on the day starting at `day_start`.
    /// A grant of an earlier day than the one the phone holds is ignored (it no longer
    /// counts); a later day starts the phone afresh.
    pub fn record(&self, phone: PhoneTag, document: Document, day_start: i64) {
        if !phone.is_known() {
            return;
        }
        let mut shard = self.shard(phone);
        let day = shard.entry(phone).or_default();
        if day.day_start > day_start {
            return;
        }
        if day.day_start < day_start {
            day.day_start = day_start;
            day.documents.clear();
        }
        if !day.documents.as_slice().contains(&document) {
            day.documents.push(document);
        }
    }

    /// Whether `phone` may get a permit for `document` on the day starting at `day_start`
    /// under a limit of `max` distinct documents: it had one for this document today
    /// already, or fewer than `max` documents together with `pending` (documents of the same
    /// phone this caller is about to grant, not yet recorded). An unknown phone always may.
    pub fn admits(
        &self,
        phone: PhoneTag,
        document: Document,
        day_start: i64,
        max: u32,
        pending: &[Document],
    ) -> bool {
        if !phone.is_known() {
            return true;
        }
        let shard = self.shard(phone);
        let held: &[Document] = match shard.get(&phone) {
            Some(day) if day.day_start >= day_start => day.documents.as_slice(),
            _ => &[],
        };
        if held.contains(&document) || pending.contains(&document) {
            return true;
        }
        // Distinct pending documents the phone does not hold yet (a family names few).
        let more = pending
            .iter()
            .enumerate()
            .filter(|&(i, d)| !held.contains(d) && !pending[..i].contains(d))
            .count();
        held.len() + more < max as usize
    }

    /// Distinct documents `phone` got permits for on the day starting at `day_start`.
    pub fn documents(&self, phone: PhoneTag, day_start: i64) -> usize {
        match self.shard(phone).get(&phone) {
            Some(day) if day.day_start >= day_start => day.documents.as_slice().len(),
            _ => 0,
        }
    }

    /// Drops the phones whose day started before `day_start` (today's). Returns how many.
    pub fn sweep(&self, day_start: i64) -> usize {
        let mut dropped = 0;
        for shard in self.shards.iter() {
            let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let before = map.len();
            map.retain(|_, day| day.day_start >= day_start);
            dropped += before - map.len();
        }
        dropped
    }

    /// Phones held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether no phone is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 1_586_116_800; // 2020-04-06T00:00:00+04:00

    fn doc(n: u32) -> Document {
        Document::new(b"AZE", format!("{n:08}").as_bytes()).unwrap()
    }

    #[test]
    fn reserved_phones_are_recorded_without_growing() {
        let phones = Phones::with_capacity(10_000);
        let room = phones.room();
        for n in 0..10_000u64 {
            // Tags are keyed hashes: spread over the top bits, as real ones are.
            let tag = PhoneTag((n + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            phones.record(tag, doc(n as u32 + 1), DAY);
        }
        assert_eq!(phones.len(), 10_000);
        assert_eq!(phones.room(), room, "a shard grew");
    }

    #[test]
    fn a_phone_may_have_max_distinct_documents_a_day() {
        let phones = Phones::default();
        let me = PhoneTag(0xfeed);
        for n in 1..=3 {
            assert!(phones.admits(me, doc(n), DAY, 3, &[]));
            phones.record(me, doc(n), DAY);
        }
        assert!(!phones.admits(me, doc(4), DAY, 3, &[]), "a fourth document");
        assert!(phones.admits(me, doc(2), DAY, 3, &[]), "one it had");
        assert!(
            phones.admits(PhoneTag(1), doc(4), DAY, 3, &[]),
            "another phone"
        );
        assert!(phones.admits(PhoneTag::NONE, doc(4), DAY, 0, &[]));
        // Pending documents of the same batch count as if recorded.
        let fresh = PhoneTag(0xbeef);
        assert!(phones.admits(fresh, doc(3), DAY, 3, &[doc(1), doc(1), doc(2)]));
        assert!(!phones.admits(fresh, doc(3), DAY, 2, &[doc(1), doc(1), doc(2)]));
        // The next day starts afresh; yesterday's grant replayed late changes nothing.
        let tomorrow = DAY + 86_400;
        assert!(phones.admits(me, doc(4), tomorrow, 3, &[]));
        phones.record(me, doc(4), tomorrow);
        phones.record(me, doc(5), DAY);
        assert_eq!(phones.documents(me, tomorrow), 1);
        phones.record(fresh, doc(1), DAY);
        assert_eq!(phones.sweep(tomorrow), 1, "only the phone of yesterday");
        assert_eq!(phones.len(), 1);
    }
}
