//! `GET chart`: pageviews and unique visitors per bucket of a range, zero-filled, with totals.
//!
//! Sources: daily ranges read `daily_stats` (one row per UTC day); hourly ranges read `hourly_stats`
//! when the viewer's local hours are UTC hours, and raw pageviews grouped by local hour otherwise
//! (half- and quarter-hour zones: a local hour there spans two UTC hours, which no hourly row can
//! split). `unique_sessions` of a bucket is its distinct visitors. The total is not the sum of the
//! buckets (one visitor active in two hours is one visitor): for an hourly range it is counted over
//! the whole window from raw rows (by the buckets' own statement where those are raw); for a daily
//! range it is the sum of the days, which is exact because visitor ids change every UTC day by design.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::StatsError;
use super::range::{Buckets, Range, TzOffset, ms_of_date};
use crate::store::{Grain, HOUR_MS, Site, Store};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HourPoint {
    /// Start of the bucket in UTC, `2025-09-08T05:00:00+00:00`.
    pub hour: String,
    /// The viewer's local hour, `12:00 AM`, `2:00 PM`.
    pub hour_display: String,
    #[schema(minimum = 0)]
    pub pageviews: i64,
    #[schema(minimum = 0)]
    pub unique_sessions: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DayPoint {
    /// `2025-09-01`.
    pub day: String,
    /// `Sep 01`.
    pub day_display: String,
    #[schema(minimum = 0)]
    pub pageviews: i64,
    #[schema(minimum = 0)]
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

/// The API's schema of a chart: an hourly one or a daily one, each with exactly the fields it
/// serializes. Written out because utoipa renders serde's `flatten` (of [`Period`] and [`Series`]) as
/// an `allOf`, which cannot forbid other fields.
impl PartialSchema for Chart {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(chart_of::<HourPoint>("hours", "hourly"))
            .item(chart_of::<DayPoint>("days", "daily"))
            .into()
    }
}

impl ToSchema for Chart {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((HourPoint::name().into(), HourPoint::schema()));
        schemas.push((DayPoint::name().into(), DayPoint::schema()));
        schemas.push((Range::name().into(), Range::schema()));
        schemas.push((TzOffset::name().into(), TzOffset::schema()));
    }
}

/// A [`Period`] whose series is `series`, of `P` points.
fn period_of<P: ToSchema>(series: &str) -> ObjectBuilder {
    let count = || ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0));
    ObjectBuilder::new()
        .property(series, ArrayBuilder::new().items(Ref::from_schema_name(P::name())))
        .required(series)
        .property("total_pageviews", count())
        .required("total_pageviews")
        .property("total_unique_sessions", count())
        .required("total_unique_sessions")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

/// A [`Chart`] whose series is `series`, of `P` points.
fn chart_of<P: ToSchema>(series: &str, data_type: &str) -> ObjectBuilder {
    period_of::<P>(series)
        .property("range", Ref::from_schema_name(Range::name()))
        .required("range")
        .property("data_type", ObjectBuilder::new().schema_type(Type::String).enum_values(Some([data_type])))
        .required("data_type")
        .property("timezone_offset", Ref::from_schema_name(TzOffset::name()))
        .property("previous", period_of::<P>(series).description(Some("The period before, with compare=previous")))
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
            // The window's distinct visitors come with the raw buckets; on whole-hour zones they
            // are read separately only if the rollups say anyone came.
            let (counts, window_visitors): (HashMap<i64, (i64, i64)>, Option<i64>) = if first.rem_euclid(HOUR_MS) == 0 {
                let rows = store.rollup_rows(Grain::Hour, site_id, start, end).await?;
                (rows.into_iter().map(|r| (r.bucket, (r.pageview_count, r.unique_session_count))).collect(), None)
            } else {
                let (rows, visitors) = store.hourly_counts_from(site_id, start, end).await?;
                (rows.into_iter().map(|c| (c.bucket, (c.pageviews, c.visitors))).collect(), Some(visitors))
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
            let total_unique_sessions = match window_visitors {
                Some(visitors) => visitors,
                None if total_pageviews == 0 => 0,
                None => store.distinct_visitors(site_id, start, end).await?,
            };
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

    /// The hand-written schema has exactly the fields the real type serializes, in both shapes.
    #[test]
    fn the_chart_schema_matches_what_a_chart_serializes() {
        let schema = serde_json::to_value(Chart::schema()).unwrap();
        let hour = HourPoint { hour: "h".into(), hour_display: "d".into(), pageviews: 1, unique_sessions: 1 };
        let day = DayPoint { day: "d".into(), day_display: "d".into(), pageviews: 1, unique_sessions: 1 };
        let hours =
            || Period { series: Series::Hours(vec![hour.clone()]), total_pageviews: 1, total_unique_sessions: 1 };
        let days = || Period { series: Series::Days(vec![day.clone()]), total_pageviews: 1, total_unique_sessions: 1 };
        let keys = |value: &serde_json::Value| {
            let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        let sorted = |names: &serde_json::Value| {
            let mut names: Vec<String> =
                names.as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
            names.sort();
            names
        };
        for (branch, range, data_type, period) in
            [(0, Range::Today, "hourly", hours()), (1, Range::Last7Days, "daily", days())]
        {
            let object = &schema["oneOf"][branch];
            let bare = Chart {
                current: period.clone(),
                range: range.as_str(),
                data_type,
                timezone_offset: None,
                previous: None,
            };
            let full = Chart { timezone_offset: Some(-60), previous: Some(period), ..bare.clone() };
            assert_eq!(keys(&serde_json::to_value(&bare).unwrap()), sorted(&object["required"]));
            let full = serde_json::to_value(&full).unwrap();
            assert_eq!(keys(&full), keys(&object["properties"]));
            assert_eq!(keys(&full["previous"]), keys(&object["properties"]["previous"]["properties"]));
            assert_eq!(object["properties"]["data_type"]["enum"][0], data_type);
        }
    }
}
