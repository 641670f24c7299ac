//! Durability behind the engine.

pub mod journal;
pub mod redis;
