//! The order actor: the only writer of one order. It owns the order's expiry timer and runs
//! payment and expiry through one mailbox, so when both race exactly one wins.
//!
//! # Placing an order leaves no orphan
//!
//! Creating an order touches two actors, so it is done in an order that a crash at any instant
//! leaves safe (see [`place_order`]):
//!
//! 1. The **ticket actor** reserves the ticket for a fresh order id and, *in the same disk
//!    write*, records a durable deadline `d/<expiresAt><orderId> → ticketId`.
//! 2. The **order actor** writes the order (`created`, `order:created` event, the buyer's index).
//!
//! * Crash before 1 is durable: nothing happened.
//! * Crash between 1 and 2: the ticket is held by an order that does not exist. The deadline
//!   survives; when it comes due (re-armed at start-up) the order actor finds no order and
//!   releases the ticket's hold. `CreateOrder` is refused once that deadline has passed or been
//!   cleared, and both run in this actor's mailbox, so a late create cannot resurrect the hold.
//! * After 2: a normal order, expired by its timer or by the deadline wheel.
//!
//! Cancelling (by the buyer or by expiry) is also two steps: the order is written `cancelled`
//! (with its events), then the ticket is released, then the order is marked `ticket_released`
//! and its deadline deleted. A crash in between leaves the deadline in place, so the release is
//! retried at start-up; releasing is idempotent (only the holding order can release).
//!
//! # Payment
//!
//! Paying writes `awaiting:payment` (with the attempt's token and number) *before* calling the
//! provider, and settles afterwards. Handlers are atomic, so expiry and cancellation wait for
//! the charge. An attempt left `awaiting:payment` by a crash or a provider outage is resumed with
//! the same idempotency key, by the next payment request or at expiry, so it never charges twice.

use super::deadlines::Deadlines;
use super::durable::{done, Durable, DurableCell, Step};
use super::ticket::{ReleaseTicket, ReserveTicket, TicketActor};
use super::{Activatable, ActorError, Registry, RegistryLink};
use crate::domain::{
    now_ms, ChargeRequest, DomainError, Order, OrderId, OrderStatus, Payment, PaymentId, TicketSnapshot, UserId,
};
use crate::payments::{Charge, ChargeOutcome, Gateway};
use crate::storage::{keys, DeadlineEntry, Marker, Store, WriteBatch};
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// How long to wait before retrying a step that could not finish (ticket release, provider),
/// doubling up to the maximum while it keeps failing.
const RETRY_AFTER_MS: i64 = 2_000;
const MAX_RETRY_AFTER_MS: i64 = 60_000;

/// Test-only crash points: the process aborts when it reaches the named step.
#[derive(Clone, Default)]
pub struct Faults(Arc<str>);

impl Faults {
    pub fn new(crash_at: &str) -> Self {
        Self(Arc::from(crash_at))
    }

    pub fn crash_point(&self, point: &str) {
        if !self.0.is_empty() && &*self.0 == point {
            eprintln!("fault injection: aborting at {point}");
            std::process::abort();
        }
    }
}

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
    /// The current retry delay of an unfinished step (0: nothing is failing).
    retry_backoff_ms: i64,
}

impl Activatable for OrderActor {
    type Id = OrderId;
    type Deps = OrderDeps;
    const KIND: &'static str = "order";

    fn shard(id: &OrderId) -> u32 {
        id.shard(1 << 16)
    }

    fn activate(id: OrderId, deps: OrderDeps, link: RegistryLink<Self>) -> Self {
        let cell = DurableCell::new(keys::order(&id), deps.store.clone(), &link);
        Self { cell, link, deps, timer: None, retry_backoff_ms: 0 }
    }
}

impl Actor for OrderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        super::durable::start(self, ctx, self.deps.idle);
        self.arm_timer(ctx);
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
}

fn existing(order: &mut Option<Order>) -> Result<&mut Order, DomainError> {
    order.as_mut().ok_or(DomainError::NotFound)
}

