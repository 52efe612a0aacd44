//! Unit tests of the migration from layout 1.

use super::*;
use crate::domain::{Price, TicketSnapshot};
use crate::storage::Store;
use std::sync::Arc;

fn open(dir: &std::path::Path) -> Result<Store, StorageError> {
    Store::open(dir, Arc::new(|_| {}))
}

fn legacy_key(kind: u8, rest: &[u8]) -> Vec<u8> {
    [&[kind][..], rest].concat()
}

#[test]
fn a_cancelled_order_still_holding_its_ticket_and_an_order_never_written_are_due_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (cancelled, missing, pending) = (OrderId::new_in(Slot(1)), OrderId::new_in(Slot(2)), OrderId::new_in(Slot(3)));
    {
        let db = sled::open(dir.path()).unwrap();
        let ticket = TicketId::new_in(Slot(1));
        let snapshot = TicketSnapshot { id: ticket, title: "t".into(), price: Price::from_cents(100), version: 1 };
        let buyer = UserId::new_in(Slot(9));
        let (mut order, _) = Order::place(cancelled, buyer, snapshot.clone(), 0, 60_000);
        order.cancel(buyer).unwrap();
        let (open_order, _) = Order::place(pending, buyer, snapshot, 0, 60_000);
        db.insert(legacy_key(keys::ORDER, cancelled.as_bytes()), envelope::encode(&order).unwrap()).unwrap();
        db.insert(legacy_key(keys::ORDER, pending.as_bytes()), envelope::encode(&open_order).unwrap()).unwrap();
        let entry = envelope::encode(&DeadlineEntry { ticket_id: ticket }).unwrap();
        for order in [cancelled, missing, pending] {
            db.insert(
                legacy_key(keys::DEADLINE, &[&60_000u64.to_be_bytes()[..], order.as_bytes()].concat()),
                entry.clone(),
            )
            .unwrap();
        }
        db.flush().unwrap();
    }
    let store = open(dir.path()).unwrap();
    let mut due: Vec<(i64, OrderId)> = store
        .sweep_all::<DeadlineEntry>(keys::DEADLINE)
        .unwrap()
        .iter()
        .filter_map(|(k, _)| keys::parse_deadline(k))
        .collect();
    due.sort();
    let mut expected = vec![(0, cancelled), (0, missing), (60_000, pending)];
    expected.sort();
    assert_eq!(due, expected);
}

/// Opens and closes the store (closing stops the flush thread, which holds the database).
async fn open_and_close(dir: &std::path::Path) {
    open(dir).unwrap().close().await;
}

#[actix_web::test]
async fn records_an_older_release_wrote_after_the_migration_are_not_cleared_away() {
    let dir = tempfile::tempdir().unwrap();
    open_and_close(dir.path()).await;
    {
        // An older binary runs on the migrated dir and writes in its own layout.
        let db = sled::open(dir.path()).unwrap();
        db.insert(legacy_key(keys::USER, UserId::new_in(Slot(4)).as_bytes()), vec![2, 1]).unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(open(dir.path()), Err(StorageError::Refused(_))), "refused, not silently cleared");
    {
        let db = sled::open(dir.path()).unwrap();
        assert_eq!(db.len(), 1, "the rolled-back writes are still there");
        // Had the migration itself crashed while clearing, the marker says so: finish it.
        db.open_tree("meta").unwrap().insert(CLEARING_KEY, &[1]).unwrap();
        db.flush().unwrap();
    }
    open_and_close(dir.path()).await;
    assert!(sled::open(dir.path()).unwrap().is_empty());
}
