//! Everything that may run on another node, as data: one [`Command`] enum on the wire, and one
//! typed command per variant ([`Routed`]) that fixes its reply type, so a caller decodes exactly
//! the reply its command has: no reply of another command can arrive.
//!
//! An entity command (`actors::ticket`, `actors::order`) travels as [`To<C>`]: the entity's id
//! and the command, whose reply type is the command's own ([`EntityCommand::Reply`]); one
//! generic [`Routed`] impl serves them all.
//!
//! Adding a command: a variant at the **end** of [`Command`] (the wire names variants by
//! position), its typed struct with a [`Routed`] impl (an entity command: its [`Forwarded`]
//! line), its arm in [`Command::slot`] and [`Command::run_here`], and its fixture
//! (`tests/fixtures/wire/`).

use super::here::Here;
pub use super::here::SnapshotPage;
use crate::actors::entity::EntityCommand;
use crate::actors::order::{Cancel, ConfirmPayment, Expire, GetOrder, OrderActor, PassivateOrder, Pay};
use crate::actors::ticket::{
    CreateTicket, GetTicket, InjectPanic, PassivateTicket, Release, Reserve, TicketActor, UpdateTicket, Withdraw,
};
use crate::actors::{wire, Activatable, EntityError, Registry};
use crate::app::account_requests::AccountRequest;
use crate::app::accounts::Session;
use crate::app::error::AppError;
use crate::app::idempotency::{Claim, KeyOutcome};
use crate::deadline::Deadline;
use crate::domain::{Entity, Slot, Ticket, TicketDraft, UserId};
use crate::replication::snapshot::CopyPage;
use crate::storage::HistoryPage;
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// A command as it crosses the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    GetTicket(To<GetTicket>),
    CreateTicket(To<CreateTicket>),
    UpdateTicket(To<UpdateTicket>),
    Reserve(To<Reserve>),
    Release(To<Release>),
    Withdraw(To<Withdraw>),
    PassivateTicket(To<PassivateTicket>),
    InjectPanic(To<InjectPanic>),
    GetOrder(To<GetOrder>),
    Cancel(To<Cancel>),
    Expire(To<Expire>),
    Pay(To<Pay>),
    ConfirmPayment(To<ConfirmPayment>),
    PassivateOrder(To<PassivateOrder>),
    Account(Account),
    CreateKeyed(CreateKeyed),
    Snapshot(SnapshotOf),
    ClaimKey(ClaimKey),
    SettleKey(SettleKey),
    CopyPage(CopyPageOf),
    History(HistoryOf),
    Contact(ContactOf),
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

/// Runs `work` (no actor's: those keep their deadline in the mailbox) until `deadline`; past
/// it, the caller hears "may have run".
async fn within<T, E: From<Unrouted>>(
    deadline: Deadline,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline.instant()), work).await {
        Ok(done) => done,
        Err(_) => Err(Unrouted::MayHaveRun.into()),
    }
}

impl Command {
    /// The slot whose owner runs it.
    pub fn slot(&self) -> Slot {
        match self {
            Self::GetTicket(c) => c.slot(),
            Self::CreateTicket(c) => c.slot(),
            Self::UpdateTicket(c) => c.slot(),
            Self::Reserve(c) => c.slot(),
            Self::Release(c) => c.slot(),
            Self::Withdraw(c) => c.slot(),
            Self::PassivateTicket(c) => c.slot(),
            Self::InjectPanic(c) => c.slot(),
            Self::GetOrder(c) => c.slot(),
            Self::Cancel(c) => c.slot(),
            Self::Expire(c) => c.slot(),
            Self::Pay(c) => c.slot(),
            Self::ConfirmPayment(c) => c.slot(),
            Self::PassivateOrder(c) => c.slot(),
            Self::Account(c) => c.slot(),
            Self::CreateKeyed(c) => c.slot(),
            Self::Snapshot(c) => c.slot(),
            Self::ClaimKey(c) => c.slot(),
            Self::SettleKey(c) => c.slot(),
            Self::CopyPage(c) => c.slot(),
            Self::History(c) => c.slot(),
            Self::Contact(c) => c.slot(),
        }
    }

