//! The application's side of the cluster: account use cases routed to the node that owns the
//! user's slot, and what this node runs for other nodes (the `cluster::Handler`): their
//! forwarded requests, and their events for this node's read model.
//!
//! A node joining a running cluster fills its read model from the other nodes' records once
//! (`bootstrap_read_model`); after that, events keep it current.
//!
//! A write forwarded to another node is also applied to this node's read model from its reply
//! before the client gets the answer, so a client reads its own writes through the node it
//! used; the owner's event, arriving later, changes nothing (rows carry versions).

use super::{App, AppError, Session};
use crate::cluster::messages::{AccountRequest, Reply, Request, SnapshotPage};
use crate::cluster::{Handler, Place, Shard};
use crate::domain::{Email, Event, Password, Slot};
use crate::storage::{envelope, keys};
use futures_util::future::LocalBoxFuture;
use std::time::Duration;

/// An account use case waits this long for the owning node (argon2 takes ~50 ms per hash).
const ACCOUNT_TIMEOUT: Duration = Duration::from_secs(10);

impl App {
    pub async fn sign_up(&self, email: Email, password: Password) -> Result<Session, AppError> {
        self.session(AccountRequest::SignUp { email: email.as_str().into(), password: password.expose().into() }).await
    }

    /// Signs in from `client` (the caller's address): refused while that address, or this
    /// account from it, has failed too often (`throttle`). The account's node decides (and
    /// counts) both; this node refuses an address it already knows to be blocked at once, and
    /// counts the failures of accounts that live elsewhere.
    pub async fn sign_in(&self, email: &Email, password: &str, client: &str) -> Result<Session, AppError> {
        let address = client.to_string();
        if let Some(wait) = self.throttle.by_address.refused_for(&address) {
            return Err(throttled(wait));
        }
        let request = AccountRequest::SignInFrom {
            email: email.as_str().into(),
            password: password.into(),
            client: address.clone(),
        };
        let local = self.entities.place(Slot::of_text(email.as_str())) == Place::Local;
        let result = self.session(request).await;
        if !local && matches!(result, Err(AppError::InvalidCredentials)) {
            self.throttle.by_address.failed(&address);
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

    async fn session(&self, request: AccountRequest) -> Result<Session, AppError> {
        self.account(request).await?.ok_or_else(|| AppError::Internal("no session in the reply".into()))
    }

    /// Runs an account use case here or on the node owning the user's slot: its session, if
    /// it made one.
    async fn account(&self, request: AccountRequest) -> Result<Option<Session>, AppError> {
        let slot = account_slot(&request).ok_or(AppError::RefreshRejected)?;
        match self.entities.place(slot) {
            Place::Local => self.serve_account(request).await,
            place => match self.forward(place, Request::Account(request), ACCOUNT_TIMEOUT).await? {
                Reply::Account(result) => result,
                _ => Err(AppError::Internal("an unexpected reply to an account request".into())),
            },
        }
    }

    /// Sends `request` to the node that owns `place` and waits for its reply. A shard this
    /// node owns but does not serve now, or a refusal by the owner, is 503.
    pub(super) async fn forward(&self, place: Place, request: Request, timeout: Duration) -> Result<Reply, AppError> {
        let (Place::Remote(shard), Some(cluster)) = (place, self.entities.cluster()) else {
            return Err(AppError::Unavailable);
        };
        match cluster.forward(shard, &request, timeout).await? {
            Reply::Refused(reason) => {
                tracing::warn!(shard = shard.0, reason, "the owning node refused a forwarded request");
                Err(AppError::Unavailable)
            }
            reply => Ok(reply),
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
            // From a node of the previous release: throttled as one unknown address.
            AccountRequest::SignIn { email, password } => {
                self.throttled_sign_in(&email, &password, "legacy".into()).await?
            }
            AccountRequest::SignInFrom { email, password, client } => {
                self.throttled_sign_in(&email, &password, client).await?
            }
            AccountRequest::Refresh { token } => self.accounts.refresh(&token).await?,
            AccountRequest::Renew { token } => match self.accounts.renew(&token).await? {
                Some(session) => session,
                None => return Ok(None),
            },
            AccountRequest::SignOut { token } => {
                self.accounts.sign_out(&token).await?;
                return Ok(None);
            }
        };
        Ok(Some(Session { user: crate::domain::User { password_hash: String::new(), ..session.user }, ..session }))
    }
}

impl App {
    /// A sign-in on the account's own node, under both throttles: asked again when the
    /// attempt's turn to hash comes, and both count its failure.
    async fn throttled_sign_in(&self, email: &str, password: &str, client: String) -> Result<Session, AppError> {
        let email = Email::parse(email).ok_or(AppError::InvalidCredentials)?;
        let key = (email.as_str().to_string(), client);
        let throttle = &self.throttle;
        let admit = || match throttle.by_address.refused_for(&key.1).or_else(|| throttle.by_account.refused_for(&key)) {
            Some(wait) => Err(throttled(wait)),
            None => Ok(()),
        };
        let signed_in = self.accounts.sign_in(&email, password, admit).await;
        if matches!(signed_in, Err(AppError::InvalidCredentials)) {
            throttle.by_account.failed(&key);
            throttle.by_address.failed(&key.1);
        }
        signed_in
    }
}

/// A throttle's refusal, with whole seconds to wait (at least one).
fn throttled(wait: Duration) -> AppError {
    AppError::Throttled { retry_after_s: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
}

/// The slot of the user an account request is about: its email's, or its refresh token's.
fn account_slot(request: &AccountRequest) -> Option<Slot> {
    match request {
        AccountRequest::SignUp { email, .. }
        | AccountRequest::SignIn { email, .. }
        | AccountRequest::SignInFrom { email, .. } => Email::parse(email).map(|e| Slot::of_text(e.as_str())),
        AccountRequest::Refresh { token } | AccountRequest::SignOut { token } | AccountRequest::Renew { token } => {
            super::accounts::refresh_slot(token)
        }
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
                    if account_slot(&request).is_some_and(|s| self.entities.place(s) != Place::Local) {
                        return Reply::Account(Err(AppError::Unavailable));
                    }
                    Reply::Account(self.serve_account(request).await)
                }
                Request::Snapshot { shard, orders, after } => Reply::Snapshot(self.snapshot_page(shard, orders, after)),
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

/// Entities per snapshot page.
const SNAPSHOT_PAGE: usize = 500;

impl App {
    /// A page of the tickets (or orders) of a shard this node serves.
    fn snapshot_page(&self, shard: u32, orders: bool, after: Option<Vec<u8>>) -> Result<SnapshotPage, AppError> {
        let cluster = self.entities.cluster().ok_or(AppError::Unavailable)?;
        let map = cluster.map();
        if shard >= map.shard_count() {
            return Err(AppError::Unavailable);
        }
        let slots = map.slots(Shard(shard));
        if self.entities.place(Slot(slots.start as u16)) != Place::Local {
            return Err(AppError::Unavailable);
        }
        let kind = if orders { keys::ORDER } else { keys::TICKET };
        let rows = self.store.scan_kind_in_slots(kind, slots, after.as_deref(), SNAPSHOT_PAGE)?;
        let next = if rows.len() == SNAPSHOT_PAGE { rows.last().map(|(k, _)| k.clone()) } else { None };
        let mut page = SnapshotPage { next, ..SnapshotPage::default() };
        for (key, value) in rows {
            if orders {
                page.orders.push(envelope::decode(&key, &value)?);
            } else {
                page.tickets.push(envelope::decode(&key, &value)?);
            }
        }
        Ok(page)
    }

    /// Fills this node's read model with the entities other nodes already hold, once per data
    /// dir and map epoch: a node that joins a running cluster lists what was sold before it
    /// joined. Events published meanwhile queue in this node's event queue and apply after
    /// (rows carry versions, so the order does not matter). Owners that cannot be reached are
    /// retried, with backoff, until every shard is done.
    pub async fn bootstrap_read_model(self: std::sync::Arc<Self>) {
        let Some(cluster) = self.entities.cluster().cloned() else { return };
        let map = cluster.map();
        let flag = format!("read-model-bootstrapped:{}:{}", self.settings.cluster.name, map.epoch());
        if matches!(self.store.meta(&flag), Ok(Some(_))) {
            return;
        }
        let started = std::time::Instant::now();
        let mut pending: Vec<Shard> = (0..map.shard_count()).map(Shard).filter(|s| !map.is_mine(*s)).collect();
        let (mut pause, mut entities) = (Duration::from_millis(500), 0);
        loop {
            let mut failed = Vec::new();
            for shard in pending {
                match self.bootstrap_shard(shard).await {
                    Ok(n) => entities += n,
                    Err(_) => failed.push(shard),
                }
            }
            if failed.is_empty() {
                if let Err(e) = self.store.set_meta(&flag, b"1") {
                    tracing::warn!(error = %e, "the read model's bootstrap could not be recorded");
                }
                let took_ms = started.elapsed().as_millis() as u64;
                tracing::info!(entities, took_ms, "read model bootstrapped from the other nodes");
                return;
            }
            tracing::warn!(shards = failed.len(), "read model bootstrap: owners not reachable yet; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(30));
            pending = failed;
        }
    }

    async fn bootstrap_shard(&self, shard: Shard) -> Result<usize, AppError> {
        let mut learned = 0;
        // Tickets first: a complete order then marks its ticket's listing sold.
        for orders in [false, true] {
            let mut after = None;
            loop {
                let request = Request::Snapshot { shard: shard.0, orders, after: after.take() };
                let page = match self.forward(Place::Remote(shard), request, Duration::from_secs(10)).await? {
                    Reply::Snapshot(page) => page?,
                    _ => return Err(AppError::Unavailable),
                };
                for ticket in page.tickets {
                    self.read_model.apply(&Event::TicketUpdated(ticket))?;
                    learned += 1;
                }
                for order in &page.orders {
                    self.read_model.apply_order_snapshot(order)?;
                    learned += 1;
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        Ok(learned)
    }
}
