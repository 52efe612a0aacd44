//! Use cases of users: sign up, sign in, refresh, renew, sign out. Each is an account request
//! run on the node that owns the user's slot (`crate::routing`).

use super::account_requests::{throttled, AccountRequest};
use super::{App, AppError, Session};
use crate::domain::{Email, Password};
use crate::routing::command::Account;
use crate::routing::Place;

impl App {
    pub async fn sign_up(&self, email: Email, password: Password) -> Result<Session, AppError> {
        self.session(AccountRequest::SignUp { email: email.as_str().into(), password: password.expose().into() }).await
    }

    /// Signs in from `client` (the caller's address): refused while that address, or this
    /// account from it, has failed too often (`throttle`). The account's node decides (and
    /// counts) both; this node refuses an address it already knows to be blocked at once, and
    /// counts the failures of accounts that live elsewhere.
    pub async fn sign_in(&self, email: &Email, password: &str, client: &str) -> Result<Session, AppError> {
        let throttle = &self.router.here().throttle;
        let address = client.to_string();
        if let Some(wait) = throttle.by_address.refused_for(&address) {
            return Err(throttled(wait));
        }
        let request =
            AccountRequest::SignIn { email: email.as_str().into(), password: password.into(), client: address.clone() };
        let local = request.slot().is_some_and(|slot| self.router.place(slot) == Place::Local);
        let result = self.session(request).await;
        if !local && matches!(result, Err(AppError::InvalidCredentials)) {
            throttle.by_address.failed(&address);
        }
        result
    }

    pub async fn refresh(&self, token: &str) -> Result<Session, AppError> {
        self.session(AccountRequest::Refresh { token: token.into() }).await
    }

    /// A new access token for a live refresh token, without rotating it (see
    /// [`Accounts::renew`](super::Accounts::renew)).
    /// `None`: the token was spent by an explicit refresh.
    pub async fn renew_session(&self, token: &str) -> Result<Option<Session>, AppError> {
        self.account(AccountRequest::Renew { token: token.into() }).await
    }

    /// Unknown or malformed tokens are ignored.
    pub async fn sign_out(&self, token: &str) -> Result<(), AppError> {
        if super::accounts::refresh_slot(token).is_none() {
            return Ok(());
        }
        self.account(AccountRequest::SignOut { token: token.into() }).await.map(|_| ())
    }

    /// Mails a password reset link to `email`'s account, if there is one (nothing tells whether
    /// there is), asked from `client` (the caller's address: requests are throttled like
    /// failed sign-ins).
    pub async fn request_password_reset(&self, email: &Email, client: &str) -> Result<(), AppError> {
        let throttle = &self.router.here().throttle;
        if let Some(wait) = throttle.resets_by_address.refused_for(&client.to_string()) {
            return Err(throttled(wait));
        }
        self.account(AccountRequest::RequestReset { email: email.as_str().into(), client: client.into() }).await?;
        Ok(())
    }

    /// A new password with a reset link's token; every session of the account ends.
    pub async fn reset_password(&self, token: &str, password: Password) -> Result<(), AppError> {
        if crate::auth::reset::user_of(token).is_none() {
            return Err(AppError::ResetRejected);
        }
        let request = AccountRequest::ResetPassword { token: token.into(), password: password.expose().into() };
        self.account(request).await?;
        Ok(())
    }

    async fn session(&self, request: AccountRequest) -> Result<Session, AppError> {
        self.account(request).await?.ok_or_else(|| AppError::Internal("no session in the reply".into()))
    }

    /// Runs an account use case on the node owning the user's slot: its session, if it made one.
    async fn account(&self, request: AccountRequest) -> Result<Option<Session>, AppError> {
        if request.slot().is_none() {
            return Err(AppError::RefreshRejected);
        }
        self.router.ask_until(Account(request), crate::deadline::Deadline::after(ACCOUNT_TIMEOUT)).await
    }
}

/// An account use case waits this long for the owning node (argon2 takes ~50 ms per hash).
const ACCOUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