    /// Runs a command that arrived from another node; its reply in the wire encoding (empty if
    /// it cannot be encoded: the caller then knows only that it may have run).
    pub(super) async fn run_here(self, here: &Here, deadline: Deadline) -> Vec<u8> {
        // After a write, the slot's last event: the forwarding node's lists wait for it. Reads
        // and commands that write no event name none.
        let slot = self.slot();
        let written = |here: &Here| here.store.last_event_seq(slot).map(|seq| (slot, seq));
        match self {
            Self::GetTicket(c) => reply(c.run_here(here, deadline).await, None),
            Self::CreateTicket(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::UpdateTicket(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::Reserve(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::Release(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::Withdraw(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::PassivateTicket(c) => reply(c.run_here(here, deadline).await, None),
            Self::InjectPanic(c) => reply(c.run_here(here, deadline).await, None),
            Self::GetOrder(c) => reply(c.run_here(here, deadline).await, None),
            Self::Cancel(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::Expire(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::Pay(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::ConfirmPayment(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::PassivateOrder(c) => reply(c.run_here(here, deadline).await, None),
            Self::Account(c) => reply(c.run_here(here, deadline).await, None),
            Self::CreateKeyed(c) => reply(c.run_here(here, deadline).await, written(here)),
            Self::Snapshot(c) => reply(c.run_here(here, deadline).await, None),
            Self::ClaimKey(c) => reply(c.run_here(here, deadline).await, None),
            Self::SettleKey(c) => reply(c.run_here(here, deadline).await, None),
            Self::CopyPage(c) => reply(c.run_here(here, deadline).await, None),
            Self::History(c) => reply(c.run_here(here, deadline).await, None),
            Self::Contact(c) => reply(c.run_here(here, deadline).await, None),
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

/// An entity command on its way to the entity `id`: it runs where the entity's slot is served,
/// and answers the command's own reply type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct To<C: EntityCommand> {
    pub id: IdOf<C>,
    pub command: C,
}

/// The id type of the entity a command is for.
pub type IdOf<C> = <<C as EntityCommand>::Actor as Activatable>::Id;

impl<C: Forwarded> To<C> {
    pub fn new(id: IdOf<C>, command: C) -> Self {
        Self { id, command }
    }
}

/// An entity kind served by [`Here`]: where its registry is.
pub trait Hosted: Activatable {
    fn registry(here: &Here) -> &Registry<Self>;
}

impl Hosted for TicketActor {
    fn registry(here: &Here) -> &Registry<Self> {
        &here.tickets
    }
}

impl Hosted for OrderActor {
    fn registry(here: &Here) -> &Registry<Self> {
        &here.orders
    }
}

/// An entity command the router can send: its variant of [`Command`].
pub trait Forwarded: EntityCommand<Actor: Hosted> + Clone + PartialEq {
    fn into_command(to: To<Self>) -> Command;
    /// Whether the test-only fault `drop_forwarded_reply` may drop its reply ([`Routed::droppable`]).
    fn droppable(&self) -> bool {
        false
    }
}

impl<C: Forwarded> From<To<C>> for Command {
    fn from(to: To<C>) -> Self {
        C::into_command(to)
    }
}

/// The one [`Routed`] impl of every entity command: its slot is its entity's, its reply the
/// command's own, and here it is asked of the entity's registry.
impl<C: Forwarded> Routed for To<C> {
    type Ok = C::Reply;
    type Err = EntityError;
    fn slot(&self) -> Slot {
        C::Actor::slot(&self.id)
    }
    fn name(&self) -> &'static str {
        C::NAME
    }
    fn run_here(self, here: &Here, deadline: Deadline) -> LocalBoxFuture<'_, Result<C::Reply, EntityError>> {
        C::Actor::registry(here).ask(self.id, self.command, deadline).boxed_local()
    }
    fn droppable(&self) -> bool {
        self.command.droppable()
    }
}

macro_rules! forwarded {
    ($($typed:ident),+ $(,)?) => {
        $(impl Forwarded for $typed {
            fn into_command(to: To<Self>) -> Command {
                Command::$typed(to)
            }
        })+
    };
}
forwarded!(GetTicket, CreateTicket, UpdateTicket, Release, Withdraw, PassivateTicket, InjectPanic);
forwarded!(GetOrder, Cancel, Expire, Pay, ConfirmPayment, PassivateOrder);

impl Forwarded for Reserve {
    fn into_command(to: To<Self>) -> Command {
        Command::Reserve(to)
    }
    /// A keyed reservation: its retry finds the order the first attempt made.
    fn droppable(&self) -> bool {
        self.order.is_some()
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
    fn run_here(self, here: &Here, deadline: Deadline) -> LocalBoxFuture<'_, Result<Option<Session>, AppError>> {
        within(deadline, here.accounts.serve(self.0, &here.throttle)).boxed_local()
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
    fn run_here(self, here: &Here, deadline: Deadline) -> LocalBoxFuture<'_, Result<Claim, AppError>> {
        async move {
            let claim = crate::app::idempotency::claim(&here.store, &self.digest, self.request_hash).await?;
            // Flushed before the request runs, so a retry after a crash finds the same claim
            // (and derives the same ids); a stalled disk does not hold the request past its
            // deadline here: its own write waits for the disk anyway.
            if matches!(claim, Claim::Claimed { .. }) {
                let until = tokio::time::Instant::from_std(deadline.instant());
                let _ = tokio::time::timeout_at(until, here.store.sync()).await;
            }
            Ok(claim)
        }
        .boxed_local()
    }
}

/// Settles a claimed key: its response kept for replay, or the claim freed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SettleKey {
    pub digest: [u8; 32],
    pub request_hash: [u8; 32],
    /// The run of the key being settled (a late settle of an abandoned run changes nothing).
    pub run: i64,
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
    fn run_here(self, here: &Here, deadline: Deadline) -> LocalBoxFuture<'_, Result<(), AppError>> {
        async move {
            let settle =
                crate::app::idempotency::settle(&here.store, &self.digest, self.request_hash, self.run, self.outcome);
            within(deadline, settle).await
        }
        .boxed_local()
    }
}

/// A page of the owner's copy of a replicated shard, for a follower too far behind the shard's
/// log (`replication::snapshot`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CopyPageOf {
    pub shard: u32,
    /// The shard's first slot: where it is routed.
    pub first_slot: Slot,
    pub after: Option<Vec<u8>>,
}
into_command!(CopyPageOf => CopyPage);

impl Routed for CopyPageOf {
    type Ok = CopyPage;
    type Err = AppError;
    fn slot(&self) -> Slot {
        self.first_slot
    }
    fn name(&self) -> &'static str {
        "CopyPage"
    }
    fn run_here(self, here: &Here, _: Deadline) -> LocalBoxFuture<'_, Result<CopyPage, AppError>> {
        async move {
            if here.map.shard_of(self.first_slot) != crate::cluster::Shard(self.shard) {
                return Err(AppError::Unavailable);
            }
            crate::replication::snapshot::page(&here.store, self.shard, self.after).await.map_err(|why| {
                tracing::warn!(shard = self.shard, why, "a snapshot page was not sent");
                AppError::Unavailable
            })
        }
        .boxed_local()
    }
}

/// A page of an entity's kept events (its audit trail), read where its shard is served: the
/// history lives with the entity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryOf {
    pub entity: Entity,
    /// The last outbox number the reader has seen (0: from the start).
    pub after: u64,
    pub limit: u32,
}
into_command!(HistoryOf => History);

impl Routed for HistoryOf {
    type Ok = HistoryPage;
    type Err = AppError;
    fn slot(&self) -> Slot {
        self.entity.slot()
    }
    fn name(&self) -> &'static str {
        "History"
    }
    fn run_here(self, here: &Here, _: Deadline) -> LocalBoxFuture<'_, Result<HistoryPage, AppError>> {
        async move { Ok(here.store.history(&self.entity, self.after, self.limit as usize)?) }.boxed_local()
    }
}

/// A user's address, read where their account lives (mail to them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContactOf {
    pub user: UserId,
}
into_command!(ContactOf => Contact);

impl Routed for ContactOf {
    /// `None`: no such account.
    type Ok = Option<String>;
    type Err = AppError;
    fn slot(&self) -> Slot {
        self.user.slot()
    }
    fn name(&self) -> &'static str {
        "Contact"
    }
    fn run_here(self, here: &Here, _: Deadline) -> LocalBoxFuture<'_, Result<Option<String>, AppError>> {
        async move {
            let user = here.store.get::<crate::domain::User>(&crate::storage::keys::user(&self.user))?;
            Ok(user.map(|u| u.email.as_str().to_string()))
        }
        .boxed_local()
    }
}
