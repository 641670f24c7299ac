//! HTTP admin side (not written yet).
