//! The one error boundary: every failure becomes `{"errors":[{"message","field"?}]}` with the
//! seed-compatible status. 5xx bodies are generic; their cause is logged, never returned.
//! The pages show the same words (`crate::web::problem`), and an error answered as a page
//! keeps the status (`super::answer`).

use crate::app::AppError;
use crate::domain::{DomainError, Field, Rule};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use std::fmt;

/// One invalid field of a request, in the API's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: &'static str,
}

#[derive(Debug)]
pub enum ApiError {
    Validation(Vec<FieldError>),
    BadRequest(String),
    /// A query parameter that is not right: 400, its name as the error's `field`.
    BadParameter {
        field: &'static str,
        message: String,
    },
    NotAuthorized,
    NotFound,
    PayloadTooLarge,
    PaymentRequired(String),
    Unprocessable(String),
    Conflict(String),
    /// Overloaded, or an actor did not answer in time: retry later.
    Unavailable,
    /// The request's body did not arrive in time (408; the connection is closed).
    RequestTimeout,
    /// Too many failed attempts: 429 with `Retry-After` (seconds).
    TooManyRequests(u64),
    /// A request forwarded to another node got no reply in time: it may or may not have run
    /// (retry with the same `Idempotency-Key`).
    GatewayTimeout,
    /// The node's disk is full: the write was refused and nothing changed (507, with
    /// `Retry-After`); reads go on.
    InsufficientStorage,
    /// Anything else; the string is logged, not sent.
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }
    pub fn bad_parameter(field: &'static str, message: impl Into<String>) -> Self {
        Self::BadParameter { field, message: message.into() }
    }
    pub fn internal(cause: impl fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }
}

// The words of the refusals that carry none of their own, for their variants and their bare
// statuses alike.
const NOT_AUTHORIZED: &str = "Not authorized";
const NOT_FOUND: &str = "Not Found";
const TOO_LARGE: &str = "Request body is too large";
const UNAVAILABLE: &str = "Service temporarily unavailable, retry shortly";
const TOO_SLOW: &str = "The request took too long to arrive";
const MAY_HAVE_RUN: &str =
    "The node owning this data did not answer in time; the request may have run. Retry with the same Idempotency-Key";
const SOMETHING_WENT_WRONG: &str = "Something went wrong";

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Validation(errors) => write!(f, "validation failed on {} field(s)", errors.len()),
            Self::BadRequest(m)
            | Self::BadParameter { message: m, .. }
            | Self::PaymentRequired(m)
            | Self::Unprocessable(m)
            | Self::Conflict(m) => f.write_str(m),
            Self::NotAuthorized => f.write_str(NOT_AUTHORIZED),
            Self::NotFound => f.write_str(NOT_FOUND),
            Self::PayloadTooLarge => f.write_str(TOO_LARGE),
            Self::Unavailable => f.write_str(UNAVAILABLE),
            Self::RequestTimeout => f.write_str(TOO_SLOW),
            Self::TooManyRequests(_) => f.write_str("Too many failed sign-ins; try again later"),
            Self::GatewayTimeout => f.write_str(MAY_HAVE_RUN),
            Self::InsufficientStorage => f.write_str("The server's storage is full; nothing was changed. Retry later"),
            Self::Internal(_) => f.write_str(SOMETHING_WENT_WRONG),
        }
    }
}

/// Seconds a client is asked to wait before retrying a write refused for a full disk: freeing
/// space takes an operator, not a moment.
const STORAGE_FULL_RETRY_AFTER: &str = "30";

/// The error body for one message.
pub fn error_body(message: &str) -> serde_json::Value {
    json!({ "errors": [{ "message": message }] })
}

/// The API's words for a bare status (an unknown route, a wrong method, a page's error answered
/// to a program): those of the `ApiError` with that status where there is one.
pub fn status_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        StatusCode::PAYLOAD_TOO_LARGE => TOO_LARGE,
        StatusCode::UNAUTHORIZED => NOT_AUTHORIZED,
        StatusCode::REQUEST_TIMEOUT => TOO_SLOW,
        StatusCode::SERVICE_UNAVAILABLE => UNAVAILABLE,
        StatusCode::GATEWAY_TIMEOUT => MAY_HAVE_RUN,
        s if s.is_server_error() => SOMETHING_WENT_WRONG,
        s => s.canonical_reason().unwrap_or("Bad request"),
    }
}

