//! Unit tests of `ids`.

use super::*;

#[test]
fn ids_round_trip_through_text() {
    let id = TicketId::new();
    assert_eq!(TicketId::parse(&id.to_string()), Some(id));
}

#[test]
fn malformed_ids_do_not_parse() {
    assert_eq!(TicketId::parse("not-an-id"), None);
    assert_eq!(TicketId::parse(""), None);
}

#[test]
fn shards_are_stable_and_in_range() {
    let id = OrderId::parse("0190a3c4-0000-7000-8000-000000000001").unwrap();
    assert_eq!(id.shard(64), id.shard(64));
    for _ in 0..100 {
        assert!(OrderId::new().shard(7) < 7);
    }
}

#[test]
fn new_ids_sort_by_creation() {
    let a = TicketId::new();
    let b = TicketId::new();
    assert!(a.as_bytes() <= b.as_bytes());
}
