//! The SMPP wire. Knows nothing of permits: bytes in, PDUs and texts out.
//!
//! - [`status`]: command_status names and whether a retry can help (a leaf).
//! - [`codec`]: framing (command_length bounds, never loses sync), PDU bodies via rusmpp,
//!   MO accessors and MT builders.
//! - [`session`]: the session without I/O: bind states, keep-alive, delivery window and retry.
//! - [`text`]: data_coding (GSM 03.38, IA5, Latin-1, UCS-2), MT encoding and segmentation, UDH.
//! - [`concat`]: reassembly of concatenated MO, bounded in time and size.

pub mod codec;
pub mod concat;
pub mod session;
pub mod status;
pub mod text;

pub use codec::{
    Address, BodyError, DecodeError, Frame, FramingError, IncomingSm, MtPart, Response,
};
pub use session::{BindKind, BindState, Role};
pub use status::Status;
