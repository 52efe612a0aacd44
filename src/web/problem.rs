//! What a page does with a refusal: the API's words (`crate::edge::error`), shown next to the
//! field they concern or at the top of the form, or, for what no form can fix, an error page
//! (404, 503, 500...: `crate::edge::page`). Never raw JSON, never a cause chain.

use crate::app::AppError;
use crate::edge::{page, ApiError};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use std::fmt;

/// One message for the person at the form; `field` names the input it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: Option<&'static str>,
    pub message: String,
}

/// The messages of a refused form, with the status the page is answered with.
#[derive(Clone, Debug, Default)]
pub struct Problems {
    pub status: Option<StatusCode>,
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn one(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status: Some(status), list: vec![Problem { field: None, message: message.into() }] }
    }

    /// The messages for `field`.
    pub fn on(&self, field: &str) -> Vec<&str> {
        self.list.iter().filter(|p| p.field == Some(field)).map(|p| p.message.as_str()).collect()
    }

    /// The field of the first problem that concerns one (the one a refused form focuses).
    pub fn first_field(&self) -> Option<&str> {
        self.list.iter().find_map(|p| p.field)
    }

    /// The problems of `field`, a hidden input (nothing to show them next to, nothing to
    /// focus), told as the form's own.
    pub fn hidden(mut self, field: &str) -> Self {
        for problem in &mut self.list {
            if problem.field == Some(field) {
                problem.field = None;
            }
        }
        self
    }

    /// These problems but the one saying `message`.
    pub fn without(&self, message: &str) -> Self {
        let list = self.list.iter().filter(|p| p.message != message).cloned().collect();
        Self { status: self.status, list }
    }

    /// The messages that concern no field.
    pub fn general(&self) -> Vec<&str> {
        self.list.iter().filter(|p| p.field.is_none()).map(|p| p.message.as_str()).collect()
    }

    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or(StatusCode::OK)
    }
}

/// A refusal a form can show (`Ok`), or one that needs an error page (`Err`).
pub fn problems(error: impl Into<ApiError>) -> Result<Problems, PageError> {
    let error = error.into();
    let status = error.status_code();
    let list = match error {
        ApiError::Validation(fields) => {
            fields.into_iter().map(|f| Problem { field: Some(f.field), message: f.message.to_string() }).collect()
        }
        ApiError::NotAuthorized => vec![Problem { field: None, message: "You are not allowed to do that.".into() }],
        ApiError::NotFound => return Err(PageError::NotFound),
        ApiError::Unavailable => return Err(PageError::Unavailable),
        ApiError::GatewayTimeout => return Err(PageError::MayHaveRun),
        ApiError::Internal(cause) => return Err(PageError::Internal(cause)),
        other => vec![Problem { field: None, message: other.to_string() }],
    };
    Ok(Problems { status: Some(status), list })
}

/// Why a page could not be rendered: answered with an error page (or a redirect to sign in).
#[derive(Debug)]
pub enum PageError {
    NotFound,
    /// Nothing was done: try again.
    Unavailable,
    /// No answer in time: it may have been done (504), so look before trying again.
    MayHaveRun,
    /// A form posted without this browser's CSRF token.
    Forbidden,
    /// A body that is not a form.
    BadForm,
    /// The page needs a signed-in user: off to sign in, then back to `next`.
    SignIn {
        next: String,
    },
    Internal(String),
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        match problems(e) {
            Err(page) => page,
            // A refusal where the page has no form to show it on (a missing entity's page...).
            Ok(p) => Self::Internal(format!("unexpected refusal on a page: {:?}", p.list)),
        }
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::MayHaveRun => StatusCode::GATEWAY_TIMEOUT,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::BadForm => StatusCode::BAD_REQUEST,
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn { next } => {
                let to = format!("/auth/signin?next={}", urlencoded(next));
                HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish()
            }
            Self::Forbidden => page::message_page(
                self.status_code(),
                "Form expired",
                "This form could not be accepted. Go back, reload the page and try again.",
            ),
            Self::BadForm => page::message_page(
                self.status_code(),
                "Form not readable",
                "The form could not be read. Go back and try again.",
            ),
            Self::Internal(cause) => {
                tracing::error!(cause = %cause, "page failed");
                page::error_page(self.status_code())
            }
            Self::NotFound | Self::Unavailable | Self::MayHaveRun => page::error_page(self.status_code()),
        }
    }
}

/// Percent-encodes a path for a query parameter.
pub fn urlencoded(text: &str) -> String {
    serde_urlencoded::to_string([("", text)]).map(|s| s.trim_start_matches('=').to_string()).unwrap_or_default()
}
