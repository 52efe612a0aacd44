//! The seeds' ticket behaviours, plus pagination and the concurrency guarantee.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;

#[actix_web::test]
async fn post_api_tickets_exists_and_requires_sign_in() {
    let app = spawn_app().await;
    let res = app.post("/api/tickets").json(&json!({})).send().await.unwrap();
    assert_ne!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_messages(res).await, ["Not authorized"]);
    let me = app.signin().await;
    let res = app.post("/api/tickets").header("Cookie", &me.cookie).json(&json!({})).send().await.unwrap();
    assert_ne!(res.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn an_empty_or_missing_title_returns_400() {
    let app = spawn_app().await;
    let me = app.signin().await;
    for body in [json!({"title": "", "price": 10}), json!({"price": 10})] {
        let res = app.post("/api/tickets").header("Cookie", &me.cookie).json(&body).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_messages(res).await, ["Title is required"]);
    }
}

#[actix_web::test]
async fn a_title_of_control_characters_or_containing_one_is_refused_on_create_and_update() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let ticket = app.create_ticket(&me, "Kept", json!(10)).await;
    let path = format!("/api/tickets/{}", ticket["id"].as_str().unwrap());
    let refused = json!({"errors": [{"message": "Title is required", "field": "title"}]});
    for title in ["\u{0}", "\u{1}\u{2}", " \u{0}\u{7f} ", "line\nbreak", "nul\u{0}inside"] {
        let body = json!({"title": title, "price": 10});
        let res = app.post("/api/tickets").header("Cookie", &me.cookie).json(&body).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "create {title:?}");
        assert_eq!(res.json::<Value>().await.unwrap(), refused, "create {title:?}");
        let res = app.put(&path).header("Cookie", &me.cookie).json(&body).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "update {title:?}");
        assert_eq!(res.json::<Value>().await.unwrap(), refused, "update {title:?}");
    }
    let (_, listed) = app.get_json("/api/tickets", None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "nothing created: {listed}");
    assert_eq!(listed[0]["title"], "Kept", "nothing changed");
    assert_eq!(listed[0]["version"], 0);
}

#[actix_web::test]
async fn a_negative_or_missing_price_returns_400() {
    let app = spawn_app().await;
    let me = app.signin().await;
    for body in [json!({"title": "asdf", "price": -10}), json!({"title": "asdf"})] {
        let res = app.post("/api/tickets").header("Cookie", &me.cookie).json(&body).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body, json!({"errors": [{"message": "Price must be greater than 0", "field": "price"}]}));
    }
}

#[actix_web::test]
async fn a_valid_ticket_is_created_stored_and_emits_ticket_created() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let ticket = app.create_ticket(&me, "asldkfj", json!(20)).await;
    assert_eq!(ticket["title"], "asldkfj");
    assert_eq!(ticket["price"], 20);
    assert_eq!(ticket["version"], 0);
    assert_eq!(ticket["userId"], me.id.as_str());
    assert!(ticket.get("orderId").is_none());
    let id = ticket["id"].as_str().unwrap();
    let stored: Value = app.get(&format!("/api/tickets/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stored, ticket);
    let events = app.events_of(id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].subject, "ticket:created");
    assert_eq!(
        events[0].payload_json(),
        json!({"id": id, "version": 0, "title": "asldkfj", "price": 20, "userId": me.id})
    );
}

#[actix_web::test]
async fn prices_keep_cents_exactly() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let ticket = app.create_ticket(&me, "cents", json!("12.35")).await;
    assert_eq!(ticket["price"], 12.35);
}

