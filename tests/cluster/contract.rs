//! The seeds' test contract (`seed-tests.md`) through a gateway: a node that owns no shard, so
//! every user, ticket, order and payment involved lives on another node. Events are checked as
//! an outside consumer sees them, on the broker.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_contract_passes_through_a_node_that_owns_nothing() {
    let cluster =
        TestCluster::start_with(&["node-1", "node-2"], &["gateway"], &[("TICKETING_ORDERS__EXPIRATION_SECONDS", "2")])
            .await;
    let audit = audit_queue(&cluster.amqp, &cluster.name).await;
    let gw = &cluster.nodes[2];
    let (_, view) = gw.admin("/admin/cluster").await;
    assert_eq!(view["serving"], json!([]), "the gateway serves no shard: {view}");

    // auth
    let signup = |email: &str, password: &str| {
        let body = json!({"email": email, "password": password});
        gw.send(reqwest::Client::new().post(gw.url("/api/users/signup")).json(&body), None)
    };
    assert_eq!(signup("not-an-email", "password").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(signup("a@example.com", "p").await.0, StatusCode::BAD_REQUEST);
    let http = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let res = http
        .post(gw.url("/api/users/signup"))
        .json(&json!({"email": "a@example.com", "password": "password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().get("set-cookie").is_some());
    assert_eq!(
        signup("a@example.com", "password").await,
        (StatusCode::BAD_REQUEST, json!({"errors": [{"message": "Email in use"}]}))
    );
    let (_, me) = gw.send(http.get(gw.url("/api/users/currentuser")), None).await;
    assert_eq!(me["currentUser"]["email"], "a@example.com");
    let wrong = json!({"email": "a@example.com", "password": "wrong-password"});
    assert_eq!(gw.send(http.post(gw.url("/api/users/signin")).json(&wrong), None).await.0, StatusCode::BAD_REQUEST);
    let unknown = json!({"email": "nobody@example.com", "password": "password"});
    assert_eq!(gw.send(http.post(gw.url("/api/users/signin")).json(&unknown), None).await.0, StatusCode::BAD_REQUEST);
    let right = json!({"email": "a@example.com", "password": "password"});
    assert_eq!(gw.send(http.post(gw.url("/api/users/signin")).json(&right), None).await.0, StatusCode::OK);
    // The refresh token lives on the user's node too: rotate it through the gateway.
    assert_eq!(gw.send(http.post(gw.url("/api/users/refresh")), None).await.0, StatusCode::OK);
    assert_eq!(gw.send(http.post(gw.url("/api/users/signout")), None).await.0, StatusCode::OK);
    let (_, me) = gw.send(http.get(gw.url("/api/users/currentuser")), None).await;
    assert_eq!(me["currentUser"], json!(null));
    assert_eq!(
        gw.send(http.post(gw.url("/api/users/refresh")), None).await.0,
        StatusCode::UNAUTHORIZED,
        "signed out ends the refresh token"
    );

    // tickets
    let seller = gw.sign_up("seller@example.com").await;
    let other = gw.sign_up("other@example.com").await;
    let buyer = gw.sign_up("buyer@example.com").await;
    let anonymous = reqwest::Client::new();
    let (status, _) =
        gw.send(anonymous.post(gw.url("/api/tickets")).json(&json!({"title": "x", "price": 1})), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(gw.post("/api/tickets", &seller, json!({"title": "", "price": 10})).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(gw.post("/api/tickets", &seller, json!({"title": "x", "price": -10})).await.0, StatusCode::BAD_REQUEST);
    let ticket = gw.create_ticket(&seller, "concert", 20).await;
    let id = ticket["id"].as_str().unwrap().to_string();
    let (status, got) = gw.get(&format!("/api/tickets/{id}"), None).await;
    assert_eq!((status, got["title"].as_str(), got["price"].as_f64()), (StatusCode::OK, Some("concert"), Some(20.0)));
    let unknown_id = uuid::Uuid::now_v7();
    assert_eq!(gw.get(&format!("/api/tickets/{unknown_id}"), None).await.0, StatusCode::NOT_FOUND);
    let path = format!("/api/tickets/{id}");
    assert_eq!(
        gw.put(&format!("/api/tickets/{unknown_id}"), &seller, json!({"title": "y", "price": 1})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(gw.put(&path, &other, json!({"title": "y", "price": 1})).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(gw.put(&path, &seller, json!({"title": "y", "price": -1})).await.0, StatusCode::BAD_REQUEST);
    let (status, updated) = gw.put(&path, &seller, json!({"title": "new title", "price": 100})).await;
    assert_eq!((status, updated["version"].as_u64()), (StatusCode::OK, Some(1)));
    let (_, got) = gw.get(&path, None).await;
    assert_eq!((got["title"].as_str(), got["price"].as_f64()), (Some("new title"), Some(100.0)));
    for (who, title) in [(&other, "b"), (&buyer, "c")] {
        gw.create_ticket(who, title, 5).await;
    }
    let (_, listed) = gw.get("/api/tickets", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 3, "three tickets by three users, read your writes: {listed}");

    // orders
    assert_eq!(
        gw.post("/api/orders", &buyer, json!({"ticketId": unknown_id.to_string()})).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, order) = gw.post("/api/orders", &buyer, json!({"ticketId": id})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["id"].as_str().unwrap().to_string();
    assert_eq!(
        gw.post("/api/orders", &other, json!({"ticketId": id})).await.0,
        StatusCode::BAD_REQUEST,
        "already reserved"
    );
    assert_eq!(
        gw.put(&path, &seller, json!({"title": "z", "price": 1})).await.0,
        StatusCode::BAD_REQUEST,
        "reserved: no edit"
    );
    let (_, ticket_now) = gw.get(&path, None).await;
    assert_eq!(ticket_now["orderId"], order["id"]);
    let order_path = format!("/api/orders/{order_id}");
    assert_eq!(gw.get(&order_path, Some(&buyer)).await.0, StatusCode::OK);
    assert_eq!(gw.get(&order_path, Some(&other)).await.0, StatusCode::UNAUTHORIZED);
    let (_, mine) = gw.get("/api/orders", Some(&buyer)).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["ticket"]["id"], json!(id));
    let (_, theirs) = gw.get("/api/orders", Some(&other)).await;
    assert_eq!(theirs, json!([]));

    // payments: another user's order 401, unknown 404, a good token 201, then complete
    let pay = |who, order: &str, token: &str| gw.post("/api/payments", who, json!({"orderId": order, "token": token}));
    assert_eq!(pay(&other, &order_id, "tok_visa").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(pay(&buyer, &uuid::Uuid::now_v7().to_string(), "tok_visa").await.0, StatusCode::NOT_FOUND);
    let (status, payment) = pay(&buyer, &order_id, "tok_visa").await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    let (_, done) = gw.get(&order_path, Some(&buyer)).await;
    assert_eq!(done["status"], "complete");

    // cancel, and expiry, through the gateway
    let (_, second) =
        gw.create_ticket(&seller, "to cancel", 7).await.as_object().map(|t| ((), t["id"].clone())).unwrap();
    let (_, cancel_me) = gw.post("/api/orders", &buyer, json!({"ticketId": second})).await;
    let cancel_path = format!("/api/orders/{}", cancel_me["id"].as_str().unwrap());
    let (status, _) = gw.send(reqwest::Client::new().delete(gw.url(&cancel_path)), Some(&buyer)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(gw.get(&cancel_path, Some(&buyer)).await.1["status"], "cancelled");
    assert_eq!(pay(&buyer, cancel_me["id"].as_str().unwrap(), "tok_visa").await.0, StatusCode::BAD_REQUEST);
    let (_, expiring) = gw.post("/api/orders", &buyer, json!({"ticketId": second})).await;
    let expiring_path = format!("/api/orders/{}", expiring["id"].as_str().unwrap());
    crate::wait::eventually(Duration::from_secs(15), "the order expires", || async {
        gw.get(&expiring_path, Some(&buyer)).await.1["status"] == "cancelled"
    })
    .await;
    assert_eq!(gw.get(&order_path, Some(&buyer)).await.1["status"], "complete", "a paid order is left alone");

    // events, as an outside consumer of the broker sees them
    let subjects_of = |messages: &[(u32, u64, String, String)], entity: &str| -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        messages.iter().filter(|m| m.2.contains(entity) && seen.insert((m.0, m.1))).map(|m| m.3.clone()).collect()
    };
    outboxes_published(&cluster.nodes, Duration::from_secs(30)).await;
    let messages = drain(&cluster.amqp, &audit, 10).await;
    assert_eq!(
        subjects_of(&messages, &id),
        ["ticket.created", "ticket.updated", "ticket.updated"],
        "created, edited, reserved"
    );
    assert_eq!(subjects_of(&messages, &order_id), ["order.created", "internal.order.updated"], "created, then paid");
    assert_eq!(messages.iter().filter(|m| m.3 == "payment.created").count(), 1);
    assert!(subjects_of(&messages, cancel_me["id"].as_str().unwrap()).contains(&"order.cancelled".to_string()));
    assert!(subjects_of(&messages, expiring["id"].as_str().unwrap()).contains(&"order.cancelled".to_string()));
}
