//! Domain events, in the seeds' subjects and JSON payloads. They are written to the durable
//! outbox in the same disk write as the change that caused them.

use super::{Order, Ticket};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The seed subject, e.g. `ticket:updated`.
    pub subject: String,
    /// The entity the event is about: events of one entity are delivered in version order.
    pub entity_id: String,
    /// The JSON payload, as text (it is what gets published).
    pub payload: String,
}

impl Event {
    fn new(subject: &str, entity_id: String, payload: serde_json::Value) -> Self {
        Self { subject: subject.to_string(), entity_id, payload: payload.to_string() }
    }

    pub fn payload_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload).unwrap_or(serde_json::Value::Null)
    }

    pub fn ticket_created(t: &Ticket) -> Self {
        Self::new(
            "ticket:created",
            t.id.to_string(),
            json!({"id": t.id, "version": t.version, "title": t.title, "price": t.price.to_json(), "userId": t.user_id}),
        )
    }

    pub fn ticket_updated(t: &Ticket) -> Self {
        let mut payload = json!({"id": t.id, "version": t.version, "title": t.title, "price": t.price.to_json(), "userId": t.user_id});
        if let Some(order_id) = t.order_id {
            payload["orderId"] = json!(order_id);
        }
        Self::new("ticket:updated", t.id.to_string(), payload)
    }

    pub fn order_created(o: &Order) -> Self {
        Self::new(
            "order:created",
            o.id.to_string(),
            json!({"id": o.id, "version": o.version, "status": o.status.as_str(), "userId": o.user_id,
                   "expiresAt": o.expires_at_iso(), "ticket": {"id": o.ticket.id, "price": o.ticket.price.to_json()}}),
        )
    }

    pub fn order_cancelled(o: &Order) -> Self {
        Self::new(
            "order:cancelled",
            o.id.to_string(),
            json!({"id": o.id, "version": o.version, "ticket": {"id": o.ticket.id}}),
        )
    }

    pub fn expiration_complete(o: &Order) -> Self {
        Self::new("expiration:complete", o.id.to_string(), json!({"orderId": o.id}))
    }

    pub fn payment_created(o: &Order, payment_id: &str, stripe_id: &str) -> Self {
        Self::new(
            "payment:created",
            o.id.to_string(),
            json!({"id": payment_id, "orderId": o.id, "stripeId": stripe_id}),
        )
    }
}
