//! The dashboard in the browser: every page URL (`/`, `/login`, `/signup`, `/forgot-password`,
//! `/reset-password`, `/dashboard`, `/dashboard/{site id}`, `/settings`) answers the same HTML shell,
//! revalidated on each load (`no-cache` + ETag); `/assets/<version>/<file>` are immutable for a year.
//! Also the router's fallback: unknown `/api/…` paths get a JSON 404, anything else the HTML 404 page.
//!
//! `/dashboard` rather than `/sites`: the unprefixed API mount already owns `/sites` (JSON).

use axum::Router;
use axum::extract::{OriginalUri, Path};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::super::{AppState, error::ApiError};
use super::auth::only;
use crate::dashboard::{self, Page};

/// The paths the dashboard's scripts render; `reset-password` is the path of the link mailed by
/// `accounts::auth` (`{FRONTEND_URL}/reset-password?uid=…&token=…`).
const PAGES: &[&str] =
    &["/", "/login", "/signup", "/forgot-password", "/reset-password", "/dashboard", "/dashboard/{id}", "/settings"];

/// What the dashboard's HTML may load and do: only files of this origin, no inline code. Sent on
/// every HTML answer, so the browser tests hold the pages to it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for path in PAGES {
        router = router.route(path, get(index).fallback(only("GET")));
    }
    router.route("/assets/{version}/{name}", get(asset).fallback(only("GET"))).fallback(not_found)
}

async fn index(headers: HeaderMap) -> Response {
    html(StatusCode::OK, dashboard::index(), &headers)
}

async fn asset(Path((version, name)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some(asset) = dashboard::asset(&version, &name) else {
        return html(StatusCode::NOT_FOUND, dashboard::not_found(), &headers);
    };
    // The version is a hash of every asset, so it and the name make a strong validator.
    let etag = format!("\"{}-{}\"", dashboard::version(), asset.name);
    let mut response = if matches_etag(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    response
}

async fn not_found(OriginalUri(uri): OriginalUri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::NotFound("Not found".into()).into_response();
    }
    html(StatusCode::NOT_FOUND, dashboard::not_found(), &headers)
}

fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn html(status: StatusCode, page: &'static Page, headers: &HeaderMap) -> Response {
    let mut response = if status == StatusCode::OK && matches_etag(headers, &page.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (status, page.html.clone()).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(value) = HeaderValue::from_str(&page.etag) {
        h.insert(header::ETAG, value);
    }
    response
}
