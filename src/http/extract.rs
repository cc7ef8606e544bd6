//! Extractors for the JSON API, each rejecting with an [`ApiError`], so bad input is always a JSON
//! 4xx (never axum's plain-text rejections, never a 500):
//!
//! - [`ApiJson`]: a JSON body. Another content type → 415; malformed JSON or wrong field types → 400;
//!   an empty body reads as `{}`, so the handler answers "… are required" as the original did.
//! - [`ApiQuery`]: query parameters → 400 naming the problem.
//! - [`SessionUser`]: the user of the `sessionid` cookie → 401 without one; a request with only an API
//!   token gets 403, since tokens are read-only.
//! - [`Reader`]: the session user or, for read-only statistics, the owner of an
//!   `Authorization: Bearer` API token.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::store::User;

/// The session cookie's name (Django's, so a dashboard that inspects it finds what it knew).
pub const SESSION_COOKIE: &str = "sessionid";

/// Largest JSON body the API reads; account and site bodies are a few hundred bytes.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// A JSON request body of type `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::BadRequest("Could not read the request body".into()))?;
        parse_json_body(content_type.as_deref(), &bytes).map(ApiJson)
    }
}

/// The body of a JSON API request as `T`: [`ApiJson`]'s whole decision, without HTTP around it (the
/// fuzz target `api_json` calls it). Every error is a 4xx [`ApiError`].
pub fn parse_json_body<T: DeserializeOwned>(content_type: Option<&str>, body: &[u8]) -> Result<T, ApiError> {
    if body.len() > MAX_JSON_BODY {
        return Err(ApiError::PayloadTooLarge { limit: MAX_JSON_BODY });
    }
    let is_json = content_type.and_then(|v| v.split(';').next()).map(|essence| {
        let essence = essence.trim().to_ascii_lowercase();
        essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
    });
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    if text != b"{}" && is_json != Some(true) {
        return Err(ApiError::UnsupportedMediaType("Content-Type must be application/json".into()));
    }
    serde_json::from_slice(text).map_err(|err| ApiError::BadRequest(format!("Invalid JSON body: {err}")))
}

/// Query parameters of type `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map(ApiQuery)
            .map_err(|err| ApiError::BadRequest(format!("Invalid query parameters: {err}")))
    }
}

/// The logged-in user (session cookie only): needed to change anything.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user: User,
    /// The cookie's token, so logout can end exactly this session.
    pub token: String,
}

impl FromRequestParts<AppState> for SessionUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(token) = session_cookie(&parts.headers)
            && let Some(user) = state.auth.user_for_session(&token).await?
        {
            return Ok(SessionUser { user, token });
        }
        if bearer_token(&parts.headers).is_some() {
            return Err(ApiError::Forbidden("API tokens can only read statistics".into()));
        }
        Err(ApiError::Unauthenticated)
    }
}

/// Someone allowed to read: a logged-in user, or the owner of an API token.
#[derive(Debug, Clone)]
pub struct Reader(pub User);

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer_token(&parts.headers) {
            // A bad token is an error even with a cookie present: a script should learn its token is dead.
            return match state.auth.user_for_api_token(&token).await? {
                Some(user) => Ok(Reader(user)),
                None => Err(ApiError::Unauthenticated),
            };
        }
        if let Some(token) = session_cookie(&parts.headers)
            && let Some(user) = state.auth.user_for_session(&token).await?
        {
            return Ok(Reader(user));
        }
        Err(ApiError::Unauthenticated)
    }
}

/// The `sessionid` cookie's value, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"').to_string())
        .filter(|value| !value.is_empty())
}

/// `Authorization: Bearer <token>`.
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "csrftoken=x; sessionid=abc123".parse().unwrap());
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc123"));
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "sessionid=".parse().unwrap());
        assert_eq!(session_cookie(&headers), None);
    }

    #[derive(Debug, serde::Deserialize)]
    struct Named {
        #[allow(dead_code)]
        name: Option<String>,
    }

    #[test]
    fn json_bodies_are_the_value_or_a_4xx() {
        let status = |result: Result<Named, ApiError>| {
            result.map(|_| 200).unwrap_or_else(|err| axum::response::IntoResponse::into_response(err).status().as_u16())
        };
        assert_eq!(status(parse_json_body(Some("application/json"), br#"{"name":"x"}"#)), 200);
        assert_eq!(status(parse_json_body(Some("application/vnd.api+json; charset=utf-8"), b"{}")), 200);
        // An empty body reads as `{}` whatever the content type, so the handler names the missing fields.
        assert_eq!(status(parse_json_body(None, b" \n")), 200);
        assert_eq!(status(parse_json_body(Some("text/plain"), br#"{"name":"x"}"#)), 415);
        assert_eq!(status(parse_json_body(Some("application/json"), br#"{"name":17}"#)), 400);
        assert_eq!(status(parse_json_body(Some("application/json"), b"[\xff")), 400);
        let huge = vec![b' '; MAX_JSON_BODY + 1];
        assert_eq!(status(parse_json_body(Some("application/json"), &huge)), 413);
    }

    #[test]
    fn bearer_tokens_need_the_scheme() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer sq_abc".parse().unwrap());
        assert_eq!(bearer_token(&headers).as_deref(), Some("sq_abc"));
        headers.insert(header::AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
    }
}
