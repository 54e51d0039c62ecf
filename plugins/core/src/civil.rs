//! Civil (proleptic Gregorian, UTC) dates from day counts and back, for what needs a calendar without a
//! date crate: monthly budget windows, and the date in an AWS signature. Howard Hinnant's algorithms, for
//! dates from 1970-01-01 on.

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shifted so that eras of 400 years start on 0000-03-01 and the leap day falls at the end of a year;
    // 719_468 days lie between that and 1970-01-01.
    let z = days.saturating_add(719_468);
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = (yoe + era * 400).saturating_add(u64::from(month <= 2));
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date (year ≥ 1970, month 1–12, day 1–31).
pub fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year.saturating_sub(1) } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = ((153 * mp + 2) / 5 + day).saturating_sub(1);
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era.saturating_mul(146_097).saturating_add(doe).saturating_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2024-02-29, a leap day; 2000-02-29 (a leap century); 2100-03-01 (2100 is not a leap year).
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        for days in [0, 59, 365, 11_016, 19_782, 20_000, 40_000, 47_540, 47_541] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        // Hostile day counts saturate rather than overflow.
        let _ = civil_from_days(u64::MAX);
    }
}
