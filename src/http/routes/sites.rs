//! `sites` (GET list, POST create) and `sites/{id}` (GET, PUT, PATCH, DELETE): a user's sites.
//!
//! `id` is the site's UUID. Another user's site and a malformed id are both 404, on every method, so
//! nobody can probe which ids exist. Lists are newest first, 20 a page, in DRF's
//! `{count, next, previous, results}` shape; every site carries `pageview_count`, create included.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::super::extract::{ApiJson, ApiQuery, Reader, SessionUser};
use super::super::{AppState, both_mounts, error::ApiError, error::ErrorBody};
use super::auth::only;
use super::openapi::{self, JsonBody, ReadAccess, SessionOnly, Unavailable};
use crate::accounts::sites::{self, CountedSite};
use crate::accounts::{MAX_SITE_NAME, MAX_SITES_PER_USER};

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for path in both_mounts("sites") {
        router = router.route(&path, get(list).post(create).fallback(only("GET, POST")));
    }
    for path in both_mounts("sites/{id}") {
        router = router.route(
            &path,
            get(retrieve).put(replace).patch(update).delete(remove).fallback(only("GET, PUT, PATCH, DELETE")),
        );
    }
    router
}

/// Epoch milliseconds as the original's `%Y-%m-%dT%H:%M:%S.%fZ` (microseconds, UTC).
pub(crate) fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

/// A site, with its pageviews of all time.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Site)]
pub struct SiteJson {
    #[schema(format = "uuid")]
    id: String,
    name: String,
    /// What the tracking script sends as sid
    identifier: String,
    /// UTC, 2025-09-08T05:00:00.000000Z
    created_at: String,
    /// UTC, 2025-09-08T05:00:00.000000Z
    updated_at: String,
    #[schema(minimum = 0)]
    pageview_count: i64,
}

impl From<&CountedSite> for SiteJson {
    fn from(counted: &CountedSite) -> Self {
        let site = &counted.site;
        SiteJson {
            id: site.uuid.clone(),
            name: site.name.clone(),
            identifier: site.identifier.clone(),
            created_at: iso_ms(site.created_at),
            updated_at: iso_ms(site.updated_at),
            pageview_count: counted.pageview_count,
        }
    }
}

/// One page of sites, in DRF's shape.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SitePage {
    #[schema(schema_with = site_count)]
    count: i64,
    /// The next page's URL
    #[schema(required)]
    next: Option<String>,
    /// The previous page's URL
    #[schema(required)]
    previous: Option<String>,
    results: Vec<SiteJson>,
}

fn site_count() -> Object {
    ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).maximum(Some(MAX_SITES_PER_USER)).build()
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// 1-based page
    #[param(value_type = Option<i64>, minimum = 1)]
    page: Option<String>,
}

/// The body of `POST sites` and `PUT sites/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(description = openapi::json_body())]
pub struct SiteName {
    #[schema(required, schema_with = site_name)]
    name: Option<String>,
}

/// The body of `PATCH sites/{id}`: without `name` nothing changes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(description = openapi::json_body())]
pub struct SiteNamePatch {
    #[schema(schema_with = site_name)]
    name: Option<String>,
}

fn site_name() -> Object {
    openapi::text("Trimmed").min_length(Some(1)).max_length(Some(MAX_SITE_NAME)).build()
}

/// Your sites, newest first, 20 a page
#[utoipa::path(
    get,
    path = "/api/v1/sites",
    operation_id = "get_sites",
    tag = "sites",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of sites", body = SitePage),
        (status = 400, description = "Invalid query parameters (one given twice)", body = ErrorBody),
        (status = 404, description = "Invalid page.", body = ErrorBody),
        ReadAccess,
        Unavailable,
    ),
    security(("session" = []), ("token" = []))
)]
pub(super) async fn list(
    State(state): State<AppState>,
    Reader(user): Reader,
    ApiQuery(query): ApiQuery<ListQuery>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Json<SitePage>, ApiError> {
    let page = match query.page.as_deref().map(str::trim) {
        None | Some("") => 1,
        Some(page) => page.parse::<i64>().map_err(|_| ApiError::NotFound("Invalid page.".into()))?,
    };
    let listed = sites::list(&state.store, &user, page).await?;
    let link = |page: i64| {
        let base = match state.accounts.public_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(public) => public.trim_end_matches('/').to_string(),
            None => {
                let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
                format!("http://{host}")
            }
        };
        let path = uri.path().trim_end_matches('/');
        if page == 1 { format!("{base}{path}/") } else { format!("{base}{path}/?page={page}") }
    };
    Ok(Json(SitePage {
        count: listed.count,
        next: listed.has_next.then(|| link(listed.page + 1)),
        previous: (listed.page > 1).then(|| link(listed.page - 1)),
        results: listed.results.iter().map(SiteJson::from).collect(),
    }))
}