impl OrderActor {
    /// (Re-)arms the in-memory expiry timer for an unpaid order.
    fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        let deadline = match self.cell.current() {
            Ok(Some(o)) if o.status == OrderStatus::Created => Some(o.expires_at_ms),
            _ => None,
        };
        self.cell.stats.set_deadline(deadline);
        if let Some(at) = deadline {
            let wait = Duration::from_millis((at - now_ms()).max(0) as u64);
            self.timer = Some(ctx.run_later(wait, |act, ctx| {
                act.timer = None;
                super::durable::tell_self(act, ctx, ExpireOrder { deadline_ms: None });
            }));
        }
    }

    /// Re-arms the wheel for this order to retry an unfinished step, backing off exponentially
    /// while the step keeps failing (a provider outage must not become a retry storm).
    fn retry_later(&mut self) {
        self.retry_backoff_ms = (self.retry_backoff_ms * 2).clamp(RETRY_AFTER_MS, MAX_RETRY_AFTER_MS);
        self.deps.deadlines.schedule(now_ms() + self.retry_backoff_ms, self.link.id);
    }

    /// A step settled: the next failure starts backing off from the beginning again.
    fn settled(&mut self) {
        self.retry_backoff_ms = 0;
    }

    /// Releases the ticket of a cancelled order, then marks it released and drops its deadline.
    fn release_ticket(&mut self, order: Order) -> Step<Self, Order> {
        if order.status != OrderStatus::Cancelled || order.ticket_released {
            return done(Ok(order));
        }
        let tickets = self.deps.tickets.clone();
        let (ticket_id, order_id) = (order.ticket.id, order.id);
        let release = async move { tickets.ask(ticket_id, ReleaseTicket { order: order_id }).await };
        Box::pin(release.into_actor(self).then(move |released, act, _| match released {
            Ok(_) => {
                act.settled();
                act.deps.deadlines.cancel(order.expires_at_ms, order.id);
                act.change(|o, changes| {
                    let o = existing(o)?;
                    o.ticket_released = true;
                    if !o.needs_deadline() {
                        changes.remove(keys::deadline(o.expires_at_ms, &o.id));
                    }
                    Ok(o.clone())
                })
            }
            Err(e) => {
                // The order is cancelled either way; its deadline stays, so this is retried.
                tracing::warn!(order = %order.id, error = %e, "ticket release failed; will retry");
                act.retry_later();
                done(Ok(order))
            }
        }))
    }

    /// Calls the provider for `request` and settles the order with the outcome.
    fn run_charge(&mut self, request: ChargeRequest) -> Step<Self, Payment> {
        self.deps.faults.crash_point("before_charge");
        let gateway = self.deps.gateway.clone();
        let charge = Charge {
            amount_cents: request.amount_cents,
            currency: "usd".into(),
            token: request.token,
            idempotency_key: request.idempotency_key,
            order_id: self.link.id.to_string(),
        };
        let call = async move { gateway.charge(charge).await };
        Box::pin(call.into_actor(self).then(|outcome, act, _| {
            act.deps.faults.crash_point("after_charge");
            if outcome.is_ok() {
                act.settled();
            }
            match outcome {
                Ok(ChargeOutcome::Succeeded { charge_id }) => act.record_payment(charge_id),
                Ok(ChargeOutcome::Declined { .. }) => Box::pin(
                    act.change(|o, _| {
                        existing(o)?.payment_declined();
                        Ok(())
                    })
                    .map(|r, _, _| r.and(Err(DomainError::CardDeclined.into()))),
                ),
                Ok(ChargeOutcome::Rejected { reason }) => {
                    tracing::info!(reason = %reason, "charge rejected by the provider");
                    Box::pin(
                        act.change(|o, _| {
                            existing(o)?.payment_declined();
                            Ok(())
                        })
                        .map(|r, _, _| r.and(Err(DomainError::Rule("Invalid payment token").into()))),
                    )
                }
                Err(e) => {
                    // Outcome unknown: stay `awaiting:payment`; the same key is asked again later.
                    tracing::warn!(error = %e, "payment provider unavailable; attempt left to resume");
                    act.retry_later();
                    done(Err(ActorError::Unavailable))
                }
            }
        }))
    }

    /// Completes the order with a payment record (or returns the one already recorded).
    fn record_payment(&mut self, charge_id: String) -> Step<Self, Payment> {
        let store = self.deps.store.clone();
        let deadlines = self.deps.deadlines.clone();
        self.change(move |o, changes| {
            let o = existing(o)?;
            if o.status == OrderStatus::Complete {
                return store
                    .get::<Payment>(&keys::payment_by_order(&o.id))
                    .ok()
                    .flatten()
                    .ok_or(DomainError::Rule("Order has already been paid"));
            }
            let payment = Payment {
                id: PaymentId::new(),
                order_id: o.id,
                stripe_id: charge_id.clone(),
                amount_cents: o.ticket.price.cents(),
                created_at_ms: now_ms(),
                refund_id: None,
            };
            if let Some(event) = o.complete(&payment.id.to_string(), &charge_id) {
                changes.event(event);
            }
            changes.put(keys::payment(&payment.id), &payment);
            changes.put(keys::payment_by_order(&o.id), &payment);
            if !o.needs_deadline() {
                changes.remove(keys::deadline(o.expires_at_ms, &o.id));
            }
            deadlines.cancel(o.expires_at_ms, o.id);
            Ok(payment)
        })
    }
}

