//! message_ids for submit_sm_resp / data_sm_resp: unique across nodes and restarts, and
//! within what every ESME parses.
//!
//! An id is 63 bits, so it is below 2^63 as decimal (Kannel with `msg-id-type = 0x00` reads
//! ids as signed 64-bit numbers and collapses every id above 2^63 into one): milliseconds
//! since 2020-01-01 (41 bits, until 2089), the node (`[smpp] node_id`, 10 bits), and a
//! counter within the millisecond (12 bits). A node hands out at most 4,096 ids per
//! millisecond; past that it borrows from the next millisecond, so ids never repeat and
//! always grow. Two nodes differ in their node bits; one node restarted later starts above
//! every id it gave before (unless its clock went back across the restart). Written as
//! decimal (up to 19 digits) or, by config, 16 hex digits.

use std::sync::atomic::{AtomicU64, Ordering};

/// 2020-01-01T00:00:00Z in Unix milliseconds: the ids' epoch.
const EPOCH_MS: u64 = 1_577_836_800_000;
/// Bits of the per-millisecond counter.
const COUNTER_BITS: u32 = 12;
/// Bits of the node id.
const NODE_BITS: u32 = 10;

pub use crate::config::IdFormat;

/// The id source of one node.
#[derive(Debug)]
pub struct MessageIds {
    node: u64,
    format: IdFormat,
    /// (milliseconds since the epoch) << 12 | counter, of the last id given.
    last: AtomicU64,
}

impl MessageIds {
    /// Ids for node `node` (below 2^10), written as `format`.
    pub fn new(node: u16, format: IdFormat) -> Self {
        MessageIds {
            node: u64::from(node) & ((1 << NODE_BITS) - 1),
            format,
            last: AtomicU64::new(0),
        }
    }

    /// The next id, at `now_ms` (Unix milliseconds).
    pub fn next_at(&self, now_ms: u64) -> u64 {
        let floor = now_ms.saturating_sub(EPOCH_MS) << COUNTER_BITS;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = floor.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return self.compose(next),
                Err(now) => last = now,
            }
        }
    }

    /// The next id, now.
    pub fn next(&self) -> String {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.render(self.next_at(now_ms))
    }

    /// `stamp` (milliseconds << 12 | counter) with the node bits between its two parts.
    fn compose(&self, stamp: u64) -> u64 {
        let ms = stamp >> COUNTER_BITS;
        let counter = stamp & ((1 << COUNTER_BITS) - 1);
        ((ms << (NODE_BITS + COUNTER_BITS)) | (self.node << COUNTER_BITS) | counter)
            & (u64::MAX >> 1)
    }

    /// `id` as this node writes it.
    pub fn render(&self, id: u64) -> String {
        match self.format {
            IdFormat::Decimal => id.to_string(),
            IdFormat::Hex => format!("{id:016x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const NOW: u64 = 1_586_152_800_000; // 2020-04-06T06:00:00Z

    #[test]
    fn ids_grow_and_never_repeat_even_past_4096_in_one_millisecond() {
        let ids = MessageIds::new(3, IdFormat::Decimal);
        let got: Vec<u64> = (0..100_000).map(|_| ids.next_at(NOW)).collect();
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        // A later millisecond that the borrowed ones already passed still grows.
        let later = ids.next_at(NOW + 1);
        assert!(later > *got.last().unwrap());
    }

    #[test]
    fn two_nodes_started_in_the_same_second_never_collide() {
        let a = MessageIds::new(1, IdFormat::Decimal);
        let b = MessageIds::new(2, IdFormat::Decimal);
        let mut seen = HashSet::new();
        for k in 0..20_000 {
            assert!(seen.insert(a.next_at(NOW + k / 7)));
            assert!(seen.insert(b.next_at(NOW + k / 7)));
        }
    }

    #[test]
    fn a_restarted_node_starts_above_what_it_gave_before() {
        let before = MessageIds::new(5, IdFormat::Decimal);
        let last = (0..10_000).map(|_| before.next_at(NOW)).last().unwrap();
        // Restarted a second later, with a fresh counter.
        let after = MessageIds::new(5, IdFormat::Decimal);
        assert!(after.next_at(NOW + 1_000) > last);
    }

    #[test]
    fn ids_fit_signed_64_bit_decimal_and_16_hex_digits() {
        // In 2089, near the end of the 41 bits, still below 2^63.
        let far = EPOCH_MS + (1u64 << 41) - 1;
        for format in [IdFormat::Decimal, IdFormat::Hex] {
            let ids = MessageIds::new(1023, format);
            let id = ids.next_at(far);
            assert!(id < 1 << 63);
            let text = ids.render(id);
            match format {
                IdFormat::Decimal => assert_eq!(text.parse::<i64>().unwrap() as u64, id),
                IdFormat::Hex => {
                    assert_eq!(text.len(), 16);
                    assert_eq!(u64::from_str_radix(&text, 16).unwrap(), id);
                }
            }
        }
    }
}