/// Create a site
#[utoipa::path(
    post,
    path = "/api/v1/sites",
    operation_id = "post_sites",
    tag = "sites",
    request_body(content = SiteName, description = "An empty body reads as {}"),
    responses(
        (status = 201, description = "The site, with pageview_count", body = SiteJson),
        (status = 400, description = "Name missing or too long, site limit reached, \
            or the body is not valid JSON", body = ErrorBody),
        SessionOnly,
        JsonBody,
        Unavailable,
    ),
    security(("session" = []))
)]
pub(super) async fn create(
    State(state): State<AppState>,
    session: SessionUser,
    ApiJson(body): ApiJson<SiteName>,
) -> Result<(StatusCode, Json<SiteJson>), ApiError> {
    let created = sites::create(&state.store, &session.user, body.name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(SiteJson::from(&created))))
}

/// One site
#[utoipa::path(
    get,
    path = "/api/v1/sites/{id}",
    operation_id = "get_sites_id",
    tag = "sites",
    params(("id" = String, Path, description = "Anything that is not the id of one of yours is 404")),
    responses(
        (status = 200, description = "The site", body = SiteJson),
        (status = 404, description = "Not yours, unknown or malformed id", body = ErrorBody),
        ReadAccess,
        Unavailable,
    ),
    security(("session" = []), ("token" = []))
)]
pub(super) async fn retrieve(
    State(state): State<AppState>,
    Reader(user): Reader,
    Path(id): Path<String>,
) -> Result<Json<SiteJson>, ApiError> {
    Ok(Json(SiteJson::from(&sites::get_counted(&state.store, &user, &id).await?)))
}

/// Rename a site (name required)
///
/// PUT is a full update, so `name` is required.
#[utoipa::path(
    put,
    path = "/api/v1/sites/{id}",
    operation_id = "put_sites_id",
    tag = "sites",
    params(("id" = String, Path, description = "Anything that is not the id of one of yours is 404")),
    request_body(content = SiteName, description = "An empty body reads as {}"),
    responses(
        (status = 200, description = "The site", body = SiteJson),
        (status = 400, description = "Name missing or too long, or the body is not valid JSON", body = ErrorBody),
        (status = 404, description = "Not yours, unknown or malformed id", body = ErrorBody),
        SessionOnly,
        JsonBody,
        Unavailable,
    ),
    security(("session" = []))
)]
pub(super) async fn replace(
    State(state): State<AppState>,
    session: SessionUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SiteName>,
) -> Result<Json<SiteJson>, ApiError> {
    // Ownership first, so someone else's site is 404 whatever the body says.
    sites::get(&state.store, &session.user, &id).await?;
    let name = body.name.as_deref().unwrap_or("");
    Ok(Json(SiteJson::from(&sites::rename(&state.store, &session.user, &id, Some(name)).await?)))
}

/// Rename a site (without a name nothing changes)
///
/// PATCH is a partial update.
#[utoipa::path(
    patch,
    path = "/api/v1/sites/{id}",
    operation_id = "patch_sites_id",
    tag = "sites",
    params(("id" = String, Path, description = "Anything that is not the id of one of yours is 404")),
    request_body(content = SiteNamePatch, description = "An empty body reads as {}"),
    responses(
        (status = 200, description = "The site", body = SiteJson),
        (status = 400, description = "Name blank or too long, or the body is not valid JSON", body = ErrorBody),
        (status = 404, description = "Not yours, unknown or malformed id", body = ErrorBody),
        SessionOnly,
        JsonBody,
        Unavailable,
    ),
    security(("session" = []))
)]
pub(super) async fn update(
    State(state): State<AppState>,
    session: SessionUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SiteNamePatch>,
) -> Result<Json<SiteJson>, ApiError> {
    Ok(Json(SiteJson::from(&sites::rename(&state.store, &session.user, &id, body.name.as_deref()).await?)))
}

/// Delete a site and all its data
#[utoipa::path(
    delete,
    path = "/api/v1/sites/{id}",
    operation_id = "delete_sites_id",
    tag = "sites",
    params(("id" = String, Path, description = "Anything that is not the id of one of yours is 404")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "Not yours, unknown or malformed id", body = ErrorBody),
        SessionOnly,
        Unavailable,
    ),
    security(("session" = []))
)]
pub(super) async fn remove(
    State(state): State<AppState>,
    session: SessionUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    sites::delete(&state.store, &session.user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
