//! The tracking parameter parser: a query string plus a body of any content type, as `/api/v1/pv`
//! reads them, then the page derived from them. It must never panic, and every stored field must stay
//! within its documented limit.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use squirrel::ingest::TrackParams;
use squirrel::ingest::hit::{self, Page};

/// The content types the tracker and other clients send, plus whatever else the fuzzer makes up.
#[derive(Debug, Arbitrary)]
enum ContentType {
    None,
    Json,
    TextPlain,
    Form,
    Other(String),
}

#[derive(Debug, Arbitrary)]
struct Hit<'a> {
    query: &'a [u8],
    content_type: ContentType,
    body: &'a [u8],
}

fuzz_target!(|input: Hit<'_>| {
    let content_type = match &input.content_type {
        ContentType::None => None,
        ContentType::Json => Some("application/json; charset=utf-8"),
        ContentType::TextPlain => Some("text/plain;charset=UTF-8"),
        ContentType::Form => Some("application/x-www-form-urlencoded"),
        ContentType::Other(other) => Some(other.as_str()),
    };
    let mut params = TrackParams::default();
    params.fill_from_urlencoded(input.query);
    let _ = params.fill_from_body(content_type, input.body);
    for value in [&params.sid, &params.h, &params.p, &params.r, &params.qs].into_iter().flatten() {
        assert!(value.len() <= hit::MAX_URL.max(hit::MAX_QS), "a raw parameter of {} bytes", value.len());
        assert!(!value.chars().any(char::is_control), "a control character kept in {value:?}");
    }
    let page = Page::from_params(&params);
    assert!(page.hostname.len() <= hit::MAX_HOSTNAME);
    assert!(page.path.len() <= hit::MAX_URL);
    assert!(page.url.len() <= hit::MAX_URL);
    assert!(page.referrer.len() <= hit::MAX_REFERRER);
    assert!(page.referrer_domain.len() <= hit::MAX_REFERRER_DOMAIN);
    for utm in [&page.utm_source, &page.utm_medium, &page.utm_campaign, &page.utm_term, &page.utm_content] {
        assert!(utm.len() <= hit::MAX_UTM);
    }
});