#[actix_web::test]
async fn an_unknown_ticket_returns_404_and_a_malformed_id_too() {
    let app = spawn_app().await;
    let res = app.get(&format!("/api/tickets/{}", uuid::Uuid::now_v7())).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_messages(res).await, ["Not Found"]);
    let res = app.get("/api/tickets/not-an-id").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn the_list_returns_every_ticket_for_sale() {
    let app = spawn_app().await;
    for title in ["a", "b", "c"] {
        let seller = app.signin().await;
        app.create_ticket(&seller, title, json!(20)).await;
    }
    let list: Vec<Value> = app.get("/api/tickets").send().await.unwrap().json().await.unwrap();
    assert_eq!(list.len(), 3);
    let titles: Vec<_> = list.iter().map(|t| t["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["a", "b", "c"], "oldest first");
}

#[actix_web::test]
async fn the_list_pages_with_a_cursor_in_the_link_header() {
    let app = spawn_app().await;
    let me = app.signin().await;
    for i in 0..5 {
        app.create_ticket(&me, &format!("t{i}"), json!(1)).await;
    }
    let mut seen = Vec::new();
    let mut next = Some("/api/tickets?limit=2".to_string());
    while let Some(path) = next.take() {
        let res = app.get(&path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        next = res
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().trim_start_matches('<').split('>').next().unwrap().to_string());
        let page: Vec<Value> = res.json().await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.into_iter().map(|t| t["title"].as_str().unwrap().to_string()));
    }
    assert_eq!(seen, ["t0", "t1", "t2", "t3", "t4"]);
    let res = app.get("/api/tickets?limit=0").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = app.get("/api/tickets?limit=1001").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn updating_an_unknown_ticket_returns_404() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let res = app
        .put(&format!("/api/tickets/{}", uuid::Uuid::now_v7()))
        .header("Cookie", &me.cookie)
        .json(&json!({"title": "aslkdfj", "price": 20}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn updating_while_signed_out_returns_401() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let t = app.create_ticket(&me, "x", json!(20)).await;
    let res = app
        .put(&format!("/api/tickets/{}", t["id"].as_str().unwrap()))
        .json(&json!({"title": "y", "price": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn updating_someone_elses_ticket_returns_401_and_changes_nothing() {
    let app = spawn_app().await;
    let (owner, other) = (app.signin().await, app.signin().await);
    let t = app.create_ticket(&owner, "x", json!(20)).await;
    let path = format!("/api/tickets/{}", t["id"].as_str().unwrap());
    let res = app
        .put(&path)
        .header("Cookie", &other.cookie)
        .json(&json!({"title": "y", "price": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let stored: Value = app.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!(stored, t);
}

#[actix_web::test]
async fn updating_with_an_invalid_title_or_price_returns_400() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let t = app.create_ticket(&me, "x", json!(20)).await;
    let path = format!("/api/tickets/{}", t["id"].as_str().unwrap());
    let res =
        app.put(&path).header("Cookie", &me.cookie).json(&json!({"title": "", "price": 20})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res =
        app.put(&path).header("Cookie", &me.cookie).json(&json!({"title": "ok", "price": -10})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Price must be provided and must be greater than 0"]);
}

#[actix_web::test]
async fn a_valid_update_is_stored_and_create_plus_update_emit_exactly_two_events() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let t = app.create_ticket(&me, "x", json!(20)).await;
    let id = t["id"].as_str().unwrap();
    let path = format!("/api/tickets/{id}");
    let res = app
        .put(&path)
        .header("Cookie", &me.cookie)
        .json(&json!({"title": "new title", "price": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let stored: Value = app.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (stored["title"].as_str(), stored["price"].as_i64(), stored["version"].as_i64()),
        (Some("new title"), Some(100), Some(1))
    );
    let subjects = app.subjects_of(id).await;
    assert_eq!(subjects, ["ticket:created", "ticket:updated"]);
}

#[actix_web::test]
async fn a_reserved_ticket_cannot_be_edited() {
    let app = spawn_app().await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let t = app.create_ticket(&seller, "x", json!(20)).await;
    let id = ticketing::domain::TicketId::parse(t["id"].as_str().unwrap()).unwrap();
    let buyer_id = ticketing::domain::UserId::parse(&buyer.id).unwrap();
    // Straight through the use case, as a buyer of another adapter would.
    app.state.app.place_order(buyer_id, id, None).await.unwrap();
    let res = app
        .put(&format!("/api/tickets/{id}"))
        .header("Cookie", &seller.cookie)
        .json(&json!({"title": "y", "price": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Cannot edit a reserved ticket"]);
    let list: Vec<Value> = app.get("/api/tickets").send().await.unwrap().json().await.unwrap();
    assert!(list.is_empty(), "a reserved ticket is not listed for sale");
}

#[actix_web::test]
async fn one_hundred_concurrent_updates_all_succeed_with_distinct_versions() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let t = app.create_ticket(&me, "x", json!(1)).await;
    let path = format!("/api/tickets/{}", t["id"].as_str().unwrap());
    let updates = (1..=100).map(|i| {
        app.put(&path).header("Cookie", &me.cookie).json(&json!({"title": format!("v{i}"), "price": i})).send()
    });
    let responses = futures::future::join_all(updates).await;
    let mut versions = HashSet::new();
    for res in responses {
        let res = res.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        versions.insert(body["version"].as_u64().unwrap());
    }
    assert_eq!(versions, (1..=100).collect::<HashSet<u64>>(), "each update got its own version");
    let stored: Value = app.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!(stored["version"], 100);
    let versions_in_events: Vec<u64> = app
        .events_of(t["id"].as_str().unwrap())
        .await
        .iter()
        .map(|e| e.payload_json()["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions_in_events, (0..=100).collect::<Vec<u64>>(), "events in version order, none lost");
}
