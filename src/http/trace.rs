//! The HTTP SERVER span of every request, per the OpenTelemetry HTTP server conventions.
//!
//! Named `{METHOD} {route}` with the route *template* (`GET /api/v1/pv`; just `GET` when no route
//! matched), it carries `http.request.method`, `http.route`, `url.path`, `url.scheme`,
//! `client.address` (the same address ingest uses: the peer, or `X-Forwarded-For` from a trusted
//! proxy), `user_agent.original`, `server.address`/`server.port` (from `Host`),
//! `network.protocol.version` and `http.response.status_code`. An incoming W3C `traceparent`
//! makes it a child of the caller's span. A status ≥ 500 sets `error.type` and status ERROR; 4xx
//! are the client's errors and leave the status unset, as the conventions say.
//!
//! A middleware of our own instead of `axum-tracing-opentelemetry`: one dependency fewer, and its
//! span is created at TRACE level, which an `info` filter silently drops (research note §1).
//!
//! Tracking requests never reach the router (see [`crate::http::Frontend`]): their SERVER span is
//! [`lane_server_span`], on the fast lane ([`crate::telemetry::lane`]) — the same span, with the same
//! attributes, built without `tracing`, whose identity goes to the handler so `track_pageview`
//! becomes its child.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{Method, Version, header};
use axum::response::Response;
use axum::routing::Route;
use axum::routing::future::RouteFuture;
use futures_util::future::Either;
use tower::{Layer, Service, ServiceExt};
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::client_ip::client_ip;
use crate::config::TrustedProxies;
use crate::telemetry::lane::{self, Kind, LaneSpan, Name, Parent, SpanRef, Value};
use crate::telemetry::names;

/// Adds [`ServerSpan`] to every route; added with `Router::layer`, so the matched route template is
/// known.
#[derive(Clone)]
pub struct ServerSpanLayer {
    trusted: Arc<TrustedProxies>,
}

impl ServerSpanLayer {
    pub fn new(trusted: Arc<TrustedProxies>) -> ServerSpanLayer {
        ServerSpanLayer { trusted }
    }
}

impl Layer<Route> for ServerSpanLayer {
    type Service = ServerSpan;

    fn layer(&self, route: Route) -> ServerSpan {
        ServerSpan { route, trusted: self.trusted.clone() }
    }
}

/// A route wrapped in its SERVER span.
///
/// A service of our own rather than `axum::middleware::from_fn`, which boxes a future holding the
/// request twice for every request, spans or not: over a kilobyte, where glibc's malloc takes its
/// slow path (`malloc_consolidate`) on every tracking hit. With export off this adds nothing to a
/// request: no span, no box.
#[derive(Clone)]
pub struct ServerSpan {
    route: Route,
    trusted: Arc<TrustedProxies>,
}

type Traced = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl Service<Request> for ServerSpan {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<RouteFuture<Infallible>, Traced>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request>::poll_ready(&mut self.route, cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if !lane::enabled() {
            // Export is off (the lane starts with it): no span would be kept, so none is built.
            return Either::Left(self.route.call(request));
        }
        let (route, trusted) = (self.route.clone(), self.trusted.clone());
        Either::Right(Box::pin(async move { Ok(server_span(&trusted, request, route).await) }))
    }
}

/// Runs `route` inside a SERVER span of its own.
async fn server_span(trusted: &TrustedProxies, request: Request, route: Route) -> Response {
    let route_template = request.extensions().get::<MatchedPath>().cloned();
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
    let RequestFacts { client, user_agent, host, port } = RequestFacts::of(&request, peer, trusted);
    let headers = request.headers();
    let method = request.method();
    let span = tracing::info_span!(
        "http_server",
        otel.name = %SpanName { method, route: route_template.as_ref().map(MatchedPath::as_str) },
        otel.kind = "server",
        otel.status_code = Empty,
        { names::HTTP_REQUEST_METHOD } = semconv_method(method),
        { names::HTTP_ROUTE } = route_template.as_ref().map(MatchedPath::as_str),
        { names::URL_PATH } = request.uri().path(),
        { names::URL_SCHEME } = "http",
        { names::CLIENT_ADDRESS } = client.map(tracing::field::display),
        { names::USER_AGENT_ORIGINAL } = user_agent,
        { names::SERVER_ADDRESS } = host,
        { names::SERVER_PORT } = port,
        { names::NETWORK_PROTOCOL_VERSION } = protocol_version(request.version()),
        { names::HTTP_RESPONSE_STATUS_CODE } = Empty,
        { names::ERROR_TYPE } = Empty,
    );
    // Only when the header is there: extraction allocates, and most tracking hits come without one.
    if headers.contains_key("traceparent") && !span.is_disabled() {
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
        });
        let _ = span.set_parent(parent);
    }
    let response = run(route, request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record(names::HTTP_RESPONSE_STATUS_CODE, status);
    if status >= 500 {
        span.record(names::ERROR_TYPE, status);
        span.record("otel.status_code", "ERROR");
    }
    response
}

