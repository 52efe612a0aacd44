//! The order actor: the only writer of one order once its ticket's reservation created it
//! (see `actors::ticket`). It owns the order's expiry timer and runs payment, expiry and
//! cancellation through one mailbox, so when they race exactly one wins.
//!
//! * [`expiry`]: the timer, expiry, cancellation and the release of the ticket.
//! * [`payment`]: charging, settling, and refunding a charge that came too late.
//! * [`backoff`]: how an unfinished step is retried.
//!
//! # Unfinished work survives crashes
//!
//! Every order that still has work to do has one entry in its slot's index of unfinished work
//! (`<slot>d<due><order>`), kept in step with the order in the same batch as each change
//! ([`Order::work_due_ms`]): due at expiry while unpaid, due **at once** from the moment it is
//! cancelled until its ticket's release is confirmed. Cancelling is two writes in one slot:
//!
//! 1. the order is written `cancelled` (with its events) and its entry becomes due now;
//! 2. the ticket actor releases the hold; then the order is marked released and the entry goes.
//!
//! A crash between them leaves an entry that is due: at start-up the node reads the index
//! (never the tickets) and finishes the release before or as it serves. Releasing is
//! idempotent: only the holding order can release a ticket.

mod backoff;
mod expiry;
mod payment;

use super::deadlines::{track_unfinished_work, Deadlines};
use super::durable::{done, Changes, Durable, DurableCell, Step};
use super::entity::EntityCommand;
use super::faults::Faults;
use super::ticket::TicketActor;
use super::{Activatable, EntityError, Registry, RegistryLink};
use crate::domain::{DomainError, Event, Order, OrderId, Payment, Slot, UserId};
use crate::payments::Gateway;
use crate::storage::{keys, Store};
use actix::prelude::*;
use backoff::Backoff;
use serde::{Deserialize, Serialize};
use std::time::Duration;

// What can be asked of an order: one type per command, each with its reply type. The order of
// the fields is their order on the wire.

/// The order as this actor holds it ("not found" if there is none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetOrder;

/// The buyer cancels; answers the cancelled order, its ticket released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    pub caller: UserId,
}

/// Unfinished work came due (the actor's own timer, or the node's deadline wheel): expire an
/// unpaid order, finish a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expire;

/// The buyer pays with a card token; answers the payment and the order it completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pay {
    pub caller: UserId,
    pub token: String,
    /// A keyed retry of a payment that may have run: if it completed the order, its payment
    /// is answered again instead of "already paid".
    pub again: bool,
}

/// The reply to [`Pay`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paid {
    pub payment: Payment,
    pub order: Order,
}

/// The provider reports a successful charge for this order (webhook).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmPayment {
    pub charge_id: String,
}

/// Passivate now if idle (admin action); answers whether the actor stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassivateOrder;

#[derive(Clone)]
pub struct OrderDeps {
    pub store: Store,
    pub tickets: Registry<TicketActor>,
    pub gateway: Gateway,
    pub deadlines: Deadlines,
    pub idle: Duration,
    pub faults: Faults,
}

pub struct OrderActor {
    cell: DurableCell<Order>,
    link: RegistryLink<OrderActor>,
    deps: OrderDeps,
    timer: Option<SpawnHandle>,
    retry: Backoff,
}

impl Activatable for OrderActor {
    type Id = OrderId;
    type Deps = OrderDeps;
    const KIND: &'static str = "order";

    fn slot(id: &OrderId) -> Slot {
        id.slot()
    }

    fn record_key(id: &OrderId) -> Vec<u8> {
        keys::order(id)
    }

    fn store(deps: &OrderDeps) -> &Store {
        &deps.store
    }

    fn activate(deps: OrderDeps, link: RegistryLink<Self>) -> Self {
        let cell = DurableCell::new(deps.store.clone(), &link);
        Self { cell, link, deps, timer: None, retry: Backoff::default() }
    }
}

impl Actor for OrderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        super::durable::start(self, ctx, self.deps.idle);
    }
}

impl Handler<super::registry::Evict> for OrderActor {
    type Result = ();

    fn handle(&mut self, _: super::registry::Evict, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Supervised for OrderActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.timer = None;
        super::durable::restart(self);
    }
}

impl Durable for OrderActor {
    type State = Order;

    fn cell(&mut self) -> &mut DurableCell<Order> {
        &mut self.cell
    }

    fn version_of(o: &Order) -> u64 {
        o.version
    }

    fn link(&self) -> &RegistryLink<Self> {
        &self.link
    }

    fn committed(&mut self, ctx: &mut Context<Self>) {
        self.arm_timer(ctx);
    }

    fn loaded(&mut self, ctx: &mut Context<Self>) {
        self.arm_timer(ctx);
    }

    /// No timer, no release left to do: only a client's read would wake it.
    fn settled_for_good(order: &Order) -> bool {
        order.work_due_ms().is_none()
    }
}

