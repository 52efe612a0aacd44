//! Crash windows around order placement and payment: the real binary aborts at a named step
//! (`testing.crash_at`), is restarted on the same data dir, and the invariants must hold:
//! no ticket with two live orders, no live order whose ticket points elsewhere, no double
//! charge, and deadlines that passed while the node was down fire within seconds.

use crate::helpers::{eventually, session_cookie};
use crate::process::{start_node, Node};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticketing::domain::{Order, Ticket};
use ticketing::payments::offline::{OfflineCharge, OfflineGateway};
use ticketing::storage::{keys, Store};

const WINDOW: &str = "2";

struct Shop {
    http: Client,
    base: String,
    seller: String,
    buyer: String,
}

impl Shop {
    async fn open(node: &Node) -> Self {
        let http = Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
        let base = node.address.clone();
        let mut cookies = Vec::new();
        for who in ["seller", "buyer"] {
            let email = format!("{who}@crash.test");
            let mut res = crate::process::account(&http, &base, "signup", &email).await;
            if res.status() == StatusCode::BAD_REQUEST {
                res = crate::process::account(&http, &base, "signin", &email).await;
            }
            cookies.push(session_cookie(&res).expect("signed in"));
        }
        let buyer = cookies.pop().unwrap();
        let seller = cookies.pop().unwrap();
        Self { http, base, seller, buyer }
    }

    async fn ticket(&self) -> String {
        let res = self
            .http
            .post(format!("{}/api/tickets", self.base))
            .header("Cookie", &self.seller)
            .json(&json!({"title": "crash", "price": 30}))
            .send()
            .await
            .unwrap();
        res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
    }

    async fn order(&self, ticket: &str) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(format!("{}/api/orders", self.base))
            .header("Cookie", &self.buyer)
            .json(&json!({"ticketId": ticket}))
            .send()
            .await
    }

    async fn pay(&self, order: &str) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(format!("{}/api/payments", self.base))
            .header("Cookie", &self.buyer)
            .json(&json!({"token": "tok_visa", "orderId": order}))
            .send()
            .await
    }

    async fn orders(&self) -> Vec<Value> {
        self.http
            .get(format!("{}/api/orders", self.base))
            .header("Cookie", &self.buyer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn ticket_json(&self, id: &str) -> Value {
        self.http.get(format!("{}/api/tickets/{id}", self.base)).send().await.unwrap().json().await.unwrap()
    }
}

fn node(data: &Path, crash_at: &str) -> Node {
    start_node(data, &[("TICKETING_ORDERS__EXPIRATION_SECONDS", WINDOW), ("TICKETING_TESTING__CRASH_AT", crash_at)])
}

/// Waits for the aborted child to be gone.
fn reap(node: &mut Node) {
    for _ in 0..100 {
        if node.child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    node.kill();
}

/// Opens the stopped node's store and checks the global invariants; returns the charges.
fn check_invariants(data: &Path) -> Vec<OfflineCharge> {
    let store = Store::open(data, Arc::new(|_| {})).unwrap();
    let tickets: HashMap<String, Ticket> =
        store.sweep_all::<Ticket>(keys::TICKET).unwrap().into_iter().map(|(_, t)| (t.id.to_string(), t)).collect();
    let orders = store.sweep_all::<Order>(keys::ORDER).unwrap();
    let mut live_per_ticket: HashMap<String, usize> = HashMap::new();
    for (_, o) in orders.iter().filter(|(_, o)| o.status.is_live()) {
        *live_per_ticket.entry(o.ticket.id.to_string()).or_default() += 1;
        assert_eq!(tickets[&o.ticket.id.to_string()].order_id, Some(o.id), "live order {} owns its ticket", o.id);
    }
    assert!(live_per_ticket.values().all(|n| *n == 1), "two live orders for one ticket: {live_per_ticket:?}");
    // And the other way round: every held ticket is held by a live order (no orphan hold left).
    let live: HashMap<String, String> = orders
        .iter()
        .filter(|(_, o)| o.status.is_live())
        .map(|(_, o)| (o.id.to_string(), o.ticket.id.to_string()))
        .collect();
    for t in tickets.values() {
        if let Some(holder) = t.order_id {
            assert_eq!(live.get(&holder.to_string()), Some(&t.id.to_string()), "ticket {} held by {holder}", t.id);
        }
    }
    OfflineGateway::charges(&store).unwrap()
}

/// A reservation is one write: a crash right after it leaves an order that exists (never a
/// hold without one), which expires at its window like any other.
#[actix_web::test]
async fn a_crash_right_after_reserving_leaves_a_whole_order_that_expires_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut first = node(data.path(), "after_reserve");
    let shop = Shop::open(&first).await;
    let ticket = shop.ticket().await;
    assert!(shop.order(&ticket).await.is_err(), "the node aborted mid-request");
    reap(&mut first);

    let mut second = node(data.path(), "");
    let shop = Shop::open(&second).await;
    let held = shop.ticket_json(&ticket).await;
    let orders = shop.orders().await;
    assert_eq!(orders.len(), 1, "the reservation and its order were written together");
    // The window (2 s) may have passed during the restart: then the order has expired.
    match held.get("orderId") {
        Some(holder) => assert_eq!(holder, &orders[0]["id"], "the hold is the order's"),
        None => assert_eq!(orders[0]["status"], "cancelled", "released only once its order expired: {orders:?}"),
    }
    eventually(Duration::from_secs(8), "the order expires", || async {
        shop.orders().await[0]["status"] == "cancelled"
    })
    .await;
    eventually(Duration::from_secs(5), "the ticket is released", || async {
        shop.ticket_json(&ticket).await.get("orderId").is_none()
    })
    .await;
    let res = shop.order(&ticket).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "the ticket is orderable again");
    assert_eq!(second.terminate().code(), Some(0));
    check_invariants(data.path());
}

