//! The SMPP wire. Knows nothing of permits: bytes in, PDUs and texts out.

pub mod codec;
pub mod concat;
pub mod session;
pub mod text;