crate::entity_handler!(OrderActor);

impl EntityCommand for GetOrder {
    type Actor = OrderActor;
    type Reply = Order;
    const NAME: &'static str = "GetOrder";

    fn execute(self, act: &mut OrderActor) -> Step<OrderActor, Order> {
        done(act.cell.current().and_then(|o| o.cloned().ok_or(DomainError::NotFound.into())))
    }
}

impl EntityCommand for Cancel {
    type Actor = OrderActor;
    type Reply = Order;
    const NAME: &'static str = "Cancel";

    fn execute(self, act: &mut OrderActor) -> Step<OrderActor, Order> {
        act.cancel(self.caller)
    }
}

impl EntityCommand for Expire {
    type Actor = OrderActor;
    type Reply = ();
    const NAME: &'static str = "Expire";

    /// Expiry alone may run for an order that was never written: it releases the hold of
    /// data written by releases that placed orders in two steps.
    fn needs_existing() -> bool {
        false
    }

    fn execute(self, act: &mut OrderActor) -> Step<OrderActor, ()> {
        act.expire()
    }
}

impl EntityCommand for Pay {
    type Actor = OrderActor;
    type Reply = Paid;
    const NAME: &'static str = "Pay";

    fn execute(self, act: &mut OrderActor) -> Step<OrderActor, Paid> {
        act.pay(self.caller, self.token, self.again)
    }
}

impl EntityCommand for ConfirmPayment {
    type Actor = OrderActor;
    type Reply = ();
    const NAME: &'static str = "ConfirmPayment";

    fn execute(self, act: &mut OrderActor) -> Step<OrderActor, ()> {
        act.confirm_payment(self.charge_id)
    }
}

impl EntityCommand for PassivateOrder {
    type Actor = OrderActor;
    type Reply = bool;
    const NAME: &'static str = "PassivateOrder";

    fn execute(self, act: &mut OrderActor) -> Step<OrderActor, bool> {
        super::durable::passivate_step(act)
    }
}

impl OrderActor {
    /// Changes the existing order with `rule`, keeping its entry in the index of unfinished
    /// work in step (same batch), and recording a status change that the published contract
    /// has no event for, so read models see every status.
    fn update<R, F>(&mut self, rule: F) -> Step<Self, R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Order, &mut Changes) -> Result<R, DomainError>,
    {
        self.update_with(false, rule)
    }

    /// [`update`](Self::update) for bookkeeping the node redoes after a crash and no reply
    /// reports (a release confirmed): queued without holding the reply (`change_bookkeeping`).
    fn update_bookkeeping<R, F>(&mut self, rule: F) -> Step<Self, R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Order, &mut Changes) -> Result<R, DomainError>,
    {
        self.update_with(true, rule)
    }

    fn update_with<R, F>(&mut self, bookkeeping: bool, rule: F) -> Step<Self, R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Order, &mut Changes) -> Result<R, DomainError>,
    {
        let rule = move |order: &mut Option<Order>, changes: &mut Changes| {
            let order = order.as_mut().ok_or(DomainError::NotFound)?;
            let (due_before, status_before) = (order.work_due_ms(), order.status);
            let reply = rule(order, changes)?;
            track_unfinished_work(order, due_before, changes);
            if order.status != status_before && changes.events.is_empty() {
                changes.event(Event::OrderUpdated(order.for_event()));
            }
            Ok(reply)
        };
        let changed = if bookkeeping { self.change_bookkeeping(rule) } else { self.change(rule) };
        Box::pin(changed.map(|reply, act, _| {
            if reply.is_ok() {
                act.forget_settled_expiry();
            }
            reply
        }))
    }

    /// The wheel mirrors the index: once the order can no longer expire (paid, cancelled) and
    /// that is on disk, its expiry leaves the wheel too. A failed write leaves it to fire,
    /// harmlessly.
    fn forget_settled_expiry(&mut self) {
        if let Ok(Some(o)) = self.cell.current() {
            if o.work_due_ms() != Some(o.expires_at_ms) {
                self.deps.deadlines.cancel(o.expires_at_ms, o.id);
            }
        }
    }

    /// The order's ticket: in the order's own slot, so always on this node.
    fn ticket(&self, id: crate::domain::TicketId) -> OwnTicket {
        OwnTicket { tickets: self.deps.tickets.clone(), id }
    }
}

/// A handle on an order's ticket, asked with the node's ask timeout.
pub(super) struct OwnTicket {
    tickets: Registry<TicketActor>,
    id: crate::domain::TicketId,
}

impl OwnTicket {
    pub(super) async fn ask<C>(&self, command: C) -> Result<C::Reply, EntityError>
    where
        C: EntityCommand<Actor = TicketActor>,
    {
        let deadline = crate::deadline::Deadline::after(self.tickets.ask_timeout());
        self.tickets.ask(self.id, command, deadline).await
    }
}
