//! Unit tests of `order`.

use super::*;
use crate::domain::{PaymentId, Slot};

fn order() -> (Order, UserId) {
    let buyer = UserId::new_in(Slot(2));
    let ticket =
        TicketSnapshot { id: TicketId::new_in(Slot(2)), title: "t".into(), price: Price::from_cents(2000), version: 1 };
    (Order::place(OrderId::new_in(Slot(2)), buyer, ticket, 1_000, 60_000).0, buyer)
}

#[test]
fn a_placed_order_expires_at_the_end_of_its_window() {
    let (o, _) = order();
    assert_eq!(o.expires_at_ms, 61_000);
    assert_eq!(o.status, OrderStatus::Created);
    assert_eq!(o.expires_at_iso(), "1970-01-01T00:01:01.000Z");
}

#[test]
fn expiry_cancels_an_unpaid_order_once() {
    let (mut o, _) = order();
    assert!(o.expire(60_999).is_empty(), "not before the deadline");
    let events: Vec<_> = o.expire(61_000).into_iter().map(|e| e.subject().to_string()).collect();
    assert_eq!(events, ["expiration:complete", "order:cancelled"]);
    assert_eq!(o.status, OrderStatus::Cancelled);
    assert!(o.expire(99_000).is_empty(), "a second expiry changes nothing");
}

#[test]
fn expiry_leaves_paid_and_in_flight_orders_alone() {
    let (mut o, buyer) = order();
    o.begin_payment(buyer, "tok_visa", 2_000).unwrap();
    assert!(o.expire(99_000).is_empty());
    o.complete(PaymentId::new_in(Slot(2)), "ch_1").unwrap();
    assert!(o.expire(99_000).is_empty());
    assert_eq!(o.status, OrderStatus::Complete);
}

#[test]
fn cancel_rules() {
    let (mut o, buyer) = order();
    assert_eq!(o.cancel(UserId::new_in(Slot(2))), Err(DomainError::NotAuthorized));
    assert_eq!(o.cancel(buyer).unwrap().len(), 1);
    assert!(o.cancel(buyer).unwrap().is_empty(), "cancelling twice changes nothing");
    let (mut paid, buyer) = order();
    paid.begin_payment(buyer, "tok_visa", 2_000).unwrap();
    paid.complete(PaymentId::new_in(Slot(2)), "ch").unwrap();
    assert_eq!(paid.cancel(buyer), Err(DomainError::Rule(Rule::CannotCancelCompleted)));
}

#[test]
fn payment_rules_and_attempt_keys() {
    let (mut o, buyer) = order();
    let not_owner = o.begin_payment(UserId::new_in(Slot(2)), "tok_visa", 2_000);
    assert_eq!(not_owner, Err(DomainError::NotAuthorized));
    let first = o.begin_payment(buyer, "tok_visa", 2_000).unwrap();
    assert_eq!((first.amount_cents, first.token.as_str()), (2000, "tok_visa"));
    let resumed = o.begin_payment(buyer, "tok_other", 2_000).unwrap();
    assert_eq!(resumed, first, "an attempt in flight resumes with the same token and key");
    let declined = o.payment_declined("card declined");
    assert!(matches!(declined, Some(Event::PaymentDeclined { ref reason, .. }) if reason == "card declined"));
    assert_eq!(o.status, OrderStatus::Created, "payable again");
    assert_eq!(o.payment_declined("again"), None, "no attempt in flight: nothing declined");
    let second = o.begin_payment(buyer, "tok_visa", 2_000).unwrap();
    assert_ne!(first.idempotency_key, second.idempotency_key);
    assert!(o.complete(PaymentId::new_in(Slot(2)), "ch").is_some());
    assert!(o.complete(PaymentId::new_in(Slot(2)), "ch").is_none(), "a repeated confirmation is not a second payment");
    let paid_twice = o.begin_payment(buyer, "tok_visa", 2_000);
    assert_eq!(paid_twice, Err(DomainError::Rule(Rule::AlreadyPaid)));
    let (mut late, buyer) = order();
    let expired = late.begin_payment(buyer, "tok_visa", 61_000);
    assert_eq!(expired, Err(DomainError::Rule(Rule::OrderExpired)));
    late.expire(61_000);
    let cancelled = late.begin_payment(buyer, "tok_visa", 61_000);
    assert_eq!(cancelled, Err(DomainError::Rule(Rule::CannotPayCancelled)));
}

#[test]
fn unfinished_work_is_due_at_expiry_then_at_once_until_the_ticket_is_released() {
    let (mut o, buyer) = order();
    assert_eq!(o.work_due_ms(), Some(61_000));
    o.cancel(buyer).unwrap();
    assert_eq!(o.work_due_ms(), Some(0), "a cancelled order still holding its ticket is due now");
    o.ticket_released = true;
    assert_eq!(o.work_due_ms(), None);
}

#[test]
fn an_order_is_payable_by_its_buyer_while_created_and_within_its_window() {
    let (mut o, buyer) = order();
    assert_eq!(o.check_payable(buyer, 2_000), Ok(()));
    assert_eq!(o.check_payable(UserId::new_in(Slot(2)), 2_000), Err(DomainError::NotAuthorized));
    assert_eq!(o.check_payable(buyer, 61_000), Err(Rule::OrderExpired.into()));
    o.begin_payment(buyer, "tok_visa", 2_000).unwrap();
    assert_eq!(o.check_payable(buyer, 2_000), Err(Rule::PaymentInProgress.into()), "no second way to pay");
    assert!(o.complete(PaymentId::new_in(Slot(2)), "ch").is_some());
    assert_eq!(o.check_payable(buyer, 2_000), Err(Rule::AlreadyPaid.into()));
    let (mut cancelled, buyer) = order();
    cancelled.cancel(buyer).unwrap();
    assert_eq!(cancelled.check_payable(buyer, 2_000), Err(Rule::CannotPayCancelled.into()));
}

#[test]
fn a_confirmation_is_late_for_a_cancelled_order_or_a_created_one_past_its_window() {
    let (mut o, buyer) = order();
    assert!(!o.confirmation_is_late(60_999));
    assert!(o.confirmation_is_late(61_000), "its timer may not have fired yet");
    o.begin_payment(buyer, "tok_visa", 2_000).unwrap();
    assert!(!o.confirmation_is_late(61_000), "a charge begun in time may complete it");
    let (mut cancelled, buyer) = order();
    cancelled.cancel(buyer).unwrap();
    assert!(cancelled.confirmation_is_late(2_000));
}
