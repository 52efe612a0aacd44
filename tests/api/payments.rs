//! The seeds' payment behaviours with the offline gateway, the Stripe webhook, and the real
//! Stripe client end to end against the local Stripe-compatible server.

use crate::helpers::*;
use crate::stripe_server::StripeServer;
use reqwest::StatusCode;
use serde_json::{json, Value};
use ticketing::payments::offline::OfflineGateway;
use ticketing::payments::webhook;

const WEBHOOK_SECRET: &str = "whsec_test_secret";

async fn placed_order(app: &TestApp, price: Value) -> (Session, String, String) {
    let seller = app.signin().await;
    let t = app.create_ticket(&seller, "gig", price).await;
    let buyer = app.signin().await;
    let order = app.order_ok(&buyer, t["id"].as_str().unwrap()).await;
    (buyer, order["id"].as_str().unwrap().to_string(), t["id"].as_str().unwrap().to_string())
}

async fn pay(app: &TestApp, who: &Session, order: &str, token: &str) -> reqwest::Response {
    app.post("/api/payments")
        .header("Cookie", &who.cookie)
        .json(&json!({"token": token, "orderId": order}))
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn missing_fields_are_each_an_invalid_value() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let res = app.post("/api/payments").header("Cookie", &me.cookie).json(&json!({})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"errors": [{"message": "Invalid value", "field": "token"}, {"message": "Invalid value", "field": "orderId"}]})
    );
}

