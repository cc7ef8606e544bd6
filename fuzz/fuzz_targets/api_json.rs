//! The JSON bodies of the API: every typed request body through the extractor's own decision
//! (`parse_json_body`: size, content type, JSON, field types). Any input must give the body or a 4xx
//! `{"error": …}`, never a panic or a 5xx.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use squirrel::http::error::ApiError;
use squirrel::http::extract::parse_json_body;
use squirrel::http::routes::{auth, sites, tokens};

#[derive(Debug, Arbitrary)]
enum Body {
    Credentials,
    ForgotPassword,
    ResetPassword,
    Site,
    SitePatch,
    Token,
}

#[derive(Debug, Arbitrary)]
struct Request<'a> {
    body_type: Body,
    /// `None` sends no header; mostly the JSON one, sometimes anything.
    content_type: Option<&'a str>,
    json_content_type: bool,
    body: &'a [u8],
}

fn check<T: DeserializeOwned + std::fmt::Debug>(content_type: Option<&str>, body: &[u8]) {
    match parse_json_body::<T>(content_type, body) {
        Ok(value) => {
            let _ = format!("{value:?}");
        }
        Err(err) => {
            assert!(!matches!(err, ApiError::Internal(_) | ApiError::Unavailable), "{err:?}");
            let response = axum::response::IntoResponse::into_response(err);
            assert!(response.status().is_client_error(), "{}", response.status());
        }
    }
}

fuzz_target!(|request: Request<'_>| {
    let content_type = if request.json_content_type { Some("application/json") } else { request.content_type };
    let body = request.body;
    match request.body_type {
        Body::Credentials => check::<auth::Credentials>(content_type, body),
        Body::ForgotPassword => check::<auth::ForgotPassword>(content_type, body),
        Body::ResetPassword => check::<auth::ResetPassword>(content_type, body),
        Body::Site => check::<sites::SiteName>(content_type, body),
        Body::SitePatch => check::<sites::SiteNamePatch>(content_type, body),
        Body::Token => check::<tokens::NewToken>(content_type, body),
    }
});
