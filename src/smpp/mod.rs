//! The SMPP wire. Knows nothing of permits: bytes in, PDUs and texts out.
//!
//! - [`status`]: command_status names and whether a retry can help (a leaf).
//! - [`codec`]: framing (command_length bounds, never loses sync), PDU bodies via rusmpp,
//!   and which field a refused body got wrong (in the private `diagnose`).
//! - [`message`]: addresses, incoming short messages and their segments.
//! - [`mt`]: reply parts, as PDUs or written straight to the wire.
//! - [`receipt`]: delivery receipts read (id and state, from TLVs or the text).
//! - [`response`]: error and bind responses, `generic_nack`.
//! - [`session`]: the session without I/O: bind states, keep-alive, delivery window and retry.
//! - [`text`]: data_coding (GSM 03.38, IA5, Latin-1, UCS-2), MT encoding and segmentation, UDH.
//! - [`concat`](mod@concat): reassembly of concatenated MO, bounded in time and size.

pub mod codec;
pub mod concat;
mod diagnose;
pub mod message;
pub mod mt;
pub mod receipt;
pub mod response;
pub mod session;
pub mod status;
pub mod text;

pub use codec::{BodyError, DecodeError, Frame, FramingError};
pub use message::{Address, IncomingSm};
pub use mt::MtPart;
pub use response::Response;
pub use session::{BindKind, BindState, Role};
pub use status::Status;
