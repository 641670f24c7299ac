//! Lanes: the MOs of one read kept apart by what their answer waits for, so that a part of
//! the store that is away holds up only the MOs that need it (issue 15, "an MO waits only
//! for its own shard").
//!
//! On Redis a connection splits each read into one batch per lane: the texts answered from
//! the text alone (not understood, help), the status questions (which ask Redis of the
//! phone's documents, wherever they are), families whose documents are on different
//! primaries (each waits for all of its primaries, as it must), and one lane per primary for
//! the other permit requests. Each lane has its own batches under way and its own held MOs. On the journal
//! there is one lane: every MO is made durable by the same commit, and splitting would only
//! add rounds.

use super::Gateway;
use crate::permit::answer::{Verdict, requests_of};

/// A lane of MOs: an index below [`LANES`].
pub type Lane = u16;

/// Lanes at most: the text-only lane, the status lane, and the primaries (a cluster of more
/// primaries than this shares lanes between them).
pub const LANES: usize = 16;

/// MOs answered from their text alone.
const TEXT_ONLY: Lane = 0;
/// Status questions.
const STATUS: Lane = 1;
/// Families whose documents are on different primaries: each waits for all of them, so
/// kept out of every primary's own lane (one such family held up a whole batch of its first
/// document's lane while another primary was away: at 10,000 MO/s every lane of every
/// connection filled with such batches within a second).
const MIXED: Lane = 2;
/// The first primary's lane.
const FIRST_SHARD: Lane = 3;

impl Gateway {
    /// The lane of each text, in order; `None` when the store has one lane (the journal).
    pub fn lanes_of<'t>(&self, texts: impl Iterator<Item = &'t str>) -> Option<Vec<Lane>> {
        let shards = self.store.shards()?;
        let rules = self.rules();
        let parser = rules.parser();
        let lanes = texts
            .map(|text| match requests_of(parser.parse(text)) {
                Ok(family) => {
                    let mut of = family.iter().map(|r| shards.shard_of(r.document));
                    match of.next() {
                        None => TEXT_ONLY,
                        Some(first) if of.all(|s| s == first) => {
                            FIRST_SHARD + first % (LANES as Lane - FIRST_SHARD)
                        }
                        Some(_) => MIXED,
                    }
                }
                Err(Verdict::Status(_)) => STATUS,
                Err(_) => TEXT_ONLY,
            })
            .collect();
        Some(lanes)
    }
}
