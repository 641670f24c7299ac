//! Typed config (not written yet).
