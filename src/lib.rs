//! icaze: a short-number SMS permit gateway.
//!
//! # Layout
//! - [`config`]: typed config and rules files, `validate()`, errors that name file and key.
//! - [`smpp`]: the wire (framing, PDUs, the session state machine, text codings,
//!   concatenation); knows nothing of permits.
//! - [`permit`]: the domain (documents, parsing, rules, clock, the quota engine, replies);
//!   no I/O.
//! - [`store`]: durability behind the engine: opening a store, the embedded journal, Redis,
//!   and one `decide` for every store.
//! - [`gateway`]: joins the wire to the domain: the one MO pipeline, the listener and its
//!   connections, connectors (client mode) and their delivery receipts, replies owed, shutdown.
//! - [`admin`]: the admin HTTP API (axum): health, checkpoint verification, revocation,
//!   rules without a restart; bearer-token roles; the console web page.
//! - [`telemetry`]: tracing set-up; masks document and phone numbers.
//! - [`tls`]: rustls for the SMPP TLS port, HTTPS admin and connectors; certificates
//!   re-read on SIGHUP.
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod gateway;
pub mod permit;
pub mod smpp;
pub mod store;
pub mod telemetry;
pub mod tls;