/// Reads the order as this actor holds it.
#[derive(Message)]
#[rtype(result = "Result<Option<Order>, ActorError>")]
pub struct GetOrder;

impl Handler<GetOrder> for OrderActor {
    type Result = Result<Option<Order>, ActorError>;

    fn handle(&mut self, _: GetOrder, _: &mut Context<Self>) -> Self::Result {
        self.cell.stats.message_started();
        self.cell.current().map(|o| o.cloned())
    }
}

/// Writes a placed order (step 2 of placement). Refused if the hold's deadline is gone.
#[derive(Message)]
#[rtype(result = "Result<Order, ActorError>")]
pub struct CreateOrder {
    pub order: Order,
}

impl Handler<CreateOrder> for OrderActor {
    type Result = AtomicResponse<Self, Result<Order, ActorError>>;

    fn handle(&mut self, msg: CreateOrder, _: &mut Context<Self>) -> Self::Result {
        self.cell.stats.message_started();
        let store = self.deps.store.clone();
        AtomicResponse::new(self.change(move |order, changes| {
            let placed = msg.order;
            let hold = keys::deadline(placed.expires_at_ms, &placed.id);
            let hold_alive = store.contains(&hold).unwrap_or(false) && now_ms() < placed.expires_at_ms;
            if order.is_some() || !hold_alive {
                return Err(DomainError::Rule("Ticket is already reserved"));
            }
            changes.event(crate::domain::Event::order_created(&placed));
            changes.put(keys::order_by_user(&placed.user_id, &placed.id), &Marker);
            *order = Some(placed.clone());
            Ok(placed)
        }))
    }
}

/// The buyer cancels.
#[derive(Message)]
#[rtype(result = "Result<Order, ActorError>")]
pub struct CancelOrder {
    pub caller: UserId,
}

impl Handler<CancelOrder> for OrderActor {
    type Result = AtomicResponse<Self, Result<Order, ActorError>>;

    fn handle(&mut self, msg: CancelOrder, _: &mut Context<Self>) -> Self::Result {
        self.cell.stats.message_started();
        let cancelled = self.change(move |order, changes| {
            let order = existing(order)?;
            for event in order.cancel(msg.caller)? {
                changes.event(event);
            }
            Ok(order.clone())
        });
        AtomicResponse::new(Box::pin(cancelled.then(|result, act, _| match result {
            Ok(order) => act.release_ticket(order),
            Err(e) => done(Err(e)),
        })))
    }
}

/// A deadline came due (from the actor's own timer, or from the node's deadline wheel with the
/// deadline's time).
#[derive(Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct ExpireOrder {
    pub deadline_ms: Option<i64>,
}

impl Handler<ExpireOrder> for OrderActor {
    type Result = AtomicResponse<Self, Result<(), ActorError>>;

