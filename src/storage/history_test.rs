//! Unit tests of the kept events: written with the outbox, read a page at a time, pruned.

use super::*;
use crate::domain::{Event, Price, Slot, Ticket, TicketDraft, TicketId, UserId};
use std::sync::Arc;

fn open(keep_history: bool) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = super::super::Options { keep_history, ..Default::default() };
    (Store::open_with(dir.path(), options, Arc::new(|_| {})).unwrap(), dir)
}

/// Writes `events` in one batch of `slot`, as an actor step does.
async fn write(store: &Store, slot: Slot, events: &[Event]) {
    let mut batch = super::super::WriteBatch::default();
    for e in events {
        store.push_event(&mut batch, slot, e.clone()).unwrap();
    }
    store.commit(batch).await.unwrap();
}

fn listed(slot: Slot, seller: UserId) -> (Ticket, Event) {
    let draft = TicketDraft::new(Some("gig"), Some(Price::from_cents(100))).unwrap();
    Ticket::create(TicketId::new_in(slot), seller, draft, 1)
}

#[actix_web::test]
async fn an_entitys_history_is_its_own_events_in_write_order_a_page_at_a_time() {
    let (store, _dir) = open(true);
    let slot = Slot(9);
    let seller = UserId::new_in(slot);
    let (mut a, created_a) = listed(slot, seller);
    let (_, created_b) = listed(slot, seller);
    write(&store, slot, &[created_a]).await;
    write(&store, slot, &[created_b]).await;
    for n in 0..3 {
        let draft = TicketDraft::new(Some("gig"), Some(Price::from_cents(200 + n))).unwrap();
        let updated = a.update(seller, draft, 2).unwrap();
        write(&store, slot, &[updated]).await;
    }
    let entity = Entity::Ticket(a.id);
    let first = store.history(&entity, 0, 2).unwrap();
    assert!(first.more);
    let seqs: Vec<u64> = first.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 3], "the other ticket's event (2) is not in this one's history");
    assert!(matches!(first.entries[0].event, Event::TicketCreated(ref t) if t.id == a.id));
    let rest = store.history(&entity, 3, 2).unwrap();
    assert_eq!(rest.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![4, 5]);
    assert!(!rest.more, "nothing after the last entry");
    assert!(matches!(rest.entries[1].event, Event::TicketUpdated(ref t) if t.price.cents() == 202));
    assert!(store.history(&entity, 5, 10).unwrap().entries.is_empty());
    let same_id_as_order = Entity::Order(crate::domain::OrderId::from_bytes(*a.id.as_bytes()));
    assert!(store.history(&same_id_as_order, 0, 10).unwrap().entries.is_empty(), "a ticket's id names no order");
}

#[actix_web::test]
async fn pruning_removes_what_is_older_than_the_cutoff_and_the_trail_can_be_off() {
    let (store, _dir) = open(true);
    let slot = Slot(11);
    let (t, created) = listed(slot, UserId::new_in(slot));
    write(&store, slot, &[created]).await;
    let entity = Entity::Ticket(t.id);
    let written = store.history(&entity, 0, 10).unwrap().entries;
    assert_eq!(written.len(), 1);
    assert_eq!(store.prune_history(written[0].at_ms).await.unwrap(), 0, "not older than the cutoff");
    // An entry that does not decode is left in place, and does not stop the rest.
    let garbage = keys::history(&Entity::Ticket(TicketId::new_in(slot)), 1);
    let mut batch = super::super::WriteBatch::default();
    batch.put_raw(garbage.clone(), vec![2, 16, 0xff]);
    store.commit(batch).await.unwrap();
    assert_eq!(store.prune_history(written[0].at_ms + 1).await.unwrap(), 1);
    assert!(store.contains(&garbage).unwrap());
    assert!(store.history(&entity, 0, 10).unwrap().entries.is_empty());
    assert_eq!(store.prune_history(i64::MAX).await.unwrap(), 0, "nothing left that decodes");

    let (off, _dir) = open(false);
    write(&off, slot, &[listed(slot, UserId::new_in(slot)).1]).await;
    assert!(off.sweep_all::<HistoryEntry>(keys::HISTORY).unwrap().is_empty(), "nothing kept with the trail off");
    assert_eq!(off.scan_slot::<super::super::StoredEvent>(slot, keys::OUTBOX, None, 10).unwrap().len(), 1);
}
