//! codec (not written yet).
