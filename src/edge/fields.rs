//! The fields of a request read into domain values, refused in the API's words with every
//! failure listed: one set of rules and words for a JSON body (`crate::http`) and a posted
//! form (`crate::web`).

use super::error::{ticket_field, ApiError, FieldError};
use crate::domain::{DomainError, Email, Password, Price, TicketDraft};

/// The sign-up fields, checked with the API's words.
pub fn sign_up_fields(email: Option<&str>, password: Option<&str>) -> Result<(Email, Password), ApiError> {
    let email = email.and_then(Email::parse);
    let password = password.and_then(Password::parse);
    let mut errors = Vec::new();
    if email.is_none() {
        errors.push(FieldError { field: "email", message: "Email must be valid" });
    }
    if password.is_none() {
        errors.push(FieldError { field: "password", message: "Password must be between 4 and 20 characters" });
    }
    match (email, password) {
        (Some(email), Some(password)) => Ok((email, password)),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// The sign-in fields, checked with the API's words.
pub fn sign_in_fields<'a>(email: Option<&str>, password: Option<&'a str>) -> Result<(Email, &'a str), ApiError> {
    let email = email.and_then(Email::parse);
    let password = password.filter(|p| !p.trim().is_empty());
    let mut errors = Vec::new();
    if email.is_none() {
        errors.push(FieldError { field: "email", message: "Email must be valid" });
    }
    if password.is_none() {
        errors.push(FieldError { field: "password", message: "You must supply a password" });
    }
    match (email, password) {
        (Some(email), Some(password)) => Ok((email, password)),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// A title and a price checked as a ticket's draft; the price's words differ when `updating`.
pub fn ticket_draft(title: Option<&str>, price: Option<Price>, updating: bool) -> Result<TicketDraft, ApiError> {
    TicketDraft::new(title, price).map_err(|e| match e {
        DomainError::Validation(fields) => {
            ApiError::Validation(fields.into_iter().map(|f| ticket_field(f, updating)).collect())
        }
        other => other.into(),
    })
}
