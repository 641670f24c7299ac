//! text (not written yet).
