//! The application's side of the cluster: account use cases routed to the node that owns the
//! user's slot, and what this node runs for other nodes (the `cluster::Handler`): their
//! forwarded requests, and their events for this node's read model.
//!
//! A write forwarded to another node is also applied to this node's read model from its reply
//! before the client gets the answer, so a client reads its own writes through the node it
//! used; the owner's event, arriving later, changes nothing (rows carry versions).

use super::{App, AppError, Session};
use crate::cluster::messages::{AccountRequest, Reply, Request};
use crate::cluster::{Handler, Place};
use crate::domain::{Email, Event, Password, Slot};
use futures_util::future::LocalBoxFuture;
use std::time::Duration;

/// An account use case waits this long for the owning node (argon2 takes ~50 ms per hash).
const ACCOUNT_TIMEOUT: Duration = Duration::from_secs(10);

impl App {
    pub async fn sign_up(&self, email: Email, password: Password) -> Result<Session, AppError> {
        match self.entities.place(Slot::of_text(email.as_str())) {
            Place::Local => self.accounts.sign_up(email, password).await,
            place => {
                let request =
                    AccountRequest::SignUp { email: email.as_str().into(), password: password.expose().into() };
                self.session_elsewhere(place, request).await
            }
        }
    }

    pub async fn sign_in(&self, email: &Email, password: &str) -> Result<Session, AppError> {
        match self.entities.place(Slot::of_text(email.as_str())) {
            Place::Local => self.accounts.sign_in(email, password).await,
            place => {
                let request = AccountRequest::SignIn { email: email.as_str().into(), password: password.into() };
                self.session_elsewhere(place, request).await
            }
        }
    }

    pub async fn refresh(&self, token: &str) -> Result<Session, AppError> {
        let slot = super::accounts::refresh_slot(token).ok_or(AppError::RefreshRejected)?;
        match self.entities.place(slot) {
            Place::Local => self.accounts.refresh(token).await,
            place => self.session_elsewhere(place, AccountRequest::Refresh { token: token.into() }).await,
        }
    }

    pub async fn sign_out(&self, token: &str) -> Result<(), AppError> {
        let Some(slot) = super::accounts::refresh_slot(token) else { return Ok(()) };
        match self.entities.place(slot) {
            Place::Local => self.accounts.sign_out(token).await,
            place => self.account_elsewhere(place, AccountRequest::SignOut { token: token.into() }).await.map(|_| ()),
        }
    }

    async fn session_elsewhere(&self, place: Place, request: AccountRequest) -> Result<Session, AppError> {
        self.account_elsewhere(place, request)
            .await?
            .ok_or_else(|| AppError::Internal("no session in the reply".into()))
    }

    /// Runs an account use case on the node owning the user's slot: its session, if it made one.
    async fn account_elsewhere(&self, place: Place, request: AccountRequest) -> Result<Option<Session>, AppError> {
        let (Place::Remote(shard), Some(cluster)) = (place, self.entities.cluster()) else {
            return Err(AppError::Unavailable);
        };
        match cluster.forward(shard, &Request::Account(request), ACCOUNT_TIMEOUT).await? {
            Reply::Account(result) => result,
            Reply::Refused(reason) => {
                tracing::warn!(reason, "the owning node refused an account request");
                Err(AppError::Unavailable)
            }
            Reply::Entity(_) | Reply::Ticket(_) => {
                Err(AppError::Internal("an unexpected reply to an account request".into()))
            }
        }
    }

    /// Applies a forwarded write's result to this node's read model (read your own writes).
    pub(super) fn learn(&self, slot: Slot, event: Event) {
        if matches!(self.entities.place(slot), Place::Remote(_)) {
            if let Err(e) = self.read_model.apply(&event) {
                tracing::warn!(error = %e, "a forwarded write could not be applied to the read model");
            }
        }
    }

    async fn serve_account(&self, request: AccountRequest) -> Result<Option<Session>, AppError> {
        let session = match request {
            AccountRequest::SignUp { email, password } => {
                let email = Email::parse(&email).ok_or(AppError::InvalidCredentials)?;
                let password = Password::parse(&password).ok_or(AppError::InvalidCredentials)?;
                self.accounts.sign_up(email, password).await?
            }
            AccountRequest::SignIn { email, password } => {
                let email = Email::parse(&email).ok_or(AppError::InvalidCredentials)?;
                self.accounts.sign_in(&email, &password).await?
            }
            AccountRequest::Refresh { token } => self.accounts.refresh(&token).await?,
            AccountRequest::SignOut { token } => {
                self.accounts.sign_out(&token).await?;
                return Ok(None);
            }
        };
        Ok(Some(Session { user: crate::domain::User { password_hash: String::new(), ..session.user }, ..session }))
    }
}

impl Handler for App {
    fn serve(&self, request: Request) -> LocalBoxFuture<'_, Reply> {
        Box::pin(async move {
            match request {
                Request::Entity { kind, id, command, timeout_ms } => {
                    let timeout = timeout_ms.map(Duration::from_millis);
                    Reply::Entity(self.entities.ask_forwarded(&kind, &id, &command, timeout).await)
                }
                Request::Account(request) => {
                    // Only for a user this node serves: a request is never forwarded twice.
                    let slot = match &request {
                        AccountRequest::SignUp { email, .. } | AccountRequest::SignIn { email, .. } => {
                            Email::parse(email).map(|e| Slot::of_text(e.as_str()))
                        }
                        AccountRequest::Refresh { token } | AccountRequest::SignOut { token } => {
                            super::accounts::refresh_slot(token)
                        }
                    };
                    if slot.is_some_and(|s| self.entities.place(s) != Place::Local) {
                        return Reply::Account(Err(AppError::Unavailable));
                    }
                    Reply::Account(self.serve_account(request).await)
                }
                Request::CreateTicket { seller, draft, key } => {
                    if self.entities.place(crate::storage::keys::slot_of_digest(&key)) != Place::Local {
                        return Reply::Ticket(Err(AppError::Unavailable));
                    }
                    Reply::Ticket(self.create_ticket(seller, draft, Some(key)).await)
                }
            }
        })
    }

    fn apply_event(&self, event: &Event) -> Result<(), String> {
        self.read_model.apply(event).map_err(|e| e.to_string())
    }
}
