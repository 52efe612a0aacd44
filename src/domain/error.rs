//! Why a domain rule refused a change. The HTTP boundary maps each variant to a status.

/// One failed validation rule, reported against its field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Every failed validation rule, in field order (400).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// A business rule refused the change (400 with this message).
    #[error("{0}")]
    Rule(&'static str),
    /// The caller is not signed in or does not own the entity (401).
    #[error("Not authorized")]
    NotAuthorized,
    /// No such entity (404).
    #[error("Not Found")]
    NotFound,
    /// The payment provider declined the card (402).
    #[error("Your card was declined")]
    CardDeclined,
}
