//! Route handlers, one file per area.

pub mod auth;
pub mod chart;
pub mod dashboard;
pub mod health;
pub mod openapi;
pub mod script;
pub mod sites;
pub mod stats;
pub mod tokens;
pub mod track;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::AppState;
use crate::config::Origins;

/// The JSON API (accounts, tokens, sites, charts), with CORS for the dashboard's origins only.
///
/// The original dashboard sends every request with credentials and a JSON content type, so each one
/// is preflighted: the preflight gets the exact origin back (never `*`, which browsers refuse with
/// credentials), and any other origin gets no CORS headers at all. Tracking keeps its own open CORS
/// ([`track::TrackEndpoint`]).
pub fn api(origins: &Origins) -> Router<AppState> {
    let allowed: Vec<HeaderValue> = origins.0.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()).collect();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_credentials(true)
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT])
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .max_age(std::time::Duration::from_secs(86_400));
    Router::new()
        .merge(auth::router())
        .merge(tokens::router())
        .merge(sites::router())
        .merge(chart::router())
        .merge(stats::router())
        .merge(openapi::router())
        .layer(cors)
}
