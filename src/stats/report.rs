//! `GET stats` and `GET realtime`: totals of a range with the previous period beside them, and one
//! breakdown (pages, entry and exit pages, referrers, UTM parameters, browsers, OS, devices,
//! countries) a page at a time.
//!
//! Totals without a path filter are the chart's own numbers (rollups); visits, bounce rate and visit
//! duration of daily ranges come from per-day totals of the sessions the hourly jobs compute, kept
//! with the daily breakdowns (raw sessions for hourly ranges and path filters). Breakdowns of daily
//! ranges come from the per-day breakdown rollups (`daily_breakdowns`), recomputed for a day when its
//! `daily_stats` row shows new raw rows, so they lag and agree with the chart; `today`, `yesterday`
//! (cut at the viewer's midnight) and path-filtered breakdowns read raw rows.

use std::borrow::Cow;

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use super::StatsError;
use super::chart::chart;
use super::range::{Buckets, Range, TzOffset};
use crate::store::{BreakdownSource, DIMENSIONS, Site, Store};

/// Stale days a request refreshes itself; beyond that (a first visit after an upgrade, or jobs that
/// were down) the rest is refreshed in the background and the request reads raw rows, so no request
/// waits for a year of days (about half a second each at 30,000 pageviews a day on PostgreSQL).
pub const SYNC_REFRESH_DAYS: usize = 3;

/// The background refreshes under way, one per site at most.
#[derive(Debug, Default)]
pub struct Refresher {
    running: std::sync::Mutex<std::collections::HashSet<i64>>,
}

impl Refresher {
    /// Refreshes `[start, end)` of `site_id` in a task of its own, unless one runs for the site.
    /// Per-request work (a bare `tokio::spawn`): it ends when done, keeps every day it finished.
    fn spawn(self: &std::sync::Arc<Self>, store: &Store, site_id: i64, start: i64, end: i64) {
        let fresh = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(site_id);
        if !fresh {
            return;
        }
        let (this, store) = (std::sync::Arc::clone(self), store.clone());
        tokio::spawn(async move {
            if let Err(err) = store.refresh_daily_breakdowns(site_id, start, end, usize::MAX).await {
                tracing::warn!(error = %err, site_id, "background refresh of daily breakdowns failed");
            }
            this.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&site_id);
        });
    }

    /// Whether the daily rows of `[start, end)` can be read: refreshes a few stale days, hands the
    /// rest to the background and says no.
    async fn ready(
        self: &std::sync::Arc<Self>,
        store: &Store,
        site_id: i64,
        start: i64,
        end: i64,
    ) -> Result<bool, StatsError> {
        let busy = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&site_id);
        // While the background task works on this site, don't queue behind it: read raw rows.
        let max_days = if busy { 0 } else { SYNC_REFRESH_DAYS };
        let left = store.refresh_daily_breakdowns(site_id, start, end, max_days).await?;
        if left > 0 {
            self.spawn(store, site_id, start, end);
        }
        Ok(left == 0)
    }
}

/// Rows per breakdown page unless `limit` says otherwise, and the most `limit` may ask for.
pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 1000;
/// The window `realtime` counts.
pub const REALTIME_WINDOW_MS: i64 = 5 * 60_000;

/// What a breakdown groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakdown {
    Pages,
    EntryPages,
    ExitPages,
    Referrers,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    Browsers,
    Os,
    Devices,
    Countries,
}

impl Breakdown {
    pub const ALL: [Breakdown; 11] = [
        Breakdown::Pages,
        Breakdown::EntryPages,
        Breakdown::ExitPages,
        Breakdown::Referrers,
        Breakdown::UtmSource,
        Breakdown::UtmMedium,
        Breakdown::UtmCampaign,
        Breakdown::Browsers,
        Breakdown::Os,
        Breakdown::Devices,
        Breakdown::Countries,
    ];

