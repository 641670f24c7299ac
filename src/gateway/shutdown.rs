//! shutdown (not written yet).
