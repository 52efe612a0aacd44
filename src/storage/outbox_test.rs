//! Unit tests of `outbox`.

use super::*;

#[test]
fn forgetting_a_slot_forgets_its_numbers_in_flight_so_the_publisher_is_not_held_at_them() {
    let outbox = Outbox::default();
    let (mine, other) = (Slot(7), Slot(900));
    // A write the log did not confirm: numbered, never finished.
    outbox.number(mine, 2, || Ok::<_, ()>(10), |seqs| Ok(seqs.to_vec())).unwrap();
    outbox.number(other, 1, || Ok::<_, ()>(0), |seqs| Ok(seqs.to_vec())).unwrap();
    assert!(outbox.in_flight(mine, 11) && outbox.in_flight(mine, 12));
    outbox.forget(0..64);
    assert!(!outbox.in_flight(mine, 11) && !outbox.in_flight(mine, 12), "held the slot's publisher for good");
    assert_eq!(outbox.last(mine), None, "numbering read from the copy again");
    assert!(outbox.in_flight(other, 1), "another shard's slot untouched");
}
