//! Everything that may run on another node, as data: one [`Command`] enum on the wire, and one
//! typed command per variant ([`Routed`]) that fixes its reply type, so a caller decodes exactly
//! the reply its command has and no "unexpected reply" can arise.
//!
//! Adding a command: a variant at the **end** of [`Command`] (the wire names variants by
//! position), its typed struct with a [`Routed`] impl, its arm in [`Command::run_here`], and its
//! fixture (`tests/fixtures/wire/`).

use super::here::Here;
pub use super::here::SnapshotPage;
use crate::actors::order::{OrderCommand, OrderReply};
use crate::actors::ticket::{TicketCommand, TicketReply};
use crate::actors::{wire, EntityError};
use crate::app::account_requests::AccountRequest;
use crate::app::accounts::Session;
use crate::app::error::AppError;
use crate::app::idempotency::{Claim, KeyOutcome};
use crate::deadline::Deadline;
use crate::domain::{OrderId, Slot, Ticket, TicketDraft, TicketId, UserId};
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// A command as it crosses the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    Ticket(ToTicket),
    Order(ToOrder),
    Account(Account),
    CreateKeyed(CreateKeyed),
    Snapshot(SnapshotOf),
    ClaimKey(ClaimKey),
    SettleKey(SettleKey),
}

/// A typed command: where it runs (its slot), what it answers, and how it runs on the node that
/// owns its slot.
pub trait Routed: Clone + Serialize + DeserializeOwned + Into<Command> + 'static {
    type Ok: Serialize + DeserializeOwned + 'static;
    /// Its refusals; also how "not run" and "may have run" reach its caller.
    type Err: Serialize + DeserializeOwned + From<Unrouted> + 'static;

    /// The slot whose owner runs it.
    fn slot(&self) -> Slot;
    /// Its name, for spans and logs.
    fn name(&self) -> &'static str;
    /// Runs it here (this node serves its slot).
    fn run_here(self, here: &Here, deadline: Deadline) -> LocalBoxFuture<'_, Result<Self::Ok, Self::Err>>;
    /// Whether the test-only fault `drop_forwarded_reply` may drop its reply (keyed writes,
    /// whose retry must find what the first attempt did).
    fn droppable(&self) -> bool {
        false
    }
}

/// Why a command got no answer from where it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unrouted {
    /// Provably not run: answer 503, a retry is safe.
    NotRun,
    /// It may have run: answer 504.
    MayHaveRun,
}

impl From<Unrouted> for EntityError {
    fn from(u: Unrouted) -> Self {
        match u {
            Unrouted::NotRun => Self::Unavailable,
            Unrouted::MayHaveRun => Self::NoReply,
        }
    }
}

impl From<Unrouted> for AppError {
    fn from(u: Unrouted) -> Self {
        match u {
            Unrouted::NotRun => Self::Unavailable,
            Unrouted::MayHaveRun => Self::NoReply,
        }
    }
}

impl Command {
    /// The slot whose owner runs it.
    pub fn slot(&self) -> Slot {
        match self {
            Self::Ticket(c) => c.slot(),
            Self::Order(c) => c.slot(),
            Self::Account(c) => c.slot(),
            Self::CreateKeyed(c) => c.slot(),
            Self::Snapshot(c) => c.slot(),
            Self::ClaimKey(c) => c.slot(),
            Self::SettleKey(c) => c.slot(),
        }
    }

    /// Runs a command that arrived from another node; its reply in the wire encoding (empty if
    /// it cannot be encoded: the caller then knows only that it may have run).
    pub(super) async fn run_here(self, here: &Here, deadline: Deadline) -> Vec<u8> {
        let slot = self.slot();
        let written = |here: &Here| here.store.last_event_seq(slot).map(|seq| (slot, seq));
        match self {
            Self::Ticket(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::Order(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::Account(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::CreateKeyed(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::Snapshot(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::ClaimKey(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::SettleKey(c) => reply(c.run_here(here, deadline).await, written(here)),
        }
    }
}

/// A command's reply as it crosses the wire: its result, and the owner's last event number in
/// the command's slot once it ran (read your own writes: `super::freshness`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Served<T, E> {
    pub result: Result<T, E>,
    pub written: Option<(Slot, u64)>,
}

fn reply<T: Serialize, E: Serialize>(result: Result<T, E>, written: Option<(Slot, u64)>) -> Vec<u8> {
    wire::encode(&Served { result, written }).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a reply could not be encoded");
        Vec::new()
    })
}

macro_rules! into_command {
    ($typed:ident => $variant:ident) => {
        impl From<$typed> for Command {
            fn from(c: $typed) -> Self {
                Command::$variant(c)
            }
        }
    };
}

/// A command to a ticket's actor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToTicket {
    pub id: TicketId,
    pub command: TicketCommand,
}
into_command!(ToTicket => Ticket);

impl Routed for ToTicket {
    type Ok = TicketReply;
    type Err = EntityError;
    fn slot(&self) -> Slot {
        self.id.slot()
    }
    fn name(&self) -> &'static str {
        <crate::actors::ticket::TicketActor as crate::actors::Entity>::command_name(&self.command)
    }
    fn run_here(self, here: &Here, deadline: Deadline) -> LocalBoxFuture<'_, Result<TicketReply, EntityError>> {
        here.tickets.ask(self.id, self.command, deadline).boxed_local()
    }
    fn droppable(&self) -> bool {
        matches!(self.command, TicketCommand::Reserve { order: Some(_), .. })
    }
}

