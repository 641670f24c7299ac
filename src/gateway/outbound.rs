//! outbound (not written yet).
