//! The permits this engine has recorded, by permit id and by document, and the ones an
//! official revoked: what a checkpoint asks about ("is `K7QM-4RTX` real, still valid, this
//! person's?") answered in O(1), without scanning the day's grants.
//!
//! Filled by [`QuotaEngine::record_grant`](super::QuotaEngine::record_grant), so the gateway's
//! commits, a journal replay at start and another node's grants learnt through Redis all
//! land here. Each grant costs one keyed hash (its id) and two short locks, paid only on a
//! grant; a decision pays one atomic load, and only when it finds an active permit, to know
//! whether anything at all was revoked.
//!
//! Memory: about 100 bytes a grant. [`Permits::sweep`] drops grants issued before yesterday
//! that have ended, so the book holds about two days of grants.

use super::listed::Listed;
use super::shards::{self, Map, shard_of, warm};
use crate::permit::decision::Validity;
use crate::permit::document::Document;
use crate::permit::id::{PermitId, PermitKey, PhoneTag};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

/// One permit as issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issued {
    /// Its id, as the reply printed it.
    pub id: PermitId,
    /// The document it is for.
    pub document: Document,
    /// Its code.
    pub code: u8,
    /// Its window; `from` is also when it was issued.
    pub validity: Validity,
    /// The phone that asked for it ([`PhoneTag::NONE`] if not known): a status request
    /// lists only its own phone's permits.
    pub phone: PhoneTag,
}

/// Why and when a permit was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The official's reason, as given.
    pub reason: String,
    /// When, Unix seconds.
    pub at: i64,
}

/// One shard of a map, behind its lock.
type Shard<K, V> = Mutex<Map<K, V>>;

/// The permit book: grants by id and by document, and revocations. Safe to share.
#[derive(Debug)]
pub struct Permits {
    key: PermitKey,
    /// Permit id → document, sharded by id.
    by_id: Box<[Shard<PermitId, Document>]>,
    /// Document → its recorded permits (nearly always one, kept inline), sharded by
    /// document.
    by_document: Box<[Shard<Document, Listed<Issued>>]>,
    revoked: RwLock<Map<PermitId, Revocation>>,
    /// `revoked.len()`, read without the lock on the decision path.
    revoked_count: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every write below is a single map operation: a panic cannot leave a map half-changed.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A document per `n` (AZE and `n` in 8 digits), for keys that only need to be distinct.
pub(super) fn made_up_document(n: u64) -> Option<Document> {
    let mut digits = *b"00000000";
    let mut rest = n % 100_000_000;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    Document::new(b"AZE", &digits).ok()
}

/// Entries the book's maps hold before one of them grows (the smallest shard's room).
#[cfg(test)]
impl Permits {
    fn room(&self) -> usize {
        fn room<K, V>(shards: &[Shard<K, V>]) -> usize {
            shards.iter().map(|s| lock(s).capacity()).min().unwrap_or(0)
        }
        room(&self.by_id).min(room(&self.by_document))
    }
}

impl Permits {
    /// An empty book; ids are computed with `key`, the same key replies print them with.
    pub fn new(key: PermitKey) -> Self {
        Self::with_capacity(key, 0)
    }

    /// An empty book with room for `permits` grants (of as many documents) before any of
    /// its maps grows: a map growing on a busy morning copies its shard under the shard's
    /// lock (tens of milliseconds at a million permits) while every MO that commits a
    /// grant there waits.
    pub fn with_capacity(key: PermitKey, permits: usize) -> Self {
        let room = shards::room(permits);
        Permits {
            key,
            by_id: shards::maps(room),
            by_document: shards::maps(room),
            revoked: RwLock::new(Map::default()),
            revoked_count: AtomicUsize::new(0),
        }
    }

    /// Touches the room reserved (the free function `warm` of this module); at start,
    /// before any grant.
    pub fn warm(&self) {
        if let Some(any) = made_up_document(0) {
            for shard in self.by_id.iter() {
                warm(&mut lock(shard), |n| Some(PermitId::from_bits(n)), || any);
            }
        }
        for shard in self.by_document.iter() {
            warm(&mut lock(shard), made_up_document, Listed::default);
        }
    }

