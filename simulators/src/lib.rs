//! icaze-sim: the load tester people run before a lockdown starts.
//!
//! `loadgen` plays an operator (or an aggregator) in front of icaze: it binds over SMPP,
//! sends a seeded population's SMS as submit_sm at an open-loop rate or as fast as the
//! windows allow, answers every deliver_sm, and checks every reply against an oracle that
//! models the rules file on its own (it shares no permit code with the gateway). The report
//! gives throughput, MO→MT latency percentiles, errors by command_status, mismatches,
//! missing and duplicate replies, and both processes' CPU shares.
//!
//! `smsc` plays the other side of the same operator, for icaze's connector mode: an SMSC
//! that icaze binds to as an ESME. It delivers the same population's SMS as deliver_sm,
//! takes the replies as submit_sm, and checks and reports them in the same way.
//!
//! # Layout
//! - [`rng`]: SplitMix64, so a seed means the same population on every machine.
//! - [`rules`]: the simulator's own reading of the rules file (codes, limits, documents).
//! - [`population`]: documents of every kind and the phones (households) that ask for them.
//! - [`traffic`]: what citizens text, spelled as people spell it, with what it must mean.
//! - [`shapes`]: the newer shapes of one request (order, words, keyboards, mangled letters).
//! - [`families`]: texts naming several documents or codes, and their own refusals.
//! - [`language`]: which language a reply must be in (`language = "auto"`: the text's).
//! - [`oracle`]: the independent model of the rules that predicts each reply's class.
//! - [`replies`]: reads a reply: which template it came from, what it echoes.
//! - [`templates`]: the gateway's built-in reply texts, copied.
//! - [`ledger`]: MOs in flight, per-phone FIFOs, matching replies, counting.
//! - [`check`]: a reply against its prediction: class and echoes, line by line for families.
//! - [`text`]: its own decoder of reply texts (GSM 03.38, UCS-2) and concatenation headers.
//! - [`wire`]: the few SMPP PDUs either side needs (ESME and SMSC), by hand.
//! - [`bind`]: one SMPP session, ESME or SMSC side: coalesced writes, windows, throttling,
//!   unbind; the sender slots that outlive a session.
//! - [`run`]: a run on either side: phases, pacing, drain, late sessions, the report.
//! - [`loadgen`]: the simulator as the operator's ESME: connects and binds its sessions.
//! - [`smsc`]: the simulator as the operator's SMSC: listens, checks the gateway's binds.
//! - [`report`]: the JSON report and the summary for people.
//! - [`svg`]: throughput and latency over time, as a hand-written SVG.
//! - [`procstat`]: CPU shares and load from `/proc`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bind;
pub mod check;
pub mod families;
pub mod language;
pub mod ledger;
pub mod loadgen;
pub mod oracle;
pub mod population;
pub mod procstat;
pub mod replies;
pub mod report;
pub mod rng;
pub mod rules;
pub mod run;
pub mod shapes;
pub mod smsc;
pub mod svg;
pub mod templates;
pub mod text;
pub mod traffic;
pub mod wire;