#[actix_web::test]
async fn paying_for_an_unknown_order_returns_404() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let res = pay(&app, &me, &uuid::Uuid::now_v7().to_string(), "tok_visa").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn paying_for_someone_elses_order_returns_401() {
    let app = spawn_app().await;
    let (_, order, _) = placed_order(&app, json!(20)).await;
    let other = app.signin().await;
    assert_eq!(pay(&app, &other, &order, "tok_visa").await.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn paying_for_a_cancelled_order_returns_400() {
    let app = spawn_app().await;
    let (buyer, order, _) = placed_order(&app, json!(20)).await;
    app.delete(&format!("/api/orders/{order}")).header("Cookie", &buyer.cookie).send().await.unwrap();
    let res = pay(&app, &buyer, &order, "tok_visa").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Cannot pay for an cancelled order"]);
}

#[actix_web::test]
async fn a_valid_token_charges_price_in_cents_and_completes_the_order() {
    let app = spawn_app().await;
    let (buyer, order, ticket) = placed_order(&app, json!(12.5)).await;
    let res = pay(&app, &buyer, &order, "tok_visa").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let payment_id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let charges = OfflineGateway::charges(app.state.app.store()).unwrap();
    assert_eq!(charges.len(), 1);
    assert_eq!((charges[0].amount_cents, charges[0].token.as_str()), (1250, "tok_visa"));
    let stripe_id = charges[0].charge_id.clone().unwrap();
    let (_, shown) = app.get_json(&format!("/api/orders/{order}"), Some(&buyer)).await;
    assert_eq!(shown["status"], "complete");
    let payment: ticketing::domain::Payment = app
        .state
        .app
        .store()
        .get(&ticketing::storage::keys::payment_by_order(&ticketing::domain::OrderId::parse(&order).unwrap()))
        .unwrap()
        .expect("a payment record");
    assert_eq!((payment.id.to_string(), payment.stripe_id.clone()), (payment_id.clone(), stripe_id.clone()));
    let created: Vec<Value> = app
        .events_of(&order)
        .await
        .iter()
        .filter(|e| e.subject == "payment:created")
        .map(|e| e.payload_json())
        .collect();
    assert_eq!(created, [json!({"id": payment_id, "orderId": order, "stripeId": stripe_id})]);
    let (_, t) = app.get_json(&format!("/api/tickets/{ticket}"), None).await;
    assert_eq!(t["orderId"], order.as_str(), "the sold ticket stays reserved");
    // Paying again is refused without a second charge.
    let res = pay(&app, &buyer, &order, "tok_visa").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Order has already been paid"]);
    assert_eq!(OfflineGateway::charges(app.state.app.store()).unwrap().len(), 1);
}

#[actix_web::test]
async fn a_declined_card_is_a_402_and_the_order_stays_payable() {
    let app = spawn_app().await;
    let (buyer, order, _) = placed_order(&app, json!(20)).await;
    let res = pay(&app, &buyer, &order, "tok_chargeDeclined").await;
    assert_eq!(res.status(), StatusCode::PAYMENT_REQUIRED);
    assert_eq!(error_messages(res).await, ["Your card was declined"]);
    let (_, shown) = app.get_json(&format!("/api/orders/{order}"), Some(&buyer)).await;
    assert_eq!(shown["status"], "created");
    assert_eq!(pay(&app, &buyer, &order, "tok_visa").await.status(), StatusCode::CREATED);
}

#[actix_web::test]
async fn an_invalid_token_is_a_400_and_the_order_stays_payable() {
    let app = spawn_app().await;
    let (buyer, order, _) = placed_order(&app, json!(20)).await;
    let res = pay(&app, &buyer, &order, "not-a-token").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Invalid payment token"]);
    let (_, shown) = app.get_json(&format!("/api/orders/{order}"), Some(&buyer)).await;
    assert_eq!(shown["status"], "created");
}

#[actix_web::test]
async fn concurrent_payments_for_one_order_charge_once() {
    let app = spawn_app().await;
    let (buyer, order, _) = placed_order(&app, json!(20)).await;
    let attempts = (0..20).map(|_| pay(&app, &buyer, &order, "tok_visa"));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts).await.iter().map(|r| r.status()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert_eq!(OfflineGateway::charges(app.state.app.store()).unwrap().len(), 1);
}

#[actix_web::test]
async fn payment_racing_expiry_has_exactly_one_winner() {
    for _ in 0..5 {
        let app = spawn_app_with(|s| s.orders.expiration_seconds = 0.3).await;
        let (buyer, order, ticket) = placed_order(&app, json!(20)).await;
        tokio::time::sleep(std::time::Duration::from_millis(280)).await;
        let status = pay(&app, &buyer, &order, "tok_visa").await.status();
        eventually(std::time::Duration::from_secs(5), "the order settles", || async {
            let s = app.get_json(&format!("/api/orders/{order}"), Some(&buyer)).await.1["status"].clone();
            s == "complete" || s == "cancelled"
        })
        .await;
        let (_, shown) = app.get_json(&format!("/api/orders/{order}"), Some(&buyer)).await;
        let (_, t) = app.get_json(&format!("/api/tickets/{ticket}"), None).await;
        if status == StatusCode::CREATED {
            assert_eq!(shown["status"], "complete");
            assert_eq!(t["orderId"], order.as_str());
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(shown["status"], "cancelled");
            assert!(OfflineGateway::charges(app.state.app.store()).unwrap().is_empty(), "no charge for a lost race");
        }
    }
}

/// An app paying through the real Stripe client, against the local Stripe-compatible server.
async fn stripe_app(stripe: &StripeServer) -> TestApp {
    let base = stripe.base_url.clone();
    spawn_app_with(move |s| {
        s.payments.provider = ticketing::settings::PaymentProvider::Stripe;
        s.payments.stripe_api_base = base;
        s.payments.stripe_secret_key = ticketing::settings::Secret::new("sk_test_123");
    })
    .await
}

fn signed(body: &str, secret: &str, at: i64) -> String {
    webhook::sign(body.as_bytes(), secret, at)
}

fn charge_event(event_id: &str, order: &str, charge: &str) -> String {
    json!({"id": event_id, "type": "charge.succeeded", "data": {"object": {"id": charge, "object": "charge", "metadata": {"orderId": order}}}}).to_string()
}

async fn post_webhook(app: &TestApp, body: &str, signature: &str) -> reqwest::Response {
    app.post("/api/payments/webhook")
        .header("Stripe-Signature", signature)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_signed_webhook_completes_the_order_once() {
    let app = spawn_app_with(|s| s.payments.webhook_secret = ticketing::settings::Secret::new(WEBHOOK_SECRET)).await;
    let (buyer, order, _) = placed_order(&app, json!(20)).await;
    let body = charge_event("evt_1", &order, "ch_webhook_1");
    let now = chrono::Utc::now().timestamp();
    let res = post_webhook(&app, &body, &signed(&body, WEBHOOK_SECRET, now)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (_, shown) = app.get_json(&format!("/api/orders/{order}"), Some(&buyer)).await;
    assert_eq!(shown["status"], "complete");
    // Stripe retries: the same event again changes nothing.
    let res = post_webhook(&app, &body, &signed(&body, WEBHOOK_SECRET, now)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let subjects = app.subjects_of(&order).await;
    assert_eq!(subjects.iter().filter(|s| *s == "payment:created").count(), 1, "{subjects:?}");
}

#[actix_web::test]
async fn tampered_stale_and_missing_webhook_signatures_are_rejected() {
    let app = spawn_app_with(|s| s.payments.webhook_secret = ticketing::settings::Secret::new(WEBHOOK_SECRET)).await;
    let (buyer, order, _) = placed_order(&app, json!(20)).await;
    let body = charge_event("evt_2", &order, "ch_2");
    let now = chrono::Utc::now().timestamp();
    let tampered = body.replace("ch_2", "ch_3");
    for (what, body, signature) in [
        ("tampered body", tampered.as_str(), signed(&body, WEBHOOK_SECRET, now)),
        ("wrong secret", body.as_str(), signed(&body, "whsec_other", now)),
        ("stale", body.as_str(), signed(&body, WEBHOOK_SECRET, now - 600)),
        ("missing", body.as_str(), String::new()),
        ("garbage", body.as_str(), "t=abc,v1=zz".to_string()),
    ] {
        let res = post_webhook(&app, body, &signature).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{what}");
        assert!(!error_messages(res).await.is_empty());
    }
    let (_, shown) = app.get_json(&format!("/api/orders/{order}"), Some(&buyer)).await;
    assert_eq!(shown["status"], "created", "nothing changed");
}

#[actix_web::test]
async fn a_late_webhook_for_a_cancelled_order_is_refunded_once_and_recorded() {
    let app = spawn_app_with(|s| s.payments.webhook_secret = ticketing::settings::Secret::new(WEBHOOK_SECRET)).await;
    let (buyer, order, _) = placed_order(&app, json!(20)).await;
    // The provider took the money (say, a charge confirmed after the order expired).
    let charge = ticketing::payments::Charge {
        amount_cents: 2000,
        currency: "usd".into(),
        token: "tok_visa".into(),
        idempotency_key: "late-charge".into(),
        order_id: order.clone(),
    };
    let ticketing::payments::ChargeOutcome::Succeeded { charge_id } =
        app.state.app.gateway().charge(charge).await.unwrap()
    else {
        panic!("the offline gateway charges tok_visa");
    };
    app.delete(&format!("/api/orders/{order}")).header("Cookie", &buyer.cookie).send().await.unwrap();
    // Stripe sends two events for one charge; both are handled, the charge refunded once.
    let now = chrono::Utc::now().timestamp();
    for event_id in ["evt_late_charge", "evt_late_intent"] {
        let body = charge_event(event_id, &order, &charge_id);
        let res = post_webhook(&app, &body, &signed(&body, WEBHOOK_SECRET, now)).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let (_, shown) = app.get_json(&format!("/api/orders/{order}"), Some(&buyer)).await;
    assert_eq!(shown["status"], "cancelled", "a late payment does not revive the order");
    let payments =
        app.state.app.store().sweep_all::<ticketing::domain::Payment>(ticketing::storage::keys::PAYMENT).unwrap();
    assert_eq!(payments.len(), 1, "one record for one late charge");
    assert_eq!(payments[0].1.stripe_id, charge_id);
    assert!(payments[0].1.refund_id.is_some(), "the refund is recorded");
    let charges = OfflineGateway::charges(app.state.app.store()).unwrap();
    assert_eq!(charges.len(), 1);
    assert!(charges[0].refunded, "the provider refunded the charge");
}

#[actix_web::test]
async fn concurrent_deliveries_of_one_webhook_event_are_handled_once() {
    let app = spawn_app_with(|s| s.payments.webhook_secret = ticketing::settings::Secret::new(WEBHOOK_SECRET)).await;
    let (buyer, order, _) = placed_order(&app, json!(20)).await;
    let body = charge_event("evt_burst", &order, "ch_burst");
    let signature = signed(&body, WEBHOOK_SECRET, chrono::Utc::now().timestamp());
    let deliveries = (0..10).map(|_| post_webhook(&app, &body, &signature));
    let responses = futures::future::join_all(deliveries).await;
    assert!(responses.iter().all(|r| r.status() == StatusCode::OK));
    let (_, shown) = app.get_json(&format!("/api/orders/{order}"), Some(&buyer)).await;
    assert_eq!(shown["status"], "complete");
    let subjects = app.subjects_of(&order).await;
    assert_eq!(subjects.iter().filter(|s| *s == "payment:created").count(), 1, "{subjects:?}");
}

#[actix_web::test]
async fn the_stripe_provider_charges_through_the_real_client() {
    let stripe = StripeServer::start().await;
    let app = stripe_app(&stripe).await;
    let (buyer, order, _) = placed_order(&app, json!(20)).await;
    let res = pay(&app, &buyer, &order, "tok_chargeDeclined").await;
    assert_eq!(res.status(), StatusCode::PAYMENT_REQUIRED);
    stripe.fail_next(1);
    let res = pay(&app, &buyer, &order, "tok_visa").await;
    assert_eq!(res.status(), StatusCode::CREATED, "a single 500 is retried with the same key");
    let (_, shown) = app.get_json(&format!("/api/orders/{order}"), Some(&buyer)).await;
    assert_eq!(shown["status"], "complete");
    let charges: Vec<_> = stripe.requests().into_iter().filter(|r| r.path == "/v1/charges").collect();
    let keys: std::collections::HashSet<_> = charges.iter().map(|r| r.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), 2, "one key per attempt, reused by the retry: {keys:?}");
    assert!(charges.iter().all(|r| r.idempotency_key.is_some()));
    let visa = charges.iter().find(|r| r.field("source") == Some("tok_visa")).unwrap();
    assert_eq!(visa.field("amount"), Some("2000"));
    assert_eq!(visa.field("currency"), Some("usd"));
    assert_eq!(visa.field("metadata[orderId]"), Some(order.as_str()));
    assert_eq!(stripe.succeeded_charges().len(), 1, "one real charge");
}

#[actix_web::test]
async fn a_provider_outage_is_retried_with_backoff_not_in_a_storm() {
    let stripe = StripeServer::start().await;
    let app = stripe_app(&stripe).await;
    let (buyer, order, _) = placed_order(&app, json!(20)).await;
    stripe.fail_next(10_000);
    let res = pay(&app, &buyer, &order, "tok_visa").await;
    // The provider may have charged the card: "may have run" (504), never "nothing ran" (503).
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT, "outcome unknown");
    let (_, shown) = app.get_json(&format!("/api/orders/{order}"), Some(&buyer)).await;
    assert_eq!(shown["status"], "awaiting:payment", "the attempt is kept, to be resumed with its key");
    tokio::time::sleep(std::time::Duration::from_millis(3_000)).await;
    let calls = stripe.requests_to("/v1/charges");
    // The request's own attempts, then one backed-off retry after ~2 s: a handful, not a storm.
    assert!(calls.len() <= 9, "{} charge calls in 3 s", calls.len());
    let keys: std::collections::HashSet<_> = calls.iter().map(|r| r.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), 1, "every retry reuses the attempt's key");
    // When the provider recovers, the resumed attempt completes the order.
    stripe.fail_next(0);
    let res = pay(&app, &buyer, &order, "tok_visa").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(stripe.succeeded_charges().len(), 1);
}

#[actix_web::test]
async fn a_keyed_payment_answered_504_is_retried_to_its_original_payment_and_charged_once() {
    let stripe = StripeServer::start().await;
    let app = stripe_app(&stripe).await;
    let (buyer, order, _) = placed_order(&app, json!(20)).await;
    let keyed = || {
        app.post("/api/payments")
            .header("Cookie", &buyer.cookie)
            .header("Idempotency-Key", "pay-once")
            .json(&json!({"token": "tok_visa", "orderId": order}))
            .send()
    };
    stripe.fail_next(10_000);
    let res = keyed().await.unwrap();
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT, "the provider's answer is unknown: it may have charged");
    // The provider recovers; the attempt is resumed with its key in the background and
    // completes the order.
    stripe.fail_next(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, shown) = app.get_json(&format!("/api/orders/{order}"), Some(&buyer)).await;
        if shown["status"] == "complete" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the resumed attempt did not complete: {shown}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The keyed retry gets the payment its first attempt made, not "already paid".
    let res = keyed().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let paid: Value = res.json().await.unwrap();
    let res = keyed().await.unwrap();
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(res.json::<Value>().await.unwrap()["id"], paid["id"]);
    assert_eq!(stripe.succeeded_charges().len(), 1, "charged once");
    // Without the key, paying a complete order is still refused.
    assert_eq!(pay(&app, &buyer, &order, "tok_visa").await.status(), StatusCode::BAD_REQUEST);
}
