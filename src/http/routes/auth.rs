//! `auth/signup`, `auth/login`, `auth/logout`, `auth/forgot-password`, `auth/reset-password`,
//! `auth/user`: the original's bodies and messages, with the session in an HttpOnly cookie whose token
//! is stored hashed (`accounts::auth`). The rules live in `accounts`; this file only moves values
//! between HTTP and it.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::super::extract::{ApiJson, SESSION_COOKIE, SessionUser};
use super::super::{AppState, both_mounts, client_ip::client_ip, error::ApiError};
use crate::accounts::auth::SESSION_TTL;
use crate::store::User;

pub fn router() -> Router<AppState> {
    let routes: [(&str, MethodRouter<AppState>); 6] = [
        ("auth/signup", post(signup).fallback(only("POST"))),
        ("auth/login", post(login).fallback(only("POST"))),
        ("auth/logout", post(logout).fallback(only("POST"))),
        ("auth/forgot-password", post(forgot_password).fallback(only("POST"))),
        ("auth/reset-password", post(reset_password).fallback(only("POST"))),
        ("auth/user", get(user).fallback(only("GET"))),
    ];
    let mut router = Router::new();
    for (route, handler) in routes {
        for path in both_mounts(route) {
            router = router.route(&path, handler.clone());
        }
    }
    router
}

/// A JSON 405 naming the allowed method.
pub(super) fn only(allow: &'static str) -> impl Fn() -> std::future::Ready<ApiError> + Clone + Send + 'static {
    move || std::future::ready(ApiError::MethodNotAllowed { allow })
}

/// The body of `auth/signup` and `auth/login`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Credentials {
    email: Option<String>,
    password: Option<String>,
}

/// The body of `auth/forgot-password`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ForgotPassword {
    email: Option<String>,
}

/// The body of `auth/reset-password`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResetPassword {
    uid: Option<String>,
    token: Option<String>,
    new_password: Option<String>,
}

/// The original's user object: the username is the email.
pub(super) fn user_json(user: &User) -> serde_json::Value {
    json!({ "id": user.id, "username": user.email, "email": user.email })
}

async fn signup(State(state): State<AppState>, ApiJson(body): ApiJson<Credentials>) -> Result<Response, ApiError> {
    let logged_in =
        state.auth.signup(body.email.as_deref().unwrap_or(""), body.password.as_deref().unwrap_or("")).await?;
    let body = json!({ "message": "Account created successfully", "user": user_json(&logged_in.user) });
    Ok(with_session_cookie(&state, (StatusCode::CREATED, Json(body)), Some(&logged_in.session_token)))
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let ip = client_ip(peer, &headers, &state.trusted_proxies).to_string();
    let logged_in =
        state.auth.login(body.email.as_deref().unwrap_or(""), body.password.as_deref().unwrap_or(""), &ip).await?;
    let body = json!({ "message": "Login successful", "user": user_json(&logged_in.user) });
    Ok(with_session_cookie(&state, Json(body), Some(&logged_in.session_token)))
}

async fn logout(State(state): State<AppState>, session: SessionUser) -> Result<Response, ApiError> {
    state.auth.logout(&session.token).await?;
    Ok(with_session_cookie(&state, Json(json!({ "message": "Logout successful" })), None))
}

async fn forgot_password(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ForgotPassword>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.auth.forgot_password(body.email.as_deref().unwrap_or(""))?;
    Ok(Json(json!({ "message": "If an account with that email exists, a password reset link has been sent" })))
}

async fn reset_password(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetPassword>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .auth
        .reset_password(
            body.uid.as_deref().unwrap_or(""),
            body.token.as_deref().unwrap_or(""),
            body.new_password.as_deref().unwrap_or(""),
        )
        .await?;
    Ok(Json(json!({ "message": "Password reset successful" })))
}

async fn user(session: SessionUser) -> Json<serde_json::Value> {
    Json(json!({ "user": user_json(&session.user) }))
}

/// Adds `Set-Cookie`: the session (`Some(token)`) or its removal (`None`).
fn with_session_cookie(state: &AppState, response: impl IntoResponse, token: Option<&str>) -> Response {
    let secure = if state.accounts.secure_cookies() { "; Secure" } else { "" };
    let cookie = match token {
        Some(token) => format!(
            "{SESSION_COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            SESSION_TTL.as_secs()
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"),
    };
    let mut response = response.into_response();
    match HeaderValue::from_str(&cookie) {
        Ok(value) => {
            response.headers_mut().append(header::SET_COOKIE, value);
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        // Tokens are hex, so the value is always a valid header; refuse rather than log in silently.
        Err(_) => ApiError::Internal("session cookie is not a valid header value".into()).into_response(),
    }
}
