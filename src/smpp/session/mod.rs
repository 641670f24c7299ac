//! The SMPP session without I/O: [`Session`] takes decoded PDUs, timer expiries and the
//! gateway's answers, and gives back the bytes to write and the events to hand over. The
//! socket loop that drives it (reading, writing, the gateway) lives in
//! `gateway::connection`; everything here takes the instant it happens at, so tests drive it
//! with injected instants and no socket.
//!
//! - [`machine`]: the session itself: dispatch of every PDU, bind answers (ours and the
//!   peer's), unbind, generic_nack, the drain, and what it hands over.
//! - [`bind`]: bind states and the table of which side may send what in each.
//! - [`keepalive`]: enquire_link on a quiet bind, close on an unanswered one, unbind on silence.
//! - [`intake`]: an incoming short message's text, concatenated parts held until complete.
//! - [`delivery`]: our messages to the peer: window, back-off on transient refusals, and the
//!   verdict that an unanswering peer is unresponsive.

pub mod bind;
pub mod delivery;
pub mod intake;
pub mod keepalive;
pub mod machine;

pub use bind::{BindKind, BindRequest, BindState, Role, allowed};
pub use delivery::{Answer, Delivery, Policy};
pub use keepalive::{Due, Keepalive};
pub use machine::{AcceptedPart, Close, Event, Session, Tick, Timers};
