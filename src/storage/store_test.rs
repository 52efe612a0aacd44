//! Unit tests of the store: slots, sweeps and the outbox watermark.

use super::*;
use crate::domain::{OrderId, Slot, TicketId};

fn open() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Store::open(dir.path(), Arc::new(|_| {})).unwrap(), dir)
}

/// Opens `dir` again after a store on it was closed and dropped in this process: sled's
/// background threads may hold its file lock a moment longer (seen once on a loaded CI run:
/// "could not acquire lock … WouldBlock"), so a refusal for that is tried again for up to 5 s.
async fn reopen(dir: &std::path::Path, options: Options) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Store::open_with(dir, options, Arc::new(|_| {})) {
            Ok(store) => return store,
            Err(e) if e.to_string().contains("could not acquire lock") && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the store does not open again: {e}"),
        }
    }
}

#[actix_web::test]
#[should_panic(expected = "spans two slots")]
async fn a_batch_that_spans_two_slots_is_refused_in_debug_builds() {
    let (store, _dir) = open();
    let mut batch = WriteBatch::default();
    batch.put(keys::order(&OrderId::new_in(Slot(1))), &Marker).unwrap();
    batch.put(keys::order(&OrderId::new_in(Slot(2))), &Marker).unwrap();
    assert!(batch.spans_slots());
    let _ = store.commit(batch).await;
}

#[actix_web::test]
async fn a_sweep_visits_one_kind_in_every_slot_and_nothing_else() {
    let (store, _dir) = open();
    let mut expected = Vec::new();
    for slot in [0u16, 1, 700, 4_095] {
        let mut batch = WriteBatch::default();
        let order = OrderId::new_in(Slot(slot));
        batch.put(keys::deadline(5, &order), &DeadlineEntry { ticket_id: TicketId::new_in(Slot(slot)) }).unwrap();
        batch.put(keys::ticket(&TicketId::new_in(Slot(slot))), &Marker).unwrap();
        batch.put(keys::order(&order), &Marker).unwrap();
        store.commit(batch).await.unwrap();
        expected.push(keys::deadline(5, &order));
    }
    let swept: Vec<Vec<u8>> =
        store.sweep_all::<DeadlineEntry>(keys::DEADLINE).unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(swept, expected);
}

#[actix_web::test]
async fn an_event_is_in_flight_until_its_batch_is_durable() {
    let (store, _dir) = open();
    let event = Event::Recorded { subject: "s".into(), entity_id: "e".into(), payload: "{}".into() };
    let mut batch = WriteBatch::default();
    store.push_event(&mut batch, Slot(4), event.clone()).unwrap();
    // Applied (numbered, visible to a scan) but not yet flushed.
    store.apply_unchecked_for_tests(&mut batch);
    let seq = batch.events[0];
    assert!(store.outbox_in_flight(Slot(4), seq), "not publishable before the flush");
    batch.settle_for_tests();
    assert!(!store.outbox_in_flight(Slot(4), seq), "durable: publishable");
    assert_eq!(store.take_dirty_outbox_slots(), vec![Slot(4)]);
    {
        let mut batch = WriteBatch::default();
        store.push_event(&mut batch, Slot(5), event.clone()).unwrap();
    }
    assert!(store.take_dirty_outbox_slots().is_empty(), "a dropped batch leaves nothing to publish");
    let mut batch = WriteBatch::default();
    store.push_event(&mut batch, Slot(5), event.clone()).unwrap();
    assert_eq!(store.write(batch).unwrap().outbox_seqs, vec![1], "and takes no number: no gap");
}

#[actix_web::test]
async fn a_commit_cancelled_while_flushing_still_releases_its_events_once_durable() {
    let (store, _dir) = open();
    let event = Event::Recorded { subject: "s".into(), entity_id: "e".into(), payload: "{}".into() };
    // Cancel the commit at its first wait (queued for the writer, before the flush). The
    // writer thread may win the race and flush first; try again until the cancel lands first.
    let mut cancelled = None;
    for _ in 0..100 {
        let mut batch = WriteBatch::default();
        store.push_event(&mut batch, Slot(6), event.clone()).unwrap();
        let pending = store.write(batch).unwrap();
        let seq = pending.outbox_seqs[0];
        let mut commit = Box::pin(pending.durable());
        if futures::poll!(&mut commit).is_pending() {
            drop(commit);
            cancelled = Some(seq);
            break;
        }
        store.take_dirty_outbox_slots();
    }
    // (Not publishable before: `an_event_is_in_flight_until_its_batch_is_durable`; here the
    // writer thread may flush at any moment.)
    let seq = cancelled.expect("a commit still waiting for its flush after one poll");
    // The cancelled commit's own flush settles it: wait for it (bounded), not for a guess.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store.outbox_in_flight(Slot(6), seq) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert!(!store.outbox_in_flight(Slot(6), seq), "released once durable");
    assert_eq!(store.take_dirty_outbox_slots(), vec![Slot(6)], "and its slot is marked for the publisher");
}

