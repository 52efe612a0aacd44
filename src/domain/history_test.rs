//! Unit tests of `history`.

use super::*;
use crate::domain::{Order, Price, TicketSnapshot, UserId};

fn order() -> (Order, UserId) {
    let buyer = UserId::new_in(Slot(3));
    let ticket =
        TicketSnapshot { id: TicketId::new_in(Slot(3)), title: "t".into(), price: Price::from_cents(500), version: 0 };
    (Order::place(OrderId::new_in(Slot(3)), buyer, ticket, 1_000, 60_000).0, buyer)
}

fn entry(event: &Event, write: &[Event]) -> HistoryEntry {
    HistoryEntry { seq: 1, at_ms: 5, event: event.clone(), reason: HistoryEntry::reason(event, write) }
}

#[test]
fn an_expiry_says_why_its_order_was_cancelled_and_a_lone_cancellation_is_the_buyers() {
    let (mut expiring, _) = order();
    let expiry = expiring.expire(61_000);
    assert_eq!(expiry.len(), 2);
    assert!(expiry.iter().all(|e| e.entity() == Some(Entity::Order(expiring.id))));
    assert_eq!(HistoryEntry::reason(&expiry[0], &expiry), None);
    assert_eq!(HistoryEntry::reason(&expiry[1], &expiry), Some(CancelReason::Expired));
    assert_eq!(Step::of(&entry(&expiry[0], &expiry)), Some(Step::Expired));
    assert_eq!(Step::of(&entry(&expiry[1], &expiry)), None, "an expiry is one step for the buyer");

    let (mut cancelled, buyer) = order();
    let cancel = cancelled.cancel(buyer).unwrap();
    assert_eq!(HistoryEntry::reason(&cancel[0], &cancel), Some(CancelReason::Buyer));
    assert_eq!(Step::of(&entry(&cancel[0], &cancel)), Some(Step::Cancelled));
    // Another order's expiry in the same write would not make this one's cancellation expired.
    let (mut other, _) = order();
    let mixed: Vec<Event> = other.expire(61_000).into_iter().take(1).chain(cancel.clone()).collect();
    assert_eq!(HistoryEntry::reason(&cancel[0], &mixed), Some(CancelReason::Buyer));
}

#[test]
fn a_declined_payment_is_a_step_with_its_reason_and_text_events_name_no_entity() {
    let (mut o, buyer) = order();
    o.begin_payment(buyer, "tok", 2_000).unwrap();
    let started = Event::OrderUpdated(o.clone());
    let declined = o.payment_declined("card declined").unwrap();
    assert_eq!(Step::of(&entry(&started, &[])), Some(Step::PaymentStarted));
    assert_eq!(Step::of(&entry(&declined, &[])), Some(Step::PaymentDeclined("card declined".into())));
    assert_eq!(declined.entity(), Some(Entity::Order(o.id)));
    let text = Event::Recorded { subject: "ticket:created".into(), entity_id: "x".into(), payload: "{}".into() };
    assert_eq!(text.entity(), None, "an event stored as text names no entity: it is not kept");
}
