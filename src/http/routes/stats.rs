//! `GET stats?site_id&range[&timezone_offset][&breakdown&limit&page][&path][&format=csv]` and
//! `GET realtime?site_id`: a site's totals against the previous period, one breakdown a page at a
//! time (or as a CSV download), and the visitors of the last five minutes. Readable with a session or
//! an API token; parameters are checked like `chart`'s.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::super::extract::{ApiQuery, Reader};
use super::super::{AppState, both_mounts, error::ApiError};
use super::auth::only;
use super::chart::owned_site;
use crate::stats::StatsError;
use crate::stats::range::{Range, TzOffset};
use crate::stats::report::{self, Breakdown};
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

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StatsQuery {
    site_id: Option<String>,
    range: Option<String>,
    timezone_offset: Option<String>,
    breakdown: Option<String>,
    limit: Option<String>,
    page: Option<String>,
    path: Option<String>,
    format: Option<String>,
}

async fn stats(
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
    let mut body = json!({ "site_id": site.uuid, "range": range.as_str(), "totals": totals });
    if let Some(rows) = rows {
        let metric = rows.breakdown.metric();
        body["breakdown"] = json!({
            "name": rows.breakdown.as_str(),
            "count": rows.count,
            "page": rows.page,
            "limit": rows.limit,
            "results": rows.results.iter().map(|r| json!({ "value": r.value, metric: r.count, "visitors": r.visitors })).collect::<Vec<_>>(),
        });
    }
    Ok(Json(body).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RealtimeQuery {
    site_id: Option<String>,
}

async fn realtime(
    State(state): State<AppState>,
    Reader(user): Reader,
    ApiQuery(query): ApiQuery<RealtimeQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let site = owned_site(&state.store, &user, query.site_id.as_deref()).await?;
    let (pageviews, visitors) = report::realtime(&state.store, &site, now_ms()).await?;
    Ok(Json(
        json!({ "visitors": visitors, "pageviews": pageviews, "window_seconds": report::REALTIME_WINDOW_MS / 1000 }),
    ))
}