#[actix_web::test]
async fn events_are_refused_outside_a_durable_commit() {
    let (store, _dir) = open();
    let mut batch = WriteBatch::default();
    let event = Event::Recorded { subject: "s".into(), entity_id: "e".into(), payload: "{}".into() };
    store.push_event(&mut batch, Slot(1), event.clone()).unwrap();
    assert!(matches!(store.apply(batch), Err(StorageError::Refused(_))));
}

#[actix_web::test]
async fn outbox_numbers_are_per_slot_gapless_and_resume_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let event = Event::Recorded { subject: "s".into(), entity_id: "e".into(), payload: "{}".into() };
    let write = |store: &Store, slot: Slot, n: usize| {
        let mut batch = WriteBatch::default();
        for _ in 0..n {
            store.push_event(&mut batch, slot, event.clone()).unwrap();
        }
        store.write(batch).unwrap()
    };
    {
        let store = Store::open(dir.path(), std::sync::Arc::new(|_| {})).unwrap();
        assert_eq!(write(&store, Slot(1), 2).outbox_seqs, vec![1, 2]);
        assert_eq!(write(&store, Slot(2), 1).outbox_seqs, vec![1], "another slot counts on its own");
        let pending = write(&store, Slot(1), 1);
        assert_eq!(pending.outbox_seqs, vec![3]);
        pending.durable().await.unwrap();
        // Published and deleted: the counter still remembers.
        store.remove_each((1..=3).map(|seq| keys::outbox(Slot(1), seq))).unwrap();
        store.close().await;
    }
    let store = reopen(dir.path(), Options::default()).await;
    assert_eq!(write(&store, Slot(1), 1).outbox_seqs, vec![4]);
}

/// A store whose disk is full from the start: a reserve no disk has.
fn open_full() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { reserve_bytes: Some(u64::MAX / 4), ..Options::default() };
    (Store::open_with(dir.path(), options, Arc::new(|_| {})).unwrap(), dir)
}

#[actix_web::test]
async fn a_full_disk_refuses_every_new_write_before_anything_is_written() {
    let (store, _dir) = open_full();
    assert!(matches!(store.health(), Health::Full { .. }));
    assert!(matches!(store.writable(), Err(StorageError::Full)));
    let ticket = keys::ticket(&TicketId::new_in(Slot(3)));
    let mut batch = WriteBatch::default();
    batch.put(ticket.clone(), &Marker).unwrap();
    assert!(matches!(store.commit(batch).await, Err(StorageError::Full)));
    assert!(matches!(store.compare_and_swap(&ticket, None, Some(b"x")).await, Err(StorageError::Full)));
    assert!(matches!(store.insert_unique(ticket.clone(), &Marker, vec![]).await, Err(StorageError::Full)));
    assert!(matches!(store.set_meta("probe", b"1"), Err(StorageError::Full)));
    assert_eq!(store.get_raw(&ticket).unwrap(), None, "a refused write left nothing, not even in memory");
    assert_eq!(store.meta("probe").unwrap(), None);
}

#[actix_web::test]
async fn a_full_disk_still_records_the_outcome_of_a_request_it_accepted() {
    let (store, _dir) = open_full();
    let key = keys::idempotency(&[7; 32]);
    let mut batch = WriteBatch::default();
    batch.put_raw(key.clone(), b"outcome".to_vec());
    store.commit(batch).await.expect("the rest of an accepted request is written");
    assert_eq!(store.get_raw(&key).unwrap().as_deref(), Some(&b"outcome"[..]));
    // Mixed with anything else, it is a new write again.
    let mut mixed = WriteBatch::default();
    mixed.put_raw(key, b"again".to_vec());
    mixed.put(keys::ticket(&TicketId::new_in(keys::slot_of(&keys::idempotency(&[7; 32])).unwrap())), &Marker).unwrap();
    assert!(matches!(store.commit(mixed).await, Err(StorageError::Full)));
}

#[actix_web::test]
async fn a_full_disk_neither_blocks_reads_nor_the_shutdown_flush() {
    let dir = tempfile::tempdir().unwrap();
    let ticket = keys::ticket(&TicketId::new_in(Slot(9)));
    {
        let store = Store::open(dir.path(), Arc::new(|_| {})).unwrap();
        let mut batch = WriteBatch::default();
        batch.put(ticket.clone(), &Marker).unwrap();
        store.commit(batch).await.unwrap();
        store.close().await;
    }
    let options = Options { reserve_bytes: Some(u64::MAX / 4), ..Options::default() };
    let store = reopen(dir.path(), options).await;
    assert_eq!(store.get::<Marker>(&ticket).unwrap(), Some(Marker), "what was written before is read");
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), store.close()).await;
    assert!(closed.is_ok(), "closing a full store does not wait for room");
}
