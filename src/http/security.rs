//! Security headers on every response: `nosniff` and the referrer policy everywhere; on HTML (the
//! dashboard) a strict same-origin Content-Security-Policy and `X-Frame-Options: DENY`; and HSTS only
//! when `PUBLIC_URL` is https, because a browser that saw HSTS on a plain-http install would lock its
//! users out of it. Headers a handler set itself are kept.

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use tower::util::MapResponseLayer;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";
/// Two years, subdomains excluded: the server may share a domain with sites that are not on https.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000";

/// The layer for `router()`: HSTS only when `public_url` is an https URL.
pub fn layer(public_url: Option<&str>) -> MapResponseLayer<fn(Response) -> Response> {
    MapResponseLayer::new(headers(public_url))
}

/// What [`layer`] does to each response, for a service outside the router (the tracking endpoint).
pub fn headers(public_url: Option<&str>) -> fn(Response) -> Response {
    let https = public_url.is_some_and(|url| url.trim().to_ascii_lowercase().starts_with("https://"));
    if https { with_hsts } else { without_hsts }
}

fn with_hsts(mut response: Response) -> Response {
    set(&mut response, header::STRICT_TRANSPORT_SECURITY, STRICT_TRANSPORT_SECURITY);
    without_hsts(response)
}

fn without_hsts(mut response: Response) -> Response {
    set(&mut response, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(&mut response, header::REFERRER_POLICY, "strict-origin-when-cross-origin");
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().get(..HTML.len()).is_some_and(|start| start.eq_ignore_ascii_case(HTML)));
    if html {
        set(&mut response, header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
        set(&mut response, header::X_FRAME_OPTIONS, "DENY");
    }
    response
}

/// The media type that gets the HTML-only headers, whatever its case and parameters.
const HTML: &str = "text/html";

fn set(response: &mut Response, name: HeaderName, value: &'static str) {
    response.headers_mut().entry(name).or_insert(HeaderValue::from_static(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered_with(content_type: &str) -> Response {
        let mut response = Response::new(axum::body::Body::empty());
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        without_hsts(response)
    }

    #[test]
    fn html_of_any_case_gets_the_page_headers_and_nothing_else_does() {
        for html in ["text/html", "Text/HTML; charset=utf-8", " text/html;charset=UTF-8"] {
            let response = answered_with(html);
            assert_eq!(response.headers()[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY, "{html}");
            assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY", "{html}");
        }
        for other in ["application/json", "text/htm", "text/plain", "tex"] {
            let response = answered_with(other);
            assert!(!response.headers().contains_key(header::CONTENT_SECURITY_POLICY), "{other}");
            assert_eq!(response.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{other}");
        }
    }
}
