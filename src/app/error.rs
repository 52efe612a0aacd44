//! The one error of the use cases. Adapters map each variant to their own words and status;
//! causes of server faults are carried for the log, never shown.

use crate::actors::EntityError;
use crate::domain::DomainError;
use crate::storage::StorageError;

/// Serialisable: an account use case run on another node answers with it.
#[derive(Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum AppError {
    /// A domain rule refused (validation, a business rule, not found, not authorized...).
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("email in use")]
    EmailInUse,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("refresh token rejected")]
    RefreshRejected,
    /// A provider webhook that is not authentic or not understood (the reason is safe to show).
    #[error("webhook refused: {0}")]
    WebhookRefused(String),
    /// An `Idempotency-Key` reused with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    /// An `Idempotency-Key` whose first request is still running.
    #[error("idempotency key still in use")]
    IdempotencyInProgress,
    /// Overloaded, or an entity did not answer in time: retry later.
    #[error("temporarily unavailable")]
    Unavailable,
    /// A command got no reply in time (from its actor, or from the owning node): it may have
    /// run (504).
    #[error("no reply in time: it may have run")]
    NoReply,
    /// A server fault; the string is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
    /// The configured payment gateway has no hosted checkout page (the offline one): pay with
    /// a card token instead. Last, so the variants before it keep their wire numbers.
    #[error("checkout not supported by this payment gateway")]
    CheckoutNotSupported,
    /// Too many failed sign-ins from this address (or for this account from it): retry after
    /// the seconds given.
    #[error("too many failed sign-ins")]
    Throttled { retry_after_s: u64 },
    /// The node's disk is full: the request's write was refused before anything was queued,
    /// so nothing changed. Reads go on; writes are taken again once space is freed.
    #[error("storage full")]
    StorageFull,
    /// A password reset link that is not (or no longer) valid: unknown, used, replaced by a
    /// newer one, or expired.
    #[error("reset link rejected")]
    ResetRejected,
}

impl AppError {
    /// Whether the client is told the fault is ours (a 5xx): busy, no reply, a full disk, a
    /// bug. Such requests are not counted in the business metrics.
    pub fn is_server_fault(&self) -> bool {
        matches!(self, Self::Unavailable | Self::NoReply | Self::Internal(_) | Self::StorageFull)
    }
}

impl From<EntityError> for AppError {
    fn from(e: EntityError) -> Self {
        match e {
            EntityError::Domain(d) => Self::Domain(d),
            EntityError::Unavailable | EntityError::Overloaded => Self::Unavailable,
            EntityError::NoReply => Self::NoReply,
            EntityError::StorageFull => Self::StorageFull,
            EntityError::Panicked => Self::Internal("actor panicked and is being restarted".into()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<StorageError> for AppError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Full => Self::StorageFull,
            StorageError::NotServed => Self::Unavailable,
            StorageError::Unreplicated => Self::NoReply,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<crate::auth::HashingError> for AppError {
    fn from(e: crate::auth::HashingError) -> Self {
        Self::Internal(e.to_string())
    }
}
