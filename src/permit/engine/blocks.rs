//! Documents blocked at run time (through the admin API), on top of the rules file's
//! blocklist: each with its codes, reason and optional expiry. The decision path pays one
//! atomic load while none is set.

use crate::permit::document::Document;
use crate::permit::rules::CodeSet;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};

/// One run-time block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The codes refused.
    pub codes: CodeSet,
    /// Why.
    pub reason: String,
    /// When it was set, Unix seconds.
    pub at: i64,
    /// When it ends by itself, Unix seconds; `None` for never.
    pub until: Option<i64>,
}

impl Block {
    /// Whether it refuses `code` at `now`.
    pub fn refuses(&self, code: u8, now: i64) -> bool {
        self.codes.contains(code) && self.until.is_none_or(|u| now < u)
    }
}

/// The run-time blocklist. Safe to share.
#[derive(Debug, Default)]
pub struct Blocks {
    map: RwLock<HashMap<Document, Block, foldhash::fast::RandomState>>,
    count: AtomicUsize,
}

impl Blocks {
    /// Whether `document` is blocked for `code` at `now`.
    #[inline]
    pub fn refuses(&self, document: Document, code: u8, now: i64) -> bool {
        self.count.load(Ordering::Acquire) != 0
            && self
                .map
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&document)
                .is_some_and(|b| b.refuses(code, now))
    }

    /// Sets (`Some`) or lifts (`None`) the block of `document`.
    pub fn set(&self, document: Document, block: Option<Block>) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        match block {
            Some(b) => {
                map.insert(document, b);
            }
            None => {
                map.remove(&document);
            }
        }
        self.count.store(map.len(), Ordering::Release);
    }

    /// Replaces the whole list (a node reloading what every node shares).
    pub fn replace(&self, all: Vec<(Document, Block)>) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        map.clear();
        map.extend(all);
        self.count.store(map.len(), Ordering::Release);
    }

    /// The block of `document`, if any (expired ones too).
    pub fn get(&self, document: Document) -> Option<Block> {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&document)
            .cloned()
    }

    /// Every block, in document order.
    pub fn list(&self) -> Vec<(Document, Block)> {
        let mut all: Vec<_> = self
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(d, b)| (*d, b.clone()))
            .collect();
        all.sort_by_key(|(d, _)| *d);
        all
    }
}

/// A code set as the journal's bitset words (bit `c` of word `c / 64` is code `c`).
pub fn words(codes: CodeSet) -> [u64; 4] {
    let mut w = [0u64; 4];
    for code in 0..=255u8 {
        if codes.contains(code) {
            w[usize::from(code / 64)] |= 1 << (code % 64);
        }
    }
    w
}

/// The code set of bitset words.
pub fn from_words(words: [u64; 4]) -> CodeSet {
    let mut codes = CodeSet::default();
    for code in 0..=255u8 {
        if words[usize::from(code / 64)] & (1 << (code % 64)) != 0 {
            codes.insert(code);
        }
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_refuse_their_codes_until_they_end() {
        let blocks = Blocks::default();
        let d = Document::new(b"AZE", b"11111111").unwrap();
        assert!(!blocks.refuses(d, 3, 0));
        let mut codes = CodeSet::default();
        codes.insert(3);
        assert_eq!(from_words(words(codes)), codes);
        blocks.set(
            d,
            Some(Block {
                codes,
                reason: "abuse of code 3".into(),
                at: 0,
                until: Some(100),
            }),
        );
        assert!(blocks.refuses(d, 3, 99));
        assert!(!blocks.refuses(d, 2, 99), "other codes are not blocked");
        assert!(!blocks.refuses(d, 3, 100), "over at its end");
        blocks.set(d, None);
        assert!(blocks.list().is_empty());
    }
}
