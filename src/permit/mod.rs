//! The permit domain, pure: no tokio, no sockets, no files.

pub mod answer;
pub mod clock;
pub mod decision;
pub mod document;
pub mod engine;
pub mod id;
pub mod reply;
pub mod request;
pub mod rules;
pub mod templates;