/// The SERVER span of a tracking request, on the fast lane: same name and attributes as
/// [`server_span`]'s. `handler` gets the span's identity, for its own child span, and the client
/// address when the span worked it out, so a hit parses `X-Forwarded-For` once.
pub(crate) async fn lane_server_span<H, F>(
    trusted: &TrustedProxies,
    template: &'static str,
    peer: SocketAddr,
    request: Request,
    handler: H,
) -> Response
where
    H: FnOnce(Request, Option<SpanRef>, Option<IpAddr>) -> F,
    F: Future<Output = Response>,
{
    let headers = request.headers();
    let parent = Parent::from_traceparent(headers.get("traceparent").map(|v| v.as_bytes()));
    let method = semconv_method(request.method());
    let mut span = LaneSpan::start(Name::MethodRoute(method, template), Kind::Server, parent);
    let mut client = None;
    if span.is_recording() {
        let RequestFacts { client: found, user_agent, host, port } = RequestFacts::of(&request, Some(peer), trusted);
        client = found;
        span.set_str(names::HTTP_REQUEST_METHOD, method);
        span.set_str(names::HTTP_ROUTE, template);
        // The path as the router would see it (outer slashes trimmed): a tracking route has no
        // parameters, so that is its template.
        span.set_str(names::URL_PATH, template);
        span.set_str(names::URL_SCHEME, "http");
        if let Some(client) = client {
            span.set(names::CLIENT_ADDRESS, Value::Ip(client));
        }
        if let Some(agent) = user_agent {
            span.set_str(names::USER_AGENT_ORIGINAL, agent);
        }
        if let Some(host) = host {
            span.set_str(names::SERVER_ADDRESS, host);
        }
        if let Some(port) = port {
            span.set(names::SERVER_PORT, Value::Int(i64::from(port)));
        }
        span.set_str(names::NETWORK_PROTOCOL_VERSION, protocol_version(request.version()));
    }
    let response = handler(request, span.context(), client).await;
    let status = response.status().as_u16();
    span.set(names::HTTP_RESPONSE_STATUS_CODE, Value::Int(i64::from(status)));
    if status >= 500 {
        span.set(names::ERROR_TYPE, Value::Int(i64::from(status)));
        span.fail();
    }
    response
}

/// The route's answer (a route never fails: its error type is `Infallible`).
async fn run(route: Route, request: Request) -> Response {
    match route.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// What both SERVER spans record about the client and the addressed host.
struct RequestFacts<'a> {
    /// The peer, or `X-Forwarded-For` from a trusted proxy (the address ingest uses).
    client: Option<IpAddr>,
    user_agent: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<u16>,
}

impl<'a> RequestFacts<'a> {
    fn of(request: &'a Request, peer: Option<SocketAddr>, trusted: &TrustedProxies) -> RequestFacts<'a> {
        let headers = request.headers();
        let (host, port) = match headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
            Some(host) => split_host(host),
            None => (None, None),
        };
        RequestFacts {
            client: peer.map(|peer| client_ip(peer, headers, trusted)),
            user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()),
            host,
            port,
        }
    }
}

/// `GET /api/v1/pv`, formatted only if a span is actually recorded.
struct SpanName<'a> {
    method: &'a Method,
    route: Option<&'a str>,
}

impl fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.route {
            Some(route) => write!(f, "{} {route}", semconv_method(self.method)),
            None => f.write_str(semconv_method(self.method)),
        }
    }
}

/// The method as the conventions want it: one of the known methods, or `_OTHER`.
fn semconv_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// `example.com:8000` → (`example.com`, 8000); `[::1]:80` → (`::1`, 80); a bare host has no port.
fn split_host(host: &str) -> (Option<&str>, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (Some(addr), after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (Some(name), port.parse().ok()),
        _ => (Some(host), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_splits_into_address_and_port() {
        assert_eq!(split_host("example.com:8000"), (Some("example.com"), Some(8000)));
        assert_eq!(split_host("example.com"), (Some("example.com"), None));
        assert_eq!(split_host("[::1]:80"), (Some("::1"), Some(80)));
        assert_eq!(split_host("::1"), (Some("::1"), None));
    }

    #[test]
    fn span_name_uses_the_route_template_or_just_the_method() {
        let name = SpanName { method: &Method::GET, route: Some("/api/v1/pv") }.to_string();
        assert_eq!(name, "GET /api/v1/pv");
        assert_eq!(SpanName { method: &Method::from_bytes(b"BREW").unwrap(), route: None }.to_string(), "_OTHER");
    }
}
