//! connection (not written yet).
