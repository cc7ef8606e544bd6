//! A job: what the queue carries, as JSON, and the times its arguments name.
//!
//! The payload is `{id, kind, args, enqueued_at, attempts, traceparent, tracestate}`. `args` are the
//! aggregate command's own arguments (`site`, `start`, `end` as ISO strings), so a job does exactly
//! what `squirrel aggregate-… --site S --start A --end B` would do. `traceparent`/`tracestate` carry
//! the W3C trace context of the span that enqueued it, so the job's spans continue that trace.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// Which aggregation a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    AggregateHourlyStats,
    AggregateDailyStats,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::AggregateHourlyStats => "aggregate_hourly_stats",
            JobKind::AggregateDailyStats => "aggregate_daily_stats",
        }
    }
}

/// The arguments of the aggregate command a job runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobArgs {
    /// Site identifier.
    pub site: String,
    /// `--start`, ISO 8601.
    pub start: String,
    /// `--end`, ISO 8601.
    pub end: String,
}

/// One queued job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Job {
    pub id: String,
    pub kind: JobKind,
    pub args: JobArgs,
    /// Epoch ms.
    pub enqueued_at: i64,
    /// Runs that failed or were abandoned by a dead worker so far.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub traceparent: Option<String>,
    #[serde(default)]
    pub tracestate: Option<String>,
}

impl Job {
    pub fn new(kind: JobKind, args: JobArgs) -> Job {
        Job {
            id: uuid::Uuid::new_v4().simple().to_string(),
            kind,
            args,
            enqueued_at: crate::store::now_ms(),
            attempts: 0,
            traceparent: None,
            tracestate: None,
        }
    }

    /// What identifies "the same work": kind, site and window. At most one job per key is queued
    /// or running at a time.
    pub fn dedup_key(&self) -> String {
        format!("{}:{}:{}:{}", self.kind.as_str(), self.args.site, self.args.start, self.args.end)
    }
}

/// A point in time given on the command line: the text as typed (span attributes keep it) and the
/// UTC instant it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instant {
    pub raw: String,
    pub at: DateTime<Utc>,
}

impl Instant {
    /// Reads an ISO 8601 date-time with an offset (`2025-09-01T10:00:00+02:00`, `…Z`), a naive
    /// date-time taken as UTC (`2025-09-01T10:00`, `2025-09-01 10:00:00`; the original crashed on
    /// these), or a date (`2025-09-01`, midnight UTC).
    pub fn parse(value: &str) -> Result<Instant, String> {
        let text = value.trim();
        let at = DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M%:z").map(|t| t.with_timezone(&Utc)))
            .ok()
            .or_else(|| {
                ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
                    .iter()
                    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
                    .map(|naive| Utc.from_utc_datetime(&naive))
            })
            .or_else(|| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|naive| Utc.from_utc_datetime(&naive))
            })
            .ok_or_else(|| {
                format!(
                    "expected an ISO 8601 date or date-time such as 2025-09-01, 2025-09-01T10:00:00 (UTC) or 2025-09-01T10:00:00+02:00, got '{value}'"
                )
            })?;
        Ok(Instant { raw: value.to_string(), at })
    }
}

/// `2025-09-01T10:00:00+00:00`, the form the original's schedulers passed.
pub fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// An epoch-ms time as a UTC date-time.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// An epoch-ms day start as an ISO date (`2025-09-01`).
pub fn iso_date(ms: i64) -> String {
    from_ms(ms).date_naive().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_offsets_naive_times_and_dates_all_parse_naive_as_utc() {
        let utc = |s: &str| Instant::parse(s).unwrap().at.timestamp();
        assert_eq!(utc("2025-09-01T10:00:00+00:00"), 1_756_720_800);
        assert_eq!(utc("2025-09-01T12:00:00+02:00"), 1_756_720_800);
        assert_eq!(utc("2025-09-01T10:00:00Z"), 1_756_720_800);
        assert_eq!(utc("2025-09-01T10:00:00"), 1_756_720_800, "naive is UTC");
        assert_eq!(utc("2025-09-01 10:00:00.000"), 1_756_720_800);
        assert_eq!(utc("2025-09-01T10:00"), 1_756_720_800);
        assert_eq!(utc("2025-09-01"), 1_756_684_800);
        let err = Instant::parse("yesterday").unwrap_err();
        assert!(err.contains("ISO 8601") && err.contains("yesterday"), "{err}");
        assert_eq!(iso(from_ms(1_756_720_800_000)), "2025-09-01T10:00:00+00:00");
        assert_eq!(iso_date(1_756_684_800_000), "2025-09-01");
    }

    #[test]
    fn payload_round_trips_with_the_documented_fields() {
        let job = Job::new(
            JobKind::AggregateHourlyStats,
            JobArgs { site: "mossy-acorn-8K2PN9".into(), start: "a".into(), end: "b".into() },
        );
        let json: serde_json::Value = serde_json::to_value(&job).unwrap();
        for field in ["id", "kind", "args", "enqueued_at", "attempts", "traceparent", "tracestate"] {
            assert!(json.get(field).is_some(), "{field} in {json}");
        }
        assert_eq!(json["kind"], "aggregate_hourly_stats");
        assert_eq!(serde_json::from_value::<Job>(json).unwrap(), job);
    }
}
