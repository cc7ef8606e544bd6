//! `GET|POST /api/v1/pv`, `/pv`, `/api/v1/track`, `/track`: the tracking endpoint ([`TrackEndpoint`],
//! served ahead of the router by [`crate::http::Frontend`]; the four documented operations below are
//! its OpenAPI description).
//!
//! Parameters come from the query string, then (for fields the query string lacks) from a form or
//! JSON body as `sendBeacon`/`fetch` send it. A 200 means the pageview is committed. Any origin may
//! send pageviews (CORS `*`, preflight answered). With `SQUIRREL_TRACK_RATE_LIMIT`, a client over its
//! rate gets 429 + `Retry-After` before anything else is read.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::super::{AppState, client_ip::client_ip, error::ApiError, security, trace};
use super::openapi::TrackErrors;
use crate::ingest::hit::MAX_BODY;
use crate::ingest::{Client, TrackParams, hit};
use crate::store::now_ms;
use crate::telemetry::lane::{self, Kind, LaneSpan, Name, SpanRef};
use crate::telemetry::{self, names};

/// Longest User-Agent we read; the parser looks at far less and nothing else needs more.
const MAX_USER_AGENT: usize = 1024;

/// The tracking routes (`/pv` and `/track` under both mounts), as their spans name them.
pub const ROUTES: [&str; 4] = ["/api/v1/pv", "/pv", "/api/v1/track", "/track"];

/// The tracking route that `path` asks for, if any. Trailing slashes and repeated leading ones are
/// ignored, as `NormalizePath` ignores them for the router's routes.
pub fn route_of(path: &str) -> Option<&'static str> {
    let path = path.trim_matches('/');
    ROUTES.into_iter().find(|route| route[1..] == *path)
}

/// Every method of the tracking routes: GET, HEAD and POST record a pageview, OPTIONS answers the
/// preflight, anything else is 405.
///
/// Served ahead of the router as one plain call per hit. Through the router, each `Router::layer`
/// (SERVER span, security headers, CORS) wrapped every route in one more boxed service, and each
/// level cost an allocation for the cloned service and one for its future on every request: with
/// the request's extensions, more than half of a hit's allocations (43.6 → 18.4 mallocs per hit on
/// the async worker, `bench/README.md`). So this does what those layers
/// did, in the same order: the SERVER span around everything, then CORS for any origin and the
/// security headers on every answer.
pub struct TrackEndpoint {
    state: AppState,
    security_headers: fn(Response) -> Response,
}

impl TrackEndpoint {
    pub fn new(state: AppState) -> TrackEndpoint {
        let security_headers = security::headers(state.accounts.public_url.as_deref());
        TrackEndpoint { state, security_headers }
    }

    /// Answers `request` to tracking route `route` (one of [`ROUTES`]) from `peer`.
    pub async fn call(&self, route: &'static str, peer: SocketAddr, request: Request) -> Response {
        let response = if lane::enabled() {
            let trusted = &self.state.trusted_proxies;
            trace::lane_server_span(trusted, route, peer, request, |request, span, client| {
                self.by_method(peer, request, span, client)
            })
            .await
        } else {
            self.by_method(peer, request, None, None).await
        };
        (self.security_headers)(allow_any_origin(response))
    }

    /// `client` is the client address when the SERVER span already worked it out.
    async fn by_method(
        &self,
        peer: SocketAddr,
        request: Request,
        server_span: Option<SpanRef>,
        client: Option<IpAddr>,
    ) -> Response {
        match *request.method() {
            Method::GET | Method::HEAD | Method::POST => track(&self.state, peer, client, request, server_span).await,
            Method::OPTIONS => preflight(),
            _ => ApiError::MethodNotAllowed { allow: "GET, POST" }.into_response(),
        }
    }
}

/// CORS for any origin: with `*` nothing varies by request, so every answer carries the same header.
fn allow_any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// The preflight of a `fetch` with a JSON body: any origin, GET and POST, `Content-Type`, cached a day.
fn preflight() -> Response {
    [
        (header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST")),
        (header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type")),
        (header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400")),
    ]
    .into_response()
}

// The four operations, for the OpenAPI document only: `TrackEndpoint` serves them.

/// Record a pageview (the tracking script's endpoint)
#[utoipa::path(
    get,
    path = "/api/v1/pv",
    operation_id = "get_pv",
    tag = "tracking",
    params(TrackParams),
    responses((status = 200, description = OK, body = TrackOk), TrackErrors)
)]
#[allow(dead_code)]
pub(super) fn pv_get() {}

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
#[allow(dead_code)]
pub(super) fn pv_post() {}

/// Record a pageview (alias of pv)
#[utoipa::path(
    get,
    path = "/api/v1/track",
    operation_id = "get_track",
    tag = "tracking",
    params(TrackParams),
    responses((status = 200, description = OK, body = TrackOk), TrackErrors)
)]
#[allow(dead_code)]
pub(super) fn track_get() {}

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
#[allow(dead_code)]
pub(super) fn track_post() {}

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

/// One pageview, under its `track_pageview` span (a child of the SERVER span, when recorded). Reads
/// the request's parts in place: the `HeaderMap`/`Uri` extractors would clone them, on the hottest
/// path there is. Rare waits (a body's timer, a full queue, a site-cache miss) are boxed where they
/// happen, so the common future stays small.
async fn track(
    state: &AppState,
    peer: SocketAddr,
    client: Option<IpAddr>,
    request: Request,
    server_span: Option<SpanRef>,
) -> Response {
    let (parts, body) = request.into_parts();
    let mut span = LaneSpan::child_of(server_span, Name::Static(names::TRACK_PAGEVIEW), Kind::Internal);
    span.set_str(names::PAGEVIEW_METHOD, parts.method.as_str());
    let started = std::time::Instant::now();
    let ip = client.unwrap_or_else(|| client_ip(peer, &parts.headers, &state.trusted_proxies));
    match handle(state, ip, &parts.uri, &parts.headers, body, &mut span).await {
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

async fn handle(
    state: &AppState,
    ip: IpAddr,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    span: &mut LaneSpan,
) -> Result<(), (&'static str, ApiError)> {
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

/// An empty header map's first insert makes room for six: these two, CORS and the security headers
/// (HSTS included) fit without growing it. Reserving more would pass the kilobyte where glibc's
/// malloc takes its slow path (eight headers get twelve 104-byte slots).
fn ok_response() -> Response {
    let mut response = Response::new(Body::from(OK_BODY));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
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
    fn a_path_names_a_tracking_route_whatever_its_outer_slashes() {
        assert_eq!(route_of("/api/v1/pv"), Some("/api/v1/pv"));
        assert_eq!(route_of("/pv/"), Some("/pv"));
        assert_eq!(route_of("//track//"), Some("/track"));
        assert_eq!(route_of("/api/v1/track/"), Some("/api/v1/track"));
        for other in ["/", "", "/pvx", "/api/v1/pv/x", "/api//v1/pv", "/v1/pv", "/API/v1/pv"] {
            assert_eq!(route_of(other), None, "{other}");
        }
    }

    #[test]
    fn the_ok_body_is_the_documented_track_ok() {
        assert_eq!(serde_json::to_string(&TrackOk { status: TrackStatus::Ok }).unwrap(), OK_BODY);
    }
}