    /// The id this book gives a permit.
    pub fn id_of(&self, document: Document, code: u8, validity: Validity) -> PermitId {
        self.key
            .permit_id(document, code, validity.from, validity.until)
    }

    /// Records a grant (again: recording the same grant twice keeps one; a phone learnt
    /// later, e.g. the journal's record after another node's, fills in an unknown one).
    pub fn record(
        &self,
        document: Document,
        code: u8,
        validity: Validity,
        phone: PhoneTag,
    ) -> PermitId {
        let id = self.id_of(document, code, validity);
        {
            let mut docs = lock(&self.by_document[shard_of(document.packed())]);
            let list = docs.entry(document).or_default();
            if let Some(known) = list.as_mut_slice().iter_mut().find(|p| p.id == id) {
                if !known.phone.is_known() {
                    known.phone = phone;
                }
                return id;
            }
            list.push(Issued {
                id,
                document,
                code,
                validity,
                phone,
            });
        }
        lock(&self.by_id[shard_of(id_bits(id))]).insert(id, document);
        id
    }

    /// The permit with this id, if this book holds it.
    pub fn get(&self, id: PermitId) -> Option<Issued> {
        let document = *lock(&self.by_id[shard_of(id_bits(id))]).get(&id)?;
        lock(&self.by_document[shard_of(document.packed())])
            .get(&document)?
            .as_slice()
            .iter()
            .find(|p| p.id == id)
            .copied()
    }

    /// The permits of `document` this book holds, oldest first.
    pub fn of_document(&self, document: Document) -> Vec<Issued> {
        let mut list = lock(&self.by_document[shard_of(document.packed())])
            .get(&document)
            .map_or_else(Vec::new, |l| l.as_slice().to_vec());
        list.sort_by_key(|p| (p.validity.from, p.code));
        list
    }

    /// The permits of `document` issued from `since` (Unix seconds, the start of today) that
    /// `phone` asked for, oldest first: a status reply's list. An unknown phone asks for
    /// nothing and gets nothing.
    pub fn of_phone(&self, document: Document, phone: PhoneTag, since: i64) -> Vec<Issued> {
        if !phone.is_known() {
            return Vec::new();
        }
        let mut list = self.of_document(document);
        list.retain(|p| p.phone == phone && p.validity.from >= since);
        list
    }

    /// Marks `id` revoked; the first revocation of a permit is the one kept. Returns the one
    /// in force.
    pub fn revoke(&self, id: PermitId, revocation: Revocation) -> Revocation {
        let mut revoked = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
        let kept = revoked.entry(id).or_insert(revocation).clone();
        self.revoked_count.store(revoked.len(), Ordering::Release);
        kept
    }

    /// The revocation of `id`, if it was revoked.
    pub fn revocation(&self, id: PermitId) -> Option<Revocation> {
        if self.revoked_count.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.revoked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Whether the permit of `document` and `code` with this window was revoked: the
    /// decision path's question, one atomic load while nothing is revoked.
    #[inline]
    pub fn is_revoked(&self, document: Document, code: u8, validity: Validity) -> bool {
        self.revoked_count.load(Ordering::Acquire) != 0
            && self
                .revoked
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(&self.id_of(document, code, validity))
    }

    /// Revocations made in `[from, until)` (Unix seconds), for a day's figures.
    pub fn revoked_between(&self, from: i64, until: i64) -> usize {
        self.revoked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|r| (from..until).contains(&r.at))
            .count()
    }

