//! listener (not written yet).