    fn handle(&mut self, msg: ExpireOrder, _: &mut Context<Self>) -> Self::Result {
        self.cell.stats.message_started();
        let order = match self.cell.current() {
            Ok(order) => order.cloned(),
            Err(e) => return AtomicResponse::new(done(Err(e))),
        };
        let step: Step<Self, ()> = match order {
            None => self.release_orphan_hold(msg.deadline_ms),
            Some(o) if o.status == OrderStatus::AwaitingPayment => match o.charge_request() {
                // Learn the outcome of the interrupted charge first, then expire if still unpaid.
                Some(request) => Box::pin(self.run_charge(request).then(|outcome, act, ctx| {
                    // Settled (paid, declined, rejected): expire now if still unpaid. Unknown
                    // (provider down): `run_charge` has already scheduled a backed-off retry.
                    if !matches!(outcome, Err(ActorError::Unavailable)) {
                        super::durable::tell_self(act, ctx, ExpireOrder { deadline_ms: None });
                    }
                    done(Ok(()))
                })),
                None => done(Ok(())),
            },
            Some(o) if o.status == OrderStatus::Created && now_ms() < o.expires_at_ms => {
                // Early (a wheel retry, or a clock step): the timer is armed for the real time.
                self.deps.deadlines.schedule(o.expires_at_ms, o.id);
                done(Ok(()))
            }
            Some(_) => {
                let expired = self.change(|order, changes| {
                    let order = existing(order)?;
                    for event in order.expire(now_ms()) {
                        changes.event(event);
                    }
                    Ok(order.clone())
                });
                Box::pin(expired.then(|result, act, _| match result {
                    Ok(order) => Box::pin(act.release_ticket(order).map(|r, _, _| r.map(|_| ()))),
                    Err(e) => done(Err(e)),
                }))
            }
        };
        AtomicResponse::new(step)
    }
}

impl OrderActor {
    /// The ticket was reserved for this order id but the order was never written: free it.
    /// `deadline_ms` names the durable deadline; a wheel retry fires with its retry time
    /// instead, so the entry is then looked up by order id.
    fn release_orphan_hold(&mut self, deadline_ms: Option<i64>) -> Step<Self, ()> {
        let Some(at) = deadline_ms else { return done(Ok(())) };
        let found =
            self.deps.store.get::<DeadlineEntry>(&keys::deadline(at, &self.link.id)).and_then(|entry| match entry {
                Some(entry) => Ok(Some((keys::deadline(at, &self.link.id), entry))),
                None => self.deps.store.deadline_of(&self.link.id),
            });
        let (key, entry) = match found {
            Ok(Some(found)) => found,
            Ok(None) => return done(Ok(())),
            Err(e) => return done(Err(ActorError::Storage(e.to_string()))),
        };
        tracing::info!(order = %self.link.id, ticket = %entry.ticket_id, "releasing the hold of an order that was never written");
        let (tickets, store, order) = (self.deps.tickets.clone(), self.deps.store.clone(), self.link.id);
        let release = async move {
            tickets.ask(entry.ticket_id, ReleaseTicket { order }).await?;
            let mut batch = WriteBatch::default();
            batch.remove(key);
            store.commit(batch).await.map_err(|e| ActorError::Storage(e.to_string()))
        };
        Box::pin(release.into_actor(self).map(|result, act, _| {
            match result {
                Ok(()) => act.settled(),
                Err(_) => act.retry_later(),
            }
            result
        }))
    }
}

/// The buyer pays with a card token.
#[derive(Message)]
#[rtype(result = "Result<Payment, ActorError>")]
pub struct PayOrder {
    pub caller: UserId,
    pub token: String,
}

impl Handler<PayOrder> for OrderActor {
    type Result = AtomicResponse<Self, Result<Payment, ActorError>>;

    fn handle(&mut self, msg: PayOrder, _: &mut Context<Self>) -> Self::Result {
        self.cell.stats.message_started();
        let begun = self.change(move |order, _| existing(order)?.begin_payment(msg.caller, &msg.token, now_ms()));
        AtomicResponse::new(Box::pin(begun.then(|result, act, _| match result {
            Ok(request) => act.run_charge(request),
            Err(e) => done(Err(e)),
        })))
    }
}

/// The provider reports a successful charge for this order (webhook). Completes an unpaid
/// order; a charge that arrives after the order was cancelled is refunded and recorded.
#[derive(Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct ConfirmPayment {
    pub charge_id: String,
}

impl Handler<ConfirmPayment> for OrderActor {
    type Result = AtomicResponse<Self, Result<(), ActorError>>;

