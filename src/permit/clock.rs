//! clock (not written yet).