/// A cancellation cut short between writing the order and releasing its ticket is finished
/// at start-up, not when the order's old window would have ended.
#[actix_web::test]
async fn a_release_cut_short_by_a_crash_is_finished_as_the_node_starts() {
    let data = tempfile::tempdir().unwrap();
    // A long window: only recovery, not expiry, can free the ticket within the test.
    let mut first = start_node(
        data.path(),
        &[("TICKETING_ORDERS__EXPIRATION_SECONDS", "900"), ("TICKETING_TESTING__CRASH_AT", "before_release")],
    );
    let shop = Shop::open(&first).await;
    let ticket = shop.ticket().await;
    let order: Value = shop.order(&ticket).await.unwrap().json().await.unwrap();
    let cancel = shop.http.delete(format!("{}/api/orders/{}", shop.base, order["id"].as_str().unwrap()));
    assert!(cancel.header("Cookie", &shop.buyer).send().await.is_err(), "the node aborted mid-cancel");
    reap(&mut first);

    let started = Instant::now();
    let mut second = start_node(data.path(), &[("TICKETING_ORDERS__EXPIRATION_SECONDS", "900")]);
    let shop = Shop::open(&second).await;
    eventually(Duration::from_secs(10), "the ticket is released", || async {
        shop.ticket_json(&ticket).await.get("orderId").is_none()
    })
    .await;
    eprintln!("interrupted release finished {:?} after the restart began", started.elapsed());
    assert_eq!(shop.orders().await[0]["status"], "cancelled");
    assert_eq!(second.terminate().code(), Some(0));
    check_invariants(data.path());
}

