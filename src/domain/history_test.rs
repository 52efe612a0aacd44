//! Unit tests of `history`.

use super::*;
use crate::domain::{Order, Price, TicketSnapshot, UserId};

fn order() -> (Order, UserId) {
    let buyer = UserId::new_in(Slot(3));
    let ticket =
        TicketSnapshot { id: TicketId::new_in(Slot(3)), title: "t".into(), price: Price::from_cents(500), version: 0 };
    (Order::place(OrderId::new_in(Slot(3)), buyer, ticket, 1_000, 60_000).0, buyer)
}

fn numbered(events: &[Event]) -> Vec<(u64, &Event)> {
    events.iter().enumerate().map(|(i, e)| (i as u64 + 7, e)).collect()
}

#[test]
fn an_expiry_says_why_its_order_was_cancelled_and_a_lone_cancellation_is_the_buyers() {
    let (mut expiring, _) = order();
    let expiry = expiring.expire(61_000);
    let kept = HistoryEntry::of_write(&numbered(&expiry), 61_000);
    assert_eq!(kept.len(), 2);
    assert!(kept.iter().all(|(entity, _)| *entity == Entity::Order(expiring.id)));
    assert_eq!((kept[0].1.seq, kept[1].1.seq), (7, 8), "numbered as the outbox numbers them");
    assert_eq!(kept[0].1.reason, None);
    assert_eq!(kept[1].1.reason, Some(CancelReason::Expired));
    assert_eq!(Step::of(&kept[0].1), Some(Step::Expired));
    assert_eq!(Step::of(&kept[1].1), None, "an expiry is one step for the buyer");

    let (mut cancelled, buyer) = order();
    let cancel = cancelled.cancel(buyer).unwrap();
    let kept = HistoryEntry::of_write(&numbered(&cancel), 2_000);
    assert_eq!(kept[0].1.reason, Some(CancelReason::Buyer));
    assert_eq!(Step::of(&kept[0].1), Some(Step::Cancelled));
}

#[test]
fn a_declined_payment_is_a_step_with_its_reason_and_text_events_are_not_kept() {
    let (mut o, buyer) = order();
    o.begin_payment(buyer, "tok", 2_000).unwrap();
    let started = Event::OrderUpdated(o.clone());
    let declined = o.payment_declined("card declined").unwrap();
    let text = Event::Recorded { subject: "ticket:created".into(), entity_id: "x".into(), payload: "{}".into() };
    let events = [started, declined, text];
    let kept = HistoryEntry::of_write(&numbered(&events), 3_000);
    assert_eq!(kept.len(), 2, "an event stored as text names no entity");
    assert_eq!(Step::of(&kept[0].1), Some(Step::PaymentStarted));
    assert_eq!(Step::of(&kept[1].1), Some(Step::PaymentDeclined("card declined".into())));
    assert!(kept.iter().all(|(_, e)| e.at_ms == 3_000));
}
