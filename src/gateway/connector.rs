//! connector (not written yet).
