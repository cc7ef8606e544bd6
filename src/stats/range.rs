//! The chart's ranges (SPEC §2.8) and the viewer's time zone.
//!
//! `timezone_offset` is JavaScript's `Date.getTimezoneOffset()`: minutes *west* of UTC (New York in
//! winter is 300, India is -330). Local time = UTC − offset. Hourly ranges are cut at the viewer's
//! local midnight and local hours, whatever the offset (half- and quarter-hour zones included); daily
//! ranges are the viewer's local dates, each counted as that UTC day, because a visitor id lives one
//! UTC day (the hashing salt rotates at 00:00 UTC), so a UTC day is the finest unit for which
//! "unique visitors" is exact, and the daily rollups are kept per UTC day.

use std::borrow::Cow;

use chrono::{Datelike, Days, Months, NaiveDate};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use super::StatsError;
use crate::store::{DAY_MS, HOUR_MS};

/// JavaScript's offsets run from UTC+14 (-840) to UTC-12 (720).
pub const MIN_OFFSET: i32 = -840;
pub const MAX_OFFSET: i32 = 720;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Today,
    Yesterday,
    Last7Days,
    Last30Days,
    ThisMonth,
    LastMonth,
}

impl Range {
    pub const ALL: [Range; 6] =
        [Range::Today, Range::Yesterday, Range::Last7Days, Range::Last30Days, Range::ThisMonth, Range::LastMonth];

    /// `None`/empty is `today`, the original's default.
    ///
    /// # Errors
    /// Any other name, with the original's message listing the valid ones.
    pub fn parse(value: Option<&str>) -> Result<Range, StatsError> {
        let value = value.map(str::trim).filter(|v| !v.is_empty()).unwrap_or("today");
        Range::ALL.into_iter().find(|r| r.as_str() == value).ok_or_else(|| {
            StatsError::Invalid(
                "Invalid range. Must be one of: today, yesterday, last_7_days, last_30_days, this_month, last_month"
                    .into(),
            )
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Today => "today",
            Range::Yesterday => "yesterday",
            Range::Last7Days => "last_7_days",
            Range::Last30Days => "last_30_days",
            Range::ThisMonth => "this_month",
            Range::LastMonth => "last_month",
        }
    }

    pub fn is_hourly(self) -> bool {
        matches!(self, Range::Today | Range::Yesterday)
    }
}

/// The API's schema of a range name: one of [`Range::ALL`].
impl utoipa::PartialSchema for Range {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some(Range::ALL.map(Range::as_str))).into()
    }
}

impl utoipa::ToSchema for Range {}

/// Minutes west of UTC, within [`MIN_OFFSET`]..=[`MAX_OFFSET`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TzOffset(i32);

impl TzOffset {
    pub const UTC: TzOffset = TzOffset(0);

    /// `None` or blank: no offset given (UTC, and the answer does not echo one).
    ///
    /// # Errors
    /// Not an integer, or outside the range of real time zones.
    pub fn parse(value: Option<&str>) -> Result<Option<TzOffset>, StatsError> {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
        match value.parse::<i32>() {
            Ok(minutes) if (MIN_OFFSET..=MAX_OFFSET).contains(&minutes) => Ok(Some(TzOffset(minutes))),
            _ => Err(StatsError::Invalid(format!(
                "Invalid timezone_offset. Must be whole minutes west of UTC between {MIN_OFFSET} and {MAX_OFFSET}, as Date.getTimezoneOffset() returns"
            ))),
        }
    }

    pub fn minutes(self) -> i32 {
        self.0
    }

    /// Milliseconds to add to a local time to get UTC.
    pub fn ms(self) -> i64 {
        i64::from(self.0) * 60_000
    }

    /// The viewer's calendar date at the UTC instant `utc_ms`.
    pub fn local_date(self, utc_ms: i64) -> NaiveDate {
        date_of_ms(utc_ms - self.ms())
    }

    /// The UTC instant of local midnight starting `date`.
    pub fn local_midnight(self, date: NaiveDate) -> i64 {
        ms_of_date(date) + self.ms()
    }
}

/// The API's schema of `timezone_offset`.
impl utoipa::PartialSchema for TzOffset {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(MIN_OFFSET))
            .maximum(Some(MAX_OFFSET))
            .description(Some("Minutes west of UTC, as Date.getTimezoneOffset()"))
            .into()
    }
}

impl utoipa::ToSchema for TzOffset {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("TimezoneOffset")
    }
}

/// The buckets of one chart window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Buckets {
    /// 24 hours from `start` (UTC ms of local midnight; not a UTC hour in half-hour zones).
    Hours { start: i64 },
    /// Local dates `first..=last`, each read as the UTC day of the same date.
    Days { first: NaiveDate, last: NaiveDate },
}

impl Buckets {
    /// The buckets of `range` for a viewer at `offset`, at the UTC instant `now_ms`.
    pub fn of(range: Range, offset: TzOffset, now_ms: i64) -> Buckets {
        let today = offset.local_date(now_ms);
        let days = |n: u64| today.checked_sub_days(Days::new(n)).unwrap_or(today);
        match range {
            Range::Today => Buckets::Hours { start: offset.local_midnight(today) },
            Range::Yesterday => Buckets::Hours { start: offset.local_midnight(days(1)) },
            Range::Last7Days => Buckets::Days { first: days(6), last: today },
            Range::Last30Days => Buckets::Days { first: days(29), last: today },
            Range::ThisMonth => Buckets::Days { first: first_of_month(today), last: today },
            Range::LastMonth => {
                let last = first_of_month(today).pred_opt().unwrap_or(today);
                Buckets::Days { first: first_of_month(last), last }
            }
        }
    }

