//! Time, injected: the engine asks a [`Clock`], and days are calendar days in the rules'
//! time zone (Asia/Baku: UTC+4, no DST since 2016).

use chrono::{DateTime, LocalResult, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Where the engine gets "now"; tests use [`FakeClock`] and never wait for real time.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to, shared between a test and the engine.
#[derive(Debug)]
pub struct FakeClock {
    millis: AtomicI64,
}

impl FakeClock {
    /// A clock standing at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        FakeClock {
            millis: AtomicI64::new(at.timestamp_millis()),
        }
    }

    /// Moves the clock to `at` (backwards too, to test clock steps).
    pub fn set(&self, at: DateTime<Utc>) {
        self.millis.store(at.timestamp_millis(), Ordering::Relaxed);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        self.millis
            .fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.millis.load(Ordering::Relaxed)).unwrap_or_default()
    }
}

/// One instant as the engine needs it: Unix seconds, the local calendar day, and the local
/// second of that day (for permitted hours). Computed once per message or once per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    /// Unix seconds.
    pub unix: i64,
    /// Local calendar day, as days since 1970-01-01 in the rules' time zone.
    pub day: i32,
    /// Seconds since local midnight.
    pub second_of_day: u32,
    /// The first Unix second of the local day `day`. An instant belongs to an earlier local
    /// day exactly when it is before this, so the engine can tell "granted today" from a
    /// stored issue time with one comparison instead of a time-zone lookup per entry. Not
    /// always `unix - second_of_day`: on a day whose UTC offset changed since midnight (DST)
    /// the wall clock and the elapsed seconds disagree.
    pub day_start: i64,
}

/// Turns instants into local days, caching the current day so the hot path does no
/// time-zone arithmetic: one atomic load and two comparisons.
#[derive(Debug)]
pub struct Calendar {
    tz: Tz,
    /// Cached day: local-midnight Unix seconds (high 32 bits, as u32) and the UTC offset in
    /// seconds + 2^20 (low 32 bits). Zero means empty. Only days of exactly 24 h are cached.
    cache: AtomicU64,
}

impl Clone for Calendar {
    fn clone(&self) -> Self {
        Calendar::new(self.tz)
    }
}

const OFFSET_BIAS: i64 = 1 << 20;
const DAY: i64 = 86_400;

impl Calendar {
    /// A calendar in time zone `tz`.
    pub fn new(tz: Tz) -> Self {
        Calendar {
            tz,
            cache: AtomicU64::new(0),
        }
    }

    /// The time zone whose days count.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The [`Moment`] of a Unix time in seconds.
    pub fn moment(&self, unix: i64) -> Moment {
        let cached = self.cache.load(Ordering::Relaxed);
        if cached != 0 {
            let start = i64::from((cached >> 32) as u32);
            let offset = i64::from(cached as u32) - OFFSET_BIAS;
            if unix >= start && unix < start + DAY {
                return Moment {
                    unix,
                    day: ((start + offset).div_euclid(DAY)) as i32,
                    second_of_day: (unix - start) as u32,
                    day_start: start,
                };
            }
        }
        self.moment_slow(unix)
    }

    fn moment_slow(&self, unix: i64) -> Moment {
        let offset = self.offset_at(unix);
        let local = unix + offset;
        let day = local.div_euclid(DAY);
        let second_of_day = local.rem_euclid(DAY);
        let start = unix - second_of_day;
        // Cache only plain 24-hour days whose start fits the packed form.
        let plain = self.offset_at(start) == offset && self.offset_at(start + DAY - 1) == offset;
        if plain && (0..i64::from(u32::MAX)).contains(&start) {
            let packed = ((start as u64) << 32) | ((offset + OFFSET_BIAS) as u64 & 0xffff_ffff);
            self.cache.store(packed, Ordering::Relaxed);
        }
        Moment {
            unix,
            day: day as i32,
            second_of_day: second_of_day as u32,
            day_start: if plain {
                start
            } else {
                self.first_second_of_day(day, unix)
            },
        }
    }

    /// The first Unix second whose local date is `day` (days since 1970-01-01), given an
    /// instant `unix` on that day. Local midnight where it exists (the earlier one if a
    /// clock change repeats it); where a change skips midnight, the instant of the change.
    fn first_second_of_day(&self, day: i64, unix: i64) -> i64 {
        let midnight = NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|epoch| epoch.checked_add_days(chrono::Days::new(day.max(0) as u64)))
            .map(|date| date.and_time(NaiveTime::MIN));
        match midnight.map(|m| self.tz.from_local_datetime(&m)) {
            Some(LocalResult::Single(t)) => t.timestamp(),
            Some(LocalResult::Ambiguous(a, b)) => a.timestamp().min(b.timestamp()),
            _ => {
                // Midnight does not exist: the smallest instant whose local day is `day`,
                // by bisection (local days only move forward around a skipped midnight).
                let local_day = |t: i64| (t + self.offset_at(t)).div_euclid(DAY);
                let (mut lo, mut hi) = (unix - 2 * DAY, unix);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if local_day(mid) >= day {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                hi
            }
        }
    }

    /// The zone's offset from UTC in seconds at a Unix time.
    pub fn offset_at(&self, unix: i64) -> i64 {
        let utc = DateTime::from_timestamp(unix, 0)
            .unwrap_or_default()
            .naive_utc();
        i64::from(
            self.tz
                .offset_from_utc_datetime(&utc)
                .fix()
                .local_minus_utc(),
        )
    }

