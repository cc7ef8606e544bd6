//! The only place where errors become HTTP statuses. Bodies are `{"error": "<message>"}`, the shape the
//! original's clients read; a 5xx body never carries the cause, which goes to the span and the log.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::accounts::AccountError;
use crate::ingest::{BodyError, TrackError};
use crate::stats::StatsError;
use crate::store::StoreError;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Authentication required")]
    Unauthenticated,
    /// 401 with a specific message (wrong credentials).
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    #[error("Method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("The request body took too long to arrive")]
    RequestTimeout,
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
            ApiError::Unauthenticated | ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(cause) => {
                tracing::error!(cause = %cause, "request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut response = (status, Json(ErrorBody { error: self.to_string() })).into_response();
        match self {
            ApiError::Unavailable => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::MethodNotAllowed { allow } => {
                response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::TooManyRequests { retry_after_secs, .. } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
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

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => ApiError::Unavailable,
            other => ApiError::Internal(format!("{:#}", anyhow::Error::from(other))),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        match err {
            AccountError::Invalid(_)
            | AccountError::EmailTaken
            | AccountError::MissingCredentials
            | AccountError::MissingEmail
            | AccountError::MissingResetFields
            | AccountError::InvalidResetLink
            | AccountError::ExpiredResetLink
            | AccountError::SiteLimit => ApiError::BadRequest(err.to_string()),
            AccountError::InvalidCredentials => ApiError::Unauthorized(err.to_string()),
            AccountError::Throttled { retry_after } => ApiError::TooManyRequests {
                message: err.to_string(),
                // Rounded up, so a client that waits exactly this long is let in.
                retry_after_secs: retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0),
            },
            AccountError::NotFound | AccountError::NoSuchUser(_) => ApiError::NotFound("Not found".into()),
            AccountError::InvalidPage => ApiError::NotFound(err.to_string()),
            AccountError::Store(store) => ApiError::from(store),
            AccountError::Hashing => ApiError::Internal(err.to_string()),
        }
    }
}

impl From<StatsError> for ApiError {
    fn from(err: StatsError) -> Self {
        match err {
            StatsError::Invalid(message) => ApiError::BadRequest(message),
            StatsError::SiteNotFound => ApiError::NotFound(err.to_string()),
            StatsError::Store(store) => ApiError::from(store),
        }
    }
}
