//! Who may hold a connection, and who may try to bind: what keeps a hostile host from
//! locking operators out or guessing their passwords.
//!
//! - **Connections.** `[smpp] max_connections` in all, of which the operators that bind
//!   from known addresses (`allowed_ips`) have their `max_binds` kept for them
//!   ([`crate::config::Smpp::reserved`]): a flood from anywhere else cannot take those.
//! - **Unbound connections per address.** At most `max_unbound_per_address` connections
//!   from one address that have not bound; each has `bind_timeout` to bind (see
//!   [`crate::smpp::session::Session`]). One host opening a thousand idle connections gets
//!   a handful, for a few seconds.
//! - **Failed binds per address.** Each failure within `bind_failure_window` slows the next
//!   answer from that address (100 ms more per failure, up to 2 s); at `bind_failures`
//!   the address is locked out for `bind_lockout`: every bind from it is refused without
//!   looking at the password. A refused bind closes its connection. Failures are logged once
//!   per window and address, and counted. A good operator on another address is untouched.
//!
//! Every table here is bounded: entries go when their window passes, and a full table is
//! swept before it takes another address.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::Config;

/// Most addresses tracked at once in each table: past it, expired entries are swept, and
/// failures from new addresses are treated as a lock-out until room returns.
const MAX_ADDRESSES: usize = 100_000;
/// The wait added to a failed bind's answer per failure in the window.
const SLOWDOWN_STEP: Duration = Duration::from_millis(100);
/// The longest wait before a failed bind's answer.
const MAX_SLOWDOWN: Duration = Duration::from_secs(2);

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every connection slot open to this address is taken.
    Full,
    /// This address already holds its share of connections that have not bound.
    UnboundLimit,
}

/// What the gateway does with a failed bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// How long to wait before answering (and closing).
    pub delay: Duration,
    /// Whether this failure is the first of its window for the address: log it.
    pub log: bool,
    /// Whether this failure locked the address out.
    pub locked: bool,
}

#[derive(Debug)]
struct Failures {
    /// Failures in the current window.
    count: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

/// Connection slots and the per-address tables.
#[derive(Debug)]
pub struct Admission {
    general: Arc<Semaphore>,
    reserved: Arc<Semaphore>,
    /// Addresses operators bind from (their `allowed_ips`).
    known: HashSet<IpAddr>,
    max_unbound: u32,
    unbound: Mutex<HashMap<IpAddr, u32>>,
    attempts: u32,
    window: Duration,
    lockout: Duration,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    failed_binds: AtomicU64,
    refused_connections: AtomicU64,
}

/// A connection's place: its slot, and its share of its address's unbound connections
/// until it binds. Dropping it gives both back.
#[derive(Debug)]
pub struct Ticket {
    _slot: OwnedSemaphorePermit,
    unbound: Option<(Arc<Admission>, IpAddr)>,
}

impl Ticket {
    /// The connection bound: it no longer counts against its address's unbound limit.
    pub fn bound(&mut self) {
        if let Some((admission, ip)) = self.unbound.take() {
            admission.release_unbound(ip);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.bound();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The tables hold counts only; a panic elsewhere leaves them usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Admission {
    /// The slots and limits of `config`.
    pub fn new(config: &Config) -> Self {
        let smpp = &config.smpp;
        let reserved = smpp.reserved.min(smpp.max_connections);
        Admission {
            general: Arc::new(Semaphore::new((smpp.max_connections - reserved) as usize)),
            reserved: Arc::new(Semaphore::new(reserved as usize)),
            known: config
                .operators
                .iter()
                .flat_map(|o| o.allowed_ips.iter().copied())
                .collect(),
            max_unbound: smpp.max_unbound_per_address,
            unbound: Mutex::new(HashMap::new()),
            attempts: smpp.bind_failures,
            window: smpp.bind_failure_window,
            lockout: smpp.bind_lockout,
            failures: Mutex::new(HashMap::new()),
            failed_binds: AtomicU64::new(0),
            refused_connections: AtomicU64::new(0),
        }
    }

    /// A slot for a new connection from `ip`, or why there is none.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let refused = |r| {
            self.refused_connections.fetch_add(1, Ordering::Relaxed);
            Err(r)
        };
        {
            let mut unbound = lock(&self.unbound);
            let n = unbound.get(&ip).copied().unwrap_or(0);
            if n >= self.max_unbound {
                return refused(Refusal::UnboundLimit);
            }
            if n == 0 && unbound.len() >= MAX_ADDRESSES {
                return refused(Refusal::Full);
            }
            unbound.insert(ip, n + 1);
        }
        let slot = match self.general.clone().try_acquire_owned() {
            Ok(slot) => Ok(slot),
            Err(_) if self.known.contains(&ip) => self.reserved.clone().try_acquire_owned(),
            Err(e) => Err(e),
        };
        match slot {
            Ok(slot) => Ok(Ticket {
                _slot: slot,
                unbound: Some((self.clone(), ip)),
            }),
            Err(_) => {
                self.release_unbound(ip);
                refused(Refusal::Full)
            }
        }
    }

    fn release_unbound(&self, ip: IpAddr) {
        let mut unbound = lock(&self.unbound);
        if let Some(n) = unbound.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                unbound.remove(&ip);
            }
        }
    }

    /// Whether `ip` may try to bind at `now` (not locked out).
    pub fn may_bind(&self, ip: IpAddr, now: Instant) -> bool {
        lock(&self.failures)
            .get(&ip)
            .and_then(|f| f.locked_until)
            .is_none_or(|until| now >= until)
    }

