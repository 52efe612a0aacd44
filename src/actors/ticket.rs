//! The ticket actor: the only writer of one ticket, and so the single point that grants a
//! reservation. Its mailbox order is the ticket's version order.
//!
//! # A reservation is one write
//!
//! [`TicketCommand::Reserve`] holds the ticket for a new order and, in the **same batch** (one
//! slot, one flush), writes that order (`created`), the order's deadline in the index of
//! unfinished work, and the `ticket:updated` and `order:created` events. The order's id is
//! made in the ticket's slot, so all of it is one slot's data, owned by one node. There is no
//! instant at which the ticket is held by an order that does not exist:
//!
//! * crash before the flush: nothing happened (the request was not acknowledged);
//! * crash after it: a normal order, expired by its deadline (re-armed at start-up) or paid.
//!
//! From its birth on, the order and its deadline are written only by the order actor.

use super::deadlines::{track_unfinished_work, Deadlines};
use super::durable::{done, Durable, DurableCell, Step};
use super::entity::Entity;
use super::faults::Faults;
use super::{Activatable, EntityError, RegistryLink};
use crate::domain::{now_ms, DomainError, Order, OrderId, Rule, Slot, Ticket, TicketDraft, TicketId, UserId};
use crate::storage::{keys, Marker, Store};
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What can be asked of a ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketCommand {
    /// The ticket as this actor holds it.
    Get,
    /// Creates the ticket under this actor's (fresh) id.
    Create { seller: UserId, draft: TicketDraft },
    /// The owner edits title and price.
    Update { caller: UserId, draft: TicketDraft },
    /// Holds the ticket for a new order of `buyer` and writes that order (see the module doc).
    /// With `order` (a keyed request's derived id), a retry finds the order its first attempt
    /// made and answers it again instead of reserving twice.
    Reserve { buyer: UserId, window_ms: i64, order: Option<OrderId> },
    /// Frees the ticket if `order` holds it (idempotent).
    Release { order: OrderId },
    /// Passivate now if idle (admin action).
    Passivate,
    /// Test-only: panics inside a rule, to exercise supervision (refused unless the node runs
    /// with `testing.fault_injection`).
    InjectPanic,
    /// The owner withdraws the listing: the record is removed with its `ticket:deleted` event,
    /// and a tombstone keeps the id from being created again.
    /// (Last: forwarded commands name variants by position.)
    Withdraw { caller: UserId },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketReply {
    /// The ticket after the command (`None`: there is no such ticket).
    Ticket(Option<Ticket>),
    /// The order a reservation created.
    Reserved(Order),
    /// Whether the actor stopped.
    Passivated(bool),
    /// The listing as it was withdrawn (its last version).
    Withdrawn(Ticket),
}

impl TicketReply {
    /// The ticket, or "not found".
    pub fn into_ticket(self) -> Result<Ticket, EntityError> {
        match self {
            Self::Ticket(Some(t)) => Ok(t),
            Self::Ticket(None) => Err(DomainError::NotFound.into()),
            _ => Err(EntityError::UnexpectedReply("ticket".into())),
        }
    }

    /// The listing as it was withdrawn.
    pub fn into_withdrawn(self) -> Result<Ticket, EntityError> {
        match self {
            Self::Withdrawn(last) => Ok(last),
            _ => Err(EntityError::UnexpectedReply("withdraw".into())),
        }
    }

    /// The order a reservation made.
    pub fn into_reserved(self) -> Result<Order, EntityError> {
        match self {
            Self::Reserved(order) => Ok(order),
            _ => Err(EntityError::UnexpectedReply("reserve".into())),
        }
    }
}

/// What every ticket actor is given.
#[derive(Clone)]
pub struct TicketDeps {
    pub store: Store,
    /// The node's deadline wheel, armed for each order a reservation creates.
    pub deadlines: Deadlines,
    /// Idle time after which the actor passivates.
    pub idle: Duration,
    /// When set, [`TicketCommand::InjectPanic`] panics the actor (tests of supervision only).
    pub fault_injection: bool,
    pub faults: Faults,
}

pub struct TicketActor {
    cell: DurableCell<Ticket>,
    link: RegistryLink<TicketActor>,
    deps: TicketDeps,
}

impl Activatable for TicketActor {
    type Id = TicketId;
    type Deps = TicketDeps;
    const KIND: &'static str = "ticket";

    fn slot(id: &TicketId) -> Slot {
        id.slot()
    }

    fn record_key(id: &TicketId) -> Vec<u8> {
        keys::ticket(id)
    }

    fn store(deps: &TicketDeps) -> &Store {
        &deps.store
    }

    fn activate(deps: TicketDeps, link: RegistryLink<Self>) -> Self {
        let cell = DurableCell::new(deps.store.clone(), &link);
        Self { cell, link, deps }
    }
}

impl Actor for TicketActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        super::durable::start(self, ctx, self.deps.idle);
    }
}

/// On a panic the supervisor restarts the actor in place (same mailbox, same address); the
/// state is reloaded from disk.
impl Supervised for TicketActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        super::durable::restart(self);
    }
}

impl Durable for TicketActor {
    type State = Ticket;

    fn cell(&mut self) -> &mut DurableCell<Ticket> {
        &mut self.cell
    }

    fn version_of(t: &Ticket) -> u64 {
        t.version
    }

    fn link(&self) -> &RegistryLink<Self> {
        &self.link
    }
}

crate::entity_handler!(TicketActor);

impl Entity for TicketActor {
    type Command = TicketCommand;
    type Reply = TicketReply;

