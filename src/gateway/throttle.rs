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
        // Binds read the time before they queue for the lock, so a `now` older than the last
        // refill arrives: it refills nothing and must not move the refill point back, or the
        // next take would be paid again for time already paid for.
        s.1 = s.1.max(now);
        let got = (s.0.floor() as u32).min(wanted);
        s.0 -= f64::from(got);
        got
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn refills_at_the_rate_and_caps_at_one_second() {
        let t = Throttle::new(10);
        let start = Instant::now();
        assert_eq!(t.take(15, start), 10);
        assert_eq!(t.take(1, start), 0);
        assert_eq!(t.take(5, start + ms(300)), 3);
        // A long pause does not bank more than one second's worth.
        assert_eq!(t.take(100, start + Duration::from_secs(60)), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn starts_full_at_the_paused_clock_and_refills_as_it_advances() {
        let t = Throttle::new(4);
        assert_eq!(t.take(10, Instant::now()), 4);
        tokio::time::advance(ms(500)).await;
        assert_eq!(t.take(10, Instant::now()), 2);
        tokio::time::advance(ms(249)).await;
        assert_eq!(
            t.take(10, Instant::now()),
            0,
            "0.996 of a token is none yet"
        );
        tokio::time::advance(ms(1)).await;
        assert_eq!(t.take(10, Instant::now()), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn fractions_of_a_token_add_up_across_takes() {
        // 3 a second: every 100 ms earns 0.3 of a token, which a take must keep, not drop.
        let t = Throttle::new(3);
        let start = Instant::now();
        assert_eq!(t.take(3, start), 3);
        let got: u32 = (1..=10).map(|i| t.take(1, start + ms(100 * i))).sum();
        assert_eq!(got, 3, "one second at 3 a second, asked for in tenths");
    }

    #[tokio::test(start_paused = true)]
    async fn a_take_leaves_what_it_did_not_want_for_the_next_bind() {
        let t = Throttle::new(10);
        let now = Instant::now();
        assert_eq!(t.take(4, now), 4);
        assert_eq!(t.take(4, now), 4);
        assert_eq!(t.take(4, now), 2);
        assert_eq!(t.take(0, now), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_caller_with_an_older_instant_earns_nothing_twice() {
        let t = Throttle::new(10);
        let start = Instant::now();
        assert_eq!(t.take(10, start), 10);
        // One bind reads 500 ms, another read 200 ms but reached the lock second.
        assert_eq!(t.take(10, start + ms(500)), 5);
        assert_eq!(t.take(10, start + ms(200)), 0);
        // From 500 ms to 600 ms is one token, not the four since 200 ms.
        assert_eq!(t.take(10, start + ms(600)), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_of_zero_still_lets_one_a_second_through() {
        let t = Throttle::new(0);
        let start = Instant::now();
        assert_eq!(t.take(5, start), 1);
        assert_eq!(t.take(5, start + ms(999)), 0);
        assert_eq!(t.take(5, start + Duration::from_secs(1)), 1);
    }
}