/// A request body that could not be read: over the limit is a 413 however the reader learnt
/// it (a limit of ours, the HTTP layer's own `PayloadError::Overflow`, wrapped in a JSON error
/// or not: all say 413), anything else a 400.
pub fn unreadable_body(e: &actix_web::Error) -> ApiError {
    if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::bad_request("Malformed request body")
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::BadRequest(_) | Self::BadParameter { .. } => StatusCode::BAD_REQUEST,
            Self::NotAuthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            Self::Validation(errors) => json!({
                "errors": errors.iter().map(|e| json!({"message": e.message, "field": e.field})).collect::<Vec<_>>()
            }),
            Self::BadParameter { field, message } => json!({ "errors": [{ "message": message, "field": field }] }),
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
        if matches!(self, Self::InsufficientStorage) {
            response.insert_header((header::RETRY_AFTER, STORAGE_FULL_RETRY_AFTER));
        }
        if let Self::TooManyRequests(seconds) = self {
            response.insert_header((header::RETRY_AFTER, seconds.max(&1).to_string()));
        }
        if matches!(self, Self::RequestTimeout) {
            // The rest of the body may still be trickling in: the connection cannot be reused.
            response.force_close();
        }
        response.json(body)
    }
}

/// The API's words for a business rule (the seeds' messages).
pub fn rule_message(rule: Rule) -> &'static str {
    match rule {
        Rule::TicketReserved => "Ticket is already reserved",
        Rule::CannotEditReserved => "Cannot edit a reserved ticket",
        Rule::CannotBuyOwnTicket => "Cannot buy your own ticket",
        Rule::TicketExists => "Ticket already exists",
        Rule::CannotCancelCompleted => "Cannot cancel a completed order",
        Rule::PaymentInProgress => "A payment for this order is in progress",
        Rule::CannotPayCancelled => "Cannot pay for an cancelled order",
        Rule::AlreadyPaid => "Order has already been paid",
        Rule::OrderExpired => "Order has expired",
        Rule::InvalidPaymentToken => "Invalid payment token",
        Rule::CannotDeleteReserved => "Cannot delete a reserved ticket",
    }
}

/// The API's words for an invalid ticket field; the seeds word the price rule differently
/// when a ticket is created and when it is updated.
pub fn ticket_field(field: Field, updating: bool) -> FieldError {
    match field {
        Field::Title => FieldError { field: "title", message: "Title is required" },
        Field::Price if updating => {
            FieldError { field: "price", message: "Price must be provided and must be greater than 0" }
        }
        Field::Price => FieldError { field: "price", message: "Price must be greater than 0" },
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Validation(fields) => {
                Self::Validation(fields.into_iter().map(|f| ticket_field(f, false)).collect())
            }
            DomainError::Rule(rule) => Self::BadRequest(rule_message(rule).to_string()),
            DomainError::NotAuthorized => Self::NotAuthorized,
            DomainError::NotFound => Self::NotFound,
            DomainError::CardDeclined => Self::PaymentRequired("Your card was declined".into()),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Domain(d) => d.into(),
            AppError::EmailInUse => Self::bad_request("Email in use"),
            AppError::InvalidCredentials => Self::bad_request("Invalid credentials"),
            AppError::RefreshRejected => Self::NotAuthorized,
            AppError::WebhookRefused(reason) => Self::BadRequest(reason),
            AppError::IdempotencyMismatch => {
                Self::Unprocessable("Idempotency-Key was used with a different request".into())
            }
            AppError::IdempotencyInProgress => {
                Self::Conflict("A request with this Idempotency-Key is still running".into())
            }
            AppError::Unavailable => Self::Unavailable,
            AppError::NoReply => Self::GatewayTimeout,
            AppError::Internal(cause) => Self::Internal(cause),
            AppError::Throttled { retry_after_s } => Self::TooManyRequests(retry_after_s),
            AppError::CheckoutNotSupported => Self::bad_request("This payment method is not available"),
            AppError::StorageFull => Self::InsufficientStorage,
            AppError::ResetRejected => Self::bad_request("This reset link is not valid any more: ask for a new one"),
        }
    }
}
