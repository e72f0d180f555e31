//! Packet time. Every timeout, age and EVE timestamp is derived from packet time, never the wall
//! clock, so a replay gives the same output however fast it runs.

use std::fmt;
use std::time::Duration;

/// Nanoseconds since the UNIX epoch, as carried by the capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub const fn from_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }

    /// Builds a timestamp from seconds and a sub-second fraction; fractions past one second are
    /// carried over (some capture files write them).
    pub fn from_secs_nanos(secs: u64, nanos: u64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    pub const fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }

    pub const fn subsec_micros(self) -> u32 {
        ((self.0 % 1_000_000_000) / 1_000) as u32
    }

    /// Time elapsed from `earlier` to `self`; zero when the capture steps backwards.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    pub fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
    }

    /// The EVE spelling, `2024-01-31T12:00:00.123456+0000`. Weir always writes UTC.
    pub fn eve(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.secs();
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days as i64);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}+0000",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60,
            self.subsec_micros()
        )
    }
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's days-to-civil
/// algorithm, which is exact for every day in range).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eve_format_matches_suricata_spelling() {
        // 2024-01-31T12:00:00.123456 UTC
        let ts = Timestamp::from_secs_nanos(1_706_702_400, 123_456_789);
        assert_eq!(ts.eve(), "2024-01-31T12:00:00.123456+0000");
        assert_eq!(Timestamp::ZERO.eve(), "1970-01-01T00:00:00.000000+0000");
        // a leap day
        assert_eq!(Timestamp::from_secs_nanos(951_782_400, 0).eve(), "2000-02-29T00:00:00.000000+0000");
    }

    #[test]
    fn since_never_goes_negative() {
        let a = Timestamp::from_secs_nanos(10, 0);
        let b = Timestamp::from_secs_nanos(12, 500);
        assert_eq!(b.since(a), Duration::new(2, 500));
        assert_eq!(a.since(b), Duration::ZERO);
    }
}
