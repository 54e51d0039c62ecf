//! Periods and the calendar windows that token limits and budgets count in.

use std::time::{SystemTime, UNIX_EPOCH};

use tollgate_core::{civil_from_days, days_from_civil};

const DAY: u64 = 86_400;

/// The length a limit is counted over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Second,
    Minute,
    Hour,
    Day,
    /// A calendar month in UTC, as budgets are billed.
    Month,
}

impl Period {
    pub fn parse(unit: &str) -> Option<Period> {
        match unit {
            "second" => Some(Period::Second),
            "minute" => Some(Period::Minute),
            "hour" => Some(Period::Hour),
            "day" => Some(Period::Day),
            "month" => Some(Period::Month),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Period::Second => "second",
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    /// Length in seconds; a month counts as 30 days where a fixed length is needed (header `w`).
    pub fn seconds(self) -> u64 {
        match self {
            Period::Second => 1,
            Period::Minute => 60,
            Period::Hour => 3_600,
            Period::Day => DAY,
            Period::Month => 30 * DAY,
        }
    }

    /// The window holding `secs` (seconds since the epoch): its id and the second it ends.
    pub fn window(self, secs: u64) -> Window {
        if self == Period::Month {
            let (year, month, _) = civil_from_days(secs / DAY);
            let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
            let end = days_from_civil(next_year, next_month, 1).saturating_mul(DAY);
            return Window { id: year.saturating_mul(12).saturating_add(month - 1), end };
        }
        let len = self.seconds();
        let id = secs / len;
        Window { id, end: id.saturating_add(1).saturating_mul(len) }
    }
}

/// One counting window of a `Period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Grows with time, so a counter can tell a newer window from an older one.
    pub id: u64,
    /// Seconds since the epoch at which the window closes.
    pub end: u64,
}

/// Time as the limiter counts it. A clock before the epoch reads as the epoch rather than failing.
pub fn nanos_since_epoch(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Whole seconds, rounded up, as `Retry-After` and the `t` parameter want them.
pub fn ceil_secs(nanos: u64) -> u64 {
    nanos.div_ceil(NANOS_PER_SEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_end_on_the_first_of_the_next() {
        // 2023-12-31T23:59:59Z
        let secs = days_from_civil(2023, 12, 31) * DAY + DAY - 1;
        let w = Period::Month.window(secs);
        assert_eq!(w.end, days_from_civil(2024, 1, 1) * DAY);
        assert_eq!(Period::Month.window(w.end).id, w.id + 1);
        let feb = Period::Month.window(days_from_civil(2024, 2, 10) * DAY);
        assert_eq!(feb.end, days_from_civil(2024, 3, 1) * DAY);
    }

    #[test]
    fn fixed_windows_split_on_their_length() {
        assert_eq!(Period::Minute.window(119), Window { id: 1, end: 120 });
        assert_eq!(Period::Minute.window(120), Window { id: 2, end: 180 });
        assert_eq!(Period::Day.window(DAY - 1).end, DAY);
        assert_eq!(ceil_secs(1), 1);
        assert_eq!(ceil_secs(NANOS_PER_SEC), 1);
        assert_eq!(ceil_secs(0), 0);
    }
}
