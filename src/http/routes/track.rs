//! `GET|POST /api/v1/pv`, `/pv`, `/api/v1/track`, `/track`: the tracking endpoint (one handler,
//! [`track`], behind the four documented operations).
//!
//! Parameters come from the query string, then (for fields the query string lacks) from a form or
//! JSON body as `sendBeacon`/`fetch` send it. A 200 means the pageview is committed. Any origin may
//! send pageviews (CORS `*`, preflight answered). With `SQUIRREL_TRACK_RATE_LIMIT`, a client over its
//! rate gets 429 + `Retry-After` before anything else is read.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use tower::util::MapResponseLayer;
use utoipa::ToSchema;

use super::super::{AppState, client_ip::client_ip, error::ApiError};
use super::openapi::TrackErrors;
use crate::http::trace::LaneParent;
use crate::ingest::hit::MAX_BODY;
use crate::ingest::{Client, TrackParams, hit};
use crate::store::now_ms;
use crate::telemetry::lane::{Kind, LaneSpan, Name};
use crate::telemetry::{self, names};

/// Stands in for a peer address no connection reported (only a router served without connect info).
const UNKNOWN_PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// Longest User-Agent we read; the parser looks at far less and nothing else needs more.
const MAX_USER_AGENT: usize = 1024;

pub fn router() -> Router<AppState> {
    let [pv, pv_bare, track, track_bare] = ROUTES;
    Router::new()
        .route(pv, endpoint(get(pv_get).post(pv_post)))
        .route(pv_bare, endpoint(get(pv_get).post(pv_post)))
        .route(track, endpoint(get(track_get).post(track_post)))
        .route(track_bare, endpoint(get(track_get).post(track_post)))
        .layer(MapResponseLayer::new(allow_any_origin as fn(Response) -> Response))
}

/// The tracking routes (`/pv` and `/track` under both mounts); their spans take the fast lane.
pub const ROUTES: [&str; 4] = ["/api/v1/pv", "/pv", "/api/v1/track", "/track"];

fn endpoint(methods: MethodRouter<AppState>) -> MethodRouter<AppState> {
    methods.options(preflight).fallback(|| async { ApiError::MethodNotAllowed { allow: "GET, POST" } })
}

/// CORS for any origin, by hand: `tower_http`'s `CorsLayer` clones its whole configuration (header
/// lists included) for every request, a few percent of a tracking hit's CPU. With `*` as the
/// origin nothing varies by request, so every answer carries the same header.
fn allow_any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// The preflight of a `fetch` with a JSON body: any origin, GET and POST, `Content-Type`, cached a day.
async fn preflight() -> impl IntoResponse {
    [
        (header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST")),
        (header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type")),
        (header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400")),
    ]
}

/// Record a pageview (the tracking script's endpoint)
#[utoipa::path(
    get,
    path = "/api/v1/pv",
    operation_id = "get_pv",
    tag = "tracking",
    params(TrackParams),
    responses((status = 200, description = OK, body = TrackOk), TrackErrors)
)]
pub(super) fn pv_get(state: State<AppState>, request: Request) -> impl Future<Output = Response> {
    track(state, request)
}

/// Record a pageview; parameters missing from the query string are read from the body
#[utoipa::path(
    post,
    path = "/api/v1/pv",
    operation_id = "post_pv",
    tag = "tracking",
    params(TrackParams),
    request_body(description = BODY, content(
        (TrackParams = "application/json"),
        (String = "text/plain"),
        (TrackParams = "application/x-www-form-urlencoded"),
    )),
    responses((status = 200, description = OK, body = TrackOk), TrackErrors)
)]
pub(super) fn pv_post(state: State<AppState>, request: Request) -> impl Future<Output = Response> {
    track(state, request)
}

/// Record a pageview (alias of pv)
#[utoipa::path(
    get,
    path = "/api/v1/track",
    operation_id = "get_track",
    tag = "tracking",
    params(TrackParams),
    responses((status = 200, description = OK, body = TrackOk), TrackErrors)
)]
pub(super) fn track_get(state: State<AppState>, request: Request) -> impl Future<Output = Response> {
    track(state, request)
}

/// Record a pageview (alias of pv)
#[utoipa::path(
    post,
    path = "/api/v1/track",
    operation_id = "post_track",
    tag = "tracking",
    params(TrackParams),
    request_body(description = BODY, content(
        (TrackParams = "application/json"),
        (String = "text/plain"),
        (TrackParams = "application/x-www-form-urlencoded"),
    )),
    responses((status = 200, description = OK, body = TrackOk), TrackErrors)
)]
pub(super) fn track_post(state: State<AppState>, request: Request) -> impl Future<Output = Response> {
    track(state, request)
}

const OK: &str = "The pageview is committed (bots too: stored, flagged, never counted)";
const BODY: &str = "sendBeacon / fetch / form body (text/plain: a JSON object as text); \
    read only for parameters the query string lacks";

/// The answer to a committed pageview.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackOk {
    status: TrackStatus,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrackStatus {
    Ok,
}

