//! Unit tests of `keys`.

use super::*;

#[test]
fn deadline_keys_round_trip_and_sort_by_time_within_a_slot() {
    let o = OrderId::new_in(Slot(3));
    let k = deadline(1_700_000_000_000, &o);
    assert_eq!(parse_deadline(&k), Some((1_700_000_000_000, o)));
    assert!(deadline(5, &OrderId::new_in(Slot(3))) < deadline(6, &o));
}

#[test]
fn every_key_starts_with_its_entity_slot() {
    let slot = Slot(0xBEE);
    let (t, o, p) = (TicketId::new_in(slot), OrderId::new_in(slot), PaymentId::new_in(slot));
    for key in [ticket(&t), order(&o), deadline(9, &o), payment(&p), payment_by_order(&o), outbox(slot, 7)] {
        assert_eq!(slot_of(&key), Some(slot), "{}", describe(&key));
    }
    assert_eq!(refunded_charge(&o, "ch_1")[..2], slot.to_be_bytes());
    let email = Email::parse("a@b.io").unwrap();
    assert_eq!(slot_of(&self::email(&email)), Some(Slot::of_text("a@b.io")));
}

#[test]
fn keys_describe_themselves() {
    let t = TicketId::new_in(Slot(5));
    assert_eq!(describe(&ticket(&t)), format!("5/ticket/{t}"));
}