    /// Local `HH:MM` of a Unix time, for replies.
    pub fn hh_mm(&self, unix: i64) -> String {
        let mut out = String::with_capacity(5);
        self.push_hh_mm(unix, &mut out);
        out
    }

    /// Appends the local `HH:MM` of a Unix time to `out`: every reply with a permit prints
    /// two, so no formatter and no allocation, and the zone is looked up only outside the
    /// cached day (whose offset is constant).
    pub fn push_hh_mm(&self, unix: i64, out: &mut String) {
        let cached = self.cache.load(Ordering::Relaxed);
        let start = i64::from((cached >> 32) as u32);
        let offset = if cached != 0 && unix >= start && unix < start + DAY {
            i64::from(cached as u32) - OFFSET_BIAS
        } else {
            self.offset_at(unix)
        };
        let second = (unix + offset).rem_euclid(DAY);
        let (h, m) = (second / 3600, second % 3600 / 60);
        for n in [h / 10, h % 10] {
            out.push(char::from(b'0' + n as u8));
        }
        out.push(':');
        for n in [m / 10, m % 10] {
            out.push(char::from(b'0' + n as u8));
        }
    }

    /// Local date `YYYY-MM-DD` of a Unix time.
    pub fn date(&self, unix: i64) -> String {
        let at = DateTime::from_timestamp(unix, 0).unwrap_or_default();
        at.with_timezone(&self.tz).format("%Y-%m-%d").to_string()
    }

    /// Local time in RFC 3339 with its offset, e.g. `2020-04-06T10:00:00+04:00`.
    pub fn rfc3339(&self, unix: i64) -> String {
        let at = DateTime::from_timestamp(unix, 0).unwrap_or_default();
        at.with_timezone(&self.tz).to_rfc3339()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    #[test]
    fn baku_days_turn_at_local_midnight() {
        let cal = Calendar::new(chrono_tz::Asia::Baku);
        let before = cal.moment(unix("2020-04-06T23:59:59+04:00"));
        let after = cal.moment(unix("2020-04-07T00:00:00+04:00"));
        assert_eq!(after.day, before.day + 1);
        assert_eq!(before.second_of_day, 86_399);
        assert_eq!(after.second_of_day, 0);
        // 20:00 UTC on the 6th is already the 7th in Baku.
        assert_eq!(cal.moment(unix("2020-04-06T20:00:00Z")).day, after.day);
        // Cached and uncached paths agree, in either order.
        let again = cal.moment(unix("2020-04-06T23:59:59+04:00"));
        assert_eq!(again, before);
        assert_eq!(before.day_start, unix("2020-04-06T00:00:00+04:00"));
        assert_eq!(after.day_start, unix("2020-04-07T00:00:00+04:00"));
        assert_eq!(cal.hh_mm(unix("2020-04-06T22:30:00+04:00")), "22:30");
    }

    #[test]
    fn hh_mm_agrees_with_chrono_across_days_and_clock_changes() {
        for tz in [
            chrono_tz::Asia::Baku,
            chrono_tz::Europe::Berlin,
            chrono_tz::America::Santiago,
        ] {
            let cal = Calendar::new(tz);
            // Every 7 minutes over three days around Berlin's spring change, with the cache
            // warmed by moment() at different points, as the gateway does.
            let from = unix("2020-03-28T00:00:00Z");
            for k in 0..(3 * 24 * 60 / 7) {
                let t = from + k * 7 * 60 + 13;
                if k % 50 == 0 {
                    cal.moment(t);
                }
                let want = DateTime::from_timestamp(t, 0)
                    .unwrap()
                    .with_timezone(&tz)
                    .format("%H:%M")
                    .to_string();
                assert_eq!(cal.hh_mm(t), want, "{tz} at {t}");
            }
        }
    }

    #[test]
    fn dst_zones_still_count_local_days() {
        let cal = Calendar::new(chrono_tz::Europe::Berlin);
        // 2020-03-29 is 23 hours long in Berlin.
        let a = cal.moment(unix("2020-03-29T00:30:00+01:00"));
        let b = cal.moment(unix("2020-03-29T23:30:00+02:00"));
        let c = cal.moment(unix("2020-03-30T00:10:00+02:00"));
        assert_eq!(a.day, b.day);
        assert_eq!(c.day, a.day + 1);
        // The day started at local midnight before the change, not 23:30 wall-clock hours
        // before 23:30.
        let midnight = unix("2020-03-29T00:00:00+01:00");
        assert_eq!((a.day_start, b.day_start), (midnight, midnight));
        assert_eq!(c.day_start, unix("2020-03-30T00:00:00+02:00"));
        // A 25-hour day in autumn.
        let d = cal.moment(unix("2020-10-25T23:00:00+01:00"));
        assert_eq!(d.day_start, unix("2020-10-25T00:00:00+02:00"));
        // Where a change skips midnight (Santiago, 2020-09-06 00:00 -> 01:00), the day starts
        // at the change.
        let santiago = Calendar::new(chrono_tz::America::Santiago);
        let e = santiago.moment(unix("2020-09-06T12:00:00-03:00"));
        assert_eq!(e.day_start, unix("2020-09-06T01:00:00-03:00"));
    }

    #[test]
    fn fake_clock_moves_only_when_told() {
        let t = DateTime::parse_from_rfc3339("2020-04-06T10:00:00+04:00")
            .unwrap()
            .with_timezone(&Utc);
        let clock = FakeClock::new(t);
        assert_eq!(clock.now(), t);
        clock.advance(std::time::Duration::from_secs(60));
        assert_eq!(clock.now().timestamp() - t.timestamp(), 60);
        clock.set(t);
        assert_eq!(clock.now(), t);
    }
}
