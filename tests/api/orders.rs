//! The seeds' order behaviours, expiry, and the never-sell-twice guarantee under contention.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

async fn ticket_for_sale(app: &TestApp) -> (Session, String) {
    let seller = app.signin().await;
    let t = app.create_ticket(&seller, "concert", json!(20)).await;
    (seller, t["id"].as_str().unwrap().to_string())
}

#[actix_web::test]
async fn ordering_an_unknown_ticket_returns_404() {
    let app = spawn_app().await;
    let buyer = app.signin().await;
    let res = app.order(&buyer, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_missing_or_malformed_ticket_id_is_a_400_on_the_field() {
    let app = spawn_app().await;
    let buyer = app.signin().await;
    for body in [json!({}), json!({"ticketId": "nope"}), json!({"ticketId": 5})] {
        let res = app.post("/api/orders").header("Cookie", &buyer.cookie).json(&body).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body, json!({"errors": [{"message": "TicketId must be provided", "field": "ticketId"}]}));
    }
    let res = app.post("/api/orders").json(&json!({})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_free_ticket_is_reserved_and_order_created_is_emitted() {
    let app = spawn_app().await;
    let (_, ticket) = ticket_for_sale(&app).await;
    let buyer = app.signin().await;
    let before = chrono::Utc::now();
    let order = app.order_ok(&buyer, &ticket).await;
    assert_eq!(order["status"], "created");
    assert_eq!(order["userId"], buyer.id.as_str());
    assert_eq!(order["ticket"]["id"], ticket.as_str());
    assert_eq!(order["ticket"]["price"], 20);
    let expires: chrono::DateTime<chrono::Utc> = order["expiresAt"].as_str().unwrap().parse().unwrap();
    let window = (expires - before).num_seconds();
    assert!((899..=901).contains(&window), "15 minutes by default, got {window}s");
    let order_id = order["id"].as_str().unwrap();
    let events = app.events_of(order_id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].subject, "order:created");
    let payload = events[0].payload_json();
    assert_eq!(
        (payload["status"].as_str(), payload["ticket"]["id"].as_str()),
        (Some("created"), Some(ticket.as_str()))
    );
    // The ticket records the order, and its ticket:updated event carries it.
    let (_, t) = app.get_json(&format!("/api/tickets/{ticket}"), None).await;
    assert_eq!(t["orderId"], order_id);
    let updates: Vec<Value> = app
        .events_of(&ticket)
        .await
        .iter()
        .filter(|e| e.subject == "ticket:updated")
        .map(|e| e.payload_json())
        .collect();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["orderId"], order_id);
}

#[actix_web::test]
async fn a_reserved_ticket_cannot_be_ordered_again() {
    let app = spawn_app().await;
    let (_, ticket) = ticket_for_sale(&app).await;
    let (first, second) = (app.signin().await, app.signin().await);
    app.order_ok(&first, &ticket).await;
    let res = app.order(&second, &ticket).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Ticket is already reserved"]);
}

#[actix_web::test]
async fn you_cannot_buy_your_own_ticket() {
    let app = spawn_app().await;
    let (seller, ticket) = ticket_for_sale(&app).await;
    let res = app.order(&seller, &ticket).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Cannot buy your own ticket"]);
}

#[actix_web::test]
async fn the_order_list_holds_only_the_callers_orders_oldest_first() {
    let app = spawn_app().await;
    let (one, two) = (app.signin().await, app.signin().await);
    let mut tickets = Vec::new();
    for _ in 0..3 {
        tickets.push(ticket_for_sale(&app).await.1);
    }
    app.order_ok(&one, &tickets[0]).await;
    let a = app.order_ok(&two, &tickets[1]).await;
    let b = app.order_ok(&two, &tickets[2]).await;
    let (status, list) = app.get_json("/api/orders", Some(&two)).await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0]["id"].clone(), list[1]["id"].clone()), (a["id"].clone(), b["id"].clone()));
    assert_eq!(
        (list[0]["ticket"]["id"].as_str(), list[1]["ticket"]["id"].as_str()),
        (Some(tickets[1].as_str()), Some(tickets[2].as_str()))
    );
    assert_eq!(app.get("/api/orders").send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn an_order_is_shown_to_its_owner_only() {
    let app = spawn_app().await;
    let (_, ticket) = ticket_for_sale(&app).await;
    let (buyer, other) = (app.signin().await, app.signin().await);
    let order = app.order_ok(&buyer, &ticket).await;
    let path = format!("/api/orders/{}", order["id"].as_str().unwrap());
    let (status, shown) = app.get_json(&path, Some(&buyer)).await;
    assert_eq!((status, shown["id"].clone()), (StatusCode::OK, order["id"].clone()));
    let (status, _) = app.get_json(&path, Some(&other)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get_json(&format!("/api/orders/{}", uuid::Uuid::now_v7()), Some(&buyer)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get_json("/api/orders/garbage", Some(&buyer)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn cancelling_returns_204_releases_the_ticket_and_emits_order_cancelled() {
    let app = spawn_app().await;
    let (_, ticket) = ticket_for_sale(&app).await;
    let (buyer, other) = (app.signin().await, app.signin().await);
    let order = app.order_ok(&buyer, &ticket).await;
    let id = order["id"].as_str().unwrap();
    let path = format!("/api/orders/{id}");
    assert_eq!(
        app.delete(&path).header("Cookie", &other.cookie).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let res = app.delete(&path).header("Cookie", &buyer.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, shown) = app.get_json(&path, Some(&buyer)).await;
    assert_eq!(shown["status"], "cancelled");
    assert_eq!(app.subjects_of(id).await, ["order:created", "order:cancelled"]);
    let (_, t) = app.get_json(&format!("/api/tickets/{ticket}"), None).await;
    assert!(t.get("orderId").is_none(), "the ticket is released: {t}");
    let last_update = app.events_of(&ticket).await.into_iter().last().unwrap();
    assert_eq!(last_update.subject, "ticket:updated");
    assert!(last_update.payload_json().get("orderId").is_none());
    // Cancelling again is 204 and changes nothing.
    assert_eq!(
        app.delete(&path).header("Cookie", &buyer.cookie).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.subjects_of(id).await, ["order:created", "order:cancelled"]);
    // And the ticket can be ordered again.
    app.order_ok(&other, &ticket).await;
}

#[actix_web::test]
async fn an_unpaid_order_expires_on_time_and_its_ticket_can_be_ordered_again() {
    let app = spawn_app_with(|s| s.orders.expiration_seconds = 2.0).await;
    let (_, ticket) = ticket_for_sale(&app).await;
    let (buyer, next) = (app.signin().await, app.signin().await);
    // Before the request: its window starts after this, so it cannot end less than 2 s later.
    let asked = Instant::now();
    let order = app.order_ok(&buyer, &ticket).await;
    let placed = Instant::now();
    let id = order["id"].as_str().unwrap().to_string();
    let path = format!("/api/orders/{id}");
    tokio::time::sleep(Duration::from_millis(1500).saturating_sub(asked.elapsed())).await;
    assert_eq!(app.get_json(&path, Some(&buyer)).await.1["status"], "created", "not before the window passes");
    eventually(Duration::from_secs(5), "the order is cancelled", || async {
        app.get_json(&path, Some(&buyer)).await.1["status"] == "cancelled"
    })
    .await;
    let (early, late) = (asked.elapsed(), placed.elapsed());
    assert!(early >= Duration::from_millis(1990), "expired {early:?} after it was asked for");
    assert!(late < Duration::from_millis(3500), "expired {late:?} after it was placed");
    eventually(Duration::from_secs(5), "the ticket is released", || async {
        app.get_json(&format!("/api/tickets/{ticket}"), None).await.1.get("orderId").is_none()
    })
    .await;
    app.order_ok(&next, &ticket).await;
    assert_eq!(
        app.subjects_of(&id).await,
        ["order:created", "expiration:complete", "order:cancelled"],
        "emitted once each"
    );
}

#[actix_web::test]
async fn a_passivated_order_still_expires_on_time() {
    let app = spawn_app_with(|s| {
        s.orders.expiration_seconds = 1.5;
        s.actors.idle_seconds = 0.1;
    })
    .await;
    let (_, ticket) = ticket_for_sale(&app).await;
    let buyer = app.signin().await;
    let order = app.order_ok(&buyer, &ticket).await;
    let id = ticketing::domain::OrderId::parse(order["id"].as_str().unwrap()).unwrap();
    eventually(Duration::from_secs(2), "the order actor passivates", || async {
        !app.state.app.router().here().orders.is_live(&id)
    })
    .await;
    eventually(Duration::from_secs(5), "the passivated order expires", || async {
        app.get_json(&format!("/api/orders/{id}"), Some(&buyer)).await.1["status"] == "cancelled"
    })
    .await;
}

#[actix_web::test]
async fn a_paid_order_is_left_alone_by_expiry() {
    let app = spawn_app_with(|s| s.orders.expiration_seconds = 1.0).await;
    let (_, ticket) = ticket_for_sale(&app).await;
    let buyer = app.signin().await;
    let order = app.order_ok(&buyer, &ticket).await;
    let id = order["id"].as_str().unwrap();
    app.pay_ok(&buyer, id).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (_, shown) = app.get_json(&format!("/api/orders/{id}"), Some(&buyer)).await;
    assert_eq!(shown["status"], "complete");
    let (_, t) = app.get_json(&format!("/api/tickets/{ticket}"), None).await;
    assert_eq!(t["orderId"], id, "a sold ticket stays with its order");
    assert!(!app.subjects_of(id).await.contains(&"order:cancelled".to_string()));
    let res = app.delete(&format!("/api/orders/{id}")).header("Cookie", &buyer.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Cannot cancel a completed order"]);
}

#[actix_web::test]
async fn two_hundred_buyers_racing_for_one_ticket_get_exactly_one_order() {
    let app = spawn_app().await;
    let (_, ticket) = ticket_for_sale(&app).await;
    let buyer = app.signin().await; // one session is enough: each POST is a separate buyer attempt
    let attempts = (0..200).map(|_| app.order(&buyer, &ticket));
    let responses = futures::future::join_all(attempts).await;
    let mut created = 0;
    for res in responses {
        match res.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::BAD_REQUEST => assert_eq!(error_messages(res).await, ["Ticket is already reserved"]),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, 1);
}

#[actix_web::test]
async fn many_buyers_on_many_tickets_never_get_two_live_orders_for_one_ticket() {
    let app = spawn_app().await;
    let seller = app.signin().await;
    let mut tickets = Vec::new();
    for i in 0..50 {
        tickets.push(app.create_ticket(&seller, &format!("t{i}"), json!(5)).await["id"].as_str().unwrap().to_string());
    }
    let buyers: Vec<Session> = futures::future::join_all((0..8).map(|_| app.signin())).await;
    let mut rng_state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let attempts: Vec<_> = (0..400)
        .map(|_| {
            let ticket = tickets[(next() % 50) as usize].clone();
            let buyer = buyers[(next() % 8) as usize].clone();
            (ticket, buyer)
        })
        .collect();
    let results = futures::future::join_all(attempts.iter().map(|(t, b)| app.order(b, t))).await;
    let mut created_per_ticket: HashMap<String, usize> = HashMap::new();
    for (res, (ticket, _)) in results.into_iter().zip(&attempts) {
        assert!(matches!(res.status(), StatusCode::CREATED | StatusCode::BAD_REQUEST), "{}", res.status());
        if res.status() == StatusCode::CREATED {
            *created_per_ticket.entry(ticket.clone()).or_default() += 1;
        }
    }
    assert!(created_per_ticket.values().all(|n| *n == 1), "{created_per_ticket:?}");
    // Cross-check from storage: every live order's ticket points back at it, one per ticket.
    let orders = app.state.app.store().sweep_all::<ticketing::domain::Order>(ticketing::storage::keys::ORDER).unwrap();
    let mut live_per_ticket: HashMap<String, usize> = HashMap::new();
    for (_, o) in orders.iter().filter(|(_, o)| o.status.is_live()) {
        *live_per_ticket.entry(o.ticket.id.to_string()).or_default() += 1;
        let (_, t) = app.get_json(&format!("/api/tickets/{}", o.ticket.id), None).await;
        assert_eq!(t["orderId"], o.id.to_string());
    }
    assert!(live_per_ticket.values().all(|n| *n == 1));
    assert_eq!(live_per_ticket.len(), created_per_ticket.len());
}
