//! Expiry and cancellation of an order, and the release of its ticket (the two-write protocol
//! in the parent module's doc).

use super::{Expire, OrderActor};
use crate::actors::durable::{done, Step};
use crate::actors::entity::tell_self;
use crate::actors::ticket::Release;
use crate::actors::EntityError;
use crate::domain::{now_ms, Order, OrderStatus, UserId};
use crate::storage::{keys, DeadlineEntry, WriteBatch};
use actix::prelude::*;
use std::time::Duration;

impl OrderActor {
    /// (Re-)arms the in-memory expiry timer for an unpaid order.
    pub(super) fn arm_timer(&mut self, ctx: &mut Context<Self>) {
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
                tell_self(act, ctx, Expire);
            }));
        }
    }

    /// Re-arms the wheel for this order to retry an unfinished step, backing off.
    pub(super) fn retry_later(&mut self) {
        let delay = self.retry.next_delay_ms();
        self.deps.deadlines.schedule(now_ms() + delay, self.link.id);
    }

    pub(super) fn cancel(&mut self, caller: UserId) -> Step<Self, Order> {
        let cancelled = self.update(move |order, changes| {
            for event in order.cancel(caller)? {
                changes.event(event);
            }
            Ok(order.clone())
        });
        Box::pin(cancelled.then(|result, act, _| match result {
            Ok(order) => act.release_ticket(order),
            Err(e) => done(Err(e)),
        }))
    }

    pub(super) fn expire(&mut self) -> Step<Self, ()> {
        let order = match self.cell.current() {
            Ok(order) => order.cloned(),
            Err(e) => return done(Err(e)),
        };
        match order {
            None => self.release_orphan_hold(),
            Some(o) if o.status == OrderStatus::AwaitingPayment => match o.charge_request() {
                // Learn the outcome of the interrupted charge first, then expire if still unpaid.
                Some(request) => Box::pin(self.run_charge(request).then(|outcome, act, ctx| {
                    // Settled (paid, declined, rejected): expire now if still unpaid. Unknown
                    // (provider down) or not recorded (disk full): `run_charge` has already
                    // scheduled a backed-off retry.
                    if !matches!(outcome, Err(EntityError::Unavailable | EntityError::NoReply)) {
                        tell_self(act, ctx, Expire);
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
                let expired = self.update(|order, changes| {
                    for event in order.expire(now_ms()) {
                        changes.event(event);
                    }
                    Ok(order.clone())
                });
                Box::pin(expired.then(|result, act, _| match result {
                    Ok(order) => Box::pin(act.release_ticket(order).map(|r, _, _| r.map(|_| ()))),
                    // The disk is full: nothing was written; the order stays due (its entry in
                    // the index too) and expires once writes are taken again.
                    Err(EntityError::StorageFull) => {
                        act.retry_later();
                        done(Err(EntityError::StorageFull))
                    }
                    Err(e) => done(Err(e)),
                }))
            }
        }
    }

    /// Releases the ticket of a cancelled order, then marks it released (which settles its
    /// entry in the index of unfinished work).
    fn release_ticket(&mut self, order: Order) -> Step<Self, Order> {
        if order.status != OrderStatus::Cancelled || order.ticket_released {
            return done(Ok(order));
        }
        self.deps.faults.crash_point("before_release");
        let ticket = self.ticket(order.ticket.id);
        let order_id = order.id;
        let release = async move { ticket.ask(Release { order: order_id }).await };
        Box::pin(release.into_actor(self).then(move |released, act, _| match gone_is_released(released) {
            Ok(()) => {
                act.retry.reset();
                // The release is on disk (the ticket's reply passed its gate); marking it is
                // bookkeeping redone at start-up after a crash, so the reply does not wait.
                act.update_bookkeeping(|o, _| {
                    o.ticket_released = true;
                    Ok(o.clone())
                })
            }
            Err(e) => {
                // The order is cancelled either way; its entry stays due, so this is retried.
                tracing::warn!(order = %order.id, error = %e, "ticket release failed; will retry");
                act.retry_later();
                done(Ok(order))
            }
        }))
    }

    /// The ticket was held for this order id but the order was never written (data of a
    /// release that placed orders in two steps): free it and drop the order's entries, found
    /// in its slot's index whatever time they are due (a retry fires at another time).
    fn release_orphan_hold(&mut self) -> Step<Self, ()> {
        let order = self.link.id;
        let entries = match self.deps.store.scan_slot::<DeadlineEntry>(order.slot(), keys::DEADLINE, None, usize::MAX) {
            Ok(entries) => entries,
            Err(e) => return done(Err(e.into())),
        };
        let mine: Vec<(Vec<u8>, DeadlineEntry)> =
            entries.into_iter().filter(|(key, _)| keys::parse_deadline(key).is_some_and(|(_, o)| o == order)).collect();
        let Some((_, entry)) = mine.first().cloned() else { return done(Ok(())) };
        tracing::info!(order = %order, ticket = %entry.ticket_id, "releasing the hold of an order that was never written");
        let (ticket, store) = (self.ticket(entry.ticket_id), self.deps.store.clone());
        let release = async move {
            gone_is_released(ticket.ask(Release { order }).await)?;
            let mut batch = WriteBatch::default();
            for (key, _) in mine {
                batch.remove(key);
            }
            Ok(store.commit(batch).await?)
        };
        Box::pin(release.into_actor(self).map(|result, act, _| {
            match result {
                Ok(()) => act.retry.reset(),
                Err(_) => act.retry_later(),
            }
            result
        }))
    }
}

/// A release answered "no such ticket" has nothing left to release (a ticket lost to damaged
/// data): the order's work is done rather than retried forever.
fn gone_is_released<R>(reply: Result<R, EntityError>) -> Result<(), EntityError> {
    match reply {
        Ok(_) | Err(EntityError::Domain(crate::domain::DomainError::NotFound)) => Ok(()),
        Err(e) => Err(e),
    }
}
