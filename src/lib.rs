//! icaze: a short-number SMS permit gateway.
//!
//! # Layout
//! - [`config`]: typed config and rules files, `validate()`, errors that name file and key.
//! - [`smpp`]: the wire (framing, PDUs, sessions, text codings, concatenation); no permits.
//! - [`permit`]: the domain (documents, parsing, rules, clock, engine, replies); no I/O.
//! - [`store`]: durability behind the engine (embedded journal, Redis).
//! - [`gateway`]: joins the wire to the domain (listener, connections, outbound, shutdown).
//! - [`admin`]: HTTP health, metrics, permit verification, blocklist, rules reload.
//! - [`telemetry`]: tracing set-up; masks document and phone numbers.
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod gateway;
pub mod permit;
pub mod smpp;
pub mod store;
pub mod telemetry;