    /// A bind from `ip` failed at `now` (unknown system_id, wrong password, locked out).
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Failure {
        self.failed_binds.fetch_add(1, Ordering::Relaxed);
        let mut table = lock(&self.failures);
        if table.len() >= MAX_ADDRESSES && !table.contains_key(&ip) {
            let (window, lockout) = (self.window, self.lockout);
            table.retain(|_, f| {
                now < f.window_start + window || f.locked_until.is_some_and(|u| now < u + lockout)
            });
            if table.len() >= MAX_ADDRESSES {
                // Too many addresses failing at once: answer slowly, track nothing new.
                return Failure {
                    delay: MAX_SLOWDOWN,
                    log: false,
                    locked: false,
                };
            }
        }
        let f = table.entry(ip).or_insert(Failures {
            count: 0,
            window_start: now,
            locked_until: None,
        });
        if now >= f.window_start + self.window {
            f.count = 0;
            f.window_start = now;
        }
        f.count += 1;
        let log = f.count == 1;
        let already = f.locked_until.is_some_and(|until| now < until);
        let locked = !already && f.count >= self.attempts;
        if locked {
            f.locked_until = Some(now + self.lockout);
        }
        Failure {
            delay: (SLOWDOWN_STEP * f.count).min(MAX_SLOWDOWN),
            log,
            locked,
        }
    }

    /// A bind from `ip` succeeded: its failures are forgotten.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut table = lock(&self.failures);
        if table.get(&ip).is_some_and(|f| f.locked_until.is_none()) {
            table.remove(&ip);
        }
    }

    /// Failed binds so far.
    pub fn failed_binds(&self) -> u64 {
        self.failed_binds.load(Ordering::Relaxed)
    }

    /// Connections refused so far (no slot, or the address's unbound limit).
    pub fn refused_connections(&self) -> u64 {
        self.refused_connections.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(extra: &str, operators: &str) -> Config {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let text = format!(
            "rules = \"rules.toml\"\n[permit]\nkey = \"a-test-key-of-16+chars\"\n[smpp]\n{extra}\n{operators}"
        );
        Config::from_toml(&dir.join("test.toml"), &text, &|_| None).unwrap()
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
    const OP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 9, 9, 9));

    #[test]
    fn one_address_gets_its_share_of_unbound_connections_and_binding_frees_it() {
        let a = Arc::new(Admission::new(&config("max_unbound_per_address = 3", "")));
        let mut held: Vec<Ticket> = (0..3).map(|_| a.admit(A).unwrap()).collect();
        assert_eq!(a.admit(A).unwrap_err(), Refusal::UnboundLimit);
        // Another address is not affected.
        let _b = a.admit(B).unwrap();
        // One binds: room for another unbound one.
        held[0].bound();
        let _c = a.admit(A).unwrap();
        assert_eq!(a.admit(A).unwrap_err(), Refusal::UnboundLimit);
        // One leaves: room again.
        held.pop();
        assert!(a.admit(A).is_ok());
        assert_eq!(a.refused_connections(), 2);
    }

    #[test]
    fn slots_are_kept_for_operators_known_addresses() {
        let ops = "[[operators]]\nsystem_id = \"op\"\npassword = \"pw\"\nmax_binds = 2\nallowed_ips = [\"10.9.9.9\"]";
        let c = config("max_connections = 4\nmax_unbound_per_address = 100", ops);
        assert_eq!(c.smpp.reserved, 2);
        let a = Arc::new(Admission::new(&c));
        let _flood: Vec<Ticket> = (0..2).map(|_| a.admit(A).unwrap()).collect();
        assert_eq!(a.admit(B).unwrap_err(), Refusal::Full);
        let _op: Vec<Ticket> = (0..2).map(|_| a.admit(OP).unwrap()).collect();
        assert_eq!(a.admit(OP).unwrap_err(), Refusal::Full);
    }

    #[test]
    fn failed_binds_slow_down_then_lock_the_address_out() {
        let a = Admission::new(&config(
            "bind_failures = 3\nbind_failure_window = \"60s\"\nbind_lockout = \"300s\"",
            "",
        ));
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let f1 = a.failed(A, t0);
        assert_eq!((f1.delay, f1.log, f1.locked), (SLOWDOWN_STEP, true, false));
        let f2 = a.failed(A, t0 + s);
        assert_eq!(
            (f2.delay, f2.log, f2.locked),
            (2 * SLOWDOWN_STEP, false, false)
        );
        assert!(a.may_bind(A, t0 + s));
        let f3 = a.failed(A, t0 + 2 * s);
        assert!(f3.locked);
        assert!(!a.may_bind(A, t0 + 3 * s));
        assert!(a.may_bind(B, t0 + 3 * s), "another address is not affected");
        // Even the right password does not unlock it early.
        a.succeeded(A);
        assert!(!a.may_bind(A, t0 + 100 * s));
        assert!(a.may_bind(A, t0 + 302 * s));
        // A new window starts counting afresh, and logs again.
        let f = a.failed(A, t0 + 400 * s);
        assert!(f.log && !f.locked);
        assert_eq!(a.failed_binds(), 4);
    }

    #[test]
    fn failures_spread_over_windows_never_lock() {
        let a = Admission::new(&config(
            "bind_failures = 3\nbind_failure_window = \"10s\"",
            "",
        ));
        let t0 = Instant::now();
        for k in 0..10u32 {
            let f = a.failed(A, t0 + Duration::from_secs(u64::from(k) * 6));
            assert!(!f.locked, "failure {k}");
        }
        assert!(a.may_bind(A, t0 + Duration::from_secs(60)));
    }
}
