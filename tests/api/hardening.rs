//! Hostile-input hardening around the HTTP layer: the per-IP rate limit on tracking, the security
//! headers, and CORS for `PUBLIC_URL`.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::Request;
use axum::response::{Html, IntoResponse, Response};
use squirrel::config::{RateLimit, TrustedProxies};
use squirrel::http::security;
use tower::{ServiceBuilder, ServiceExt};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_over_the_rate_limit_is_429_per_client_and_not_stored() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.http.track_rate_limit = Some(RateLimit::parse("3/min").unwrap());
        config.http.trusted_proxies = TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    let site = app.create_site().await;
    let hit = |client: &'static str| {
        app.http
            .get(format!("{}/api/v1/pv?sid={}&h=https://e.com&p=/", app.base, site.identifier))
            .header("user-agent", MAC_CHROME)
            .header("x-forwarded-for", client)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(hit("203.0.113.5").await.unwrap().status(), 200);
    }
    let limited = hit("203.0.113.5").await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry_after), "one request comes back every 20 s: {retry_after}");
    let (_, body) = json(limited).await;
    assert_eq!(body["error"], "Too many pageviews from this address, retry later");
    assert_eq!(hit("203.0.113.6").await.unwrap().status(), 200, "another client has its own allowance");
    assert_eq!(app.pageviews(&site).await.len(), 4, "the refused hit was not stored");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_has_no_rate_limit_by_default() {
    let app = spawn_app(Backend::Sqlite).await;
    let site = app.create_site().await;
    for _ in 0..50 {
        let response = app.get_pv(&format!("sid={}&h=https://e.com&p=/", site.identifier), MAC_CHROME).await;
        assert_eq!(response.status(), 200);
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_responses_carry_nosniff_and_the_referrer_policy_but_no_html_policies() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/up", "/health/live", "/api/v1/pv", "/api/v1/auth/user"] {
        let response = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
        let headers = response.headers();
        assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"), "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "strict-origin-when-cross-origin", "{path}");
        for absent in ["content-security-policy", "x-frame-options", "strict-transport-security"] {
            assert!(headers.get(absent).is_none(), "{path}: {absent}");
        }
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_public_url_turns_on_hsts_and_lets_its_origin_use_the_api() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.accounts.public_url = Some("https://stats.example.com".into());
    })
    .await;
    let response = app.http.get(format!("{}/health/live", app.base)).send().await.unwrap();
    assert_eq!(response.headers()["strict-transport-security"], security::STRICT_TRANSPORT_SECURITY);

    let preflight = |origin: &'static str, path: &str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let own = preflight("https://stats.example.com", "/api/v1/sites").await.unwrap();
    assert_eq!(own.headers()["access-control-allow-origin"], "https://stats.example.com");
    assert_eq!(own.headers()["access-control-allow-credentials"], "true");
    let frontend = preflight("http://localhost:7777", "/api/v1/sites").await.unwrap();
    assert_eq!(frontend.headers()["access-control-allow-origin"], "http://localhost:7777", "FRONTEND_URL still");
    let evil = preflight("https://evil.example", "/api/v1/sites").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    let track = preflight("https://evil.example", "/api/v1/pv").await.unwrap();
    assert_eq!(track.headers()["access-control-allow-origin"], "*", "tracking stays open to every origin");
    app.shutdown().await;
}

async fn html_page(_: Request<Body>) -> Result<Response, Infallible> {
    Ok(Html("<!doctype html><title>Squirrel</title>").into_response())
}

#[tokio::test]
async fn html_responses_get_the_content_security_policy_and_frame_denial() {
    let service = ServiceBuilder::new().layer(security::layer(Some("https://stats.example.com"))).service_fn(html_page);
    let response = service.oneshot(Request::new(Body::empty())).await.unwrap();
    let headers = response.headers();
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "strict-origin-when-cross-origin");
    assert_eq!(headers["strict-transport-security"], "max-age=63072000");

    let plain_http =
        ServiceBuilder::new().layer(security::layer(Some("http://stats.example.com"))).service_fn(html_page);
    let response = plain_http.oneshot(Request::new(Body::empty())).await.unwrap();
    assert!(response.headers().get("strict-transport-security").is_none(), "no HSTS without https");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
}

#[tokio::test]
async fn a_policy_the_handler_set_itself_is_kept() {
    let own = |_: Request<Body>| async {
        let mut response = Html("<p>embed me</p>").into_response();
        response.headers_mut().insert("content-security-policy", "frame-ancestors *".parse().unwrap());
        Ok::<_, Infallible>(response)
    };
    let service = ServiceBuilder::new().layer(security::layer(None)).service_fn(own);
    let response = service.oneshot(Request::new(Body::empty())).await.unwrap();
    assert_eq!(response.headers()["content-security-policy"], "frame-ancestors *");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
}
