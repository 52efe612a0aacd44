//! A data dir written by the previous release (key layout 1: unslotted keys, JSON-text
//! events, no read model) still opens: it is migrated to slot-first keys, its read model is
//! built from its records, and every user, ticket, order, payment and refresh token is where
//! the API expects it. The fixture (`tests/fixtures/data-layout1`, described by
//! `data-layout1.json`) was written by that release's binary with
//! `scripts/make_layout1_fixture.py`: an order that was never written but holds ticket A, an
//! order B left `created`, a paid order C, a cancelled order D, and an edited ticket E for sale.

use crate::helpers::{eventually, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use ticketing::domain::{OrderId, Payment, RefreshToken, UserId};
use ticketing::storage::keys;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[actix_web::test]
async fn a_data_dir_of_the_previous_release_opens_with_everything_in_place() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("data-layout1.json")).unwrap()).unwrap();
    let data = tempfile::tempdir().unwrap();
    copy_dir(&fixtures.join("data-layout1"), data.path());
    let path = data.path().to_path_buf();
    let app = spawn_app_with(move |s| s.storage.path = path).await;
    let store = app.state.app.store().clone();
    assert_eq!(store.meta("layout").unwrap(), Some(2u32.to_be_bytes().to_vec()), "the layout is recorded");

    // Users sign in with their old passwords and keep their ids.
    let mut cookies = Vec::new();
    for who in ["seller", "buyer"] {
        let res = app.signin_as(manifest["users"][who]["email"].as_str().unwrap(), "password").await;
        assert_eq!(res.status(), StatusCode::OK, "{who} signs in");
        cookies.push(crate::helpers::session_cookie(&res).unwrap());
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["id"], manifest["users"][who]["id"]);
    }
    let buyer = crate::helpers::Session {
        cookie: cookies[1].clone(),
        id: manifest["users"]["buyer"]["id"].as_str().unwrap().to_string(),
        email: String::new(),
    };

    // Tickets C, D and E read exactly as that release served them.
    for t in ["C", "D", "E"] {
        let expected = &manifest["tickets"][t]["expected"];
        let (status, shown) = app.get_json(&format!("/api/tickets/{}", expected["id"].as_str().unwrap()), None).await;
        assert_eq!((status, &shown), (StatusCode::OK, expected), "ticket {t}");
    }
    // The hold of the order that was never written (A), and the long-expired order B, are
    // settled as the node starts.
    for t in ["A", "B"] {
        let id = manifest["tickets"][t]["id"].as_str().unwrap().to_string();
        eventually(Duration::from_secs(5), "the stale hold is released", || {
            let (app, id) = (&app, id.clone());
            async move { app.get_json(&format!("/api/tickets/{id}"), None).await.1.get("orderId").is_none() }
        })
        .await;
    }
    let order_a = manifest["orders"]["A"]["id"].as_str().unwrap();
    assert_eq!(app.get_json(&format!("/api/orders/{order_a}"), Some(&buyer)).await.0, StatusCode::NOT_FOUND);

    // The buyer's orders come from the read model built from the migrated records.
    eventually(Duration::from_secs(5), "order B is cancelled", || async {
        let (_, orders) = app.get_json("/api/orders", Some(&buyer)).await;
        orders.as_array().is_some_and(|o| o.len() == 3 && o[0]["status"] == "cancelled")
    })
    .await;
    let (_, orders) = app.get_json("/api/orders", Some(&buyer)).await;
    let statuses: Vec<(&str, &str)> =
        orders.as_array().unwrap().iter().map(|o| (o["id"].as_str().unwrap(), o["status"].as_str().unwrap())).collect();
    let id = |o: &str| manifest["orders"][o]["id"].as_str().unwrap();
    assert_eq!(statuses, [(id("B"), "cancelled"), (id("C"), "complete"), (id("D"), "cancelled")]);
    assert_eq!(orders[1], manifest["orders"]["C"]["expected"], "the paid order reads as before");

    // Everything for sale is listed: A, B and D released, E never sold; C stays sold.
    let (_, listed) = app.get_json("/api/tickets", None).await;
    let mut listed: Vec<&str> = listed.as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    listed.sort();
    let mut expected: Vec<&str> =
        ["A", "B", "D", "E"].iter().map(|t| manifest["tickets"][t]["id"].as_str().unwrap()).collect();
    expected.sort();
    assert_eq!(listed, expected);

    // The payment and the buyer's unused refresh token are found under their new keys.
    let order_c = OrderId::parse(id("C")).unwrap();
    let payment: Payment = store.get(&keys::payment_by_order(&order_c)).unwrap().expect("the payment of C");
    assert_eq!(payment.id.to_string(), manifest["payment"]["id"].as_str().unwrap());
    let token = manifest["buyerUnusedRefreshCookie"]["value"].as_str().unwrap();
    let token_id: [u8; 16] = hex::decode(token.split('.').next().unwrap()).unwrap().try_into().unwrap();
    let record: RefreshToken = store.get(&keys::refresh(&token_id)).unwrap().expect("the refresh token");
    assert_eq!(record.user_id, UserId::parse(&buyer.id).unwrap());
    assert!(!record.used && !record.revoked);

    // And the marketplace goes on: E is bought and paid for.
    let e = manifest["tickets"]["E"]["id"].as_str().unwrap();
    let order = app.order_ok(&buyer, e).await;
    let res = app
        .post("/api/payments")
        .header("Cookie", &buyer.cookie)
        .json(&json!({"token": "tok_visa", "orderId": order["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}