    /// # Errors
    /// An unknown name, with the list of known ones.
    pub fn parse(value: &str) -> Result<Breakdown, StatsError> {
        Breakdown::ALL.into_iter().find(|b| b.as_str() == value.trim()).ok_or_else(|| {
            let names: Vec<&str> = Breakdown::ALL.iter().map(|b| b.as_str()).collect();
            StatsError::Invalid(format!("Invalid breakdown. Must be one of: {}", names.join(", ")))
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Breakdown::Pages => "pages",
            Breakdown::EntryPages => "entry_pages",
            Breakdown::ExitPages => "exit_pages",
            Breakdown::Referrers => "referrers",
            Breakdown::UtmSource => "utm_source",
            Breakdown::UtmMedium => "utm_medium",
            Breakdown::UtmCampaign => "utm_campaign",
            Breakdown::Browsers => "browsers",
            Breakdown::Os => "os",
            Breakdown::Devices => "devices",
            Breakdown::Countries => "countries",
        }
    }

    /// The table and the fixed column this breakdown groups by (`store::DIMENSIONS`, the one list).
    fn column(self) -> (BreakdownSource, &'static str) {
        DIMENSIONS
            .iter()
            .find(|(name, _, _)| *name == self.as_str())
            .map(|(_, source, column)| (*source, *column))
            .expect("every Breakdown has a row in store::DIMENSIONS (checked by a test)")
    }

    /// What the count column means: pageviews, or visits (sessions) for entry, exit and referrers.
    pub fn metric(self) -> &'static str {
        match self.column().0 {
            BreakdownSource::Pageviews => "pageviews",
            BreakdownSource::Sessions => "visits",
        }
    }
}

/// The API's schema of a breakdown name: one of [`Breakdown::ALL`].
impl utoipa::PartialSchema for Breakdown {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some(Breakdown::ALL.map(Breakdown::as_str))).into()
    }
}

impl ToSchema for Breakdown {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("BreakdownName")
    }
}

/// A number now and in the previous period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Compared<T> {
    pub value: T,
    pub previous: T,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    pub pageviews: Compared<i64>,
    pub visitors: Compared<i64>,
    pub visits: Compared<i64>,
    /// Percent of visits with one pageview, one decimal.
    pub bounce_rate: Compared<f64>,
    /// Seconds, averaged over visits.
    pub avg_visit_duration: Compared<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakdownEntry {
    pub value: String,
    pub count: i64,
    pub visitors: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakdownPage {
    pub breakdown: Breakdown,
    /// Distinct values in the range.
    pub count: i64,
    pub page: i64,
    pub limit: i64,
    pub results: Vec<BreakdownEntry>,
}

/// Totals of `range` and of the period before it.
pub async fn totals(
    store: &Store,
    refresher: &std::sync::Arc<Refresher>,
    site: &Site,
    range: Range,
    tz: TzOffset,
    path: Option<&str>,
    now_ms: i64,
) -> Result<Totals, StatsError> {
    let current = Buckets::of(range, tz, now_ms);
    let previous = current.previous(range);
    let (pageviews, visitors) = match path {
        None => {
            let chart = chart(store, site, range, Some(tz), true, now_ms).await?;
            let prev = chart.previous.as_ref().map_or((0, 0), |p| (p.total_pageviews, p.total_unique_sessions));
            (
                Compared { value: chart.current.total_pageviews, previous: prev.0 },
                Compared { value: chart.current.total_unique_sessions, previous: prev.1 },
            )
        }
        Some(path) => {
            let (start, end) = current.window();
            let now = store.pageview_totals(site.id, start, end, Some(path)).await?;
            let (start, end) = previous.window();
            let before = store.pageview_totals(site.id, start, end, Some(path)).await?;
            (Compared { value: now.0, previous: before.0 }, Compared { value: now.1, previous: before.1 })
        }
    };
    let now = visits(store, refresher, site.id, &current, path).await?;
    let before = visits(store, refresher, site.id, &previous, path).await?;
    let bounce = |v: &crate::store::VisitTotals| {
        if v.visits == 0 { 0.0 } else { (v.bounces as f64 * 1000.0 / v.visits as f64).round() / 10.0 }
    };
    let duration = |v: &crate::store::VisitTotals| if v.visits == 0 { 0 } else { v.duration_ms / v.visits / 1000 };
    Ok(Totals {
        pageviews,
        visitors,
        visits: Compared { value: now.visits, previous: before.visits },
        bounce_rate: Compared { value: bounce(&now), previous: bounce(&before) },
        avg_visit_duration: Compared { value: duration(&now), previous: duration(&before) },
    })
}

/// Visit totals of a period: per-day rows for daily ranges without a path filter (refreshed where
/// stale, like the breakdowns), raw sessions otherwise.
async fn visits(
    store: &Store,
    refresher: &std::sync::Arc<Refresher>,
    site_id: i64,
    buckets: &Buckets,
    path: Option<&str>,
) -> Result<crate::store::VisitTotals, StatsError> {
    let (start, end) = buckets.window();
    Ok(match (buckets, path) {
        (Buckets::Days { .. }, None) if refresher.ready(store, site_id, start, end).await? => {
            store.visit_totals_from_days(site_id, start, end).await?
        }
        _ => store.visit_totals(site_id, start, end, path).await?,
    })
}

/// Page `page` (1-based) of `breakdown` over `range`.
#[allow(clippy::too_many_arguments)]
pub async fn breakdown(
    store: &Store,
    refresher: &std::sync::Arc<Refresher>,
    site: &Site,
    range: Range,
    tz: TzOffset,
    breakdown: Breakdown,
    path: Option<&str>,
    limit: i64,
    page: i64,
    now_ms: i64,
) -> Result<BreakdownPage, StatsError> {
    let buckets = Buckets::of(range, tz, now_ms);
    let (start, end) = buckets.window();
    let (rows, count) = match (&buckets, path) {
        // Daily ranges without a path filter: the daily breakdown rollups, refreshed where stale.
        (Buckets::Days { .. }, None) if refresher.ready(store, site.id, start, end).await? => {
            store.breakdown_from_days(breakdown.as_str(), site.id, start, end, limit, (page - 1) * limit).await?
        }
        // A day (cut at the viewer's midnight), a path filter, or day rows still being refreshed: raw.
        _ => {
            let (source, column) = breakdown.column();
            store.breakdown(source, column, site.id, start, end, path, limit, (page - 1) * limit).await?
        }
    };
    let results =
        rows.into_iter().map(|r| BreakdownEntry { value: r.value, count: r.count, visitors: r.visitors }).collect();
    Ok(BreakdownPage { breakdown, count, page, limit, results })
}

/// Non-bot pageviews and distinct visitors of the last five minutes.
pub async fn realtime(store: &Store, site: &Site, now_ms: i64) -> Result<(i64, i64), StatsError> {
    Ok(store.pageview_totals(site.id, now_ms - REALTIME_WINDOW_MS, now_ms + 1, None).await?)
}

/// `limit` and `page` from the query: blank is the default; anything else must be a positive integer.
pub fn parse_paging(limit: Option<&str>, page: Option<&str>) -> Result<(i64, i64), StatsError> {
    let positive = |value: Option<&str>, default: i64, name: &str, max: i64| match value
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(StatsError::Invalid(format!("Invalid {name}. Must be a whole number from 1 to {max}"))),
        },
    };
    Ok((positive(limit, DEFAULT_LIMIT, "limit", MAX_LIMIT)?, positive(page, 1, "page", 1_000_000)?))
}

