//! journal (not written yet).
