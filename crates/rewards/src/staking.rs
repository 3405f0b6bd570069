//! The weekly staking accrual: what a recorded stake earns in one ISO week.
//!
//! Day count **actual/365**: a stake earns `amount × apy × days / 365` for a week, where
//! `days` counts the whole UTC days of that week (Monday 00:00 UTC to the next Monday) during
//! all of which the stake was active — started at or before the day's start, and not ended
//! (or ending at or after the day's end). A day a stake starts or ends in the middle of earns
//! nothing. The result is truncated to whole base units (10^-18 HNV), never rounded up: the
//! member is never paid more than earned, at most one base unit less.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc, Weekday};

use crate::amount::{Hnv, mul_div_floor};
use crate::rules::StakingRules;

/// Days in the day-count year.
pub const DAYS_PER_YEAR: u64 = 365;

/// One ISO 8601 week, `2026-W49`: Monday 00:00 UTC to the next Monday 00:00 UTC.
///
/// ```
/// use haven_rewards::IsoWeek;
///
/// let week: IsoWeek = "2026-W49".parse()?;
/// assert_eq!(week.start().to_rfc3339(), "2026-11-30T00:00:00+00:00");
/// assert_eq!(week.end().to_rfc3339(), "2026-12-07T00:00:00+00:00");
/// assert_eq!(week.to_string(), "2026-W49");
/// assert!("2026-W54".parse::<IsoWeek>().is_err());
/// # Ok::<(), haven_rewards::WeekError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    monday: NaiveDate,
}

/// A week that is not `YYYY-Www` or does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an ISO week such as 2026-W49")]
pub struct WeekError(String);

impl IsoWeek {
    /// The week `week` of ISO year `year`, if it exists.
    pub fn new(year: i32, week: u32) -> Option<Self> {
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).map(|monday| Self { monday })
    }

    /// The ISO week `at` falls in.
    pub fn containing(at: DateTime<Utc>) -> Self {
        let date = at.date_naive();
        let iso = date.iso_week();
        Self::new(iso.year(), iso.week()).unwrap_or(Self { monday: date })
    }

    /// The week before this one.
    pub fn previous(self) -> Self {
        Self {
            monday: self.monday - TimeDelta::days(7),
        }
    }

    /// Monday 00:00 UTC.
    pub fn start(self) -> DateTime<Utc> {
        self.monday.and_time(chrono::NaiveTime::MIN).and_utc()
    }

    /// The next Monday 00:00 UTC (exclusive).
    pub fn end(self) -> DateTime<Utc> {
        self.start() + TimeDelta::days(7)
    }
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let iso = self.monday.iso_week();
        write!(f, "{:04}-W{:02}", iso.year(), iso.week())
    }
}

impl FromStr for IsoWeek {
    type Err = WeekError;

    fn from_str(text: &str) -> Result<Self, WeekError> {
        let err = || WeekError(text.chars().take(32).collect());
        let (year, week) = text.split_once("-W").ok_or_else(err)?;
        if year.len() != 4 || week.len() != 2 {
            return Err(err());
        }
        let year: i32 = year.parse().map_err(|_| err())?;
        let week: u32 = week.parse().map_err(|_| err())?;
        Self::new(year, week).ok_or_else(err)
    }
}

/// The whole UTC days of `week` during all of which a stake from `started_at` until
/// `ends_at` (open when `None`) was active: 0 to 7.
pub fn active_days(
    week: IsoWeek,
    started_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
) -> u32 {
    (0..7)
        .filter(|d| {
            let day_start = week.start() + TimeDelta::days(*d);
            let day_end = day_start + TimeDelta::days(1);
            started_at <= day_start && ends_at.is_none_or(|end| end >= day_end)
        })
        .count() as u32
}

