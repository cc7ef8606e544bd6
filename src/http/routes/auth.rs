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
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, SchemaFormat};

use super::super::extract::{ApiJson, SESSION_COOKIE, SessionUser};
use super::super::{AppState, both_mounts, client_ip::client_ip, error::ApiError, error::ErrorBody};
use super::openapi::{self, JsonBody, LoginThrottled, SessionOnly, Unavailable};
use crate::accounts::MAX_EMAIL_BYTES;
use crate::accounts::auth::SESSION_TTL;
use crate::accounts::password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};
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

/// The body of `auth/login`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(description = openapi::json_body())]
pub struct Credentials {
    /// Trimmed, case-insensitive
    #[schema(required, nullable = false)]
    email: Option<String>,
    /// Any string: a wrong one is 401
    #[schema(required, nullable = false)]
    password: Option<String>,
}

/// The body of `auth/signup`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(description = openapi::json_body())]
pub struct NewAccount {
    #[schema(required, schema_with = new_email)]
    email: Option<String>,
    #[schema(required, schema_with = new_password)]
    password: Option<String>,
}

fn new_email() -> Object {
    openapi::text("Trimmed, case-insensitive")
        .format(Some(SchemaFormat::Custom("email".into())))
        .max_length(Some(MAX_EMAIL_BYTES))
        .build()
}

fn new_password() -> Object {
    let description = format!("{MIN_PASSWORD_CHARS} characters to {MAX_PASSWORD_BYTES} bytes");
    openapi::text(description).min_length(Some(MIN_PASSWORD_CHARS)).build()
}

/// The body of `auth/forgot-password`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(description = openapi::json_body())]
pub struct ForgotPassword {
    #[schema(required, nullable = false)]
    email: Option<String>,
}

/// The body of `auth/reset-password`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(description = openapi::json_body())]
pub struct ResetPassword {
    /// From the reset link
    #[schema(required, nullable = false)]
    uid: Option<String>,
    /// From the reset link
    #[schema(required, nullable = false)]
    token: Option<String>,
    #[schema(required, schema_with = new_password)]
    new_password: Option<String>,
}

/// The original's user object: the username is the email.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = User)]
pub struct UserJson {
    id: i64,
    username: String,
    email: String,
}

impl From<&User> for UserJson {
    fn from(user: &User) -> Self {
        UserJson { id: user.id, username: user.email.clone(), email: user.email.clone() }
    }
}

/// The logged-in user.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserEnvelope {
    user: UserJson,
}

/// The answer to a sign-up or a log-in.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoggedIn {
    message: &'static str,
    user: UserJson,
}

/// What happened, for a person to read.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    message: &'static str,
}

/// Create an account and log in
#[utoipa::path(
    post,
    path = "/api/v1/auth/signup",
    operation_id = "post_auth_signup",
    tag = "accounts",
    request_body(content = NewAccount, description = "An empty body reads as {}"),
    responses(
        (status = 201, description = "Account created, session cookie set", body = LoggedIn),
        (status = 400, description = "Missing fields, bad email, password too short or too long, email taken, \
            or the body is not valid JSON", body = ErrorBody),
        JsonBody,
        Unavailable,
    )
)]
pub(super) async fn signup(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewAccount>,
) -> Result<Response, ApiError> {
    let logged_in =
        state.auth.signup(body.email.as_deref().unwrap_or(""), body.password.as_deref().unwrap_or("")).await?;
    let body = LoggedIn { message: "Account created successfully", user: UserJson::from(&logged_in.user) };
    Ok(with_session_cookie(&state, (StatusCode::CREATED, Json(body)), Some(&logged_in.session_token)))
}

/// Log in
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    operation_id = "post_auth_login",
    tag = "accounts",
    request_body(content = Credentials, description = "An empty body reads as {}"),
    responses(
        (status = 200, description = "Logged in, session cookie set", body = LoggedIn),
        (status = 400, description = "Missing fields, or the body is not valid JSON", body = ErrorBody),
        (status = 401, description = "Invalid credentials", body = ErrorBody),
        LoginThrottled,
        JsonBody,
        Unavailable,
    )
)]
pub(super) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let ip = client_ip(peer, &headers, &state.trusted_proxies).to_string();
    let logged_in =
        state.auth.login(body.email.as_deref().unwrap_or(""), body.password.as_deref().unwrap_or(""), &ip).await?;
    let body = LoggedIn { message: "Login successful", user: UserJson::from(&logged_in.user) };
    Ok(with_session_cookie(&state, Json(body), Some(&logged_in.session_token)))
}

/// End this session
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    operation_id = "post_auth_logout",
    tag = "accounts",
    responses(
        (status = 200, description = "Logged out, cookie cleared", body = Message),
        SessionOnly,
        Unavailable,
    ),
    security(("session" = []))
)]
pub(super) async fn logout(State(state): State<AppState>, session: SessionUser) -> Result<Response, ApiError> {
    state.auth.logout(&session.token).await?;
    Ok(with_session_cookie(&state, Json(Message { message: "Logout successful" }), None))
}

/// Mail a password-reset link (same answer whether or not the account exists)
#[utoipa::path(
    post,
    path = "/api/v1/auth/forgot-password",
    operation_id = "post_auth_forgot_password",
    tag = "accounts",
    request_body(content = ForgotPassword, description = "An empty body reads as {}"),
    responses(
        (status = 200, description = "Accepted", body = Message),
        (status = 400, description = "Email is required, or the body is not valid JSON", body = ErrorBody),
        JsonBody,
    )
)]
pub(super) async fn forgot_password(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ForgotPassword>,
) -> Result<Json<Message>, ApiError> {
    state.auth.forgot_password(body.email.as_deref().unwrap_or(""))?;
    Ok(Json(Message { message: "If an account with that email exists, a password reset link has been sent" }))
}

/// Set a new password from a reset link; ends every session
#[utoipa::path(
    post,
    path = "/api/v1/auth/reset-password",
    operation_id = "post_auth_reset_password",
    tag = "accounts",
    request_body(content = ResetPassword, description = "An empty body reads as {}"),
    responses(
        (status = 200, description = "Password reset", body = Message),
        (status = 400, description = "Missing fields, invalid or expired link, weak password, \
            or the body is not valid JSON", body = ErrorBody),
        JsonBody,
        Unavailable,
    )
)]
pub(super) async fn reset_password(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetPassword>,
) -> Result<Json<Message>, ApiError> {
    state
        .auth
        .reset_password(
            body.uid.as_deref().unwrap_or(""),
            body.token.as_deref().unwrap_or(""),
            body.new_password.as_deref().unwrap_or(""),
        )
        .await?;
    Ok(Json(Message { message: "Password reset successful" }))
}

/// The logged-in user
#[utoipa::path(
    get,
    path = "/api/v1/auth/user",
    operation_id = "get_auth_user",
    tag = "accounts",
    responses((status = 200, description = "The user", body = UserEnvelope), SessionOnly, Unavailable),
    security(("session" = []))
)]
pub(super) async fn user(session: SessionUser) -> Json<UserEnvelope> {
    Json(UserEnvelope { user: UserJson::from(&session.user) })
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
