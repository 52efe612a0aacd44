//! Which domain types are stored, under which envelope kind, and how older formats upgrade.

use super::envelope::{decode_legacy, Kind, Record};
use crate::domain::{Event, Order, OrderId, Payment, Price, RefreshToken, Ticket, TicketId, User, UserId};
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

/// An empty value for index keys whose key is the whole information (orders by user).
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

/// An outbox entry: an event waiting to be published, in commit sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub seq: u64,
    pub event: Event,
}

impl Record for StoredEvent {
    const KIND: Kind = Kind::Event;
}

/// A durable deadline: at its time the order is expired, or its ticket's hold released if the
/// order was never written (a crash between reserving the ticket and writing the order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineEntry {
    pub ticket_id: TicketId,
}

impl Record for DeadlineEntry {
    const KIND: Kind = Kind::Deadline;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{envelope, keys, StorageError};

    fn ticket() -> Ticket {
        Ticket {
            id: TicketId::new(),
            title: "gig".into(),
            price: Price::from_cents(1250),
            user_id: UserId::new(),
            version: 3,
            order_id: Some(OrderId::new()),
            updated_at_ms: 42,
        }
    }

    #[test]
    fn records_round_trip_through_the_current_envelope() {
        let t = ticket();
        let bytes = envelope::encode(&t).unwrap();
        assert_eq!(bytes[0], envelope::FORMAT_VERSION);
        assert_eq!(envelope::decode::<Ticket>(b"k", &bytes).unwrap(), t);
    }

    #[test]
    fn a_record_of_another_kind_is_reported_with_its_key() {
        let bytes = envelope::encode(&ticket()).unwrap();
        let key = keys::order(&OrderId::new());
        match envelope::decode::<Order>(&key, &bytes) {
            Err(StorageError::Corrupt { key: k, .. }) => assert!(k.starts_with("order/")),
            other => panic!("expected a corrupt-record error, got {other:?}"),
        }
    }

    #[test]
    fn truncated_and_unknown_versions_are_errors_not_panics() {
        let mut bytes = envelope::encode(&ticket()).unwrap();
        bytes.truncate(bytes.len() - 3);
        assert!(envelope::decode::<Ticket>(b"t", &bytes).is_err());
        assert!(envelope::decode::<Ticket>(b"t", &[9, Kind::Ticket as u8, 1, 2]).is_err());
        assert!(envelope::decode::<Ticket>(b"t", &[]).is_err());
    }

    /// The committed fixture holds a ticket written by format version 1; this release must read it.
    #[test]
    fn a_ticket_written_by_format_version_1_still_loads() {
        let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ticket_v1.bin")).unwrap();
        assert_eq!(bytes[0], envelope::LEGACY_FORMAT_VERSION);
        let t: Ticket = envelope::decode(b"t", &bytes).unwrap();
        assert_eq!(t.title, "legacy concert");
        assert_eq!(t.price, Price::from_cents(4550));
        assert_eq!(t.version, 7);
        assert_eq!(t.id.to_string(), "0190a3c4-1111-7000-8000-000000000001");
        assert_eq!(t.order_id, None);
        assert_eq!(t.updated_at_ms, 0);
    }

    /// Writes the v1 fixture the way release 1 did. Run by hand only to regenerate it.
    #[test]
    #[ignore]
    fn regenerate_the_v1_fixture() {
        let old = TicketV1 {
            id: TicketId::parse("0190a3c4-1111-7000-8000-000000000001").unwrap(),
            title: "legacy concert".into(),
            price: Price::from_cents(4550),
            user_id: UserId::parse("0190a3c4-2222-7000-8000-000000000002").unwrap(),
            version: 7,
            order_id: None,
        };
        let mut bytes = vec![envelope::LEGACY_FORMAT_VERSION, Kind::Ticket as u8];
        bytes.extend(bincode::serde::encode_to_vec(&old, envelope::legacy()).unwrap());
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ticket_v1.bin"), bytes).unwrap();
    }
}
