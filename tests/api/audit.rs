//! The audit trail: every ticket's and order's events kept after delivery, paginated on the
//! admin API and page, a cancellation's reason, a declined payment, the buyer's timeline, and
//! retention (none kept when it is 0).

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use ticketing::settings::Secret;

const TOKEN: &str = "audit-test-token-0123456789";

async fn audited(expiry_seconds: f64, retention_days: u32) -> TestApp {
    spawn_app_with(|s| {
        s.admin.token = Secret::new(TOKEN);
        s.orders.expiration_seconds = expiry_seconds;
        s.audit.retention_days = retention_days;
    })
    .await
}

async fn admin_get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let res = app.get(path).bearer_auth(TOKEN).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Every entry of an entity's history, read `page` at a time.
async fn history(app: &TestApp, kind: &str, id: &str, page: usize) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let (status, body) = admin_get(app, &format!("/admin/{kind}s/{id}/history?limit={page}{after}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["kind"].as_str(), body["id"].as_str()), (Some(kind), Some(id)));
        let got = body["entries"].as_array().unwrap();
        assert!(got.len() <= page);
        entries.extend(got.iter().cloned());
        match body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return entries,
        }
    }
}

fn subjects(entries: &[Value]) -> Vec<&str> {
    entries.iter().map(|e| e["event"].as_str().unwrap()).collect()
}

async fn pay(app: &TestApp, buyer: &Session, order: &str, token: &str) -> StatusCode {
    let res = app
        .post("/api/payments")
        .header("Cookie", &buyer.cookie)
        .json(&json!({"token": token, "orderId": order}))
        .send()
        .await
        .unwrap();
    res.status()
}

/// A ticket `seller` lists and `buyer` reserves: (ticket, order).
async fn reserved(app: &TestApp, seller: &Session, buyer: &Session, title: &str) -> (String, String) {
    let ticket = app.create_ticket(seller, title, json!(12.5)).await["id"].as_str().unwrap().to_string();
    let order = app.order_ok(buyer, &ticket).await["id"].as_str().unwrap().to_string();
    (ticket, order)
}

