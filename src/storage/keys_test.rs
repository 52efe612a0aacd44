//! Unit tests of `keys`.

use super::*;

#[test]
fn deadline_keys_round_trip_and_sort_by_time() {
    let o = OrderId::new();
    let k = deadline(1_700_000_000_000, &o);
    assert_eq!(parse_deadline(&k), Some((1_700_000_000_000, o)));
    assert!(deadline(5, &OrderId::new()) < deadline(6, &o));
}

#[test]
fn keys_describe_themselves() {
    let t = TicketId::new();
    assert_eq!(describe(&ticket(&t)), format!("ticket/{t}"));
}
