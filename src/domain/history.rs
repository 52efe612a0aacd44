//! An entity's history, the audit trail: every event a ticket or an order caused, kept after
//! it was delivered, and what a reader makes of it (why an order was cancelled, the buyer's
//! timeline). The storage keeps the entries with the entity (`storage::keys::history`).

use super::{Event, OrderId, Slot, TicketId};
use serde::{Deserialize, Serialize};

/// Whose history: a ticket's or an order's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entity {
    Ticket(TicketId),
    Order(OrderId),
}

impl Entity {
    pub fn slot(&self) -> Slot {
        match self {
            Self::Ticket(id) => id.slot(),
            Self::Order(id) => id.slot(),
        }
    }

    /// `ticket` or `order`, as the admin API names them.
    pub fn kind_str(&self) -> &'static str {
        match self {
            Self::Ticket(_) => "ticket",
            Self::Order(_) => "order",
        }
    }

    pub fn id_bytes(&self) -> &[u8; 16] {
        match self {
            Self::Ticket(id) => id.as_bytes(),
            Self::Order(id) => id.as_bytes(),
        }
    }
}

/// Why an order was cancelled. The seeds' `order:cancelled` payload does not say, so the
/// history keeps it beside the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelReason {
    /// The buyer cancelled.
    Buyer,
    /// Its payment window passed unpaid.
    Expired,
}

impl CancelReason {
    pub const ALL: [Self; 2] = [Self::Buyer, Self::Expired];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Buyer => "buyer",
            Self::Expired => "expired",
        }
    }
}

/// One kept event: its number in its slot's outbox (history order), when it was written, and
/// why, for a cancellation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub seq: u64,
    pub at_ms: i64,
    pub event: Event,
    pub reason: Option<CancelReason>,
}

impl HistoryEntry {
    /// Why `event` happened, as the history keeps it, given the other events of its write
    /// (`write`): an expiry writes `expiration:complete` and `order:cancelled` together; a
    /// cancellation written alone is the buyer's.
    pub fn reason(event: &Event, write: &[Event]) -> Option<CancelReason> {
        let Event::OrderCancelled(order) = event else { return None };
        let expired = write.iter().any(|e| matches!(e, Event::ExpirationComplete(o) if o.id == order.id));
        Some(if expired { CancelReason::Expired } else { CancelReason::Buyer })
    }
}

/// A step of an order's life as its buyer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Reserved,
    PaymentStarted,
    PaymentDeclined(String),
    Paid,
    Cancelled,
    Expired,
}

impl Step {
    /// The step an order's history entry is, if the buyer has one for it (an expiry is one
    /// step, not an expiry and a cancellation).
    pub fn of(entry: &HistoryEntry) -> Option<Self> {
        Some(match &entry.event {
            Event::OrderCreated(_) => Self::Reserved,
            Event::OrderUpdated(o) if o.status == super::OrderStatus::AwaitingPayment => Self::PaymentStarted,
            Event::PaymentDeclined { reason, .. } => Self::PaymentDeclined(reason.clone()),
            Event::PaymentCreated { .. } => Self::Paid,
            Event::ExpirationComplete(_) => Self::Expired,
            Event::OrderCancelled(_) if entry.reason == Some(CancelReason::Buyer) => Self::Cancelled,
            _ => return None,
        })
    }

    /// When the order whose history `entries` are was paid (a receipt's "paid at"), if that
    /// is kept.
    pub fn paid_at(entries: &[HistoryEntry]) -> Option<i64> {
        entries.iter().rev().find_map(|e| (Self::of(e)? == Self::Paid).then_some(e.at_ms))
    }
}

#[cfg(test)]
#[path = "history_test.rs"]
mod tests;