    /// Permits recorded (for health answers and tests).
    pub fn len(&self) -> usize {
        self.by_id.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether no permit is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the permits issued before `keep_from` (Unix seconds, the start of yesterday)
    /// that have ended by `now`, and their revocations. Returns how many.
    pub fn sweep(&self, keep_from: i64, now: i64) -> usize {
        let mut gone = Vec::new();
        for shard in self.by_document.iter() {
            let mut docs = lock(shard);
            docs.retain(|_, list| {
                list.retain(|p| {
                    let dead = p.validity.from < keep_from && p.validity.until <= now;
                    if dead {
                        gone.push(p.id);
                    }
                    !dead
                })
            });
        }
        if gone.is_empty() {
            return 0;
        }
        for id in &gone {
            lock(&self.by_id[shard_of(id_bits(*id))]).remove(id);
        }
        if self.revoked_count.load(Ordering::Acquire) != 0 {
            let mut revoked = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
            for id in &gone {
                revoked.remove(id);
            }
            self.revoked_count.store(revoked.len(), Ordering::Release);
        }
        gone.len()
    }
}

fn id_bits(id: PermitId) -> u64 {
    id.bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN: i64 = 1_586_152_800;

    fn doc(n: &[u8]) -> Document {
        Document::new(b"AZE", n).unwrap()
    }

    #[test]
    fn a_reserved_book_records_its_grants_without_growing() {
        let book = Permits::with_capacity(PermitKey::from_secret(b"k"), 20_000);
        let room = book.room();
        assert!(room >= 20_000 / shards::SHARDS, "room {room}");
        let v = Validity {
            from: TEN,
            until: TEN + 3 * 3600,
        };
        for n in 0..20_000u32 {
            book.record(
                doc(format!("{:08}", n + 1).as_bytes()),
                2,
                v,
                PhoneTag(n as u64 + 1),
            );
        }
        assert_eq!(book.room(), room, "a map grew");
        // Warmed at start (before any grant): empty again, the room kept.
        let warmed = Permits::with_capacity(PermitKey::from_secret(b"k"), 20_000);
        warmed.warm();
        assert_eq!(warmed.room(), room);
        assert!(warmed.of_document(doc(b"00000000")).is_empty());
        assert!(warmed.get(PermitId::from_bits(5)).is_none());
        assert_eq!(book.of_document(doc(b"00000001")).len(), 1);
        // Unreserved, the same grants grow the maps.
        let small = Permits::new(PermitKey::from_secret(b"k"));
        let before = small.room();
        small.record(doc(b"00000001"), 2, v, PhoneTag(1));
        for n in 0..1_000u32 {
            small.record(doc(format!("{:08}", n + 2).as_bytes()), 2, v, PhoneTag(1));
        }
        assert!(small.room() > before);
    }

    #[test]
    fn grants_are_found_by_id_and_document_and_revoked() {
        let book = Permits::new(PermitKey::from_secret(b"permits test key"));
        let v = Validity {
            from: TEN,
            until: TEN + 3 * 3600,
        };
        let phone = PhoneTag(7);
        let id = book.record(doc(b"11111111"), 2, v, PhoneTag::NONE);
        assert_eq!(
            book.record(doc(b"11111111"), 2, v, phone),
            id,
            "recorded once"
        );
        assert_eq!(
            book.of_phone(doc(b"11111111"), phone, TEN).len(),
            1,
            "phone filled in"
        );
        assert!(book.of_phone(doc(b"11111111"), PhoneTag(8), TEN).is_empty());
        assert!(book.of_phone(doc(b"11111111"), phone, TEN + 1).is_empty());
        book.record(doc(b"22222222"), 2, v, PhoneTag::NONE);
        let got = book.get(id).unwrap();
        assert_eq!(
            (got.document, got.code, got.validity),
            (doc(b"11111111"), 2, v)
        );
        assert_eq!(book.of_document(doc(b"11111111")).len(), 1);
        assert_eq!(book.len(), 2);
        assert!(!book.is_revoked(doc(b"11111111"), 2, v));
        let r = Revocation {
            reason: "forged".into(),
            at: TEN + 60,
        };
        assert_eq!(book.revoke(id, r.clone()), r);
        let later = Revocation {
            reason: "again".into(),
            at: TEN + 120,
        };
        assert_eq!(book.revoke(id, later), r, "the first revocation stays");
        assert!(book.is_revoked(doc(b"11111111"), 2, v));
        assert!(!book.is_revoked(doc(b"22222222"), 2, v));
        // Two days on, the ended permits and their revocations go.
        assert_eq!(book.sweep(TEN + 86_400, TEN + 2 * 86_400), 2);
        assert!(book.get(id).is_none());
        assert!(book.revocation(id).is_none());
        assert!(book.is_empty());
    }
}
