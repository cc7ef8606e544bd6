//! `GET stats?site_id&range[&timezone_offset][&breakdown&limit&page][&path][&format=csv]` and
//! `GET realtime?site_id`: a site's totals against the previous period, one breakdown a page at a
//! time (or as a CSV download), and the visitors of the last five minutes. Readable with a session or
//! an API token; parameters are checked like `chart`'s.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::super::extract::{ApiQuery, Reader};
use super::super::{AppState, both_mounts, error::ApiError, error::ErrorBody};
use super::auth::only;
use super::chart::owned_site;
use super::openapi::{ReadAccess, Unavailable};
use crate::stats::StatsError;
use crate::stats::range::{Range, TzOffset};
use crate::stats::report::{self, Breakdown, BreakdownEntry, DEFAULT_LIMIT, MAX_LIMIT, Totals};
use crate::store::now_ms;

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for path in both_mounts("stats") {
        router = router.route(&path, get(stats).fallback(only("GET")));
    }
    for path in both_mounts("realtime") {
        router = router.route(&path, get(realtime).fallback(only("GET")));
    }
    router
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(super) struct StatsQuery {
    /// The site's id (a UUID) from the sites list
    #[param(required, value_type = String, format = "uuid")]
    site_id: Option<String>,
    /// Default today
    #[param(value_type = Option<Range>)]
    range: Option<String>,
    /// Minutes west of UTC, as Date.getTimezoneOffset(); default 0
    #[param(value_type = Option<TzOffset>)]
    timezone_offset: Option<String>,
    /// Which dimension to break the range down by
    #[param(value_type = Option<Breakdown>)]
    breakdown: Option<String>,
    #[param(schema_with = limit)]
    limit: Option<String>,
    /// 1-based page of the breakdown
    #[param(value_type = Option<i64>, minimum = 1)]
    page: Option<String>,
    /// Only pageviews of this path
    path: Option<String>,
    /// csv downloads the breakdown (needs breakdown)
    #[param(value_type = Option<Format>)]
    format: Option<String>,
}

fn limit() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_LIMIT))
        .description(Some(format!("Rows per page of the breakdown (default {DEFAULT_LIMIT})")))
        .build()
}

/// What `format` may ask for.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub(super) enum Format {
    Json,
    Csv,
}

/// Totals against the previous period, and one breakdown when asked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Stats)]
pub struct StatsJson {
    #[schema(format = "uuid")]
    site_id: String,
    #[schema(value_type = Range)]
    range: &'static str,
    totals: Totals,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    breakdown: Option<BreakdownJson>,
}

/// One page of a breakdown.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Breakdown)]
pub struct BreakdownJson {
    #[schema(value_type = Breakdown)]
    name: &'static str,
    /// Distinct values in the range
    #[schema(minimum = 0)]
    count: i64,
    #[schema(minimum = 1)]
    page: i64,
    #[schema(schema_with = limit)]
    limit: i64,
    results: Vec<BreakdownRow>,
}

