//! Keep-alive: enquire_link on a quiet bind, a close when it goes unanswered, an unbind
//! when the peer has been silent too long.
//!
//! Pure timer logic: the caller says when it heard the peer and asks, at the deadline this
//! gives, what is due. Time is injected (`tokio::time::Instant`, so a paused test clock
//! drives it too).

use std::time::Duration;
use tokio::time::Instant;

/// The keep-alive timers of one session.
#[derive(Debug, Clone)]
pub struct Keepalive {
    /// Quiet time after which we send enquire_link.
    every: Duration,
    /// Silence after which we unbind.
    inactivity: Duration,
    /// How long our enquire_link may go unanswered.
    response_timeout: Duration,
    last_heard: Instant,
    /// Our outstanding enquire_link: its sequence number and when it went.
    enquire: Option<(u32, Instant)>,
}

/// What the keep-alive wants done now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing yet.
    Nothing,
    /// The bind has been quiet: send enquire_link (then report it with [`Keepalive::sent`]).
    Enquire,
    /// Our enquire_link went unanswered: the link is dead, close without ceremony.
    Close,
    /// Nothing heard for the inactivity timeout: unbind.
    Unbind,
}

impl Keepalive {
    /// Timers starting at `now`, as if the peer had just been heard.
    pub fn new(
        every: Duration,
        inactivity: Duration,
        response_timeout: Duration,
        now: Instant,
    ) -> Self {
        Keepalive {
            every,
            inactivity,
            response_timeout,
            last_heard: now,
            enquire: None,
        }
    }

    /// The peer sent bytes at `now`: the link is alive.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// We sent enquire_link `seq` at `now`.
    pub fn sent(&mut self, seq: u32, now: Instant) {
        self.enquire = Some((seq, now));
    }

    /// An enquire_link_resp arrived; it settles our enquire_link if it answers it.
    pub fn answered(&mut self, seq: u32) {
        if self.enquire.is_some_and(|(s, _)| s == seq) {
            self.enquire = None;
        }
    }

    /// When [`Keepalive::due`] next has something to say. Enquiring only makes sense on a
    /// `bound` session; inactivity counts in every state.
    pub fn deadline(&self, bound: bool) -> Instant {
        let idle = self.last_heard + self.inactivity;
        if !bound {
            return idle;
        }
        let probe = match self.enquire {
            Some((_, sent)) => sent + self.response_timeout,
            None => self.last_heard + self.every,
        };
        probe.min(idle)
    }

    /// What is due at `now`: a dead link first, then silence, then a probe.
    pub fn due(&self, now: Instant, bound: bool) -> Due {
        if bound
            && self
                .enquire
                .is_some_and(|(_, s)| now >= s + self.response_timeout)
        {
            return Due::Close;
        }
        if now >= self.last_heard + self.inactivity {
            return Due::Unbind;
        }
        if bound && self.enquire.is_none() && now >= self.last_heard + self.every {
            return Due::Enquire;
        }
        Due::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn timers(now: Instant) -> Keepalive {
        Keepalive::new(30 * S, 120 * S, 10 * S, now)
    }

    #[test]
    fn enquire_link_on_a_quiet_bind_and_not_before() {
        let t0 = Instant::now();
        let mut k = timers(t0);
        assert_eq!(k.deadline(true), t0 + 30 * S);
        assert_eq!(k.due(t0 + 29 * S, true), Due::Nothing);
        assert_eq!(k.due(t0 + 30 * S, true), Due::Enquire);
        // Heard meanwhile: the quiet time starts again.
        k.heard(t0 + 20 * S);
        assert_eq!(k.due(t0 + 30 * S, true), Due::Nothing);
        assert_eq!(k.deadline(true), t0 + 50 * S);
        // An unbound session is not probed.
        assert_eq!(k.due(t0 + 50 * S, false), Due::Nothing);
        assert_eq!(k.deadline(false), t0 + 140 * S);
    }

    #[test]
    fn answered_enquire_link_keeps_the_bind_unanswered_closes_it() {
        let t0 = Instant::now();
        let mut k = timers(t0);
        k.sent(7, t0 + 30 * S);
        assert_eq!(k.deadline(true), t0 + 40 * S);
        assert_eq!(k.due(t0 + 35 * S, true), Due::Nothing);
        // Another sequence number does not settle it.
        k.answered(8);
        assert_eq!(k.due(t0 + 40 * S, true), Due::Close);
        k.answered(7);
        k.heard(t0 + 40 * S);
        assert_eq!(k.due(t0 + 40 * S, true), Due::Nothing);
        assert_eq!(k.deadline(true), t0 + 70 * S);
    }

    #[test]
    fn inactivity_unbinds_in_any_state() {
        let t0 = Instant::now();
        let k = Keepalive::new(300 * S, 60 * S, 10 * S, t0);
        assert_eq!(k.deadline(true), t0 + 60 * S);
        assert_eq!(k.due(t0 + 59 * S, false), Due::Nothing);
        assert_eq!(k.due(t0 + 60 * S, false), Due::Unbind);
        assert_eq!(k.due(t0 + 60 * S, true), Due::Unbind);
    }
}
