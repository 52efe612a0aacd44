//! The account use cases as requests: what a node sends to the node that owns a user's slot
//! (`crate::routing`), and how that node serves them, under both sign-in throttles.

use super::accounts::{refresh_slot, Accounts, Session};
use super::error::AppError;
use super::throttle::SignInThrottle;
use crate::domain::{Email, Password, Slot};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An account use case (the wire names variants by position: append only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountRequest {
    SignUp {
        email: String,
        password: String,
    },
    /// A sign-in with the client's address, for the account's own throttle.
    SignIn {
        email: String,
        password: String,
        client: String,
    },
    Refresh {
        token: String,
    },
    SignOut {
        token: String,
    },
    /// A new access token for a valid refresh token, which stays as it is.
    Renew {
        token: String,
    },
    /// A password reset link mailed to `email`'s account, if there is one (the answer is the
    /// same either way); throttled by the client's address and the account.
    RequestReset {
        email: String,
        client: String,
    },
    /// A new password with a reset link's token: every session of the account ends.
    ResetPassword {
        token: String,
        password: String,
    },
}

impl AccountRequest {
    /// The slot of the user it is about: its email's, or its refresh token's; `None` when
    /// malformed.
    pub fn slot(&self) -> Option<Slot> {
        match self {
            Self::SignUp { email, .. } | Self::SignIn { email, .. } | Self::RequestReset { email, .. } => {
                Email::parse(email).map(|e| Slot::of_text(e.as_str()))
            }
            Self::ResetPassword { token, .. } => crate::auth::reset::user_of(token).map(|u| u.slot()),
            Self::Refresh { token } | Self::SignOut { token } | Self::Renew { token } => refresh_slot(token),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::SignUp { .. } => "SignUp",
            Self::SignIn { .. } => "SignIn",
            Self::Refresh { .. } => "Refresh",
            Self::SignOut { .. } => "SignOut",
            Self::Renew { .. } => "Renew",
            Self::RequestReset { .. } => "RequestReset",
            Self::ResetPassword { .. } => "ResetPassword",
        }
    }
}

impl Accounts {
    /// Serves `request` on the node owning the user's slot: its session, if it made one (the
    /// password hash cleared: the session may leave the node).
    pub async fn serve(&self, request: AccountRequest, throttle: &SignInThrottle) -> Result<Option<Session>, AppError> {
        let session = match request {
            AccountRequest::SignUp { email, password } => {
                let email = Email::parse(&email).ok_or(AppError::InvalidCredentials)?;
                let password = Password::parse(&password).ok_or(AppError::InvalidCredentials)?;
                self.sign_up(email, password).await?
            }
            AccountRequest::SignIn { email, password, client } => {
                self.throttled_sign_in(&email, &password, client, throttle).await?
            }
            AccountRequest::Refresh { token } => self.refresh(&token).await?,
            AccountRequest::Renew { token } => match self.renew(&token).await? {
                Some(session) => session,
                None => return Ok(None),
            },
            AccountRequest::SignOut { token } => {
                self.sign_out(&token).await?;
                return Ok(None);
            }
            AccountRequest::RequestReset { email, client } => {
                // Parsed at the edge of the node that took the request: always an address.
                let Some(email) = Email::parse(&email) else { return Ok(None) };
                // Every request counts, sent or not (the answer is the same either way).
                let account = email.as_str().to_string();
                let refused = throttle.resets_by_address.refused_for(&client);
                if let Some(wait) = refused.or_else(|| throttle.resets_by_account.refused_for(&account)) {
                    return Err(throttled(wait));
                }
                throttle.resets_by_address.failed(&client);
                throttle.resets_by_account.failed(&account);
                self.request_reset(&email).await?;
                return Ok(None);
            }
            AccountRequest::ResetPassword { token, password } => {
                let password = Password::parse(&password).ok_or(AppError::InvalidCredentials)?;
                self.reset_password(&token, password).await?;
                return Ok(None);
            }
        };
        Ok(Some(Session { user: crate::domain::User { password_hash: String::new(), ..session.user }, ..session }))
    }

    /// A sign-in on the account's own node, under both throttles: asked again when the
    /// attempt's turn to hash comes, and both count its failure.
    async fn throttled_sign_in(
        &self,
        email: &str,
        password: &str,
        client: String,
        throttle: &SignInThrottle,
    ) -> Result<Session, AppError> {
        let email = Email::parse(email).ok_or(AppError::InvalidCredentials)?;
        let key = (email.as_str().to_string(), client);
        let admit = || match throttle.by_address.refused_for(&key.1).or_else(|| throttle.by_account.refused_for(&key)) {
            Some(wait) => Err(throttled(wait)),
            None => Ok(()),
        };
        let failed = || {
            throttle.by_account.failed(&key);
            throttle.by_address.failed(&key.1);
        };
        self.sign_in(&email, password, admit, failed).await
    }
}

/// A throttle's refusal, with whole seconds to wait (at least one).
pub fn throttled(wait: Duration) -> AppError {
    AppError::Throttled { retry_after_s: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
}
