//! Unit tests of the outbox publisher.

use super::*;
use crate::domain::{Price, Ticket, TicketId, UserId};

const SLOT: Slot = Slot(42);

fn event(title: &str) -> Event {
    Event::TicketCreated(Ticket {
        id: TicketId::new_in(SLOT),
        title: title.into(),
        price: Price::from_cents(100),
        user_id: UserId::new_in(SLOT),
        version: 0,
        order_id: None,
        updated_at_ms: 0,
    })
}

fn setup() -> (Store, EventBus, Publisher, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Arc::new(|_| {})).unwrap();
    let bus = EventBus::default();
    let publisher = Publisher::new(store.clone(), vec![Rc::new(bus.clone())], Metrics::new().unwrap());
    (store, bus, publisher, dir)
}

#[actix_web::test]
async fn events_are_published_in_order_and_removed_from_the_outbox() {
    let (store, bus, publisher, _dir) = setup();
    let mut batch = WriteBatch::default();
    for title in ["a", "b", "c"] {
        store.push_event(&mut batch, SLOT, event(title)).unwrap();
    }
    store.commit(batch).await.unwrap();
    assert_eq!(publisher.pass(SLOT).await.unwrap(), Pass { published: 3, in_flight: 0, more: 0, remote_failed: None });
    let titles: Vec<String> =
        bus.recent().iter().map(|e| e.payload_json()["title"].as_str().unwrap().to_string()).collect();
    assert_eq!(titles, ["a", "b", "c"]);
    assert!(store.scan_slot::<StoredEvent>(SLOT, keys::OUTBOX, None, 10).unwrap().is_empty());
}

#[actix_web::test]
async fn events_after_one_still_in_flight_wait_for_it_so_a_slot_goes_out_in_order() {
    let (store, bus, publisher, _dir) = setup();
    let mut pending = WriteBatch::default();
    store.push_event(&mut pending, SLOT, event("first")).unwrap();
    // Applied but not settled: visible to a scan, not yet known to be on disk.
    store.apply_unchecked_for_tests(&mut pending);
    let mut durable = WriteBatch::default();
    store.push_event(&mut durable, SLOT, event("second")).unwrap();
    store.apply_unchecked_for_tests(&mut durable);
    durable.settle_for_tests();
    assert_eq!(publisher.pass(SLOT).await.unwrap(), Pass { published: 0, in_flight: 2, more: 0, remote_failed: None });
    assert!(bus.recent().is_empty(), "the second does not overtake the first");
    pending.settle_for_tests();
    assert_eq!(publisher.pass(SLOT).await.unwrap(), Pass { published: 2, in_flight: 0, more: 0, remote_failed: None });
    let titles: Vec<_> = bus.recent().iter().map(|e| e.payload_json()["title"].clone()).collect();
    assert_eq!(titles, ["first", "second"]);
}

#[actix_web::test]
async fn an_undecodable_outbox_record_is_quarantined_and_the_rest_still_flows() {
    let (store, bus, publisher, _dir) = setup();
    let mut batch = WriteBatch::default();
    store.push_event(&mut batch, SLOT, event("before")).unwrap();
    batch.put_raw(keys::outbox(SLOT, u64::MAX / 2), vec![2, 13, 0xff, 0xff]);
    store.commit(batch).await.unwrap();
    let mut batch = WriteBatch::default();
    store.push_event(&mut batch, SLOT, event("after")).unwrap();
    store.commit(batch).await.unwrap();
    publisher.pass(SLOT).await.unwrap();
    publisher.pass(SLOT).await.unwrap();
    assert_eq!(bus.recent().len(), 2, "both good events were published");
    assert!(store.scan_keys(&keys::prefix(SLOT, keys::OUTBOX), 10).unwrap().is_empty());
    assert!(store.contains(&keys::quarantined(&keys::outbox(SLOT, u64::MAX / 2))).unwrap());
}

/// A remote sink that refuses while `down` is set, and records what it accepted.
#[derive(Default)]
struct Flaky {
    down: std::cell::Cell<bool>,
    accepted: std::cell::RefCell<Vec<u64>>,
}

impl EventSink for Flaky {
    fn publish<'a>(&'a self, _slot: Slot, events: &'a [StoredEvent]) -> LocalBoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if self.down.get() {
                return Err("broker away".into());
            }
            self.accepted.borrow_mut().extend(events.iter().map(|e| e.seq));
            Ok(())
        })
    }
}

#[actix_web::test]
async fn a_failing_remote_sink_keeps_events_for_itself_without_holding_back_this_node() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Arc::new(|_| {})).unwrap();
    let bus = EventBus::default();
    let broker = Rc::new(Flaky::default());
    let publisher =
        Publisher::new(store.clone(), vec![Rc::new(bus.clone())], Metrics::new().unwrap()).with_remote(broker.clone());
    broker.down.set(true);
    for title in ["a", "b"] {
        let mut batch = WriteBatch::default();
        store.push_event(&mut batch, SLOT, event(title)).unwrap();
        store.commit(batch).await.unwrap();
    }
    let pass = publisher.pass(SLOT).await.unwrap();
    assert_eq!((pass.published, pass.remote_failed.is_some()), (2, true));
    assert_eq!(bus.recent().len(), 2, "this node's sinks have them");
    // Retried while the broker is still away: this node's sinks do not get them twice.
    publisher.pass(SLOT).await.unwrap();
    assert_eq!(bus.recent().len(), 2);
    assert_eq!(store.scan_slot::<StoredEvent>(SLOT, keys::OUTBOX, None, 10).unwrap().len(), 2, "kept for the broker");
    broker.down.set(false);
    let pass = publisher.pass(SLOT).await.unwrap();
    assert_eq!((pass.published, pass.remote_failed), (0, None));
    assert_eq!(*broker.accepted.borrow(), vec![1, 2]);
    assert_eq!(bus.recent().len(), 2);
    assert!(store.scan_slot::<StoredEvent>(SLOT, keys::OUTBOX, None, 10).unwrap().is_empty());
}
