//! engine (not written yet).