/// A breakdown as CSV: `value,<pageviews|visits>,visitors`, RFC 4180 quoting.
pub fn to_csv(page: &BreakdownPage) -> String {
    let mut out = format!("{},{},visitors\r\n", page.breakdown.as_str(), page.breakdown.metric());
    for row in &page.results {
        out.push_str(&csv_field(&row.value));
        out.push_str(&format!(",{},{}\r\n", row.count, row.visitors));
    }
    out
}

fn csv_field(value: &str) -> String {
    // A leading = + - @ would make a spreadsheet evaluate a visitor-supplied path as a formula.
    let value = if value.starts_with(['=', '+', '-', '@']) { format!("'{value}") } else { value.to_string() };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakdown_names_and_paging_are_checked() {
        assert_eq!(Breakdown::parse("utm_source").unwrap(), Breakdown::UtmSource);
        assert!(Breakdown::parse("cities").unwrap_err().to_string().contains("pages, entry_pages"));
        assert_eq!(parse_paging(None, Some("")).unwrap(), (DEFAULT_LIMIT, 1));
        assert_eq!(parse_paging(Some("5"), Some("3")).unwrap(), (5, 3));
        assert!(parse_paging(Some("0"), None).is_err());
        assert!(parse_paging(None, Some("x")).is_err());
    }

    #[test]
    fn every_breakdown_has_a_store_dimension() {
        for b in Breakdown::ALL {
            let _ = b.column();
        }
        assert_eq!(DIMENSIONS.len(), Breakdown::ALL.len());
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let page = BreakdownPage {
            breakdown: Breakdown::Pages,
            count: 2,
            page: 1,
            limit: 10,
            results: vec![
                BreakdownEntry { value: "/a,b".into(), count: 3, visitors: 2 },
                BreakdownEntry { value: "=cmd()".into(), count: 1, visitors: 1 },
            ],
        };
        assert_eq!(to_csv(&page), "pages,pageviews,visitors\r\n\"/a,b\",3,2\r\n'=cmd(),1,1\r\n");
    }
}
