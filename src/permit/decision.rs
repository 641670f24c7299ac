//! What the engine decides about one request: a grant and its validity, an active permit
//! re-sent, or a denial and why. A leaf (it imports only `document`), so the engine, the
//! replies, the stores and the gateway can all name a decision without importing each
//! other.

use crate::permit::document::Document;

/// A permit's validity window, Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// When the permit was issued and starts.
    pub from: i64,
    /// When it ends.
    pub until: i64,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The quota group's daily limit is used up for today.
    DailyLimit {
        /// The limit that is used up.
        limit: u32,
    },
    /// The code may not be granted at this local hour.
    OutsideHours {
        /// When it may.
        hours: Hours,
    },
    /// The code is switched off (e.g. a weekend lockdown).
    CodeDisabled,
    /// The document is on the blocklist for this code.
    Blocked,
    /// The code is not in the current rules (they were reloaded after parsing).
    UnknownCode,
    /// The document's active permit of this code was revoked by an official.
    Revoked,
    /// An abuse limit: the phone asked for more distinct documents today than
    /// `max_documents_per_phone`, or the document had `abuse_after` grants of this
    /// unlimited code today.
    Abuse,
}

impl Denial {
    /// A stable snake_case key for templates and JSON.
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::DailyLimit { .. } => "daily_limit",
            Denial::OutsideHours { .. } => "outside_hours",
            Denial::CodeDisabled => "code_disabled",
            Denial::Blocked => "blocked",
            Denial::UnknownCode => "unknown_code",
            Denial::Revoked => "revoked",
            Denial::Abuse => "abuse",
        }
    }
}

/// What the engine decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new permit: the store must make it durable before the MO is acknowledged.
    Granted(Validity),
    /// A permit of this code is still active: the same permit is sent again, no quota used.
    Active(Validity),
    /// Refused.
    Denied(Denial),
}

/// One decision about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The code asked for.
    pub code: u8,
    /// The document asked for.
    pub document: Document,
    /// What was decided.
    pub outcome: Outcome,
}

impl Decision {
    /// The permit's window if the decision carries a permit (new or re-sent).
    pub fn validity(&self) -> Option<Validity> {
        match self.outcome {
            Outcome::Granted(v) | Outcome::Active(v) => Some(v),
            Outcome::Denied(_) => None,
        }
    }
}

/// Local hours in which a code may be granted, e.g. 07:00–20:00. `from > until` wraps
/// midnight (22:00–06:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    /// First allowed second of the local day.
    pub from: u32,
    /// First second no longer allowed.
    pub until: u32,
}

impl Hours {
    /// Whether a local second of the day lies inside these hours.
    pub fn contains(&self, second_of_day: u32) -> bool {
        if self.from <= self.until {
            (self.from..self.until).contains(&second_of_day)
        } else {
            second_of_day >= self.from || second_of_day < self.until
        }
    }

    /// `HH:MM–HH:MM`, as replies print it.
    pub fn window(&self) -> String {
        format!(
            "{:02}:{:02}\u{2013}{:02}:{:02}",
            self.from / 3600,
            self.from / 60 % 60,
            self.until / 3600,
            self.until / 60 % 60
        )
    }

    /// Parses `HH:MM-HH:MM` (or with an en dash) as a rules file writes it; `None` if it is
    /// not hours or names an empty window.
    pub(crate) fn parse(s: &str) -> Option<Hours> {
        let (a, b) = s.split_once(['-', '\u{2013}'])?;
        let hm = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 3600 + m * 60)
        };
        let (from, until) = (hm(a)?, hm(b)?);
        (from != until).then_some(Hours {
            from: from % 86_400,
            until: if until == 86_400 { 86_400 } else { until },
        })
    }
}
