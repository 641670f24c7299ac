//! What a test does when something it needs is missing (redis-server, python smpplib, a
//! tmpfs it may mount): outside CI it says it is SKIPPED and returns; under CI it fails,
//! because a CI whose tests all skip would pass while testing nothing.
//!
//! Declared (with `#[path]`) in `support/redis.rs`, which `tests/redis_store.rs` includes on
//! its own, and re-exported as `support::needs`: so it depends on nothing else in `support`.

#![allow(dead_code)]

/// Whether a missing dependency is a failure: `CI` is set to anything but empty, `0` or
/// `false` (CI services set `CI=true`; `CI=1` is taken the same way rather than skipping).
pub fn strict() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    })
}

/// Says that `test` cannot run without `what` (and how to provide it): panics under CI
/// (see [`strict`]), else prints SKIPPED so the caller can return.
pub fn missing(test: &str, what: &str) {
    assert!(
        !strict(),
        "{test}: {what}; under CI this is a failure, not a skip"
    );
    eprintln!("SKIPPED {test}: {what}");
}
