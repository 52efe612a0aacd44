//! The business metrics (`/metrics`): a scripted day of the marketplace gives exact sums, and
//! requests that failed on our side or were refused are counted as such, never as business.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

const WEBHOOK_SECRET: &str = "whsec_business";

/// The value of one series (`name` with exactly these labels, in the node's order), 0 if absent.
async fn series(app: &TestApp, name_and_labels: &str) -> f64 {
    let text = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.parse().unwrap())
}

async fn pay(app: &TestApp, who: &Session, order: &str, token: &str) -> StatusCode {
    let body = json!({"token": token, "orderId": order});
    app.post("/api/payments").header("Cookie", &who.cookie).json(&body).send().await.unwrap().status()
}

async fn webhook(app: &TestApp, event_id: &str, order: &str, secret: &str) -> StatusCode {
    charge_webhook_signed(app, event_id, order, &format!("ch_{event_id}"), secret).await.status()
}

#[actix_web::test]
async fn a_scripted_day_of_the_marketplace_gives_exact_business_sums() {
    let app = spawn_app_with(|s| {
        s.orders.expiration_seconds = 2.0;
        s.payments.webhook_secret = ticketing::settings::Secret::new(WEBHOOK_SECRET);
    })
    .await;
    let (seller, buyer, stranger) = (app.signin().await, app.signin().await, app.signin().await);
    let mut tickets = Vec::new();
    for (title, price) in [("a", 10), ("b", 20), ("c", 30), ("d", 40), ("e", 50)] {
        tickets.push(app.create_ticket(&seller, title, json!(price)).await["id"].as_str().unwrap().to_string());
    }
    // One listing withdrawn.
    let res =
        app.delete(&format!("/api/tickets/{}", tickets[4])).header("Cookie", &seller.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Paid by card after one declined attempt and one refused (a stranger's); 10.00 = 1,000 cents.
    let paid = app.order_ok(&buyer, &tickets[0]).await["id"].as_str().unwrap().to_string();
    assert_eq!(pay(&app, &buyer, &paid, "tok_chargeDeclined").await, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(pay(&app, &stranger, &paid, "tok_visa").await, StatusCode::UNAUTHORIZED);
    assert_eq!(pay(&app, &buyer, &paid, "tok_visa").await, StatusCode::CREATED);
    // Paid through the provider's webhook (20.00), delivered twice, plus one forged delivery.
    let hooked = app.order_ok(&buyer, &tickets[1]).await["id"].as_str().unwrap().to_string();
    assert_eq!(webhook(&app, "evt_b", &hooked, WEBHOOK_SECRET).await, StatusCode::OK);
    assert_eq!(webhook(&app, "evt_b", &hooked, WEBHOOK_SECRET).await, StatusCode::OK);
    assert_eq!(webhook(&app, "evt_forged", &hooked, "whsec_wrong").await, StatusCode::BAD_REQUEST);
    // Cancelled by the buyer.
    let cancelled = app.order_ok(&buyer, &tickets[2]).await["id"].as_str().unwrap().to_string();
    let res = app.delete(&format!("/api/orders/{cancelled}")).header("Cookie", &buyer.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Left to expire (the window is 2 s).
    let expiring = app.order_ok(&buyer, &tickets[3]).await["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(8), "the last order expires", || async {
        app.get_json(&format!("/api/orders/{expiring}"), Some(&buyer)).await.1["status"] == "cancelled"
    })
    .await;
    // Every event delivered, so every change counted.
    app.published().await;

    let expected = [
        ("ticketing_listings_total{change=\"created\"}", 5.0),
        ("ticketing_listings_total{change=\"withdrawn\"}", 1.0),
        ("ticketing_orders_created_total", 4.0),
        ("ticketing_orders_paid_total", 2.0),
        ("ticketing_orders_paid_amount_cents_total", 3000.0),
        ("ticketing_orders_cancelled_total{reason=\"buyer\"}", 1.0),
        ("ticketing_orders_cancelled_total{reason=\"expired\"}", 1.0),
        ("ticketing_order_hold_duration_seconds_count{outcome=\"paid\"}", 2.0),
        ("ticketing_order_hold_duration_seconds_count{outcome=\"released\"}", 2.0),
        ("ticketing_payment_attempts_total{outcome=\"paid\"}", 1.0),
        ("ticketing_payment_attempts_total{outcome=\"declined\"}", 1.0),
        ("ticketing_payment_attempts_total{outcome=\"refused\"}", 1.0),
        ("ticketing_webhooks_total{outcome=\"handled\"}", 1.0),
        ("ticketing_webhooks_total{outcome=\"duplicate\"}", 1.0),
        ("ticketing_webhooks_total{outcome=\"refused\"}", 1.0),
    ];
    let mut seen = Vec::new();
    for (name, _) in expected {
        seen.push((name, series(&app, name).await));
    }
    assert_eq!(seen, expected, "business sums after the scripted day");
    // The expired order held its ticket for its whole 2 s window: in the (1, 5] bucket.
    let released_by_5s =
        series(&app, "ticketing_order_hold_duration_seconds_bucket{outcome=\"released\",le=\"5\"}").await;
    let released_by_1s =
        series(&app, "ticketing_order_hold_duration_seconds_bucket{outcome=\"released\",le=\"1\"}").await;
    assert_eq!(released_by_5s, 2.0, "both holds released within 5 s");
    assert!(released_by_1s <= 1.0, "the expiry's hold is its 2 s window, not under 1 s ({released_by_1s} under 1 s)");
}

#[actix_web::test]
async fn every_business_series_is_exported_at_zero_before_any_business() {
    let app = spawn_app().await;
    for name in [
        "ticketing_orders_created_total",
        "ticketing_orders_paid_total",
        "ticketing_orders_cancelled_total{reason=\"buyer\"}",
        "ticketing_orders_cancelled_total{reason=\"expired\"}",
        "ticketing_payment_attempts_total{outcome=\"declined\"}",
        "ticketing_webhooks_total{outcome=\"refused\"}",
        "ticketing_listings_total{change=\"withdrawn\"}",
        "ticketing_order_hold_duration_seconds_count{outcome=\"paid\"}",
    ] {
        let text = app.get("/metrics").send().await.unwrap().text().await.unwrap();
        assert!(text.lines().any(|l| l == format!("{name} 0")), "{name} at 0 in:\n{text}");
    }
}
