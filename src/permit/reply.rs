//! reply (not written yet).