    /// The period just before, for `compare=previous`: the day before, the same number of days
    /// before, or (month ranges) the previous month (up to the same day of the month for `this_month`).
    pub fn previous(&self, range: Range) -> Buckets {
        match *self {
            Buckets::Hours { start } => Buckets::Hours { start: start - DAY_MS },
            Buckets::Days { first, last } => match range {
                Range::ThisMonth | Range::LastMonth => {
                    let prev_first = first.checked_sub_months(Months::new(1)).unwrap_or(first);
                    let prev_month_last = first.pred_opt().unwrap_or(first);
                    let wanted = prev_first.checked_add_days(Days::new((last - first).num_days().max(0) as u64));
                    let prev_last = wanted.map_or(prev_month_last, |d| d.min(prev_month_last));
                    Buckets::Days { first: prev_first, last: prev_last }
                }
                _ => {
                    let len = (last - first).num_days() + 1;
                    let back = |d: NaiveDate| d.checked_sub_days(Days::new(len.max(0) as u64)).unwrap_or(d);
                    Buckets::Days { first: back(first), last: back(last) }
                }
            },
        }
    }

    /// `[start, end)` in UTC ms.
    pub fn window(&self) -> (i64, i64) {
        match *self {
            Buckets::Hours { start } => (start, start + 24 * HOUR_MS),
            Buckets::Days { first, last } => (ms_of_date(first), ms_of_date(last) + DAY_MS),
        }
    }
}

fn first_of_month(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

pub fn date_of_ms(ms: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms).map_or(NaiveDate::MIN, |t| t.date_naive())
}

pub fn ms_of_date(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn offsets_are_javascripts_minutes_west() {
        assert_eq!(TzOffset::parse(None).unwrap(), None);
        assert_eq!(TzOffset::parse(Some("")).unwrap(), None);
        assert_eq!(TzOffset::parse(Some("0")).unwrap(), Some(TzOffset(0)));
        assert_eq!(TzOffset::parse(Some("-330")).unwrap(), Some(TzOffset(-330)));
        for bad in ["abc", "1.5", "-841", "721", "99999999999"] {
            assert!(TzOffset::parse(Some(bad)).is_err(), "{bad}");
        }
        // 02:00 UTC on Sep 1 is still Aug 31 in New York (300) and already 07:30 Sep 1 in India (-330).
        assert_eq!(TzOffset(300).local_date(at("2025-09-01T02:00:00Z")), date("2025-08-31"));
        assert_eq!(TzOffset(-330).local_date(at("2025-08-31T20:00:00Z")), date("2025-09-01"));
    }

    #[test]
    fn today_starts_at_local_midnight() {
        let now = at("2025-09-08T10:00:00Z");
        assert_eq!(Buckets::of(Range::Today, TzOffset(0), now), Buckets::Hours { start: at("2025-09-08T00:00:00Z") });
        assert_eq!(Buckets::of(Range::Today, TzOffset(300), now), Buckets::Hours { start: at("2025-09-08T05:00:00Z") });
        assert_eq!(
            Buckets::of(Range::Today, TzOffset(-330), now),
            Buckets::Hours { start: at("2025-09-07T18:30:00Z") }
        );
        assert_eq!(
            Buckets::of(Range::Yesterday, TzOffset(-330), now),
            Buckets::Hours { start: at("2025-09-06T18:30:00Z") }
        );
    }

    #[test]
    fn daily_ranges_follow_the_local_calendar_across_month_ends() {
        let now = at("2025-10-01T03:00:00Z"); // Sep 30, 22:00 in New York
        assert_eq!(
            Buckets::of(Range::ThisMonth, TzOffset(300), now),
            Buckets::Days { first: date("2025-09-01"), last: date("2025-09-30") }
        );
        assert_eq!(
            Buckets::of(Range::ThisMonth, TzOffset(0), now),
            Buckets::Days { first: date("2025-10-01"), last: date("2025-10-01") }
        );
        assert_eq!(
            Buckets::of(Range::LastMonth, TzOffset(0), now),
            Buckets::Days { first: date("2025-09-01"), last: date("2025-09-30") }
        );
        assert_eq!(
            Buckets::of(Range::Last7Days, TzOffset(-330), at("2025-03-02T20:00:00Z")),
            Buckets::Days { first: date("2025-02-25"), last: date("2025-03-03") }
        );
        assert_eq!(
            Buckets::of(Range::LastMonth, TzOffset(0), at("2024-03-15T00:00:00Z")),
            Buckets::Days { first: date("2024-02-01"), last: date("2024-02-29") }
        );
    }

    #[test]
    fn previous_periods() {
        let days = |a: &str, b: &str| Buckets::Days { first: date(a), last: date(b) };
        assert_eq!(days("2025-09-02", "2025-09-08").previous(Range::Last7Days), days("2025-08-26", "2025-09-01"));
        assert_eq!(days("2025-03-01", "2025-03-31").previous(Range::LastMonth), days("2025-02-01", "2025-02-28"));
        assert_eq!(days("2025-03-01", "2025-03-30").previous(Range::ThisMonth), days("2025-02-01", "2025-02-28"));
        assert_eq!(days("2025-03-01", "2025-03-10").previous(Range::ThisMonth), days("2025-02-01", "2025-02-10"));
        assert_eq!(Buckets::Hours { start: DAY_MS * 3 }.previous(Range::Today), Buckets::Hours { start: DAY_MS * 2 });
    }

    #[test]
    fn ranges_parse_with_the_originals_message() {
        assert_eq!(Range::parse(None).unwrap(), Range::Today);
        assert_eq!(Range::parse(Some("last_month")).unwrap(), Range::LastMonth);
        let err = Range::parse(Some("7d")).unwrap_err().to_string();
        assert!(err.starts_with("Invalid range. Must be one of: today, yesterday"), "{err}");
    }
}
