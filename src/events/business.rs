//! The business metrics' view of the event stream. Only the node that writes a slot publishes
//! its events, and each reaches this node's sinks once it is on disk, so a change is counted
//! after its write is durable, by one node. It must stay the last local sink: a sink before it
//! that fails has the pass retried, and this one is then not called twice. Across a crash or a
//! failover, events delivered but not yet removed from the outbox are delivered (and counted)
//! again: at least once, not exactly once.

use super::EventSink;
use crate::domain::{now_ms, CancelReason, Event, Order, OrderId, Slot};
use crate::observability::Business;
use crate::storage::StoredEvent;
use futures_util::future::LocalBoxFuture;
use std::cell::RefCell;
use std::collections::HashMap;

pub struct BusinessEvents {
    business: Business,
    /// Per slot, the order whose `expiration:complete` was just seen: the `order:cancelled`
    /// written with it in the same batch (next in the slot's order) is an expiry, not the
    /// buyer's cancellation. The seeds' `order:cancelled` payload does not say which.
    expiring: RefCell<HashMap<Slot, OrderId>>,
}

impl BusinessEvents {
    pub fn new(business: Business) -> Self {
        Self { business, expiring: RefCell::default() }
    }

    fn count(&self, slot: Slot, event: &Event) {
        match event {
            Event::TicketCreated(_) => self.business.listing_created(),
            Event::TicketDeleted(_) => self.business.listing_withdrawn(),
            Event::OrderCreated(_) => self.business.order_created(),
            Event::ExpirationComplete(order) => {
                self.expiring.borrow_mut().insert(slot, order.id);
            }
            Event::OrderCancelled(order) => {
                if self.expiring.borrow_mut().remove(&slot) == Some(order.id) {
                    // Held for its whole window, however late the event is delivered.
                    let window_s = (order.expires_at_ms - order.created_at_ms) as f64 / 1000.0;
                    self.business.order_cancelled(CancelReason::Expired, window_s);
                } else {
                    self.business.order_cancelled(CancelReason::Buyer, held_seconds(order));
                }
            }
            Event::PaymentCreated { order, .. } => {
                self.business.order_paid(order.ticket.price.cents(), held_seconds(order))
            }
            // Payment attempts are counted where the provider answers (`app::payments`).
            Event::TicketUpdated(_)
            | Event::OrderUpdated(_)
            | Event::PaymentDeclined { .. }
            | Event::PasswordResetRequested { .. }
            | Event::Recorded { .. } => {}
        }
    }
}

/// From the order's creation to now: its event is delivered moments after it was written
/// (later while a backlog drains; the order records no time of payment or cancellation).
fn held_seconds(order: &Order) -> f64 {
    (now_ms() - order.created_at_ms) as f64 / 1000.0
}

impl EventSink for BusinessEvents {
    fn publish<'a>(&'a self, slot: Slot, events: &'a [StoredEvent]) -> LocalBoxFuture<'a, Result<(), String>> {
        for stored in events {
            self.count(slot, &stored.event);
        }
        Box::pin(async { Ok(()) })
    }
}
