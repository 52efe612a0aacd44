//! A payment record: what was charged for which order, and whether it was refunded.

use super::{Order, OrderId, PaymentId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub order_id: OrderId,
    /// The provider's charge id.
    pub stripe_id: String,
    pub amount_cents: u64,
    pub created_at_ms: i64,
    /// Set when the charge was refunded because it arrived after its order was cancelled.
    pub refund_id: Option<String>,
}

impl Payment {
    /// The record of a provider charge for `order` (refunded when `refund_id` is given), in
    /// the order's slot.
    pub fn of_charge(order: &Order, stripe_id: &str, refund_id: Option<String>, now_ms: i64) -> Self {
        Self {
            id: PaymentId::new_in(order.id.slot()),
            order_id: order.id,
            stripe_id: stripe_id.to_string(),
            amount_cents: order.ticket.price.cents(),
            created_at_ms: now_ms,
            refund_id,
        }
    }
}
