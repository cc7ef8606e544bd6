//! `auth/tokens` (GET list, POST create) and `auth/tokens/{id}` (DELETE): API tokens for scripts.
//! Managed only from a logged-in session; a token itself can read statistics and nothing else
//! (`extract::Reader`). The secret is in the create answer and nowhere else, ever.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::Object;

use super::super::extract::{ApiJson, SessionUser};
use super::super::{AppState, both_mounts, error::ApiError, error::ErrorBody};
use super::auth::only;
use super::openapi::{self, JsonBody, SessionOnly, Unavailable};
use super::sites::iso_ms;
use crate::accounts::auth::MAX_TOKEN_NAME;
use crate::store::ApiToken;

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for path in both_mounts("auth/tokens") {
        router = router.route(&path, get(list).post(create).fallback(only("GET, POST")));
    }
    for path in both_mounts("auth/tokens/{id}") {
        router = router.route(&path, delete(revoke).fallback(only("DELETE")));
    }
    router
}

/// The body of `POST auth/tokens`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = NewApiTokenRequest, description = openapi::json_body())]
pub struct NewToken {
    #[schema(required, schema_with = token_name)]
    name: Option<String>,
}

fn token_name() -> Object {
    openapi::text("Trimmed").min_length(Some(1)).max_length(Some(MAX_TOKEN_NAME)).build()
}

/// An API token, without its secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ApiToken)]
pub struct TokenJson {
    id: i64,
    name: String,
    /// The secret's first characters, to recognise it
    prefix: String,
    /// UTC, 2025-09-08T05:00:00.000000Z
    created_at: String,
    /// UTC, like created_at; null until first used
    #[schema(required)]
    last_used_at: Option<String>,
}

impl From<&ApiToken> for TokenJson {
    fn from(token: &ApiToken) -> Self {
        TokenJson {
            id: token.id,
            name: token.name.clone(),
            prefix: token.prefix.clone(),
            created_at: iso_ms(token.created_at),
            last_used_at: token.last_used_at.map(iso_ms),
        }
    }
}

/// A new API token, with its secret (shown this once).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    id: i64,
    name: String,
    /// The secret's first characters, to recognise it
    prefix: String,
    /// UTC, 2025-09-08T05:00:00.000000Z
    created_at: String,
    /// Always null: the token was never used
    #[schema(required)]
    last_used_at: Option<String>,
    /// The secret, shown this once
    token: String,
}

/// The caller's API tokens.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiTokenList {
    results: Vec<TokenJson>,
}

/// List API tokens (never the secrets)
#[utoipa::path(
    get,
    path = "/api/v1/auth/tokens",
    operation_id = "get_auth_tokens",
    tag = "accounts",
    responses((status = 200, description = "The tokens", body = ApiTokenList), SessionOnly, Unavailable),
    security(("session" = []))
)]
pub(super) async fn list(State(state): State<AppState>, session: SessionUser) -> Result<Json<ApiTokenList>, ApiError> {
    let tokens = state.auth.api_tokens(&session.user).await?;
    Ok(Json(ApiTokenList { results: tokens.iter().map(TokenJson::from).collect() }))
}

/// Create an API token; the secret is shown once
#[utoipa::path(
    post,
    path = "/api/v1/auth/tokens",
    operation_id = "post_auth_tokens",
    tag = "accounts",
    request_body(content = NewToken, description = "An empty body reads as {}"),
    responses(
        (status = 201, description = "The token, with its secret", body = NewApiToken),
        (status = 400, description = "Name missing or too long, or the body is not valid JSON", body = ErrorBody),
        SessionOnly,
        JsonBody,
        Unavailable,
    ),
    security(("session" = []))
)]
pub(super) async fn create(
    State(state): State<AppState>,
    session: SessionUser,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<NewApiToken>), ApiError> {
    let created = state.auth.create_api_token(&session.user, body.name.as_deref().unwrap_or("")).await?;
    let TokenJson { id, name, prefix, created_at, last_used_at } = TokenJson::from(&created.info);
    Ok((StatusCode::CREATED, Json(NewApiToken { id, name, prefix, created_at, last_used_at, token: created.token })))
}

/// Revoke an API token
#[utoipa::path(
    delete,
    path = "/api/v1/auth/tokens/{id}",
    operation_id = "delete_auth_tokens_id",
    tag = "accounts",
    params(("id" = String, Path, description = "Anything that is not the id of one of yours is 404")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such token of yours", body = ErrorBody),
        SessionOnly,
        Unavailable,
    ),
    security(("session" = []))
)]
pub(super) async fn revoke(
    State(state): State<AppState>,
    session: SessionUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("Not found".into()))?;
    state.auth.revoke_api_token(&session.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
