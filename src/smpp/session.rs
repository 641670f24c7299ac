//! session (not written yet).
