//! Per-operator inbound rate limit: a token bucket shared by all of an operator's binds.
//! An MO above the rate is answered ESME_RTHROTTLED, which every SMPP client retries.
//!
//! Time is `tokio::time::Instant`, so tests drive it with `tokio::time::pause`.

use std::sync::Mutex;
use tokio::time::Instant;

/// A token bucket: `rate` tokens a second, holding at most one second's worth.
#[derive(Debug)]
pub struct Throttle {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl Throttle {
    /// A bucket for `tps` messages a second, full at start.
    pub fn new(tps: u32) -> Self {
        let rate = f64::from(tps.max(1));
        Throttle {
            rate,
            state: Mutex::new((rate, Instant::now())),
        }
    }

    /// Takes up to `wanted` tokens at `now` and returns how many it got: a connection asks
    /// once for all the MOs of one read, not once per MO.
    pub fn take(&self, wanted: u32, now: Instant) -> u32 {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(s.1).as_secs_f64();
        s.0 = (s.0 + elapsed * self.rate).min(self.rate);
        s.1 = now;
        let got = (s.0.floor() as u32).min(wanted);
        s.0 -= f64::from(got);
        got
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn refills_at_the_rate_and_caps_at_one_second() {
        let t = Throttle::new(10);
        let start = Instant::now();
        assert_eq!(t.take(15, start), 10);
        assert_eq!(t.take(1, start), 0);
        assert_eq!(t.take(5, start + Duration::from_millis(300)), 3);
        // A long pause does not bank more than one second's worth.
        assert_eq!(t.take(100, start + Duration::from_secs(60)), 10);
    }
}
