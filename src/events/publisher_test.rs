//! Unit tests of the outbox publisher.

use super::*;
use crate::domain::{Price, Ticket, TicketId, UserId};

fn event(title: &str) -> Event {
    let ticket = Ticket {
        id: TicketId::new(),
        title: title.into(),
        price: Price::from_cents(100),
        user_id: UserId::new(),
        version: 0,
        order_id: None,
        updated_at_ms: 0,
    };
    Event::ticket_created(&ticket)
}

#[actix_web::test]
async fn events_are_published_in_order_and_removed_from_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Arc::new(|_| {})).unwrap();
    let bus = EventBus::default();
    let publisher = Publisher::new(store.clone(), vec![Rc::new(bus.clone())], Metrics::new().unwrap());
    let mut batch = WriteBatch::default();
    for title in ["a", "b", "c"] {
        store.push_event(&mut batch, &event(title)).unwrap();
    }
    store.commit(batch).await.unwrap();
    assert_eq!(publisher.pass().await.unwrap(), 3);
    let titles: Vec<String> =
        bus.recent().iter().map(|e| e.payload_json()["title"].as_str().unwrap().to_string()).collect();
    assert_eq!(titles, ["a", "b", "c"]);
    assert!(store.scan::<StoredEvent>(&[keys::OUTBOX], None, 10).unwrap().is_empty());
}

#[actix_web::test]
async fn an_undecodable_outbox_record_is_quarantined_and_the_rest_still_flows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Arc::new(|_| {})).unwrap();
    let bus = EventBus::default();
    let publisher = Publisher::new(store.clone(), vec![Rc::new(bus.clone())], Metrics::new().unwrap());
    let mut batch = WriteBatch::default();
    store.push_event(&mut batch, &event("before")).unwrap();
    batch.put_raw(keys::outbox(u64::MAX / 2), vec![2, 5, 0xff, 0xff]);
    store.commit(batch).await.unwrap();
    let mut batch = WriteBatch::default();
    store.push_event(&mut batch, &event("after")).unwrap();
    store.commit(batch).await.unwrap();
    publisher.pass().await.unwrap();
    publisher.pass().await.unwrap();
    assert_eq!(bus.recent().len(), 2, "both good events were published");
    assert!(store.scan_keys(&[keys::OUTBOX], 10).unwrap().is_empty());
    let mut quarantined = vec![keys::QUARANTINE];
    quarantined.extend_from_slice(&keys::outbox(u64::MAX / 2));
    assert!(store.contains(&quarantined).unwrap());
}
