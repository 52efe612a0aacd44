//! The JSON forms of domain values, shared by the edges that speak JSON: the REST API
//! (`crate::http`) and published events (`crate::events`), and the typed view models that the
//! API and the pages (`crate::web`) both render. The domain itself speaks Rust.

use crate::domain::{iso_utc, Event, HistoryEntry, Order, OrderId, Price, Ticket, TicketId, UserId};
use serde::Serialize;
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

/// A price as the views show it: a JSON number in the API, `$1,012.50` on a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amount(pub Price);

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        price(self.0).serialize(s)
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "${}", self.0.grouped())
    }
}

/// A ticket as the API returns it and the pages show it: `orderId` only while held.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    #[schema(value_type = String, format = "uuid")]
    pub id: TicketId,
    pub title: String,
    /// Currency units (`20`, `12.5`).
    #[schema(value_type = f64, minimum = 0.01)]
    pub price: Amount,
    #[schema(value_type = String, format = "uuid")]
    pub user_id: UserId,
    pub version: u64,
    /// Present only while an order holds the ticket (reserved or sold).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = "uuid", nullable = false)]
    pub order_id: Option<OrderId>,
}

impl TicketView {
    pub fn of(t: &Ticket) -> Self {
        Self {
            id: t.id,
            title: t.title.clone(),
            price: Amount(t.price),
            user_id: t.user_id,
            version: t.version,
            order_id: t.order_id,
        }
    }
}

/// The ticket an order is for, as it was when the order was placed.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OrderTicketView {
    #[schema(value_type = String, format = "uuid")]
    pub id: TicketId,
    pub title: String,
    #[schema(value_type = f64, minimum = 0.01)]
    pub price: Amount,
    pub version: u64,
}

/// An order as the API returns it and the pages show it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    #[schema(value_type = String, format = "uuid")]
    pub id: OrderId,
    #[schema(value_type = String, format = "uuid")]
    pub user_id: UserId,
    /// The seeds' status word (`awaiting:payment`...).
    #[schema(value_type = String, pattern = "^(created|awaiting:payment|complete|cancelled)$")]
    pub status: &'static str,
    /// ISO-8601 UTC.
    #[schema(format = "date-time")]
    pub expires_at: String,
    pub version: u64,
    pub ticket: OrderTicketView,
    /// For the pages' countdown; not part of the API's form.
    #[serde(skip)]
    #[schema(ignore)]
    pub expires_at_ms: i64,
}

impl OrderView {
    pub fn of(o: &Order) -> Self {
        Self {
            id: o.id,
            user_id: o.user_id,
            status: o.status.as_str(),
            expires_at: o.expires_at_iso(),
            version: o.version,
            ticket: OrderTicketView {
                id: o.ticket.id,
                title: o.ticket.title.clone(),
                price: Amount(o.ticket.price),
                version: o.ticket.version,
            },
            expires_at_ms: o.expires_at_ms,
        }
    }
}

/// The API form of a ticket.
pub fn ticket(t: &Ticket) -> Value {
    to_value(TicketView::of(t))
}

/// The API form of an order.
pub fn order(o: &Order) -> Value {
    to_value(OrderView::of(o))
}

/// A view as a JSON value (views are plain data: serialising them cannot fail).
fn to_value(view: impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// A kept event as the admin API shows it: its number, time, subject, why (a cancellation),
/// and its payload as published (internal events: in the same shape as their public kin).
pub fn history_entry(entry: &HistoryEntry) -> Value {
    json!({
        "seq": entry.seq,
        "at": iso_utc(entry.at_ms),
        "event": entry.event.subject(),
        "reason": entry.reason.map(|r| r.as_str()),
        "data": event_payload(&entry.event),
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
        Event::TicketDeleted(t) => json!({"id": t.id, "version": t.version}),
        Event::PaymentCreated { order, payment_id, stripe_id } => {
            json!({"id": payment_id, "orderId": order.id, "stripeId": stripe_id})
        }
        Event::PaymentDeclined { order, reason } => {
            json!({"orderId": order.id, "version": order.version, "reason": reason})
        }
        // Never sent beyond its node; its address and nonce are not a payload.
        Event::PasswordResetRequested { user, .. } => json!({"userId": user}),
        Event::Recorded { payload, .. } => serde_json::from_str(payload).unwrap_or(Value::Null),
    }
}
