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

/// A page that answered a form (a purchase refused) is read again at its ticket's address when
/// the ticket changes: the form is never posted again by the page's script.
#[actix_web::test]
async fn a_refused_purchases_page_is_read_again_at_the_tickets_address_not_posted_again() {
    let app = spawn_app().await;
    let seller = api_user(&app, &email("seller")).await;
    let holder = api_user(&app, &email("holder")).await;
    let ticket = app.create_ticket(&seller, "Balcony", json!(40)).await["id"].as_str().unwrap().to_string();
    let order = app.order_ok(&holder, &ticket).await;
    let b = Browser::start().await;
    sign_up(&b, &app, &email("b")).await;
    // B's purchase form posted for a ticket someone holds (as a click a moment too late does).
    let post = format!(
        "const f = document.createElement('form'); f.method = 'post'; f.action = '/tickets/{ticket}/purchase'; \
         f.appendChild(document.querySelector('input[name=csrf]').cloneNode()); document.body.appendChild(f); f.submit();"
    );
    b.eval(&post).await;
    b.wait_for_path(|p| p.ends_with("/purchase"), "the refused purchase's page").await;
    within(Duration::from_secs(2), "the refusal on the ticket's page", || async { status(&b).await == "Reserved" })
        .await;
    // The hold ends: the page is read again, at the ticket's own address.
    let cancel = app.delete(&format!("/api/orders/{}", order["id"].as_str().unwrap())).header("Cookie", &holder.cookie);
    assert!(cancel.send().await.unwrap().status().is_success());
    within(Duration::from_secs(2), "B's page for sale again", || async { status(&b).await == "For sale" }).await;
    assert_eq!(b.path().await, format!("/tickets/{ticket}"), "read at its address, not posted again");
    assert!(b.exists("#purchase").await);
    b.close().await;
}
