//! Paying an order on Stripe's hosted page: `App::checkout` opens a Checkout Session through
//! the real Stripe client against the local Stripe-compatible server, and the signed
//! `payment_intent.succeeded` webhook completes the order (or refunds a late payment).

use crate::helpers::*;
use crate::stripe_server::StripeServer;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use ticketing::app::AppError;
use ticketing::domain::{DomainError, OrderId, Rule, UserId};
use ticketing::payments::CheckoutSession;
use ticketing::settings::{PaymentProvider, Secret, Settings};

const WEBHOOK_SECRET: &str = "whsec_checkout_secret";
const SUCCESS_URL: &str = "https://shop.test/orders/paid?session={CHECKOUT_SESSION_ID}";
const CANCEL_URL: &str = "https://shop.test/orders/cancelled";

/// An app paying through the real Stripe client against `stripe`, with a webhook secret.
async fn stripe_app(stripe: &StripeServer, customise: impl FnOnce(&mut Settings)) -> TestApp {
    let base = stripe.base_url.clone();
    spawn_app_with(move |s| {
        s.payments.provider = PaymentProvider::Stripe;
        s.payments.stripe_api_base = base;
        s.payments.stripe_secret_key = Secret::new("sk_test_checkout");
        s.payments.webhook_secret = Secret::new(WEBHOOK_SECRET);
        customise(s);
    })
    .await
}

/// A buyer's order for a "Jazz night" ticket at $25.50: (buyer, order id).
async fn placed_order(app: &TestApp) -> (Session, String) {
    let seller = app.signin().await;
    let ticket = app.create_ticket(&seller, "Jazz night", json!(25.5)).await;
    let buyer = app.signin().await;
    let order = app.order_ok(&buyer, ticket["id"].as_str().unwrap()).await;
    (buyer, order["id"].as_str().unwrap().to_string())
}

fn ids(who: &Session, order: &str) -> (UserId, OrderId) {
    (UserId::parse(&who.id).unwrap(), OrderId::parse(order).unwrap())
}

async fn checkout(app: &TestApp, who: &Session, order: &str) -> Result<CheckoutSession, AppError> {
    let (caller, order) = ids(who, order);
    app.state.app.checkout(caller, order, SUCCESS_URL.into(), CANCEL_URL.into()).await
}

async fn order_status(app: &TestApp, who: &Session, order: &str) -> Value {
    app.get_json(&format!("/api/orders/{order}"), Some(who)).await.1["status"].clone()
}

fn webhook_url(app: &TestApp) -> String {
    app.url("/api/payments/webhook")
}

#[actix_web::test]
async fn a_stripe_checkout_session_carries_the_orders_amount_currency_title_metadata_and_urls_and_returns_its_url() {
    let stripe = StripeServer::start().await;
    let app = stripe_app(&stripe, |_| {}).await;
    let (buyer, order) = placed_order(&app).await;

    let session = checkout(&app, &buyer, &order).await.unwrap();

    let sessions = stripe.checkout_sessions();
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_eq!(session.id, s.id);
    assert!(session.id.starts_with("cs_test_"), "{}", session.id);
    assert_eq!(session.url, format!("{}pay/{}", stripe.base_url, s.id));
    assert_eq!((s.amount, s.currency.as_str(), s.name.as_str(), s.quantity), (2550, "usd", "Jazz night", 1));
    assert_eq!(s.metadata.get("orderId"), Some(&order));
    assert_eq!(s.payment_intent_metadata.get("orderId"), Some(&order), "the webhook's intent must name the order");
    assert_eq!(s.client_reference_id.as_deref(), Some(order.as_str()));
    assert_eq!(s.success_url, SUCCESS_URL);
    assert_eq!(s.cancel_url.as_deref(), Some(CANCEL_URL));
    let requests = stripe.requests_to("/v1/checkout/sessions");
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.status, r.field("mode")), (200, Some("payment")));
    assert!(
        r.idempotency_key.as_deref().is_some_and(|k| k.starts_with(&format!("order-{order}-checkout-"))),
        "{:?}",
        r.idempotency_key
    );
    assert_eq!(r.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(r.field("expires_at"), None, "a 15-minute order is closer than Stripe's 30-minute minimum");
    assert_eq!(order_status(&app, &buyer, &order).await, "created", "opening the page changes nothing");
}

#[actix_web::test]
async fn asking_again_for_a_stripe_checkout_session_even_after_a_500_opens_no_second_session() {
    let stripe = StripeServer::start().await;
    let app = stripe_app(&stripe, |_| {}).await;
    let (buyer, order) = placed_order(&app).await;

    stripe.fail_next(1);
    let first = checkout(&app, &buyer, &order).await.unwrap();
    let again = checkout(&app, &buyer, &order).await.unwrap();

    assert_eq!(again, first);
    let sessions = stripe.checkout_sessions();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].idempotency_key.as_deref().is_some_and(|k| k.starts_with(&format!("order-{order}-checkout-"))));
    let requests = stripe.requests_to("/v1/checkout/sessions");
    assert_eq!(requests.iter().map(|r| r.status).collect::<Vec<_>>(), [500, 200, 200]);
    assert!(requests.iter().all(|r| r.idempotency_key == requests[0].idempotency_key), "{requests:?}");
}

