//! A payment record: what was charged for which order, and whether it was refunded.

use super::{OrderId, PaymentId};
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
