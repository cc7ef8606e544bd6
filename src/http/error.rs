//! The only place where errors become HTTP statuses. Bodies are `{"error": "<message>"}`, the shape the
//! original's clients read; a 5xx body never carries the cause, which goes to the span and the log.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ingest::{BodyError, TrackError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("Request body too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("Service temporarily unavailable, retry shortly")]
    Unavailable,
    #[error("Internal error")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(cause) => {
                tracing::error!(cause = %cause, "request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut response = (status, Json(serde_json::json!({ "error": self.to_string() }))).into_response();
        match self {
            ApiError::Unavailable => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::MethodNotAllowed { allow } => {
                response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            _ => {}
        }
        response
    }
}

impl From<TrackError> for ApiError {
    fn from(err: TrackError) -> Self {
        match err {
            TrackError::MissingSiteIdentifier => ApiError::BadRequest(err.to_string()),
            TrackError::InvalidSiteIdentifier => ApiError::NotFound(err.to_string()),
            TrackError::Unavailable | TrackError::ShuttingDown => ApiError::Unavailable,
            TrackError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(err: BodyError) -> Self {
        ApiError::BadRequest(err.to_string())
    }
}
