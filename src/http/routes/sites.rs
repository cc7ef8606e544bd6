//! `sites` (GET list, POST create) and `sites/{id}` (GET, PUT, PATCH, DELETE): a user's sites.
//!
//! `id` is the site's UUID. Another user's site and a malformed id are both 404, on every method, so
//! nobody can probe which ids exist. Lists are newest first, 20 a page, in DRF's
//! `{count, next, previous, results}` shape; every site carries `pageview_count`, create included.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::super::extract::{ApiJson, ApiQuery, Reader, SessionUser};
use super::super::{AppState, both_mounts, error::ApiError};
use super::auth::only;
use crate::accounts::sites::{self, CountedSite};

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

fn site_json(counted: &CountedSite) -> serde_json::Value {
    let site = &counted.site;
    json!({
        "id": site.uuid,
        "name": site.name,
        "identifier": site.identifier,
        "created_at": iso_ms(site.created_at),
        "updated_at": iso_ms(site.updated_at),
        "pageview_count": counted.pageview_count,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListQuery {
    page: Option<String>,
}

/// The body of `POST sites`, `PUT` and `PATCH sites/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SiteBody {
    name: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Reader(user): Reader,
    ApiQuery(query): ApiQuery<ListQuery>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    Ok(Json(json!({
        "count": listed.count,
        "next": listed.has_next.then(|| link(listed.page + 1)),
        "previous": (listed.page > 1).then(|| link(listed.page - 1)),
        "results": listed.results.iter().map(site_json).collect::<Vec<_>>(),
    })))
}

async fn create(
    State(state): State<AppState>,
    session: SessionUser,
    ApiJson(body): ApiJson<SiteBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let created = sites::create(&state.store, &session.user, body.name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(site_json(&created))))
}

async fn retrieve(
    State(state): State<AppState>,
    Reader(user): Reader,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(site_json(&sites::get_counted(&state.store, &user, &id).await?)))
}

/// PUT: a full update, so `name` is required.
async fn replace(
    State(state): State<AppState>,
    session: SessionUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SiteBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // Ownership first, so someone else's site is 404 whatever the body says.
    sites::get(&state.store, &session.user, &id).await?;
    let name = body.name.as_deref().unwrap_or("");
    Ok(Json(site_json(&sites::rename(&state.store, &session.user, &id, Some(name)).await?)))
}

/// PATCH: a partial update; without `name` nothing changes.
async fn update(
    State(state): State<AppState>,
    session: SessionUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SiteBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(site_json(&sites::rename(&state.store, &session.user, &id, body.name.as_deref()).await?)))
}

async fn remove(
    State(state): State<AppState>,
    session: SessionUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    sites::delete(&state.store, &session.user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
