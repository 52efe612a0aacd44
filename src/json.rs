//! The JSON forms of domain values, shared by the edges that speak JSON: the REST API
//! (`crate::http`) and published events (`crate::events`). The domain itself speaks Rust.

use crate::domain::{Event, Order, Price, Ticket};
use serde_json::{json, Value};

/// A price in currency units: an integer when whole (`20`, not `20.0`), like the seeds.
pub fn price(p: Price) -> Value {
    match p.whole_units() {
        Some(units) => Value::from(units),
        None => Value::from(p.units()),
    }
}

/// Reads a price from a JSON number or numeric string (`None`: missing or not a valid price).
pub fn price_from(value: Option<&Value>) -> Option<Price> {
    match value? {
        Value::Number(n) => Price::parse(&n.to_string()),
        Value::String(s) => Price::parse(s),
        _ => None,
    }
}

/// The API form of a ticket: `orderId` only while reserved or sold.
pub fn ticket(t: &Ticket) -> Value {
    let mut v =
        json!({"id": t.id, "title": t.title, "price": price(t.price), "userId": t.user_id, "version": t.version});
    if let Some(order_id) = t.order_id {
        v["orderId"] = json!(order_id);
    }
    v
}

/// The API form of an order.
pub fn order(o: &Order) -> Value {
    json!({
        "id": o.id,
        "userId": o.user_id,
        "status": o.status.as_str(),
        "expiresAt": o.expires_at_iso(),
        "version": o.version,
        "ticket": {"id": o.ticket.id, "title": o.ticket.title, "price": price(o.ticket.price), "version": o.ticket.version},
    })
}

/// The published payload of an event, in the seeds' shapes.
pub fn event_payload(event: &Event) -> Value {
    match event {
        // The seeds publish a ticket as the API shows it (`orderId` only while held).
        Event::TicketCreated(t) | Event::TicketUpdated(t) => ticket(t),
        Event::OrderCreated(o) | Event::OrderUpdated(o) => json!({
            "id": o.id, "version": o.version, "status": o.status.as_str(), "userId": o.user_id,
            "expiresAt": o.expires_at_iso(), "ticket": {"id": o.ticket.id, "price": price(o.ticket.price)}
        }),
        Event::OrderCancelled(o) => json!({"id": o.id, "version": o.version, "ticket": {"id": o.ticket.id}}),
        Event::ExpirationComplete(o) => json!({"orderId": o.id}),
        Event::PaymentCreated { order, payment_id, stripe_id } => {
            json!({"id": payment_id, "orderId": order.id, "stripeId": stripe_id})
        }
        Event::Recorded { payload, .. } => serde_json::from_str(payload).unwrap_or(Value::Null),
    }
}