/// A ticket listed and reserved, its order's first card declined and the second paid:
/// (buyer, ticket, order).
async fn declined_then_paid(app: &TestApp, title: &str) -> (Session, String, String) {
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let (ticket, order) = reserved(app, &seller, &buyer, title).await;
    assert_eq!(pay(app, &buyer, &order, "tok_chargeDeclined").await, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(pay(app, &buyer, &order, "tok_visa").await, StatusCode::CREATED);
    (buyer, ticket, order)
}

#[actix_web::test]
async fn an_orders_history_keeps_a_declined_payment_and_its_payment_in_order_a_page_at_a_time() {
    let app = audited(900.0, 90).await;
    let (_, ticket, order) = declined_then_paid(&app, "kept").await;

    let whole = history(&app, "order", &order, 1000).await;
    assert_eq!(
        subjects(&whole),
        ["order:created", "order:updated", "payment:declined", "order:updated", "payment:created"],
        "{whole:#?}"
    );
    let declined = &whole[2];
    assert_eq!(declined["data"]["reason"], "Your card was declined", "the provider's reason");
    assert_eq!(declined["data"]["orderId"], order.as_str());
    assert!(whole.iter().all(|e| e["reason"].is_null()), "only a cancellation has a reason");
    assert_eq!(whole[4]["data"]["orderId"], order.as_str());
    let seqs: Vec<u64> = whole.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first: {seqs:?}");
    let times: Vec<&str> = whole.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(history(&app, "order", &order, 2).await, whole, "pages of 2 add up to the whole");

    let tickets = history(&app, "ticket", &ticket, 1).await;
    assert_eq!(subjects(&tickets), ["ticket:created", "ticket:updated"]);
    assert_eq!(tickets[1]["data"]["orderId"], order.as_str(), "the reservation");
    // Kept after delivery: the published events are gone from the outbox, the history is not.
    assert!(app.subjects_of(&order).await.contains(&"payment:created".to_string()));
    assert_eq!(history(&app, "order", &order, 100).await, whole);
    assert!(!app.subjects_of(&order).await.contains(&"payment:declined".to_string()), "internal: not published");
}

#[actix_web::test]
async fn a_cancellation_says_whether_the_buyer_cancelled_or_the_order_expired() {
    let app = audited(1.0, 90).await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let (_, cancelled) = reserved(&app, &seller, &buyer, "cancelled").await;
    let res = app.delete(&format!("/api/orders/{cancelled}")).header("Cookie", &buyer.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (second, expired) = reserved(&app, &seller, &buyer, "expired").await;

    eventually(Duration::from_secs(10), "the order expires", || async {
        history(&app, "order", &expired, 100).await.len() == 3
    })
    .await;
    let by_buyer = history(&app, "order", &cancelled, 100).await;
    assert_eq!(subjects(&by_buyer), ["order:created", "order:cancelled"]);
    assert_eq!(by_buyer[1]["reason"], "buyer");
    let by_clock = history(&app, "order", &expired, 100).await;
    assert_eq!(subjects(&by_clock), ["order:created", "expiration:complete", "order:cancelled"]);
    assert_eq!(by_clock[2]["reason"], "expired");
    // The ticket's own history has its hold and release (the release is the ticket actor's
    // step just after the order's: a moment later).
    eventually(Duration::from_secs(10), "the ticket is released", || async {
        history(&app, "ticket", &second, 100).await.len() == 3
    })
    .await;
    let released = history(&app, "ticket", &second, 100).await;
    assert_eq!(subjects(&released), ["ticket:created", "ticket:updated", "ticket:updated"]);
    assert!(released[2]["data"]["orderId"].is_null(), "released: {released:#?}");

    // The buyer's page tells the two apart, even after both windows have passed.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let page = |id: String| {
        let (app, cookie) = (&app, buyer.cookie.clone());
        async move {
            let res = app.browse(&format!("/orders/{id}")).header("Cookie", cookie).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.text().await.unwrap()
        }
    };
    let html = page(cancelled).await;
    assert!(html.contains("id=\"cancelled\""), "{html}");
    assert!(html.contains("data-step=\"reserved\"") && html.contains("data-step=\"cancelled\""), "{html}");
    let html = page(expired).await;
    assert!(html.contains("id=\"expired\""), "{html}");
    assert!(html.contains("data-step=\"expired\"") && !html.contains("data-step=\"cancelled\""), "{html}");
}

#[actix_web::test]
async fn the_buyers_timeline_shows_a_declined_payment_then_the_payment() {
    let app = audited(900.0, 90).await;
    let (buyer, _, order) = declined_then_paid(&app, "timeline").await;
    let res = app.browse(&format!("/orders/{order}")).header("Cookie", &buyer.cookie).send().await.unwrap();
    let html = res.text().await.unwrap();
    let steps: Vec<&str> = html.split("data-step=\"").skip(1).filter_map(|s| s.split('"').next()).collect();
    assert_eq!(steps, ["reserved", "payment-started", "payment-declined", "payment-started", "paid"], "{html}");
    assert!(html.contains("Payment declined: Your card was declined"), "{html}");
    // Someone else's order shows no timeline: it is not found for them.
    let other = app.signin().await;
    let res = app.browse(&format!("/orders/{order}")).header("Cookie", &other.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn an_admin_sees_the_receipt_of_any_paid_order_on_its_history_page() {
    let app = audited(900.0, 90).await;
    let (buyer, _, order) = declined_then_paid(&app, "receipted <b>&\"").await;
    let page = |id: String| {
        let req = app.get(&format!("/admin/history?id={id}")).bearer_auth(TOKEN);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let html = page(order.clone()).await;
    let receipt = html.split("<table id=\"receipt\">").nth(1).unwrap_or_else(|| panic!("no receipt: {html}"));
    assert!(receipt.contains(&order) && receipt.contains("$12.50"), "{receipt}");
    assert!(receipt.contains("receipted &lt;b&gt;&amp;&quot;"), "the title escaped: {receipt}");
    assert!(receipt.contains(&buyer.id) && receipt.contains(&buyer.email), "the buyer: {receipt}");
    // The buyer's own receipt says the same payment reference and time.
    let own = app.browse(&format!("/orders/{order}/receipt")).header("Cookie", &buyer.cookie).send().await.unwrap();
    let own = own.text().await.unwrap();
    let reference = own.split("Payment reference</dt><dd><code>").nth(1).and_then(|r| r.split('<').next()).unwrap();
    assert!(!reference.is_empty() && receipt.contains(reference), "{reference} in {receipt}");
    // An order not paid has none.
    let (seller, other) = (app.signin().await, app.signin().await);
    let (_, unpaid) = reserved(&app, &seller, &other, "unpaid").await;
    let html = page(unpaid).await;
    assert!(html.contains("history of order") && !html.contains("id=\"receipt\""), "{html}");
}

#[actix_web::test]
async fn history_requests_are_checked_and_unknown_ids_are_not_found() {
    let app = audited(900.0, 90).await;
    let seller = app.signin().await;
    let ticket = app.create_ticket(&seller, "checked", json!(1)).await["id"].as_str().unwrap().to_string();
    let path = format!("/admin/tickets/{ticket}/history");
    let res = app.get(&path).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app.get(&path).header("Cookie", &seller.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "a user is not an admin");
    for (query, message) in [
        ("?limit=0", "limit must be between 1 and 1000"),
        ("?limit=1001", "limit must be between 1 and 1000"),
        ("?cursor=-1", "Invalid cursor"),
        ("?cursor=x", "Invalid cursor"),
        ("?cursor=%2B1", "Invalid cursor"),
        ("?cursor=00000000000000000001", "Invalid cursor"),
    ] {
        let res = app.get(&format!("{path}{query}")).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error_messages(res).await, [message], "{query}");
    }
    let unknown = uuid::Uuid::now_v7();
    for path in [
        format!("/admin/tickets/{unknown}/history"),
        format!("/admin/orders/{unknown}/history"),
        "/admin/orders/not-a-uuid/history".into(),
        format!("/admin/orders/{ticket}/history"),
    ] {
        let (status, body) = admin_get(&app, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, body) = admin_get(&app, &format!("{path}?cursor=99999")).await;
    assert_eq!((status, body["entries"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "past the end");

    // The admin page shows the same entries.
    let res = app.get(&format!("/admin/history?id={ticket}")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"history\"") && html.contains("ticket:created"), "{html}");
    let res = app.get(&format!("/admin/history?id={unknown}")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app.get(&format!("/admin/history?id={ticket}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app.get("/admin/history").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "not signed in: asked to, whatever the query");
    let res = app.get("/admin/history").bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"history-id\"") && !html.contains("http-equiv=\"refresh\""), "{html}");
}

#[actix_web::test]
async fn with_retention_zero_no_event_is_kept_and_the_order_page_says_so() {
    let app = audited(900.0, 0).await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let (_, order) = reserved(&app, &seller, &buyer, "unkept").await;
    assert_eq!(app.subjects_of(&order).await, ["order:created"], "events are still published");
    assert_eq!(admin_get(&app, &format!("/admin/orders/{order}/history")).await.0, StatusCode::NOT_FOUND);
    let res = app.browse(&format!("/orders/{order}")).header("Cookie", &buyer.cookie).send().await.unwrap();
    assert!(res.text().await.unwrap().contains("No history is kept for this order."));
}
