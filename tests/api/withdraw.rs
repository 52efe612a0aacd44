//! `DELETE /api/tickets/:id`: the owner withdraws a listing no order holds; it leaves every
//! list and is gone for good, and `ticket:deleted {id, version}` is published.

use crate::helpers::*;
use crate::process::start_node;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use ticketing::app::projection::ListingState;
use ticketing::domain::{TicketId, UserId};

async fn withdraw(app: &TestApp, who: Option<&Session>, id: &str) -> reqwest::Response {
    let mut req = app.delete(&format!("/api/tickets/{id}"));
    if let Some(who) = who {
        req = req.header("Cookie", &who.cookie);
    }
    req.send().await.unwrap()
}

async fn for_sale_ids(app: &TestApp) -> Vec<String> {
    let res = app.get("/api/tickets").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let list: Vec<Value> = res.json().await.unwrap();
    list.iter().map(|t| t["id"].as_str().unwrap().to_string()).collect()
}

/// The seller's tickets as the use case lists them (there is no JSON route for it): each id
/// with its state.
async fn seller_listings(app: &TestApp, seller: &Session) -> Vec<(String, ListingState)> {
    let seller = UserId::parse(&seller.id).unwrap();
    let listings = app.state.app.tickets_of_seller(seller).await.unwrap();
    listings.into_iter().map(|l| (l.ticket.id.to_string(), l.state)).collect()
}

async fn assert_unchanged(app: &TestApp, id: &str, expected: &Value) {
    let (status, shown) = app.get_json(&format!("/api/tickets/{id}"), None).await;
    assert_eq!((status, &shown), (StatusCode::OK, expected), "the ticket is unchanged");
    assert!(!app.subjects_of(id).await.contains(&"ticket:deleted".to_string()));
}

