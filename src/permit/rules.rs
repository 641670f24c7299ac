//! rules (not written yet).
