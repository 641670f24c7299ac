//! How the permit book, the phones' table and the day's distinct sets split their maps:
//! 16 shards, so connections committing side by side rarely wait on one lock, and a map
//! growing copies a sixteenth of itself. One place for the count, the pick and the room.

use std::collections::HashMap;
use std::sync::Mutex;

/// Shards of each map.
pub(crate) const SHARDS: usize = 16;

/// A map as the shards hold it.
pub(crate) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The shard of a key's 64 bits (mixed first: packed documents and ids are not hashes).
#[inline]
pub(crate) fn shard_of(bits: u64) -> usize {
    (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % SHARDS
}

/// Room per shard for `n` entries spread over the shards by a hash: an eighth more than
/// the even share, as the shares are not quite even.
pub(crate) fn room(n: usize) -> usize {
    let even = n.div_ceil(SHARDS);
    even + even / 8
}

/// [`SHARDS`] empty maps behind their locks, each with room for `room` entries.
pub(crate) fn maps<K, V>(room: usize) -> Box<[Mutex<Map<K, V>>]> {
    (0..SHARDS)
        .map(|_| Mutex::new(Map::with_capacity_and_hasher(room, Default::default())))
        .collect()
}

/// Fills `map` to its room with made-up keys and empties it again, keeping the room: its
/// memory is touched (and the kernel has zeroed its pages) before the first MO, not by the
/// first morning's grants landing all over it (~450 MB for 2 million at once).
pub(crate) fn warm<K: std::hash::Hash + Eq, V>(
    map: &mut Map<K, V>,
    mut key: impl FnMut(u64) -> Option<K>,
    mut value: impl FnMut() -> V,
) {
    let room = map.capacity();
    for n in 0..room as u64 {
        if let Some(k) = key(n) {
            map.insert(k, value());
        }
    }
    map.clear();
}