#[actix_web::test]
async fn a_stripe_checkout_for_an_unknown_order_is_not_found_and_for_another_users_order_is_not_authorized() {
    let stripe = StripeServer::start().await;
    let app = stripe_app(&stripe, |_| {}).await;
    let (buyer, order) = placed_order(&app).await;
    let stranger = app.signin().await;

    let theirs = checkout(&app, &stranger, &order).await;
    assert!(matches!(theirs, Err(AppError::Domain(DomainError::NotAuthorized))), "{theirs:?}");
    let unknown = OrderId::new_in(OrderId::parse(&order).unwrap().slot()).to_string();
    let missing = checkout(&app, &buyer, &unknown).await;
    assert!(matches!(missing, Err(AppError::Domain(DomainError::NotFound))), "{missing:?}");
    assert!(stripe.requests().is_empty(), "refused before reaching Stripe");
}

#[actix_web::test]
async fn a_stripe_checkout_for_a_paid_or_a_cancelled_order_is_refused_by_the_rules_of_paying() {
    let stripe = StripeServer::start().await;
    let app = stripe_app(&stripe, |_| {}).await;
    let (buyer, paid) = placed_order(&app).await;
    app.pay_ok(&buyer, &paid).await;
    let (other_buyer, cancelled) = placed_order(&app).await;
    app.delete(&format!("/api/orders/{cancelled}")).header("Cookie", &other_buyer.cookie).send().await.unwrap();

    let again = checkout(&app, &buyer, &paid).await;
    assert!(matches!(again, Err(AppError::Domain(DomainError::Rule(Rule::AlreadyPaid)))), "{again:?}");
    let late = checkout(&app, &other_buyer, &cancelled).await;
    assert!(matches!(late, Err(AppError::Domain(DomainError::Rule(Rule::CannotPayCancelled)))), "{late:?}");
    assert!(stripe.requests_to("/v1/checkout/sessions").is_empty());
}

#[actix_web::test]
async fn the_offline_gateway_says_checkout_is_not_supported_and_the_api_words_it_as_a_400() {
    let app = spawn_app().await;
    let (buyer, order) = placed_order(&app).await;

    let outcome = checkout(&app, &buyer, &order).await;

    assert!(matches!(outcome, Err(AppError::CheckoutNotSupported)), "{outcome:?}");
    let api = ticketing::edge::ApiError::from(AppError::CheckoutNotSupported);
    assert_eq!(actix_web::ResponseError::status_code(&api).as_u16(), 400);
    assert_eq!(api.to_string(), "This payment method is not available");
}

#[actix_web::test]
async fn paying_a_stripe_checkout_session_completes_the_order_by_webhook_once_and_publishes_payment_created() {
    let stripe = StripeServer::start().await;
    let app = stripe_app(&stripe, |_| {}).await;
    let (buyer, order) = placed_order(&app).await;
    let session = checkout(&app, &buyer, &order).await.unwrap();

    let status = stripe.complete_checkout_session(&session.id, &webhook_url(&app), WEBHOOK_SECRET).await;

    assert_eq!(status, 200);
    assert_eq!(order_status(&app, &buyer, &order).await, "complete");
    let intents = stripe.payment_intents();
    assert_eq!(intents.len(), 1);
    assert_eq!(intents[0].checkout_session, session.id);
    assert_eq!(intents[0].metadata.get("orderId"), Some(&order));
    assert_eq!(stripe.succeeded_charges()[0].id, intents[0].latest_charge);
    // Stripe retries the webhook: the same event again changes nothing.
    let again = stripe.complete_checkout_session(&session.id, &webhook_url(&app), WEBHOOK_SECRET).await;
    assert_eq!(again, 200);
    let subjects = app.subjects_of(&order).await;
    assert_eq!(subjects.iter().filter(|s| *s == "payment:created").count(), 1, "{subjects:?}");
    assert_eq!(stripe.charges().len(), 1);
    assert!(stripe.refunds().is_empty());
    let again = checkout(&app, &buyer, &order).await;
    assert!(matches!(again, Err(AppError::Domain(DomainError::Rule(Rule::AlreadyPaid)))), "{again:?}");
}

