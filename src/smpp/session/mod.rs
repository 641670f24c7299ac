//! The SMPP session without I/O: which commands a bind state admits, the keep-alive timers,
//! and the delivery window with its retries. The socket loop that drives it (reading,
//! writing, the gateway) lives in `gateway::connection`; everything here takes PDUs, times
//! and answers and says what to do, so tests drive it with injected instants and no socket.
//!
//! - [`bind`]: bind states and the table of which side may send what in each.
//! - [`keepalive`]: enquire_link on a quiet bind, close on an unanswered one, unbind on silence.
//! - [`intake`]: an incoming short message's text, concatenated parts held until complete.
//! - [`delivery`]: our messages to the peer: window, back-off on transient refusals, and the
//!   verdict that an unanswering peer is unresponsive.

pub mod bind;
pub mod delivery;
pub mod intake;
pub mod keepalive;

pub use bind::{BindKind, BindRequest, BindState, Role, allowed};
pub use delivery::{Answer, Delivery, Policy};
pub use keepalive::{Due, Keepalive};
