//! Which domain types are stored, under which envelope kind, and how older formats upgrade.

use super::envelope::{decode_current, decode_legacy, Kind, Record};
use crate::domain::{
    Event, HistoryEntry, MailEntry, Order, OrderId, PasswordReset, Payment, Price, RefreshToken, Ticket, TicketId,
    User, UserId,
};
use serde::{Deserialize, Serialize};

impl Record for User {
    const KIND: Kind = Kind::User;
}

impl Record for Order {
    const KIND: Kind = Kind::Order;
}

impl Record for Payment {
    const KIND: Kind = Kind::Payment;
}

/// An empty value for index keys whose key is the whole information.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker;

impl Record for Marker {
    const KIND: Kind = Kind::Marker;
}

/// A Stripe webhook event already handled, kept to de-duplicate Stripe's retries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSeen {
    pub received_at_ms: i64,
}

impl Record for WebhookSeen {
    const KIND: Kind = Kind::WebhookEvent;
}

impl Record for RefreshToken {
    const KIND: Kind = Kind::RefreshToken;
}

/// The ticket as format version 1 stored it: before `updated_at_ms` existed.
#[derive(Serialize, Deserialize)]
pub(crate) struct TicketV1 {
    pub id: TicketId,
    pub title: String,
    pub price: Price,
    pub user_id: UserId,
    pub version: u64,
    pub order_id: Option<OrderId>,
}

impl Record for Ticket {
    const KIND: Kind = Kind::Ticket;

    fn decode_v1(payload: &[u8]) -> Option<Self> {
        let old: TicketV1 = decode_legacy(payload)?;
        Some(Ticket {
            id: old.id,
            title: old.title,
            price: old.price,
            user_id: old.user_id,
            version: old.version,
            order_id: old.order_id,
            updated_at_ms: 0,
        })
    }
}

/// The email index: which user owns an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailOwner(pub UserId);

impl Record for EmailOwner {
    const KIND: Kind = Kind::EmailIndex;
}

/// An outbox entry: a typed event waiting to be published, in commit sequence, with the trace
/// context of the write that made it (so its consumers continue that request's trace).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub seq: u64,
    pub event: Event,
    pub trace: Option<TraceContext>,
}

impl Record for StoredEvent {
    const KIND: Kind = Kind::TracedEvent;

    /// An entry written before trace context (kind 13: the same fields but the trace).
    fn decode_earlier_kind(kind: u8, payload: &[u8]) -> Option<Self> {
        if kind != Kind::TypedEvent as u8 {
            return None;
        }
        let (seq, event): (u64, Event) = decode_current(payload)?;
        Some(StoredEvent { seq, event, trace: None })
    }
}

/// A W3C trace context as stored (what a `traceparent` header carries, in bytes): which trace
/// and span an event was written in, and whether that trace is sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl Record for PasswordReset {
    const KIND: Kind = Kind::PasswordReset;
}

impl Record for MailEntry {
    const KIND: Kind = Kind::Mail;
}

impl Record for HistoryEntry {
    const KIND: Kind = Kind::History;
}

/// An outbox entry as the previous release wrote it: the event already rendered as JSON text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JsonEvent {
    pub seq: u64,
    pub subject: String,
    pub entity_id: String,
    pub payload: String,
}

impl Record for JsonEvent {
    const KIND: Kind = Kind::Event;
}

/// An order's unfinished work, due at the time in its key: expiry of an unpaid order, or the
/// release of a cancelled order's ticket. The ticket is named so that a hold can be released
/// even when the order record is missing (data of releases that wrote the two apart).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineEntry {
    pub ticket_id: TicketId,
}

impl Record for DeadlineEntry {
    const KIND: Kind = Kind::Deadline;
}

#[cfg(test)]
#[path = "records_test.rs"]
mod tests;