    fn command_name(command: &TicketCommand) -> &'static str {
        match command {
            TicketCommand::Get => "Get",
            TicketCommand::Create { .. } => "Create",
            TicketCommand::Update { .. } => "Update",
            TicketCommand::Reserve { .. } => "Reserve",
            TicketCommand::Release { .. } => "Release",
            TicketCommand::Passivate => "Passivate",
            TicketCommand::InjectPanic => "InjectPanic",
            TicketCommand::Withdraw { .. } => "Withdraw",
        }
    }

    fn needs_existing(command: &TicketCommand) -> bool {
        !matches!(command, TicketCommand::Create { .. })
    }

    fn execute(&mut self, command: TicketCommand) -> Step<Self, TicketReply> {
        match command {
            TicketCommand::Get => done(self.cell.current().map(|t| TicketReply::Ticket(t.cloned()))),
            TicketCommand::Create { seller, draft } => self.create(seller, draft),
            TicketCommand::Update { caller, draft } => self.change_gated(move |ticket, changes| {
                let ticket = existing(ticket)?;
                changes.event(ticket.update(caller, draft, now_ms())?);
                Ok(TicketReply::Ticket(Some(ticket.clone())))
            }),
            // Not gated: the next message (a keyed create retried, say) runs once the
            // tombstone is on disk, where `create` looks for it.
            TicketCommand::Withdraw { caller } => self.change(move |ticket, changes| {
                let current = ticket.take().ok_or(DomainError::NotFound)?;
                let (last, event) = current.withdraw(caller, now_ms())?;
                changes.put(keys::withdrawn_ticket(&last.id), &Marker);
                changes.event(event);
                Ok(TicketReply::Withdrawn(last))
            }),
            TicketCommand::Reserve { buyer, window_ms, order } => self.reserve(buyer, window_ms, order),
            TicketCommand::Release { order } => self.change_gated(move |ticket, changes| {
                if let Some(t) = ticket.as_mut() {
                    if let Some(event) = t.release(order, now_ms()) {
                        changes.event(event);
                    }
                }
                Ok(TicketReply::Ticket(ticket.clone()))
            }),
            TicketCommand::Passivate => {
                Box::pin(super::durable::passivate_step(self).map(|r, _, _| r.map(TicketReply::Passivated)))
            }
            TicketCommand::InjectPanic if self.deps.fault_injection => {
                self.change_gated(|_, _| -> Result<TicketReply, DomainError> {
                    panic!("injected panic (testing.fault_injection)")
                })
            }
            TicketCommand::InjectPanic => done(Err(DomainError::NotFound.into())),
        }
    }
}

fn existing(ticket: &mut Option<Ticket>) -> Result<&mut Ticket, DomainError> {
    ticket.as_mut().ok_or(DomainError::NotFound)
}

impl TicketActor {
    fn create(&mut self, seller: UserId, draft: TicketDraft) -> Step<Self, TicketReply> {
        let id = self.link.id;
        // A withdrawn ticket's id is spent: a keyed create retried after the withdrawal must
        // not bring the ticket back.
        let withdrawn = match self.deps.store.contains(&keys::withdrawn_ticket(&id)) {
            Ok(withdrawn) => withdrawn,
            Err(e) => return done(Err(e.into())),
        };
        self.change_gated(move |ticket, changes| {
            if ticket.is_some() || withdrawn {
                return Err(Rule::TicketExists.into());
            }
            let (created, event) = Ticket::create(id, seller, draft, now_ms());
            changes.event(event);
            *ticket = Some(created.clone());
            Ok(TicketReply::Ticket(Some(created)))
        })
    }

    /// The reservation: hold, order, deadline and events in one batch (module doc).
    fn reserve(&mut self, buyer: UserId, window_ms: i64, order: Option<OrderId>) -> Step<Self, TicketReply> {
        if let Some(id) = order {
            // A retry of a keyed reservation: the order its first attempt made, as it is now.
            match self.deps.store.get::<Order>(&keys::order(&id)) {
                Ok(Some(made)) if made.user_id == buyer && made.ticket.id == self.link.id => {
                    return done(Ok(TicketReply::Reserved(made)));
                }
                Ok(Some(_)) => return done(Err(DomainError::NotAuthorized.into())),
                Ok(None) => {}
                Err(e) => return done(Err(e.into())),
            }
        }
        let order_id = order.unwrap_or_else(|| OrderId::new_in(self.link.id.slot()));
        let rule = move |ticket: &mut Option<Ticket>, changes: &mut super::durable::Changes| {
            let ticket = existing(ticket)?;
            let now = now_ms();
            changes.event(ticket.reserve(order_id, buyer, now)?);
            let (order, created) = Order::place(order_id, buyer, ticket.snapshot(), now, window_ms);
            changes.event(created);
            changes.put(keys::order(&order.id), &order);
            track_unfinished_work(&order, None, changes);
            Ok(order)
        };
        // The crash window "written, not yet answered" needs the write on disk before the abort:
        // with that fault armed the step waits for the flush instead of the output gate.
        let reserved =
            if self.deps.faults.armed("after_reserve") { self.change(rule) } else { self.change_gated(rule) };
        Box::pin(reserved.map(|placed, act, _| {
            let order = placed?;
            act.deps.faults.crash_point("after_reserve");
            // The wheel learns of the order once it is on disk (an early expiry would find none).
            let (deadlines, at, id) = (act.deps.deadlines.clone(), order.expires_at_ms, order.id);
            match act.cell.gate() {
                None => deadlines.schedule(at, id),
                Some(gate) => {
                    actix::spawn(async move {
                        if gate.passed().await.is_ok() {
                            deadlines.schedule(at, id);
                        }
                    });
                }
            }
            Ok(TicketReply::Reserved(order))
        }))
    }
}
