//! `GET chart`: pageviews and unique visitors per bucket of a range, zero-filled, with totals.
//!
//! Sources: daily ranges read `daily_stats` (one row per UTC day); hourly ranges read `hourly_stats`
//! when the viewer's local hours are UTC hours, and raw pageviews grouped by local hour otherwise
//! (half- and quarter-hour zones: a local hour there spans two UTC hours, which no hourly row can
//! split). `unique_sessions` of a bucket is its distinct visitors. The total is not the sum of the
//! buckets (one visitor active in two hours is one visitor): for an hourly range it is counted over
//! the whole window from raw rows; for a daily range it is the sum of the days, which is exact
//! because visitor ids change every UTC day by design.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::StatsError;
use super::range::{Buckets, Range, TzOffset, ms_of_date};
use crate::store::{Grain, HOUR_MS, Site, Store};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HourPoint {
    /// Start of the bucket in UTC, `2025-09-08T05:00:00+00:00`.
    pub hour: String,
    /// The viewer's local hour, `12:00 AM`, `2:00 PM`.
    pub hour_display: String,
    pub pageviews: i64,
    pub unique_sessions: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayPoint {
    /// `2025-09-01`.
    pub day: String,
    /// `Sep 01`.
    pub day_display: String,
    pub pageviews: i64,
    pub unique_sessions: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Series {
    #[serde(rename = "hours")]
    Hours(Vec<HourPoint>),
    #[serde(rename = "days")]
    Days(Vec<DayPoint>),
}

/// One period's series and totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    #[serde(flatten)]
    pub series: Series,
    pub total_pageviews: i64,
    pub total_unique_sessions: i64,
}

/// The whole answer, in the original's shape plus `previous` when asked to compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chart {
    #[serde(flatten)]
    pub current: Period,
    pub range: &'static str,
    pub data_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone_offset: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Period>,
}

/// The chart of `site` for `range`, as seen from `offset` at `now_ms`.
pub async fn chart(
    store: &Store,
    site: &Site,
    range: Range,
    offset: Option<TzOffset>,
    compare: bool,
    now_ms: i64,
) -> Result<Chart, StatsError> {
    let tz = offset.unwrap_or(TzOffset::UTC);
    let buckets = Buckets::of(range, tz, now_ms);
    let current = period(store, site.id, &buckets, tz).await?;
    let previous = if compare { Some(period(store, site.id, &buckets.previous(range), tz).await?) } else { None };
    Ok(Chart {
        current,
        range: range.as_str(),
        data_type: if range.is_hourly() { "hourly" } else { "daily" },
        timezone_offset: offset.map(TzOffset::minutes),
        previous,
    })
}

async fn period(store: &Store, site_id: i64, buckets: &Buckets, tz: TzOffset) -> Result<Period, StatsError> {
    let (start, end) = buckets.window();
    match *buckets {
        Buckets::Hours { start: first } => {
            let counts: HashMap<i64, (i64, i64)> = if first.rem_euclid(HOUR_MS) == 0 {
                store
                    .rollup_rows(Grain::Hour, site_id, start, end)
                    .await?
                    .into_iter()
                    .map(|r| (r.bucket, (r.pageview_count, r.unique_session_count)))
                    .collect()
            } else {
                store
                    .hourly_counts_from(site_id, start, end)
                    .await?
                    .into_iter()
                    .map(|c| (c.bucket, (c.pageviews, c.visitors)))
                    .collect()
            };
            let points: Vec<HourPoint> = (0..24)
                .map(|i| {
                    let bucket = first + i * HOUR_MS;
                    let (pageviews, unique_sessions) = counts.get(&bucket).copied().unwrap_or((0, 0));
                    HourPoint {
                        hour: utc_hour_label(bucket),
                        hour_display: local_hour_label(bucket, tz),
                        pageviews,
                        unique_sessions,
                    }
                })
                .collect();
            let total_pageviews = points.iter().map(|p| p.pageviews).sum();
            let total_unique_sessions =
                if total_pageviews == 0 { 0 } else { store.distinct_visitors(site_id, start, end).await? };
            Ok(Period { series: Series::Hours(points), total_pageviews, total_unique_sessions })
        }
        Buckets::Days { first, last } => {
            let counts: HashMap<i64, (i64, i64)> = store
                .rollup_rows(Grain::Day, site_id, start, end)
                .await?
                .into_iter()
                .map(|r| (r.bucket, (r.pageview_count, r.unique_session_count)))
                .collect();
            let points: Vec<DayPoint> = first
                .iter_days()
                .take_while(|d| *d <= last)
                .map(|day| {
                    let (pageviews, unique_sessions) = counts.get(&ms_of_date(day)).copied().unwrap_or((0, 0));
                    DayPoint {
                        day: day.format("%Y-%m-%d").to_string(),
                        day_display: day_label(day),
                        pageviews,
                        unique_sessions,
                    }
                })
                .collect();
            let total_pageviews = points.iter().map(|p| p.pageviews).sum();
            let total_unique_sessions = points.iter().map(|p| p.unique_sessions).sum();
            Ok(Period { series: Series::Days(points), total_pageviews, total_unique_sessions })
        }
    }
}

/// `2025-09-08T05:30:00+00:00` (the original's `isoformat()` of a UTC datetime).
fn utc_hour_label(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string())
        .unwrap_or_default()
}

/// `12:00 AM` … `11:00 PM` in the viewer's time.
fn local_hour_label(ms: i64, tz: TzOffset) -> String {
    chrono::DateTime::from_timestamp_millis(ms - tz.ms()).map(|t| t.format("%-I:%M %p").to_string()).unwrap_or_default()
}

/// `Sep 01`.
fn day_label(day: NaiveDate) -> String {
    day.format("%b %d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_the_original() {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        assert_eq!(utc_hour_label(at("2025-09-08T05:00:00Z")), "2025-09-08T05:00:00+00:00");
        assert_eq!(
            local_hour_label(at("2025-09-08T05:00:00Z"), TzOffset::parse(Some("300")).unwrap().unwrap()),
            "12:00 AM"
        );
        assert_eq!(local_hour_label(at("2025-09-08T14:00:00Z"), TzOffset::UTC), "2:00 PM");
        assert_eq!(
            local_hour_label(at("2025-09-07T18:30:00Z"), TzOffset::parse(Some("-330")).unwrap().unwrap()),
            "12:00 AM"
        );
        assert_eq!(day_label("2025-09-01".parse().unwrap()), "Sep 01");
    }
}
