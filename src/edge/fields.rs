//! The fields of a request read into domain values, refused in the API's words with every
//! failure listed: one set of rules and words for a JSON body (`crate::http`) and a posted
//! form (`crate::web`).

use super::error::{ticket_field, ApiError, FieldError};
use crate::domain::{DomainError, Email, Password, Price, TicketDraft};

/// The sign-up fields, checked with the API's words.
pub fn sign_up_fields(email: Option<&str>, password: Option<&str>) -> Result<(Email, Password), ApiError> {
    both((email.and_then(Email::parse), EMAIL_REFUSED), (password.and_then(Password::parse), PASSWORD_REFUSED))
}

/// A password reset's fields: the link's token and the new password.
pub fn reset_fields<'a>(token: Option<&'a str>, password: Option<&str>) -> Result<(&'a str, Password), ApiError> {
    let token = token.map(str::trim).filter(|t| !t.is_empty());
    let token_refused = FieldError { field: "token", message: "You must supply the token of the reset link" };
    both((token, token_refused), (password.and_then(Password::parse), PASSWORD_REFUSED))
}

const EMAIL_REFUSED: FieldError = FieldError { field: "email", message: "Email must be valid" };
const PASSWORD_REFUSED: FieldError =
    FieldError { field: "password", message: "Password must be between 4 and 20 characters" };

/// Two fields a request needs: both values, or the refusal of each one missing.
fn both<A, B>(
    (a, a_refused): (Option<A>, FieldError),
    (b, b_refused): (Option<B>, FieldError),
) -> Result<(A, B), ApiError> {
    match (a, b) {
        (Some(a), Some(b)) => Ok((a, b)),
        (a, b) => {
            let refused = [(a.is_none(), a_refused), (b.is_none(), b_refused)];
            Err(ApiError::Validation(refused.into_iter().filter(|(missing, _)| *missing).map(|(_, e)| e).collect()))
        }
    }
}

/// An address, checked with the API's words.
pub fn email_field(email: Option<&str>) -> Result<Email, ApiError> {
    email.and_then(Email::parse).ok_or_else(|| ApiError::Validation(vec![EMAIL_REFUSED]))
}

/// The sign-in fields, checked with the API's words.
pub fn sign_in_fields<'a>(email: Option<&str>, password: Option<&'a str>) -> Result<(Email, &'a str), ApiError> {
    let password_missing = FieldError { field: "password", message: "You must supply a password" };
    both((email.and_then(Email::parse), EMAIL_REFUSED), (password.filter(|p| !p.trim().is_empty()), password_missing))
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
