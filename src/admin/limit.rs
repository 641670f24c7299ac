//! A small token bucket per client address for verification: a checkpoint's app that loops
//! cannot hammer the API, and one client cannot use up another's share. The table is
//! bounded: when full, idle clients (whose bucket has refilled) are forgotten first, and a
//! new client finds no room only while every entry is busy.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use tokio::time::Instant;

/// Clients remembered at most.
const MAX_CLIENTS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by client address.
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    burst: f64,
    clients: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimit {
    /// `rate` requests a second per client after a burst of `burst`.
    pub fn new(rate: u32, burst: u32) -> Self {
        RateLimit {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request's token for `client`; `false` if it has none left now.
    pub fn take(&self, client: IpAddr) -> bool {
        let now = Instant::now();
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            let (rate, burst) = (self.rate, self.burst);
            clients.retain(|_, b| b.tokens + rate * (now - b.at).as_secs_f64() < burst);
            if clients.len() >= MAX_CLIENTS {
                return false;
            }
        }
        let b = clients.entry(client).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = self.rate * now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + refill).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_rate() {
        let limit = RateLimit::new(2, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!((0..3).all(|_| limit.take(a)));
        assert!(!limit.take(a), "burst used");
        assert!(limit.take(b), "another client has its own bucket");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(limit.take(a), "one token back after half a second at 2/s");
        assert!(!limit.take(a));
    }
}
