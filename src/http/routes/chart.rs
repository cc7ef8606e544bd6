//! `GET chart?site_id&range&timezone_offset[&compare=previous]`: the dashboard's chart (SPEC §2.8),
//! readable with a session or an API token. Every bad parameter is a 400 naming it; a site that is
//! not the caller's is 404. The numbers come from `stats::chart`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::super::extract::{ApiQuery, Reader};
use super::super::{AppState, both_mounts, error::ApiError, error::ErrorBody};
use super::auth::only;
use super::openapi::{ReadAccess, Unavailable};
use crate::stats::StatsError;
use crate::stats::chart::{Chart, chart};
use crate::stats::range::{Range, TzOffset};
use crate::store::{Site, Store, User, now_ms};

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for path in both_mounts("chart") {
        router = router.route(&path, get(get_chart).fallback(only("GET")));
    }
    router
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(super) struct ChartQuery {
    /// The site's id (a UUID) from the sites list
    #[param(required, value_type = String, format = "uuid")]
    site_id: Option<String>,
    /// Default today
    #[param(value_type = Option<Range>)]
    range: Option<String>,
    /// Minutes west of UTC, as Date.getTimezoneOffset(); default 0
    #[param(value_type = Option<TzOffset>)]
    timezone_offset: Option<String>,
    /// previous: add the period before
    #[param(value_type = Option<Compare>)]
    compare: Option<String>,
}

/// What `compare` may ask for.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub(super) enum Compare {
    Previous,
}

/// Pageviews and unique visitors per hour (today, yesterday) or day
#[utoipa::path(
    get,
    path = "/api/v1/chart",
    operation_id = "get_chart",
    tag = "statistics",
    params(ChartQuery),
    responses(
        (status = 200, description = "The chart", body = Chart),
        (status = 400, description = "Bad site_id, range, timezone_offset or compare, \
            or a parameter given twice", body = ErrorBody),
        (status = 404, description = "Site not found or access denied", body = ErrorBody),
        ReadAccess,
        Unavailable,
    ),
    security(("session" = []), ("token" = []))
)]
pub(super) async fn get_chart(
    State(state): State<AppState>,
    Reader(user): Reader,
    ApiQuery(query): ApiQuery<ChartQuery>,
) -> Result<Json<Chart>, ApiError> {
    let range = Range::parse(query.range.as_deref())?;
    let offset = TzOffset::parse(query.timezone_offset.as_deref())?;
    let compare = match query.compare.as_deref().map(str::trim) {
        None | Some("") => false,
        Some("previous") => true,
        Some(_) => return Err(StatsError::Invalid("Invalid compare. Must be: previous".into()).into()),
    };
    let site = owned_site(&state.store, &user, query.site_id.as_deref()).await?;
    Ok(Json(chart(&state.store, &site, range, offset, compare, now_ms()).await?))
}

/// The caller's site named by a `site_id` parameter: 400 when missing or not a UUID, 404 when it is
/// not theirs.
pub(super) async fn owned_site(store: &Store, user: &User, site_id: Option<&str>) -> Result<Site, StatsError> {
    let site_id = site_id.map(str::trim).filter(|s| !s.is_empty());
    let site_id = site_id.ok_or_else(|| StatsError::Invalid("site_id parameter is required".into()))?;
    let uuid = uuid::Uuid::try_parse(site_id)
        .map_err(|_| StatsError::Invalid("Invalid site_id. Must be a site id (a UUID) from the sites list".into()))?;
    store.site_of_user(user.id, &uuid.hyphenated().to_string()).await?.ok_or(StatsError::SiteNotFound)
}
