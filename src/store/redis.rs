//! redis (not written yet).
