//! `auth/tokens` (GET list, POST create) and `auth/tokens/{id}` (DELETE): API tokens for scripts.
//! Managed only from a logged-in session; a token itself can read statistics and nothing else
//! (`extract::Reader`). The secret is in the create answer and nowhere else, ever.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::super::extract::{ApiJson, SessionUser};
use super::super::{AppState, both_mounts, error::ApiError};
use super::auth::only;
use super::sites::iso_ms;
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
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewToken {
    name: Option<String>,
}

fn token_json(token: &ApiToken) -> serde_json::Value {
    json!({
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": iso_ms(token.created_at),
        "last_used_at": token.last_used_at.map(iso_ms),
    })
}

async fn list(State(state): State<AppState>, session: SessionUser) -> Result<Json<serde_json::Value>, ApiError> {
    let tokens = state.auth.api_tokens(&session.user).await?;
    Ok(Json(json!({ "results": tokens.iter().map(token_json).collect::<Vec<_>>() })))
}

async fn create(
    State(state): State<AppState>,
    session: SessionUser,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let created = state.auth.create_api_token(&session.user, body.name.as_deref().unwrap_or("")).await?;
    let mut body = token_json(&created.info);
    body["token"] = json!(created.token);
    Ok((StatusCode::CREATED, Json(body)))
}

async fn revoke(
    State(state): State<AppState>,
    session: SessionUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("Not found".into()))?;
    state.auth.revoke_api_token(&session.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
