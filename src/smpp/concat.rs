//! concat (not written yet).
