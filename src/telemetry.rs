//! Tracing set-up and masking of document and phone numbers.
