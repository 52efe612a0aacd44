//! Why a domain rule refused a change, as typed values. The edges (the JSON API, later HTML
//! pages) turn each variant into their own words and status; the domain never speaks them.

use serde::{Deserialize, Serialize};

/// An input field that failed validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Field {
    Title,
    Price,
}

/// A business rule that refused a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    /// The ticket is held by an order (reserved or sold).
    TicketReserved,
    /// An owner may not edit a reserved or sold ticket.
    CannotEditReserved,
    CannotBuyOwnTicket,
    /// A ticket id was created twice (never happens with fresh ids).
    TicketExists,
    CannotCancelCompleted,
    PaymentInProgress,
    CannotPayCancelled,
    AlreadyPaid,
    OrderExpired,
    /// The payment provider refused the card token itself.
    InvalidPaymentToken,
    /// A listing held by an order (reserved or sold) cannot be withdrawn.
    CannotDeleteReserved,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum DomainError {
    /// Every invalid field, in field order (400).
    #[error("validation failed: {0:?}")]
    Validation(Vec<Field>),
    /// A business rule refused the change (400).
    #[error("rule refused the change: {0:?}")]
    Rule(Rule),
    /// The caller is not signed in or does not own the entity (401).
    #[error("not authorized")]
    NotAuthorized,
    /// No such entity (404).
    #[error("not found")]
    NotFound,
    /// The payment provider declined the card (402).
    #[error("card declined")]
    CardDeclined,
}

impl From<Rule> for DomainError {
    fn from(rule: Rule) -> Self {
        Self::Rule(rule)
    }
}
