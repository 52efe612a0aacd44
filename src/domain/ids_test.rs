//! Unit tests of `ids`.

use super::*;

#[test]
fn ids_round_trip_through_text() {
    let id = TicketId::new_in(Slot(7));
    assert_eq!(TicketId::parse(&id.to_string()), Some(id));
}

#[test]
fn malformed_ids_do_not_parse() {
    assert_eq!(TicketId::parse("not-an-id"), None);
    assert_eq!(TicketId::parse(""), None);
}

#[test]
fn an_id_carries_the_slot_it_was_made_in() {
    for slot in [0u16, 1, 255, 256, 4_000, (SLOTS - 1) as u16] {
        let id = OrderId::new_in(Slot(slot));
        assert_eq!(id.slot(), Slot(slot));
        assert_eq!(OrderId::parse(&id.to_string()).unwrap().slot(), Slot(slot));
    }
}

#[test]
fn text_slots_are_stable_and_spread() {
    assert_eq!(Slot::of_text("a@b.com"), Slot::of_text("a@b.com"));
    let distinct: std::collections::HashSet<_> = (0..1000).map(|i| Slot::of_text(&format!("u{i}@x.io"))).collect();
    assert!(distinct.len() > 850, "slots of different texts spread out: {}", distinct.len());
    assert!(distinct.iter().all(|s| u32::from(s.0) < SLOTS));
}

#[test]
fn a_slot_field_of_an_older_id_reads_as_a_slot_in_range() {
    assert_eq!(Slot::from_field(0xFFFF), Slot(0x0FFF));
    assert_eq!(Slot::from_field(7), Slot(7));
    assert!((0..1000).all(|_| u32::from(Slot::random().0) < SLOTS));
}

#[test]
fn new_ids_sort_by_creation() {
    let a = TicketId::new_in(Slot(9));
    std::thread::sleep(std::time::Duration::from_millis(2));
    let b = TicketId::new_in(Slot(1));
    assert!(a.as_bytes() < b.as_bytes(), "the time prefix orders ids, whatever their slot");
}
