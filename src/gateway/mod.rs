//! Joins the wire to the domain.

pub mod connection;
pub mod connector;
pub mod listener;
pub mod outbound;
pub mod shutdown;