async fn crash_during_payment(crash_at: &str) -> (Vec<OfflineCharge>, String) {
    let data = tempfile::tempdir().unwrap();
    // A window no restart outlasts: the order still awaits its payment when the buyer retries.
    let mut first = start_node(
        data.path(),
        &[("TICKETING_ORDERS__EXPIRATION_SECONDS", "60"), ("TICKETING_TESTING__CRASH_AT", crash_at)],
    );
    let shop = Shop::open(&first).await;
    let ticket = shop.ticket().await;
    let order: Value = shop.order(&ticket).await.unwrap().json().await.unwrap();
    let order_id = order["id"].as_str().unwrap().to_string();
    assert!(shop.pay(&order_id).await.is_err(), "the node aborted mid-payment");
    reap(&mut first);

    let mut second = start_node(data.path(), &[("TICKETING_ORDERS__EXPIRATION_SECONDS", "60")]);
    let shop = Shop::open(&second).await;
    assert_eq!(shop.orders().await[0]["status"], "awaiting:payment", "the attempt was recorded before the charge");
    // Retrying the payment resumes the same attempt (same idempotency key).
    let res = shop.pay(&order_id).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(shop.orders().await[0]["status"], "complete");
    assert_eq!(shop.ticket_json(&ticket).await["orderId"], order_id.as_str());
    assert_eq!(second.terminate().code(), Some(0));
    (check_invariants(data.path()), order_id)
}

#[actix_web::test]
async fn a_crash_before_the_charge_is_resumed_without_a_double_charge() {
    let (charges, _) = crash_during_payment("before_charge").await;
    assert_eq!(charges.len(), 1, "exactly one charge: {charges:?}");
}

#[actix_web::test]
async fn a_crash_after_the_charge_is_resumed_without_a_double_charge() {
    let (charges, _) = crash_during_payment("after_charge").await;
    assert_eq!(charges.len(), 1, "the resumed attempt replayed the first charge: {charges:?}");
}

#[actix_web::test]
async fn an_interrupted_payment_is_settled_at_expiry_without_a_retry_from_the_buyer() {
    let data = tempfile::tempdir().unwrap();
    let mut first = node(data.path(), "after_charge");
    let shop = Shop::open(&first).await;
    let ticket = shop.ticket().await;
    let order: Value = shop.order(&ticket).await.unwrap().json().await.unwrap();
    let order_id = order["id"].as_str().unwrap().to_string();
    assert!(shop.pay(&order_id).await.is_err());
    reap(&mut first);
    let mut second = node(data.path(), "");
    let shop = Shop::open(&second).await;
    eventually(Duration::from_secs(8), "the interrupted charge is settled", || async {
        shop.orders().await[0]["status"] == "complete"
    })
    .await;
    assert_eq!(second.terminate().code(), Some(0));
    assert_eq!(check_invariants(data.path()).len(), 1);
}

#[actix_web::test]
async fn orders_that_expired_while_the_node_was_down_are_cancelled_within_seconds_of_start_up() {
    let data = tempfile::tempdir().unwrap();
    let mut first = node(data.path(), "");
    let shop = Shop::open(&first).await;
    let mut tickets = Vec::new();
    for _ in 0..5 {
        let ticket = shop.ticket().await;
        assert_eq!(shop.order(&ticket).await.unwrap().status(), StatusCode::CREATED);
        tickets.push(ticket);
    }
    first.kill();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let started = Instant::now();
    let mut second = node(data.path(), "");
    let shop = Shop::open(&second).await;
    eventually(Duration::from_secs(5), "every expired order is cancelled", || async {
        shop.orders().await.iter().all(|o| o["status"] == "cancelled")
    })
    .await;
    // Each ticket's release is its own step after its order's expiry.
    eventually(Duration::from_secs(5), "every ticket is released", || async {
        for ticket in &tickets {
            if shop.ticket_json(ticket).await.get("orderId").is_some() {
                return false;
            }
        }
        true
    })
    .await;
    eprintln!("expired-while-down orders cancelled {:?} after restart", started.elapsed());
    assert_eq!(second.terminate().code(), Some(0));
    check_invariants(data.path());
}
