//! HTTP: the router, the shared state handlers see, and the request → response boundary.
//!
//! Owns routing, extraction (client address, bodies) and the one map from domain errors to statuses
//! ([`error`]). Domain modules never see `axum` types. Every route exists under `/api/v1/` and
//! unprefixed (the original's legacy mount), and a trailing slash is optional everywhere.

pub mod client_ip;
pub mod error;
pub mod extract;
pub mod rate_limit;
pub mod routes;
pub mod security;
pub mod server;
pub mod trace;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use tower::{Layer, ServiceExt};
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::timeout::TimeoutLayer;

use crate::accounts::auth::Auth;
use crate::config::{AccountsConfig, TrustedProxies};
use crate::ingest::Ingest;
use crate::store::Store;

/// What every handler can reach: one `Arc`, so the clone each request's extractors and layers make
/// is a single reference count (eight of them, one per service, were ~5 % of an ingest hit's CPU).
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> AppState {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
pub struct Services {
    pub store: Store,
    pub ingest: Arc<Ingest>,
    pub trusted_proxies: Arc<TrustedProxies>,
    /// `SECRET_KEY`, or the one generated and kept in the database.
    pub secret_key: Arc<str>,
    /// Signup, login, sessions, password reset, API tokens.
    pub auth: Arc<Auth>,
    /// Cookie flags, the dashboard's origins (CORS) and the public URL (pagination links).
    pub accounts: Arc<AccountsConfig>,
    /// Background refreshes of the statistics' daily rows.
    pub stats: Arc<crate::stats::report::Refresher>,
    /// `SQUIRREL_TRACK_RATE_LIMIT`, when set.
    pub track_limiter: Option<Arc<rate_limit::TrackLimiter>>,
}

/// A request that takes longer than this is answered 408 and its work dropped, so shutdown can't hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Every route but tracking's (see [`Frontend`]), with their layers.
pub fn router(state: AppState) -> Router {
    let trusted_proxies = state.trusted_proxies.clone();
    let security_headers = security::layer(state.accounts.public_url.as_deref());
    Router::new()
        .merge(routes::health::router())
        .merge(routes::script::router())
        .merge(routes::api(&state.accounts.api_origins()))
        .merge(routes::dashboard::router())
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .with_state(state)
        .layer(security_headers)
        // Outermost, so timeouts (408) are recorded too; a `Router::layer`, so the route template is known.
        .layer(trace::ServerSpanLayer::new(trusted_proxies))
}

/// What the server answers with: tracking requests go straight to [`routes::track::TrackEndpoint`],
/// everything else through the router (trailing slashes trimmed first, so `/pv/` and `/pv` are one
/// route).
///
/// Tracking is nearly all of the traffic and the router's stack of boxed services was a tenth of its
/// cost. It needs neither the router's request timeout (its waits are bounded where they happen:
/// body read, writer queue) nor `ConnectInfo` in the request's extensions (it gets the peer
/// directly).
#[derive(Clone)]
pub struct Frontend(Arc<FrontendParts>);

struct FrontendParts {
    track: routes::track::TrackEndpoint,
    router: NormalizePath<Router>,
}

impl Frontend {
    pub fn new(state: AppState) -> Frontend {
        let track = routes::track::TrackEndpoint::new(state.clone());
        let router = NormalizePathLayer::trim_trailing_slash().layer(router(state));
        Frontend(Arc::new(FrontendParts { track, router }))
    }

    /// The answer to `request` from `peer`.
    pub async fn answer(self, peer: SocketAddr, mut request: Request) -> Response {
        if let Some(route) = routes::track::route_of(request.uri().path()) {
            return self.0.track.call(route, peer, request).await;
        }
        request.extensions_mut().insert(ConnectInfo(peer));
        let answer: Result<Response, Infallible> = self.0.router.clone().oneshot(request).await;
        match answer {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// `path` under both mounts: `/api/v1/<path>` and `/<path>`.
pub(crate) fn both_mounts(path: &str) -> [String; 2] {
    [format!("/api/v1/{path}"), format!("/{path}")]
}
