//! Ten thousand pending orders across a restart: every deadline re-armed, none fired early,
//! the ones that passed while down fired at once, and start-up stays fast.

use crate::helpers::{eventually, session_cookie};
use crate::process::start_node;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticketing::domain::{now_ms, Event, Order, OrderId, Price, Slot, Ticket, TicketId, TicketSnapshot, UserId};
use ticketing::storage::{keys, DeadlineEntry, Store, WriteBatch};

const PENDING: usize = 10_000;
const OVERDUE: usize = 100;

async fn signup(http: &Client, base: &str, email: &str) -> (String, String) {
    let res = crate::process::account(http, base, "signup", email).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let cookie = session_cookie(&res).unwrap();
    let body: Value = res.json().await.unwrap();
    (cookie, body["id"].as_str().unwrap().to_string())
}

/// Writes reserved tickets and their orders straight into the store, as a node would have:
/// ticket, order, deadline and events in the ticket's slot (a thousand per slot here, so each
/// batch is one slot).
async fn seed_orders(data: &std::path::Path, seller: UserId, buyer: UserId) {
    let store = Store::open(data, Arc::new(|_| {})).unwrap();
    let now = now_ms();
    let mut batch = WriteBatch::default();
    for i in 0..PENDING {
        let slot = Slot((i / 1000) as u16);
        let ticket_id = TicketId::new_in(slot);
        let order_id = OrderId::new_in(slot);
        // The first OVERDUE orders expired a minute ago; the rest expire in ten minutes.
        let expires = if i < OVERDUE { now - 60_000 } else { now + 600_000 };
        let ticket = Ticket {
            id: ticket_id,
            title: format!("seat {i}"),
            price: Price::from_cents(1000),
            user_id: seller,
            version: 1,
            order_id: Some(order_id),
            updated_at_ms: now,
        };
        let snapshot = TicketSnapshot { id: ticket_id, title: ticket.title.clone(), price: ticket.price, version: 1 };
        let (order, created) = Order::place(order_id, buyer, snapshot, expires - 900_000, 900_000);
        batch.put(keys::ticket(&ticket_id), &ticket).unwrap();
        batch.put(keys::order(&order_id), &order).unwrap();
        store.push_event(&mut batch, slot, Event::TicketUpdated(ticket.clone())).unwrap();
        store.push_event(&mut batch, slot, created.clone()).unwrap();
        batch.put(keys::deadline(expires, &order_id), &DeadlineEntry { ticket_id }).unwrap();
        if i % 1000 == 999 {
            store.commit(std::mem::take(&mut batch)).await.unwrap();
        }
    }
    store.commit(batch).await.unwrap();
    store.close().await;
}

fn timers_pending(metrics: &str) -> Option<u64> {
    metrics.lines().find(|l| l.starts_with("ticketing_timers_pending "))?.split_whitespace().nth(1)?.parse().ok()
}

#[actix_web::test]
async fn ten_thousand_pending_orders_are_re_armed_on_restart_and_none_fires_early() {
    let data = tempfile::tempdir().unwrap();
    let http = Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap();
    let mut first = start_node(data.path(), &[]);
    let (_, seller) = signup(&http, &first.address, "seller@scale.test").await;
    let (_, buyer) = signup(&http, &first.address, "buyer@scale.test").await;
    assert_eq!(first.terminate().code(), Some(0));
    seed_orders(data.path(), UserId::parse(&seller).unwrap(), UserId::parse(&buyer).unwrap()).await;

    let started = Instant::now();
    let node = start_node(data.path(), &[]);
    let start_up = started.elapsed();
    eprintln!("start-up with {PENDING} pending orders: {start_up:?}");
    assert!(start_up < Duration::from_secs(5), "start-up took {start_up:?}");
    let base = node.address.clone();
    let res = crate::process::account(&http, &base, "signin", "buyer@scale.test").await;
    let cookie = session_cookie(&res).unwrap();

    let list = || async {
        let orders: Vec<Value> = http
            .get(format!("{base}/api/orders"))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        orders
    };
    eventually(Duration::from_secs(10), "the overdue orders are cancelled", || async {
        list().await.iter().filter(|o| o["status"] == "cancelled").count() == OVERDUE
    })
    .await;
    let fired = started.elapsed();
    let orders = list().await;
    assert_eq!(orders.len(), PENDING);
    let created = orders.iter().filter(|o| o["status"] == "created").count();
    assert_eq!(created, PENDING - OVERDUE, "no deadline fired early");
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(timers_pending(&metrics), Some((PENDING - OVERDUE) as u64), "every future deadline is armed");
    eprintln!("{OVERDUE} overdue orders cancelled {fired:?} after the restart began");
}