#[actix_web::test]
async fn paying_a_stripe_checkout_session_after_its_order_expired_refunds_the_charge_once() {
    let stripe = StripeServer::start().await;
    let app = stripe_app(&stripe, |s| s.orders.expiration_seconds = 1.0).await;
    let (buyer, order) = placed_order(&app).await;
    let session = checkout(&app, &buyer, &order).await.unwrap();
    eventually(Duration::from_secs(10), "the order expires", || async {
        order_status(&app, &buyer, &order).await == "cancelled"
    })
    .await;

    let status = stripe.complete_checkout_session(&session.id, &webhook_url(&app), WEBHOOK_SECRET).await;

    assert_eq!(status, 200);
    assert_eq!(order_status(&app, &buyer, &order).await, "cancelled", "a late payment does not revive the order");
    let refunds = stripe.refunds();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].charge, stripe.payment_intents()[0].latest_charge);
    assert_eq!(refunds[0].amount, 2550);
    let subjects = app.subjects_of(&order).await;
    assert!(!subjects.iter().any(|s| s == "payment:created"), "{subjects:?}");
    stripe.complete_checkout_session(&session.id, &webhook_url(&app), WEBHOOK_SECRET).await;
    assert_eq!(stripe.refunds().len(), 1, "a redelivered event refunds nothing more");
}

#[actix_web::test]
async fn a_stripe_checkout_session_for_an_order_expiring_in_an_hour_closes_when_the_order_does() {
    let stripe = StripeServer::start().await;
    let app = stripe_app(&stripe, |s| s.orders.expiration_seconds = 3600.0).await;
    let (buyer, order) = placed_order(&app).await;

    checkout(&app, &buyer, &order).await.unwrap();

    let (caller, id) = ids(&buyer, &order);
    let expires_at_ms = app.state.app.order(caller, id).await.unwrap().expires_at_ms;
    let session = &stripe.checkout_sessions()[0];
    assert_eq!(session.requested_expires_at, Some(expires_at_ms.div_euclid(1000)), "no later than the order");
}

#[actix_web::test]
async fn the_fake_stripe_pay_page_shows_the_product_and_its_pay_button_completes_the_order_and_redirects() {
    let stripe = StripeServer::start().await;
    let app = stripe_app(&stripe, |_| {}).await;
    stripe.set_webhook(&webhook_url(&app), WEBHOOK_SECRET);
    let (buyer, order) = placed_order(&app).await;
    let session = checkout(&app, &buyer, &order).await.unwrap();
    let browser = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let page = browser.get(&session.url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Jazz night") && html.contains("25.50 USD"), "{html}");
    assert!(html.contains(r#"id="pay""#) && html.contains(&format!(r#"action="/pay/{}""#, session.id)), "{html}");
    let paid = browser.post(&session.url).send().await.unwrap();

    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let expected = SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", &session.id);
    assert_eq!(paid.headers()["location"], expected.as_str());
    assert_eq!(stripe.checkout_sessions()[0].webhook_status, Some(200));
    assert_eq!(order_status(&app, &buyer, &order).await, "complete");
}

#[actix_web::test]
async fn the_fake_stripe_refuses_checkout_sessions_without_mode_success_url_or_line_items_like_stripe() {
    let stripe = StripeServer::start().await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let complete = [
        ("mode", "payment"),
        ("success_url", "https://shop.test/ok"),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", "2000"),
        ("line_items[0][price_data][product_data][name]", "gig"),
        ("line_items[0][quantity]", "1"),
    ];
    for (left_out, param) in [("mode", "mode"), ("success_url", "success_url"), ("line_items", "line_items")] {
        let form: Vec<_> = complete.iter().filter(|(k, _)| !k.starts_with(left_out)).collect();
        let res = client
            .post(format!("{}v1/checkout/sessions", stripe.base_url))
            .bearer_auth("sk_test_x")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{left_out}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
        assert_eq!(body["error"]["param"], param, "{body}");
    }
    assert!(stripe.checkout_sessions().is_empty());
}

#[actix_web::test]
async fn a_buyer_who_pays_by_card_and_then_on_the_checkout_page_gets_the_second_payment_refunded() {
    let stripe = StripeServer::start().await;
    let app = stripe_app(&stripe, |_| {}).await;
    let (buyer, order) = placed_order(&app).await;
    let session = checkout(&app, &buyer, &order).await.unwrap();
    app.pay_ok(&buyer, &order).await;
    let card = stripe.requests_to("/v1/charges").len();
    assert_eq!(card, 1, "one card charge");

    for _ in 0..2 {
        // Stripe retries the same event; either way one refund.
        assert_eq!(stripe.complete_checkout_session(&session.id, &webhook_url(&app), WEBHOOK_SECRET).await, 200);
    }
    let refunds = stripe.refunds();
    assert_eq!(refunds.len(), 1, "the checkout payment is refunded once: {refunds:?}");
    let card_charge = stripe.charges().into_iter().find(|c| c.source == "tok_visa").expect("the card charge");
    assert_ne!(refunds[0].charge, card_charge.id, "the payment that completed the order is kept");
    assert_eq!(order_status(&app, &buyer, &order).await, "complete");
}
