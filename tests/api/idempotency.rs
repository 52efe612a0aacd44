//! `Idempotency-Key`: replay of the first response, 422 on a different request, 409 while the
//! first is still running.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[actix_web::test]
async fn a_retry_with_the_same_key_replays_the_first_response_and_creates_nothing() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let post = || {
        app.post("/api/tickets")
            .header("Cookie", &me.cookie)
            .header("Idempotency-Key", "k-1")
            .json(&json!({"title": "once", "price": 5}))
            .send()
    };
    let first = post().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let retry = post().await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    let (_, list) = app.get_json("/api/tickets", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn the_same_key_with_a_different_body_is_422() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let post = |title: &'static str| {
        app.post("/api/tickets")
            .header("Cookie", &me.cookie)
            .header("Idempotency-Key", "k-2")
            .json(&json!({"title": title, "price": 5}))
            .send()
    };
    assert_eq!(post("a").await.unwrap().status(), StatusCode::CREATED);
    let res = post("b").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_messages(res).await, ["Idempotency-Key was used with a different request"]);
}

#[actix_web::test]
async fn an_oversize_body_with_a_key_is_still_a_json_413() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let big = json!({"title": "x".repeat(1 << 20), "price": 5}).to_string();
    let res = app
        .post("/api/tickets")
        .header("Cookie", &me.cookie)
        .header("Idempotency-Key", "big")
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_messages(res).await, ["Request body is too large"]);
}

#[actix_web::test]
async fn keys_are_scoped_per_caller() {
    let app = spawn_app().await;
    let (a, b) = (app.signin().await, app.signin().await);
    for who in [&a, &b] {
        let res = app
            .post("/api/tickets")
            .header("Cookie", &who.cookie)
            .header("Idempotency-Key", "shared")
            .json(&json!({"title": "t", "price": 5}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        assert!(res.headers().get("idempotent-replayed").is_none());
    }
}

#[actix_web::test]
async fn concurrent_retries_create_one_ticket_and_the_others_replay_or_wait() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let attempts = (0..10).map(|_| {
        app.post("/api/tickets")
            .header("Cookie", &me.cookie)
            .header("Idempotency-Key", "burst")
            .json(&json!({"title": "burst", "price": 5}))
            .send()
    });
    let responses = futures::future::join_all(attempts).await;
    let mut ids = std::collections::HashSet::new();
    for res in responses {
        let res = res.unwrap();
        match res.status() {
            StatusCode::CREATED => {
                ids.insert(res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
            }
            StatusCode::CONFLICT => assert_eq!(res.headers()["retry-after"], "1"),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ids.len(), 1, "one ticket, replayed to every 201");
    let (_, list) = app.get_json("/api/tickets", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}