/// One value of a breakdown: its pageviews (pages) or visits (entry and exit pages, referrers),
/// and its visitors.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BreakdownRow {
    Pageviews(PageviewsRow),
    Visits(VisitsRow),
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageviewsRow {
    value: String,
    #[schema(minimum = 0)]
    pageviews: i64,
    #[schema(minimum = 0)]
    visitors: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitsRow {
    value: String,
    #[schema(minimum = 0)]
    visits: i64,
    #[schema(minimum = 0)]
    visitors: i64,
}

/// Totals against the previous period, and one breakdown
#[utoipa::path(
    get,
    path = "/api/v1/stats",
    operation_id = "get_stats",
    tag = "statistics",
    params(StatsQuery),
    responses(
        (status = 200, description = "Totals and the breakdown, or the breakdown as CSV", content(
            (StatsJson = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A bad parameter, named", body = ErrorBody),
        (status = 404, description = "Site not found or access denied", body = ErrorBody),
        ReadAccess,
        Unavailable,
    ),
    security(("session" = []), ("token" = []))
)]
pub(super) async fn stats(
    State(state): State<AppState>,
    Reader(user): Reader,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Response, ApiError> {
    let range = Range::parse(query.range.as_deref())?;
    let tz = TzOffset::parse(query.timezone_offset.as_deref())?.unwrap_or(TzOffset::UTC);
    let breakdown =
        query.breakdown.as_deref().map(str::trim).filter(|b| !b.is_empty()).map(Breakdown::parse).transpose()?;
    let (limit, page) = report::parse_paging(query.limit.as_deref(), query.page.as_deref())?;
    let path = query.path.as_deref().filter(|p| !p.is_empty());
    let csv = match query.format.as_deref().map(str::trim) {
        None | Some("" | "json") => false,
        Some("csv") => true,
        Some(_) => return Err(StatsError::Invalid("Invalid format. Must be json or csv".into()).into()),
    };
    if csv && breakdown.is_none() {
        return Err(StatsError::Invalid("format=csv needs a breakdown".into()).into());
    }
    let site = owned_site(&state.store, &user, query.site_id.as_deref()).await?;
    let now = now_ms();
    let rows = match breakdown {
        Some(b) => {
            Some(report::breakdown(&state.store, &state.stats, &site, range, tz, b, path, limit, page, now).await?)
        }
        None => None,
    };
    if let (true, Some(rows)) = (csv, &rows) {
        let mut response = report::to_csv(rows).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
        let file =
            format!("attachment; filename=\"{}-{}-{}.csv\"", site.identifier, range.as_str(), rows.breakdown.as_str());
        if let Ok(value) = HeaderValue::from_str(&file) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
        return Ok(response);
    }
    let totals = report::totals(&state.store, &state.stats, &site, range, tz, path, now).await?;
    let breakdown = rows.map(|rows| {
        let pageviews = rows.breakdown.metric() == "pageviews";
        BreakdownJson {
            name: rows.breakdown.as_str(),
            count: rows.count,
            page: rows.page,
            limit: rows.limit,
            results: rows
                .results
                .into_iter()
                .map(|BreakdownEntry { value, count, visitors }| {
                    if pageviews {
                        BreakdownRow::Pageviews(PageviewsRow { value, pageviews: count, visitors })
                    } else {
                        BreakdownRow::Visits(VisitsRow { value, visits: count, visitors })
                    }
                })
                .collect(),
        }
    });
    Ok(Json(StatsJson { site_id: site.uuid, range: range.as_str(), totals, breakdown }).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(super) struct RealtimeQuery {
    /// The site's id (a UUID) from the sites list
    #[param(required, value_type = String, format = "uuid")]
    site_id: Option<String>,
}

/// The visitors and pageviews of the last five minutes.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Realtime {
    #[schema(minimum = 0)]
    visitors: i64,
    #[schema(minimum = 0)]
    pageviews: i64,
    /// The window counted, in seconds
    window_seconds: i64,
}

/// Visitors and pageviews of the last five minutes
#[utoipa::path(
    get,
    path = "/api/v1/realtime",
    operation_id = "get_realtime",
    tag = "statistics",
    params(RealtimeQuery),
    responses(
        (status = 200, description = "The last five minutes", body = Realtime),
        (status = 400, description = "Bad site_id, or a parameter given twice", body = ErrorBody),
        (status = 404, description = "Site not found or access denied", body = ErrorBody),
        ReadAccess,
        Unavailable,
    ),
    security(("session" = []), ("token" = []))
)]
pub(super) async fn realtime(
    State(state): State<AppState>,
    Reader(user): Reader,
    ApiQuery(query): ApiQuery<RealtimeQuery>,
) -> Result<Json<Realtime>, ApiError> {
    let site = owned_site(&state.store, &user, query.site_id.as_deref()).await?;
    let (pageviews, visitors) = report::realtime(&state.store, &site, now_ms()).await?;
    Ok(Json(Realtime { visitors, pageviews, window_seconds: report::REALTIME_WINDOW_MS / 1000 }))
}
