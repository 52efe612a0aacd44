//! Live availability in the pages, with two browsers: B's landing loses a ticket within 1 s of
//! A reserving it and B's open ticket page switches to Reserved; both come back when A's order
//! expires, and A's open order page learns it expired without a reload by hand.

use crate::browser::Browser;
use crate::helpers::*;
use crate::web::{api_user, email, purchase, sign_up};
use serde_json::json;
use std::time::{Duration, Instant};

/// The ticket page's status as it reads now ("" between a reload's start and its end: the
/// page reloads itself when its ticket changes).
async fn status(b: &Browser) -> String {
    let script = "const s = document.getElementById('ticket-status'); return s ? s.innerText.trim() : ''";
    match b.client.execute(script, vec![]).await {
        Ok(text) => text.as_str().unwrap_or_default().to_string(),
        Err(_) => String::new(),
    }
}

/// Waits (at most `within`) until `check` holds; how long it took.
async fn within<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    started.elapsed()
}

#[actix_web::test]
async fn a_reservation_and_its_expiry_reach_other_buyers_open_pages_at_once() {
    let app = spawn_app_with(|s| s.orders.expiration_seconds = 3.0).await;
    let seller = api_user(&app, &email("seller")).await;
    let ticket = app.create_ticket(&seller, "Front row", json!(1250)).await["id"].as_str().unwrap().to_string();
    let (a, b) = (Browser::start().await, Browser::start().await);
    sign_up(&a, &app, &email("a")).await;
    let card = format!("#tickets [data-ticket-id='{ticket}']");

    // B on the landing page; A reserves.
    b.goto(&app.url("/")).await;
    assert!(b.text(&card).await.contains("$1,250.00"), "thousands grouped");
    let order = purchase(&a, &app, &ticket).await;
    let took =
        within(Duration::from_secs(1), "B's landing loses the ticket", || async { !b.exists(&card).await }).await;
    eprintln!("the reservation reached B's landing in {took:?}");
    // A's order expires: A's open order page says so by itself, B's landing lists it again.
    within(Duration::from_secs(8), "A's open order page shows it expired", || async { a.exists("#expired").await })
        .await;
    assert_eq!(a.path().await, format!("/orders/{order}"));
    within(Duration::from_secs(2), "B's landing lists it again", || async { b.exists(&card).await }).await;
    assert!(b.text(&card).await.contains("Front row"));

    // B on the ticket's page; A reserves again.
    b.goto(&app.url(&format!("/tickets/{ticket}"))).await;
    assert_eq!(b.text("#ticket-status").await, "For sale");
    assert!(b.exists("#purchase").await);
    purchase(&a, &app, &ticket).await;
    within(Duration::from_secs(1), "B's ticket page reads Reserved", || async { status(&b).await == "Reserved" }).await;
    assert!(!b.exists("#purchase").await, "no Purchase while it is reserved");
    within(Duration::from_secs(8), "B's ticket page is for sale again", || async { status(&b).await == "For sale" })
        .await;
    assert!(b.exists("#purchase").await);
    a.close().await;
    b.close().await;
}