/// Reads the request's parts in place: the `HeaderMap`/`Uri`/`ConnectInfo` extractors would clone
/// them, on the hottest path there is.
///
/// Axum boxes each request's future, and glibc's malloc takes a slow path (`malloc_consolidate`)
/// for a kilobyte or more. So the handlers are plain functions whose future holds the request once
/// (an `async fn` would also keep its arguments), and rare waits (a body's timer, a full queue, a
/// site-cache miss) are boxed where they happen.
fn track(State(state): State<AppState>, request: Request) -> impl Future<Output = Response> {
    let (parts, body) = request.into_parts();
    async move {
        let parent = parts.extensions.get::<LaneParent>().and_then(|LaneParent(parent)| *parent);
        let mut span = LaneSpan::child_of(parent, Name::Static(names::TRACK_PAGEVIEW), Kind::Internal);
        span.set_str(names::PAGEVIEW_METHOD, parts.method.as_str());
        let started = std::time::Instant::now();
        // Always there: `http::server` gives every request its peer address.
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map_or(UNKNOWN_PEER, |ConnectInfo(peer)| *peer);
        // Boxed apart (~800 bytes) so that neither this future nor axum's box around it reaches a
        // kilobyte: two small allocations cost less than one that sends glibc to consolidate.
        match Box::pin(handle(&state, peer, &parts.uri, &parts.headers, body, &mut span)).await {
            Ok(()) => {
                telemetry::metrics::pageview_accepted(started.elapsed());
                ok_response()
            }
            Err((code, err)) => {
                telemetry::metrics::pageview_rejected(code, started.elapsed());
                span.set_str(names::PAGEVIEW_ERROR, code);
                if matches!(err, ApiError::Internal(_) | ApiError::Unavailable) {
                    // The cause goes to the span (server-side only), never to the response body.
                    let message = match &err {
                        ApiError::Internal(cause) => cause.clone(),
                        other => other.to_string(),
                    };
                    span.set_str(names::PAGEVIEW_ERROR_MESSAGE, &message);
                    span.error(code, &message);
                }
                err.into_response()
            }
        }
    }
}

async fn handle(
    state: &AppState,
    peer: SocketAddr,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    span: &mut LaneSpan,
) -> Result<(), (&'static str, ApiError)> {
    let ip = client_ip(peer, headers, &state.trusted_proxies);
    // First, before the body is read: a flood costs as little as possible.
    if let Some(limiter) = &state.track_limiter
        && let Err(wait) = limiter.check(ip)
    {
        let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let message = "Too many pageviews from this address, retry later".to_string();
        return Err(("rate_limited", ApiError::TooManyRequests { message, retry_after_secs }));
    }
    let mut params = TrackParams::default();
    params.fill_from_urlencoded(uri.query().unwrap_or("").as_bytes());

    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY) {
        return Err(payload_too_large());
    }
    let bytes = read_body(body).await?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    params.fill_from_body(content_type, &bytes).map_err(|err| ("invalid_body", ApiError::from(err)))?;

    let user_agent = headers.get(header::USER_AGENT).map(|v| String::from_utf8_lossy(v.as_bytes())).unwrap_or_default();
    let client = Client { ip, user_agent: hit::truncate(&user_agent, MAX_USER_AGENT) };
    state.ingest.track(&params, &client, now_ms(), span).await.map_err(|err| (err.code(), ApiError::from(err)))
}

/// The body, up to [`MAX_BODY`], within [`BODY_TIMEOUT`]. A GET's empty body is read without a timer:
/// the tracking routes sit outside the router's request timeout, which cost every hit a timer.
async fn read_body(body: Body) -> Result<axum::body::Bytes, (&'static str, ApiError)> {
    use axum::body::HttpBody as _;
    if body.is_end_stream() {
        return Ok(axum::body::Bytes::new());
    }
    // Boxed: only a request with a body carries the reader and its timer.
    match Box::pin(tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY))).await {
        Ok(read) => read.map_err(|_| payload_too_large()),
        Err(_) => Err(("body_timeout", ApiError::RequestTimeout)),
    }
}

/// A body over [`MAX_BODY`], declared or read.
fn payload_too_large() -> (&'static str, ApiError) {
    ("payload_too_large", ApiError::PayloadTooLarge { limit: MAX_BODY })
}

/// How long a client may take to send a tracking body (a beacon is a few hundred bytes).
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// [`TrackOk`] serialized once: the hot path sends these bytes (the test below keeps them equal).
const OK_BODY: &str = r#"{"status":"ok"}"#;

fn ok_response() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        OK_BODY,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routes_are_pv_and_track_under_both_mounts() {
        use crate::http::both_mounts;
        let mounts = [both_mounts("pv"), both_mounts("track")].concat();
        assert_eq!(ROUTES.map(str::to_string).to_vec(), mounts);
    }

    #[test]
    fn the_ok_body_is_the_documented_track_ok() {
        assert_eq!(serde_json::to_string(&TrackOk { status: TrackStatus::Ok }).unwrap(), OK_BODY);
    }
}