    fn handle(&mut self, msg: ConfirmPayment, _: &mut Context<Self>) -> Self::Result {
        self.cell.stats.message_started();
        let order = match self.cell.current() {
            Ok(Some(o)) => o.clone(),
            Ok(None) => return AtomicResponse::new(done(Err(DomainError::NotFound.into()))),
            Err(e) => return AtomicResponse::new(done(Err(e))),
        };
        let step: Step<Self, ()> = match order.status {
            OrderStatus::Complete => done(Ok(())),
            OrderStatus::Created | OrderStatus::AwaitingPayment => {
                Box::pin(self.record_payment(msg.charge_id).map(|r, _, _| r.map(|_| ())))
            }
            OrderStatus::Cancelled
                if self.deps.store.contains(&keys::refunded_charge(&msg.charge_id)).unwrap_or(false) =>
            {
                done(Ok(()))
            }
            OrderStatus::Cancelled => {
                let gateway = self.deps.gateway.clone();
                let charge_id = msg.charge_id.clone();
                let refund = async move { gateway.refund(charge_id.clone(), format!("refund-{charge_id}")).await };
                Box::pin(refund.into_actor(self).then(move |refunded, act, _| match refunded {
                    Ok(refund_id) => act.change(move |o, changes| {
                        let o = existing(o)?;
                        tracing::warn!(order = %o.id, charge = %msg.charge_id, "late payment refunded");
                        let payment = Payment {
                            id: PaymentId::new(),
                            order_id: o.id,
                            stripe_id: msg.charge_id.clone(),
                            amount_cents: o.ticket.price.cents(),
                            created_at_ms: now_ms(),
                            refund_id: Some(refund_id),
                        };
                        changes.put(keys::payment(&payment.id), &payment);
                        changes.put(keys::refunded_charge(&msg.charge_id), &Marker);
                        Ok(())
                    }),
                    Err(e) => {
                        tracing::error!(error = %e, "refund of a late payment failed");
                        done(Err(ActorError::Unavailable))
                    }
                }))
            }
        };
        AtomicResponse::new(step)
    }
}

/// Asks the actor to passivate now (admin action). `true` if it stopped.
#[derive(Message)]
#[rtype(result = "Result<bool, ActorError>")]
pub struct PassivateOrder;

impl Handler<PassivateOrder> for OrderActor {
    type Result = Result<bool, ActorError>;

    fn handle(&mut self, _: PassivateOrder, ctx: &mut Context<Self>) -> Self::Result {
        self.cell.stats.message_started();
        Ok(super::durable::passivate_now(self, ctx))
    }
}

/// Places an order for `ticket_id` (the two-step protocol in the module doc).
pub async fn place_order(
    tickets: &Registry<TicketActor>,
    orders: &Registry<OrderActor>,
    deadlines: &Deadlines,
    faults: &Faults,
    buyer: UserId,
    ticket_id: crate::domain::TicketId,
    window_ms: i64,
) -> Result<Order, ActorError> {
    let order_id = OrderId::new();
    let now = now_ms();
    let expires_at_ms = now + window_ms;
    // Armed before asking: the reservation may land even if the ask times out, and then only
    // this deadline frees it. A deadline with no hold behind it fires as a no-op.
    deadlines.schedule(expires_at_ms, order_id);
    let ticket = tickets.ask(ticket_id, ReserveTicket { order: order_id, buyer, expires_at_ms }).await?;
    faults.crash_point("after_reserve");
    let snapshot = TicketSnapshot { id: ticket.id, title: ticket.title, price: ticket.price, version: ticket.version };
    let (order, _) = Order::place(order_id, buyer, snapshot, now, window_ms);
    match orders.ask(order_id, CreateOrder { order }).await {
        Ok(order) => {
            faults.crash_point("after_order_created");
            Ok(order)
        }
        Err(e) => {
            // Give the ticket back now rather than at the deadline, but through the order's own
            // mailbox: a `CreateOrder` that timed out may still be queued there, and must win
            // if it lands first (then this finds the order and changes nothing).
            orders.tell(order_id, ExpireOrder { deadline_ms: Some(expires_at_ms) });
            Err(e)
        }
    }
}