#[actix_web::test]
async fn the_owner_withdraws_a_ticket_for_sale_with_204_and_it_leaves_every_list() {
    let app = spawn_app().await;
    let seller = app.signin().await;
    let gone = app.create_ticket(&seller, "gone", json!(20)).await;
    let kept = app.create_ticket(&seller, "kept", json!(30)).await;
    let (gone_id, kept_id) = (gone["id"].as_str().unwrap(), kept["id"].as_str().unwrap());
    assert_eq!(for_sale_ids(&app).await, [gone_id, kept_id]);
    assert_eq!(
        seller_listings(&app, &seller).await,
        [(gone_id.to_string(), ListingState::ForSale), (kept_id.to_string(), ListingState::ForSale)]
    );

    let res = withdraw(&app, Some(&seller), gone_id).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(res.bytes().await.unwrap().is_empty(), "204 has no body");

    let res = app.get(&format!("/api/tickets/{gone_id}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_messages(res).await, ["Not Found"]);
    assert_eq!(for_sale_ids(&app).await, [kept_id], "gone from the tickets for sale");
    // A withdrawn listing is not returned at all (not even with state Withdrawn).
    assert_eq!(
        seller_listings(&app, &seller).await,
        [(kept_id.to_string(), ListingState::ForSale)],
        "gone from the seller's tickets"
    );
    let (status, shown) = app.get_json(&format!("/api/tickets/{kept_id}"), None).await;
    assert_eq!((status, shown), (StatusCode::OK, kept.clone()), "the other ticket is untouched");
}

#[actix_web::test]
async fn withdrawing_publishes_ticket_deleted_with_the_id_and_the_last_version_plus_one() {
    let app = spawn_app().await;
    let seller = app.signin().await;
    let t = app.create_ticket(&seller, "x", json!(20)).await;
    let id = t["id"].as_str().unwrap();
    for round in 0..2 {
        let res = app
            .put(&format!("/api/tickets/{id}"))
            .header("Cookie", &seller.cookie)
            .json(&json!({"title": format!("edit {round}"), "price": 25}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    assert_eq!(withdraw(&app, Some(&seller), id).await.status(), StatusCode::NO_CONTENT);
    let events = app.events_of(id).await;
    let subjects: Vec<&str> = events.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(subjects, ["ticket:created", "ticket:updated", "ticket:updated", "ticket:deleted"]);
    assert_eq!(events[3].payload_json(), json!({"id": id, "version": 3}));
    assert_eq!(events[3].entity_id, id);
}

#[actix_web::test]
async fn a_withdrawn_ticket_cannot_be_ordered_reserved_edited_or_withdrawn_again() {
    let app = spawn_app().await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let t = app.create_ticket(&seller, "x", json!(20)).await;
    let id = t["id"].as_str().unwrap();
    assert_eq!(withdraw(&app, Some(&seller), id).await.status(), StatusCode::NO_CONTENT);

    let res = app.order(&buyer, id).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_messages(res).await, ["Not Found"]);
    // Straight through the use case too.
    let reserved =
        app.state.app.place_order(UserId::parse(&buyer.id).unwrap(), TicketId::parse(id).unwrap(), None).await;
    assert!(
        matches!(reserved, Err(ticketing::app::AppError::Domain(ticketing::domain::DomainError::NotFound))),
        "{reserved:?}"
    );
    let (status, orders) = app.get_json("/api/orders", Some(&buyer)).await;
    assert_eq!((status, orders), (StatusCode::OK, json!([])), "no order was made");

    let res = app
        .put(&format!("/api/tickets/{id}"))
        .header("Cookie", &seller.cookie)
        .json(&json!({"title": "back", "price": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = withdraw(&app, Some(&seller), id).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_messages(res).await, ["Not Found"]);
    assert_eq!(app.subjects_of(id).await, ["ticket:created", "ticket:deleted"], "one ticket:deleted only");
    assert!(for_sale_ids(&app).await.is_empty());
}

#[actix_web::test]
async fn a_reserved_ticket_cannot_be_withdrawn_and_stays_with_its_order() {
    let app = spawn_app().await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let t = app.create_ticket(&seller, "x", json!(20)).await;
    let id = t["id"].as_str().unwrap();
    let order = app.order_ok(&buyer, id).await;
    let (_, reserved) = app.get_json(&format!("/api/tickets/{id}"), None).await;
    assert_eq!(reserved["orderId"], order["id"]);

    let res = withdraw(&app, Some(&seller), id).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Cannot delete a reserved ticket"]);
    assert_unchanged(&app, id, &reserved).await;
    assert_eq!(seller_listings(&app, &seller).await, [(id.to_string(), ListingState::Reserved)]);
    let (_, shown) = app.get_json(&format!("/api/orders/{}", order["id"].as_str().unwrap()), Some(&buyer)).await;
    assert_eq!(shown["status"], "created", "the order is untouched");
}

#[actix_web::test]
async fn a_sold_ticket_cannot_be_withdrawn() {
    let app = spawn_app().await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let t = app.create_ticket(&seller, "x", json!(20)).await;
    let id = t["id"].as_str().unwrap();
    let order = app.order_ok(&buyer, id).await;
    app.pay_ok(&buyer, order["id"].as_str().unwrap()).await;
    let (_, sold) = app.get_json(&format!("/api/tickets/{id}"), None).await;
    assert_eq!(sold["orderId"], order["id"]);

    let res = withdraw(&app, Some(&seller), id).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Cannot delete a reserved ticket"]);
    assert_unchanged(&app, id, &sold).await;
    assert_eq!(seller_listings(&app, &seller).await, [(id.to_string(), ListingState::Sold)]);
}

#[actix_web::test]
async fn another_user_gets_401_and_the_ticket_stays_listed() {
    let app = spawn_app().await;
    let (seller, other) = (app.signin().await, app.signin().await);
    let t = app.create_ticket(&seller, "x", json!(20)).await;
    let id = t["id"].as_str().unwrap();
    let res = withdraw(&app, Some(&other), id).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_messages(res).await, ["Not authorized"]);
    assert_unchanged(&app, id, &t).await;
    assert_eq!(for_sale_ids(&app).await, [id]);
    assert_eq!(seller_listings(&app, &seller).await, [(id.to_string(), ListingState::ForSale)]);
}

#[actix_web::test]
async fn another_user_gets_401_on_a_reserved_ticket_too() {
    let app = spawn_app().await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let t = app.create_ticket(&seller, "x", json!(20)).await;
    let id = t["id"].as_str().unwrap();
    app.order_ok(&buyer, id).await;
    let (_, reserved) = app.get_json(&format!("/api/tickets/{id}"), None).await;
    let res = withdraw(&app, Some(&buyer), id).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_messages(res).await, ["Not authorized"]);
    assert_unchanged(&app, id, &reserved).await;
}

#[actix_web::test]
async fn withdrawing_while_signed_out_returns_401() {
    let app = spawn_app().await;
    let seller = app.signin().await;
    let t = app.create_ticket(&seller, "x", json!(20)).await;
    let id = t["id"].as_str().unwrap();
    let res = withdraw(&app, None, id).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_messages(res).await, ["Not authorized"]);
    assert_unchanged(&app, id, &t).await;
}

#[actix_web::test]
async fn withdrawing_an_unknown_or_malformed_id_returns_404() {
    let app = spawn_app().await;
    let me = app.signin().await;
    for id in [uuid::Uuid::now_v7().to_string(), "not-an-id".to_string()] {
        let res = withdraw(&app, Some(&me), &id).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{id}");
        assert_eq!(error_messages(res).await, ["Not Found"]);
    }
}

#[actix_web::test]
async fn once_the_buyers_order_is_cancelled_the_owner_can_withdraw_the_ticket() {
    let app = spawn_app().await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let t = app.create_ticket(&seller, "x", json!(20)).await;
    let id = t["id"].as_str().unwrap();
    let order = app.order_ok(&buyer, id).await;
    assert_eq!(withdraw(&app, Some(&seller), id).await.status(), StatusCode::BAD_REQUEST);
    let res = app
        .delete(&format!("/api/orders/{}", order["id"].as_str().unwrap()))
        .header("Cookie", &buyer.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, released) = app.get_json(&format!("/api/tickets/{id}"), None).await;
    assert!(released.get("orderId").is_none(), "released: {released}");

    assert_eq!(withdraw(&app, Some(&seller), id).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get_json(&format!("/api/tickets/{id}"), None).await.0, StatusCode::NOT_FOUND);
    assert!(for_sale_ids(&app).await.is_empty());
    assert!(seller_listings(&app, &seller).await.is_empty());
    let events = app.events_of(id).await;
    let subjects: Vec<&str> = events.iter().map(|e| e.subject.as_str()).collect();
    // Created (0), reserved (1), released (2), deleted (3).
    assert_eq!(subjects, ["ticket:created", "ticket:updated", "ticket:updated", "ticket:deleted"]);
    assert_eq!(events[3].payload_json(), json!({"id": id, "version": 3}));
    // The cancelled order still shows the ticket as it was.
    let (_, shown) = app.get_json(&format!("/api/orders/{}", order["id"].as_str().unwrap()), Some(&buyer)).await;
    assert_eq!(shown["status"], "cancelled");
}

#[actix_web::test]
async fn an_order_racing_a_withdrawal_either_reserves_the_ticket_or_finds_it_gone() {
    let app = spawn_app().await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let mut tickets = Vec::new();
    for i in 0..10 {
        let t = app.create_ticket(&seller, &format!("t{i}"), json!(10)).await;
        tickets.push(t["id"].as_str().unwrap().to_string());
    }
    let races = tickets.iter().map(|id| {
        let (app, seller, buyer) = (&app, &seller, &buyer);
        async move {
            let (w, o) = futures::join!(withdraw(app, Some(seller), id), app.order(buyer, id));
            (id.clone(), w.status(), o.status())
        }
    });
    for (id, withdrawn, ordered) in futures::future::join_all(races).await {
        let (status, shown) = app.get_json(&format!("/api/tickets/{id}"), None).await;
        match (withdrawn, ordered) {
            (StatusCode::NO_CONTENT, StatusCode::NOT_FOUND) => assert_eq!(status, StatusCode::NOT_FOUND),
            (StatusCode::BAD_REQUEST, StatusCode::CREATED) => {
                assert_eq!(status, StatusCode::OK);
                assert!(shown["orderId"].is_string(), "{shown}");
            }
            other => panic!("ticket {id}: withdraw and order answered {other:?}"),
        }
    }
    assert!(for_sale_ids(&app).await.is_empty(), "every ticket was withdrawn or reserved");
}

#[actix_web::test]
async fn a_withdrawn_ticket_stays_withdrawn_after_a_restart_on_the_same_data_dir() {
    let data = tempfile::tempdir().unwrap();
    let http = Client::builder().no_proxy().build().unwrap();
    let mut node = start_node(data.path(), &[]);
    let base = node.address.clone();
    let res = crate::process::account(&http, &base, "signup", "withdraw-restart@test.com").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let cookie = session_cookie(&res).unwrap();
    let gone = crate::process::create_ticket(&http, &base, &cookie, "gone", 10).await;
    let kept = crate::process::create_ticket(&http, &base, &cookie, "kept", 20).await;
    let gone_id = gone["id"].as_str().unwrap();
    let res = http.delete(format!("{base}/api/tickets/{gone_id}")).header("Cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    node.kill();

    let node = start_node(data.path(), &[]);
    let base = node.address.clone();
    let res = http.get(format!("{base}/api/tickets/{gone_id}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let list: Vec<Value> = http.get(format!("{base}/api/tickets")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list, std::slice::from_ref(&kept), "only the kept ticket is listed");
    let res = http.delete(format!("{base}/api/tickets/{gone_id}")).header("Cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "withdrawn once, for good");
}

#[actix_web::test]
async fn a_keyed_create_retried_after_the_withdrawal_does_not_bring_the_ticket_back() {
    let app = spawn_app().await;
    let seller = app.signin().await;
    let seller_id = UserId::parse(&seller.id).unwrap();
    let key = ticketing::app::idempotency::key_digest(&seller.id, "create-once");
    let draft = || ticketing::domain::TicketDraft::new(Some("once"), Some(ticketing::domain::Price::from_cents(1000)));
    // A client's create with an Idempotency-Key, as the API makes it once the stored response
    // is gone (it is kept 24 h) or through another adapter.
    let first = app.state.app.create_ticket(seller_id, draft().unwrap(), Some(key)).await.unwrap();
    let id = first.id.to_string();
    assert_eq!(withdraw(&app, Some(&seller), &id).await.status(), StatusCode::NO_CONTENT);

    let _ = app.state.app.create_ticket(seller_id, draft().unwrap(), Some(key)).await;
    let (status, shown) = app.get_json(&format!("/api/tickets/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the withdrawn ticket came back: {shown}");
    assert_eq!(app.subjects_of(&id).await, ["ticket:created", "ticket:deleted"]);
}
