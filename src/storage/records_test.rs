//! Unit tests of `records`.

use super::*;
use crate::storage::{envelope, keys, StorageError};

fn ticket() -> Ticket {
    Ticket {
        id: TicketId::new_in(crate::domain::Slot(1)),
        title: "gig".into(),
        price: Price::from_cents(1250),
        user_id: UserId::new_in(crate::domain::Slot(1)),
        version: 3,
        order_id: Some(OrderId::new_in(crate::domain::Slot(1))),
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
    let key = keys::order(&OrderId::new_in(crate::domain::Slot(1)));
    match envelope::decode::<Order>(&key, &bytes) {
        Err(StorageError::Corrupt { key: k, .. }) => assert!(k.contains("/order/"), "{k}"),
        other => panic!("expected a corrupt-record error, got {other:?}"),
    }
}

#[test]
fn a_corrupt_length_prefix_is_an_error_not_an_abort() {
    // A real ticket record whose title length is rewritten to claim 2^60 bytes.
    let mut t = ticket();
    t.title = "Q".into();
    let good = envelope::encode(&t).unwrap();
    let at = good.windows(2).position(|w| w == [1, b'Q']).unwrap();
    let mut bytes = good[..at].to_vec();
    bytes.push(253); // varint marker: a u64 follows
    bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
    bytes.extend_from_slice(&good[at + 1..]);
    assert!(matches!(envelope::decode::<Ticket>(b"t", &bytes), Err(StorageError::Corrupt { .. })));
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

#[test]
fn records_encoded_around_an_encoded_event_equal_the_whole_records_encoded() {
    use crate::domain::{CancelReason, Event, HistoryEntry};
    let event = Event::TicketUpdated(ticket());
    let field = envelope::encode_field(&event).unwrap();
    let traced = Some(TraceContext { trace_id: [7; 16], span_id: [9; 8], sampled: true });
    for trace in [None, traced] {
        let stored = StoredEvent { seq: 300, event: event.clone(), trace };
        let around = envelope::encode_around::<StoredEvent, _, _>(&300u64, &field, &(trace,)).unwrap();
        assert_eq!(around, envelope::encode(&stored).unwrap());
        assert_eq!(envelope::decode::<StoredEvent>(b"x", &around).unwrap(), stored);
    }
    for reason in [None, Some(CancelReason::Expired)] {
        let entry = HistoryEntry { seq: 7, at_ms: 1_733_000_000_000, event: event.clone(), reason };
        let around = envelope::encode_around::<HistoryEntry, _, _>(&(7u64, entry.at_ms), &field, &(reason,)).unwrap();
        assert_eq!(around, envelope::encode(&entry).unwrap());
        assert_eq!(envelope::decode::<HistoryEntry>(b"h", &around).unwrap(), entry);
    }
}

#[test]
fn an_outbox_entry_written_before_trace_context_is_still_read_without_one() {
    use crate::domain::Event;
    let event = Event::TicketUpdated(ticket());
    // What the previous release wrote: kind 13, the sequence and the event.
    let mut earlier = vec![envelope::FORMAT_VERSION, Kind::TypedEvent as u8];
    earlier.extend(bincode::serde::encode_to_vec((41u64, &event), bincode::config::standard()).unwrap());
    let read = envelope::decode::<StoredEvent>(b"x", &earlier).unwrap();
    assert_eq!(read, StoredEvent { seq: 41, event, trace: None });
    // Any other kind is still refused.
    earlier[1] = Kind::History as u8;
    assert!(envelope::decode::<StoredEvent>(b"x", &earlier).is_err());
}
