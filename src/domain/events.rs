//! Domain events as typed values. They are written to the durable outbox in the same disk
//! write as the change that caused them; their published form (the seeds' subjects and JSON
//! payloads) is made where they leave the process (`crate::json`).
//!
//! Events carry full snapshots of the entity after the change, so a read model can be fed from
//! events alone (on this node or, in a cluster, from every node's events).

use super::{Entity, Order, OrderId, PaymentId, Ticket, UserId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    TicketCreated(Ticket),
    /// Any change of a ticket: edited, reserved, released.
    TicketUpdated(Ticket),
    OrderCreated(Order),
    /// A change of an order's status that the published contract has no event for (a payment
    /// started or declined). Internal: it feeds read models and is not published.
    OrderUpdated(Order),
    OrderCancelled(Order),
    ExpirationComplete(Order),
    PaymentCreated {
        order: Order,
        payment_id: PaymentId,
        stripe_id: String,
    },
    /// An event written by a release that stored events as ready-made JSON text; published
    /// as it was written.
    Recorded {
        subject: String,
        entity_id: String,
        payload: String,
    },
    /// The owner withdrew the listing; the ticket as it was, its version raised by one.
    TicketDeleted(Ticket),
    /// The provider refused a charge: the order is payable again (`created`), and why.
    /// Internal, like `OrderUpdated`: it feeds read models and the order's history.
    /// (New variants go last: stored outboxes name variants by position.)
    PaymentDeclined {
        order: Order,
        reason: String,
    },
    /// Someone asked for a password reset of `user`'s account: it sends the link (`Mail`).
    /// Internal and local: it stays on the node that owns the account (`is_local`).
    PasswordResetRequested {
        user: UserId,
        email: String,
        nonce: [u8; 16],
        expires_at_ms: i64,
    },
}

impl Event {
    /// The seed subject, e.g. `ticket:updated`.
    pub fn subject(&self) -> &str {
        match self {
            Self::TicketCreated(_) => "ticket:created",
            Self::TicketUpdated(_) => "ticket:updated",
            Self::TicketDeleted(_) => "ticket:deleted",
            Self::OrderCreated(_) => "order:created",
            Self::OrderUpdated(_) => "order:updated",
            Self::OrderCancelled(_) => "order:cancelled",
            Self::ExpirationComplete(_) => "expiration:complete",
            Self::PaymentCreated { .. } => "payment:created",
            Self::PaymentDeclined { .. } => "payment:declined",
            Self::PasswordResetRequested { .. } => "password:reset-requested",
            Self::Recorded { subject, .. } => subject,
        }
    }

    /// The entity the event is about: events of one entity are delivered in version order.
    pub fn entity_id(&self) -> String {
        match self {
            Self::TicketCreated(t) | Self::TicketUpdated(t) | Self::TicketDeleted(t) => t.id.to_string(),
            Self::OrderCreated(o) | Self::OrderUpdated(o) | Self::OrderCancelled(o) | Self::ExpirationComplete(o) => {
                o.id.to_string()
            }
            Self::PaymentCreated { order, .. } | Self::PaymentDeclined { order, .. } => order.id.to_string(),
            Self::PasswordResetRequested { user, .. } => user.to_string(),
            Self::Recorded { entity_id, .. } => entity_id.clone(),
        }
    }

    /// The entity whose history keeps this event (`None`: events an earlier release stored
    /// as text, which name no typed entity).
    pub fn entity(&self) -> Option<Entity> {
        match self {
            Self::TicketCreated(t) | Self::TicketUpdated(t) | Self::TicketDeleted(t) => Some(Entity::Ticket(t.id)),
            Self::Recorded { .. } | Self::PasswordResetRequested { .. } => None,
            _ => self.order_id().map(Entity::Order),
        }
    }

    /// The order an event is about, if any.
    pub fn order_id(&self) -> Option<OrderId> {
        match self {
            Self::OrderCreated(o) | Self::OrderUpdated(o) | Self::OrderCancelled(o) | Self::ExpirationComplete(o) => {
                Some(o.id)
            }
            Self::PaymentCreated { order, .. } | Self::PaymentDeclined { order, .. } => Some(order.id),
            _ => None,
        }
    }

    /// Whether the event is part of the published contract (internal ones only feed read
    /// models).
    pub fn is_public(&self) -> bool {
        !matches!(self, Self::OrderUpdated(_) | Self::PaymentDeclined { .. } | Self::PasswordResetRequested { .. })
    }

    /// Whether the event concerns this node alone: the others get a placeholder with its
    /// subject and number only (no read model has a use for it, and it names an address).
    pub fn is_local(&self) -> bool {
        matches!(self, Self::PasswordResetRequested { .. })
    }
}
