//! Unit tests of the read model.

use super::*;
use crate::domain::{Price, Slot, TicketSnapshot};
use std::sync::Arc;

fn model() -> (ReadModel, Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Arc::new(|_| {})).unwrap();
    (ReadModel::open(&store).unwrap(), store, dir)
}

fn ticket(version: u64) -> Ticket {
    let slot = Slot(11);
    Ticket {
        id: TicketId::parse("0190a3c4-1111-7000-8000-00000000000b").unwrap(),
        title: format!("v{version}"),
        price: Price::from_cents(500),
        user_id: UserId::new_in(slot),
        version,
        order_id: None,
        updated_at_ms: 0,
    }
}

#[test]
fn a_stale_or_repeated_event_changes_nothing() {
    let (model, _store, _dir) = model();
    let (v0, mut v1) = (ticket(0), ticket(1));
    v1.title = "newer".into();
    model.apply(&Event::TicketCreated(v0.clone())).unwrap();
    model.apply(&Event::TicketUpdated(v1.clone())).unwrap();
    model.apply(&Event::TicketCreated(v0)).unwrap();
    let (page, more) = model.for_sale_after(None, 10).unwrap();
    assert_eq!(page, vec![v1.clone()]);
    assert!(!more);
    model.apply(&Event::TicketUpdated(v1)).unwrap();
    assert_eq!(model.for_sale_after(None, 10).unwrap().0.len(), 1);
}

#[test]
fn a_reserved_ticket_leaves_the_list_and_a_paid_one_is_sold() {
    let (model, _store, _dir) = model();
    let t = ticket(0);
    model.apply(&Event::TicketCreated(t.clone())).unwrap();
    let buyer = UserId::new_in(Slot(3));
    let snapshot = TicketSnapshot { id: t.id, title: t.title.clone(), price: t.price, version: 1 };
    let (mut order, created) = Order::place(crate::domain::OrderId::new_in(t.id.slot()), buyer, snapshot, 0, 60_000);
    let mut reserved = t.clone();
    reserved.order_id = Some(order.id);
    reserved.version = 1;
    model.apply(&Event::TicketUpdated(reserved)).unwrap();
    model.apply(&created).unwrap();
    assert!(model.for_sale_after(None, 10).unwrap().0.is_empty());
    assert_eq!(model.tickets_of(&t.user_id).unwrap()[0].state, ListingState::Reserved);
    order.begin_payment(buyer, "tok_visa", 1).unwrap();
    let paid = order.complete(crate::domain::PaymentId::new_in(t.id.slot()), "ch_1").unwrap();
    model.apply(&paid).unwrap();
    assert_eq!(model.tickets_of(&t.user_id).unwrap()[0].state, ListingState::Sold);
    assert_eq!(model.orders_of(&buyer).unwrap()[0].status, OrderStatus::Complete);
}

#[test]
fn the_model_tells_an_expired_order_from_one_its_buyer_cancelled_in_either_event_order() {
    let (model, _store, _dir) = model();
    let t = ticket(0);
    let buyer = UserId::new_in(Slot(3));
    let snapshot = || TicketSnapshot { id: t.id, title: t.title.clone(), price: t.price, version: 1 };
    let place = || Order::place(crate::domain::OrderId::new_in(t.id.slot()), buyer, snapshot(), 0, 60_000);

    let (mut cancelled, created) = place();
    model.apply(&created).unwrap();
    assert_eq!(model.expired(cancelled.id).unwrap(), None, "not cancelled: nothing known");
    for event in cancelled.cancel(buyer).unwrap() {
        model.apply(&event).unwrap();
    }
    assert_eq!(model.expired(cancelled.id).unwrap(), Some(false), "its buyer cancelled it");

    // An expiry writes expiration:complete then order:cancelled; either may arrive first.
    for reversed in [false, true] {
        let (mut expired, created) = place();
        model.apply(&created).unwrap();
        let mut events = expired.expire(60_001);
        assert!(events.iter().any(|e| matches!(e, Event::ExpirationComplete(_))), "{events:?}");
        if reversed {
            events.reverse();
        }
        for event in &events {
            model.apply(event).unwrap();
        }
        assert_eq!(model.expired(expired.id).unwrap(), Some(true), "its window ran out (reversed: {reversed})");
    }
}
