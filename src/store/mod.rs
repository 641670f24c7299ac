//! Durability behind the engine: the engine decides in memory, a store makes each grant
//! survive a restart before the MO is acknowledged.
//!
//! - [`journal`]: the embedded default, an append-only file with group commit.
//! - [`redis`]: Redis or Redis Cluster, for several gateway nodes.

pub mod journal;
pub mod redis;

use crate::permit::document::Document;

/// One grant, as the stores keep it: enough to rebuild the engine's state and the permit id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantRecord {
    /// The document the permit is for.
    pub document: Document,
    /// The permit code.
    pub code: u8,
    /// Issued and valid from, Unix seconds.
    pub from: i64,
    /// Valid until, Unix seconds.
    pub until: i64,
}
