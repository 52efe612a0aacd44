//! The ticket actor: the only writer of one ticket, and so the single point that grants a
//! reservation. Its mailbox order is the ticket's version order.
//!
//! # A reservation is one write
//!
//! [`Reserve`] holds the ticket for a new order and, in the **same batch** (one
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
use super::entity::EntityCommand;
use super::faults::Faults;
use super::{Activatable, EntityError, RegistryLink};
use crate::domain::{now_ms, DomainError, Order, OrderId, Rule, Slot, Ticket, TicketDraft, TicketId, UserId};
use crate::storage::{keys, Marker, Store};
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::Duration;

// What can be asked of a ticket: one type per command, each with its reply type. The order of
// the fields is their order on the wire.

/// The ticket as this actor holds it ("not found" if there is none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetTicket;

/// Creates the ticket under this actor's (fresh) id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTicket {
    pub seller: UserId,
    pub draft: TicketDraft,
}

/// The owner edits title and price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateTicket {
    pub caller: UserId,
    pub draft: TicketDraft,
}

/// Holds the ticket for a new order of `buyer` and writes that order (see the module doc);
/// answers the order. With `order` (a keyed request's derived id), a retry finds the order its
/// first attempt made and answers it again instead of reserving twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserve {
    pub buyer: UserId,
    pub window_ms: i64,
    pub order: Option<OrderId>,
}

/// Frees the ticket if `order` holds it (idempotent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub order: OrderId,
}

/// The owner withdraws the listing: the record is removed with its `ticket:deleted` event, and
/// a tombstone keeps the id from being created again. Answers the listing as it was withdrawn
/// (its last version).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdraw {
    pub caller: UserId,
}

/// Passivate now if idle (admin action); answers whether the actor stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassivateTicket;

/// Test-only: panics inside a rule, to exercise supervision (refused unless the node runs with
/// `testing.fault_injection`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectPanic;

/// What every ticket actor is given.
#[derive(Clone)]
pub struct TicketDeps {
    pub store: Store,
    /// The node's deadline wheel, armed for each order a reservation creates.
    pub deadlines: Deadlines,
    /// Idle time after which the actor passivates.
    pub idle: Duration,
    /// When set, [`InjectPanic`] panics the actor (tests of supervision only).
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
impl Handler<super::registry::Evict> for TicketActor {
    type Result = ();

    fn handle(&mut self, _: super::registry::Evict, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

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

impl EntityCommand for GetTicket {
    type Actor = TicketActor;
    type Reply = Ticket;
    const NAME: &'static str = "GetTicket";

    fn execute(self, act: &mut TicketActor) -> Step<TicketActor, Ticket> {
        done(act.cell.current().and_then(|t| t.cloned().ok_or(DomainError::NotFound.into())))
    }
}

impl EntityCommand for CreateTicket {
    type Actor = TicketActor;
    type Reply = Ticket;
    const NAME: &'static str = "CreateTicket";

    fn needs_existing() -> bool {
        false
    }

    fn execute(self, act: &mut TicketActor) -> Step<TicketActor, Ticket> {
        act.create(self.seller, self.draft)
    }
}

impl EntityCommand for UpdateTicket {
    type Actor = TicketActor;
    type Reply = Ticket;
    const NAME: &'static str = "UpdateTicket";

    fn execute(self, act: &mut TicketActor) -> Step<TicketActor, Ticket> {
        let Self { caller, draft } = self;
        act.change_gated(move |ticket, changes| {
            let ticket = existing(ticket)?;
            changes.event(ticket.update(caller, draft, now_ms())?);
            Ok(ticket.clone())
        })
    }
}

impl EntityCommand for Withdraw {
    type Actor = TicketActor;
    type Reply = Ticket;
    const NAME: &'static str = "Withdraw";

    // Not gated: the next message (a keyed create retried, say) runs once the tombstone is on
    // disk, where `create` looks for it.
    fn execute(self, act: &mut TicketActor) -> Step<TicketActor, Ticket> {
        let caller = self.caller;
        act.change(move |ticket, changes| {
            let current = ticket.take().ok_or(DomainError::NotFound)?;
            let (last, event) = current.withdraw(caller, now_ms())?;
            changes.put(keys::withdrawn_ticket(&last.id), &Marker);
            changes.event(event);
            Ok(last)
        })
    }
}

impl EntityCommand for Reserve {
    type Actor = TicketActor;
    type Reply = Order;
    const NAME: &'static str = "Reserve";

    fn execute(self, act: &mut TicketActor) -> Step<TicketActor, Order> {
        act.reserve(self.buyer, self.window_ms, self.order)
    }
}

impl EntityCommand for Release {
    type Actor = TicketActor;
    type Reply = ();
    const NAME: &'static str = "Release";

    fn execute(self, act: &mut TicketActor) -> Step<TicketActor, ()> {
        let order = self.order;
        act.change_gated(move |ticket, changes| {
            if let Some(t) = ticket.as_mut() {
                if let Some(event) = t.release(order, now_ms()) {
                    changes.event(event);
                }
            }
            Ok(())
        })
    }
}

impl EntityCommand for PassivateTicket {
    type Actor = TicketActor;
    type Reply = bool;
    const NAME: &'static str = "PassivateTicket";

    fn execute(self, act: &mut TicketActor) -> Step<TicketActor, bool> {
        super::durable::passivate_step(act)
    }
}

impl EntityCommand for InjectPanic {
    type Actor = TicketActor;
    type Reply = ();
    const NAME: &'static str = "InjectPanic";

    fn execute(self, act: &mut TicketActor) -> Step<TicketActor, ()> {
        if !act.deps.fault_injection {
            return done(Err(DomainError::NotFound.into()));
        }
        act.change_gated(|_, _| -> Result<(), DomainError> { panic!("injected panic (testing.fault_injection)") })
    }
}

fn existing(ticket: &mut Option<Ticket>) -> Result<&mut Ticket, DomainError> {
    ticket.as_mut().ok_or(DomainError::NotFound)
}

impl TicketActor {
    fn create(&mut self, seller: UserId, draft: TicketDraft) -> Step<Self, Ticket> {
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
            Ok(created)
        })
    }

    /// The reservation: hold, order, deadline and events in one batch (module doc).
    fn reserve(&mut self, buyer: UserId, window_ms: i64, order: Option<OrderId>) -> Step<Self, Order> {
        let Some(id) = order else { return self.reserve_new(buyer, window_ms, None) };
        // A keyed reservation, perhaps a retry: the order its first attempt made, as it is now.
        // That attempt's batch may still be queued (a slow flush), so its record is read once
        // everything this actor wrote is on disk.
        let (store, settled) = (self.deps.store.clone(), self.cell.settled());
        let made = async move {
            if let Some(gate) = settled {
                gate.passed().await?;
            }
            Ok::<_, EntityError>(store.get::<Order>(&keys::order(&id))?)
        };
        let ticket = self.link.id;
        Box::pin(made.into_actor(self).then(move |made, act, _| match made {
            Ok(Some(made)) if made.user_id == buyer && made.ticket.id == ticket => done(Ok(made)),
            Ok(Some(_)) => done(Err(DomainError::NotAuthorized.into())),
            Ok(None) => act.reserve_new(buyer, window_ms, Some(id)),
            Err(e) => done(Err(e)),
        }))
    }

    fn reserve_new(&mut self, buyer: UserId, window_ms: i64, order: Option<OrderId>) -> Step<Self, Order> {
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
            Ok(order)
        }))
    }
}