/// What a stake of `amount` earns over `days` days at the rules' yearly rate:
/// `amount × apy × days / 365`, truncated to whole base units; `None` only on overflow
/// (amounts beyond 10^38 base units).
///
/// ```
/// use haven_rewards::{Hnv, Rules, staking_interest};
///
/// let rules = Rules::shipped(); // 10 % a year
/// let earned = staking_interest(rules.staking(), Hnv::from_whole(1000), 7).unwrap();
/// // 1000 × 0.10 × 7 / 365 = 1.917808219178082191780… → truncated to 18 decimals.
/// assert_eq!(earned.to_string(), "1.917808219178082191");
/// ```
pub fn staking_interest(rules: &StakingRules, amount: Hnv, days: u32) -> Option<Hnv> {
    let apy = u128::try_from(rules.apy().scaled()).ok()?;
    mul_div_floor(
        &[amount.base_units(), apy, u128::from(days)],
        &[crate::amount::SCALE as u64, DAYS_PER_YEAR],
    )
    .map(Hnv::from_base_units)
}

/// What a stake earns in `week`: [`staking_interest`] over its [`active_days`].
pub fn weekly_accrual(
    rules: &StakingRules,
    amount: Hnv,
    week: IsoWeek,
    started_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
) -> Option<Hnv> {
    staking_interest(rules, amount, active_days(week, started_at, ends_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rules;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn weeks_parse_print_and_bound() {
        let week: IsoWeek = "2027-W01".parse().unwrap();
        assert_eq!(week.start(), at("2027-01-04T00:00:00Z"));
        assert_eq!(week.previous().to_string(), "2026-W53");
        assert_eq!(
            IsoWeek::containing(at("2026-12-06T23:59:59Z")).to_string(),
            "2026-W49"
        );
        assert_eq!(
            IsoWeek::containing(at("2026-12-07T00:00:00Z")).to_string(),
            "2026-W50"
        );
        for bad in [
            "2026-49", "2026-W4", "2026-W00", "2025-W53", "26-W01", "2026-W1x", "",
        ] {
            assert!(bad.parse::<IsoWeek>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_whole_days_count() {
        let week: IsoWeek = "2026-W49".parse().unwrap();
        let monday = week.start();
        assert_eq!(active_days(week, monday, None), 7);
        assert_eq!(active_days(week, monday - TimeDelta::days(30), None), 7);
        // Started a second after Monday began: Monday does not count.
        assert_eq!(active_days(week, monday + TimeDelta::seconds(1), None), 6);
        // Ends Thursday 00:00: Monday to Wednesday.
        assert_eq!(
            active_days(week, monday, Some(monday + TimeDelta::days(3))),
            3
        );
        // Ends Thursday noon: Thursday does not count.
        let noon = monday + TimeDelta::days(3) + TimeDelta::hours(12);
        assert_eq!(active_days(week, monday, Some(noon)), 3);
        assert_eq!(active_days(week, week.end(), None), 0);
        assert_eq!(
            active_days(week, monday - TimeDelta::days(9), Some(monday)),
            0
        );
    }

    #[test]
    fn interest_is_truncated_never_rounded_up() {
        let rules = Rules::shipped();
        let staking = rules.staking();
        // 1000 × 0.1 × 7 / 365 = 1.917808219178082191780821…
        let week = staking_interest(staking, Hnv::from_whole(1000), 7).unwrap();
        assert_eq!(week.base_units(), 1_917_808_219_178_082_191);
        // 365 days of 1000 HNV at 10 %: exactly 100.
        assert_eq!(
            staking_interest(staking, Hnv::from_whole(1000), 365).unwrap(),
            Hnv::from_whole(100)
        );
        // One base unit for one day earns nothing (0.1 / 365 < 1).
        let tiny = staking_interest(staking, Hnv::from_base_units(1), 1).unwrap();
        assert!(tiny.is_zero());
        // 3650 base units for one day: exactly 1.
        assert_eq!(
            staking_interest(staking, Hnv::from_base_units(3650), 1)
                .unwrap()
                .base_units(),
            1
        );
        assert!(
            staking_interest(staking, Hnv::from_whole(1000), 0)
                .unwrap()
                .is_zero()
        );
        // Large stakes do not overflow: 10^20 HNV for a week.
        let big = Hnv::from_base_units(100_000_000_000_000_000_000 * 1_000_000_000_000_000_000);
        assert!(staking_interest(staking, big, 7).is_some());
    }
}
