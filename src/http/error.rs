//! The one error boundary: every failure becomes `{"errors":[{"message","field"?}]}` with the
//! seed-compatible status. 5xx bodies are generic; their cause is logged, never returned.

use crate::actors::ActorError;
use crate::auth::AuthError;
use crate::domain::{DomainError, FieldError};
use crate::storage::StorageError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use std::fmt;

#[derive(Debug)]
pub enum ApiError {
    Validation(Vec<FieldError>),
    BadRequest(String),
    NotAuthorized,
    NotFound,
    PayloadTooLarge,
    PaymentRequired(String),
    Unprocessable(String),
    Conflict(String),
    /// Overloaded, or an actor did not answer in time: retry later.
    Unavailable,
    /// Anything else; the string is logged, not sent.
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }
    pub fn internal(cause: impl fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Validation(errors) => write!(f, "validation failed on {} field(s)", errors.len()),
            Self::BadRequest(m) | Self::PaymentRequired(m) | Self::Unprocessable(m) | Self::Conflict(m) => {
                f.write_str(m)
            }
            Self::NotAuthorized => f.write_str("Not authorized"),
            Self::NotFound => f.write_str("Not Found"),
            Self::PayloadTooLarge => f.write_str("Request body is too large"),
            Self::Unavailable => f.write_str("Service temporarily unavailable, retry shortly"),
            Self::Internal(_) => f.write_str("Something went wrong"),
        }
    }
}

/// The error body for a bare status (unknown route, wrong method...).
pub fn error_body(message: &str) -> serde_json::Value {
    json!({ "errors": [{ "message": message }] })
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotAuthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            Self::Validation(errors) => json!({
                "errors": errors.iter().map(|e| json!({"message": e.message, "field": e.field})).collect::<Vec<_>>()
            }),
            Self::Internal(cause) => {
                tracing::error!(cause = %cause, "request failed");
                error_body(&self.to_string())
            }
            other => error_body(&other.to_string()),
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unavailable | Self::Conflict(_)) {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        response.json(body)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Validation(errors) => Self::Validation(errors),
            DomainError::Rule(message) => Self::BadRequest(message.to_string()),
            DomainError::NotAuthorized => Self::NotAuthorized,
            DomainError::NotFound => Self::NotFound,
            DomainError::CardDeclined => Self::PaymentRequired("Your card was declined".into()),
        }
    }
}

impl From<ActorError> for ApiError {
    fn from(e: ActorError) -> Self {
        match e {
            ActorError::Domain(d) => d.into(),
            ActorError::Unavailable => Self::Unavailable,
            ActorError::Storage(cause) => Self::Internal(cause),
            ActorError::Panicked => Self::Internal("actor panicked and is being restarted".into()),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::EmailInUse => Self::bad_request("Email in use"),
            AuthError::InvalidCredentials => Self::bad_request("Invalid credentials"),
            AuthError::RefreshRejected => Self::NotAuthorized,
            AuthError::Storage(e) => e.into(),
            AuthError::Hashing(cause) => Self::Internal(cause),
        }
    }
}