/// A command to an order's actor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToOrder {
    pub id: OrderId,
    pub command: OrderCommand,
}
into_command!(ToOrder => Order);

impl Routed for ToOrder {
    type Ok = OrderReply;
    type Err = EntityError;
    fn slot(&self) -> Slot {
        self.id.slot()
    }
    fn name(&self) -> &'static str {
        <crate::actors::order::OrderActor as crate::actors::Entity>::command_name(&self.command)
    }
    fn run_here(self, here: &Here, deadline: Deadline) -> LocalBoxFuture<'_, Result<OrderReply, EntityError>> {
        here.orders.ask(self.id, self.command, deadline).boxed_local()
    }
}

/// An account use case, on the node owning the user's slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Account(pub AccountRequest);
into_command!(Account => Account);

impl Routed for Account {
    type Ok = Option<Session>;
    type Err = AppError;
    fn slot(&self) -> Slot {
        // A request without a slot (a malformed token) is refused before it is routed.
        self.0.slot().unwrap_or(Slot(0))
    }
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn run_here(self, here: &Here, _: Deadline) -> LocalBoxFuture<'_, Result<Option<Session>, AppError>> {
        here.accounts.serve(self.0, &here.throttle).boxed_local()
    }
}

/// A ticket created with an `Idempotency-Key` (its digest `key`): it lives in the key's slot,
/// on the node that also keeps which ticket the key made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateKeyed {
    pub seller: UserId,
    pub draft: TicketDraft,
    pub key: [u8; 32],
}
into_command!(CreateKeyed => CreateKeyed);

impl Routed for CreateKeyed {
    type Ok = Ticket;
    type Err = AppError;
    fn slot(&self) -> Slot {
        crate::storage::keys::slot_of_digest(&self.key)
    }
    fn name(&self) -> &'static str {
        "CreateKeyed"
    }
    fn run_here(self, here: &Here, deadline: Deadline) -> LocalBoxFuture<'_, Result<Ticket, AppError>> {
        here.create_keyed(self.seller, self.draft, self.key, deadline).boxed_local()
    }
    fn droppable(&self) -> bool {
        true
    }
}

/// A page of the tickets (then orders) of a shard, for a node bootstrapping its read model:
/// those after `after` (a disk key), in key order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotOf {
    pub shard: u32,
    /// The shard's first slot: where it is routed.
    pub first_slot: Slot,
    pub orders: bool,
    pub after: Option<Vec<u8>>,
}
into_command!(SnapshotOf => Snapshot);

impl Routed for SnapshotOf {
    type Ok = SnapshotPage;
    type Err = AppError;
    fn slot(&self) -> Slot {
        self.first_slot
    }
    fn name(&self) -> &'static str {
        "Snapshot"
    }
    fn run_here(self, here: &Here, _: Deadline) -> LocalBoxFuture<'_, Result<SnapshotPage, AppError>> {
        async move { here.snapshot_page(self.shard, self.orders, self.after) }.boxed_local()
    }
}

/// Claims an `Idempotency-Key` (its digest) for a request whose content hashes to
/// `request_hash`, on the node owning the digest's slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimKey {
    pub digest: [u8; 32],
    pub request_hash: [u8; 32],
}
into_command!(ClaimKey => ClaimKey);

impl Routed for ClaimKey {
    type Ok = Claim;
    type Err = AppError;
    fn slot(&self) -> Slot {
        crate::storage::keys::slot_of_digest(&self.digest)
    }
    fn name(&self) -> &'static str {
        "ClaimKey"
    }
    fn run_here(self, here: &Here, _: Deadline) -> LocalBoxFuture<'_, Result<Claim, AppError>> {
        async move { crate::app::idempotency::claim(&here.store, &self.digest, self.request_hash) }.boxed_local()
    }
}

/// Settles a claimed key: its response kept for replay, or the claim freed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SettleKey {
    pub digest: [u8; 32],
    pub request_hash: [u8; 32],
    pub outcome: KeyOutcome,
}
into_command!(SettleKey => SettleKey);

impl Routed for SettleKey {
    type Ok = ();
    type Err = AppError;
    fn slot(&self) -> Slot {
        crate::storage::keys::slot_of_digest(&self.digest)
    }
    fn name(&self) -> &'static str {
        "SettleKey"
    }
    fn run_here(self, here: &Here, _: Deadline) -> LocalBoxFuture<'_, Result<(), AppError>> {
        async move { crate::app::idempotency::settle(&here.store, &self.digest, self.request_hash, self.outcome).await }
            .boxed_local()
    }
}
