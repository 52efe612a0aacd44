//! The browser client, end to end in headless Chromium: selling, buying, paying, expiry,
//! declines, withdrawal, escaping, CSRF, no-JavaScript use, layout and accessibility at two
//! widths, and sessions that outlive the access token. Screenshots of every page go to
//! `target/screenshots/` (not committed).

use crate::browser::{Browser, Options};
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const PASSWORD: &str = "secret-pw";

pub(crate) fn email(who: &str) -> String {
    format!("{who}-{}@test.com", uuid::Uuid::new_v4().simple())
}

/// Signs up through the form; lands on the landing page signed in.
pub(crate) async fn sign_up(b: &Browser, app: &TestApp, email: &str) {
    b.goto(&app.url("/auth/signup")).await;
    b.fill("#email-field", email).await;
    b.fill("#password-field", PASSWORD).await;
    b.click("#submit").await;
    b.find("#signout").await;
}

async fn sign_in(b: &Browser, app: &TestApp, email: &str) {
    b.goto(&app.url("/auth/signin")).await;
    b.fill("#email-field", email).await;
    b.fill("#password-field", PASSWORD).await;
    b.click("#submit").await;
    b.find("#signout").await;
}

async fn sign_out(b: &Browser) {
    b.click("#signout").await;
    b.find("a[href='/auth/signin']").await;
}

/// Sells a ticket through the form; returns its id (from the ticket page it lands on).
async fn sell(b: &Browser, app: &TestApp, title: &str, price: &str) -> String {
    b.goto(&app.url("/tickets/new")).await;
    b.fill("#title-field", title).await;
    b.fill("#price-field", price).await;
    b.click("#submit").await;
    b.wait_for_path(|p| p.starts_with("/tickets/") && p != "/tickets/new", "the new ticket's page").await;
    assert!(b.text("#saved").await.starts_with("Saved."), "the seller is told it is saved");
    b.path().await.trim_start_matches("/tickets/").to_string()
}

/// Purchases the ticket from its page; returns the order's id (from the order page).
pub(crate) async fn purchase(b: &Browser, app: &TestApp, ticket: &str) -> String {
    b.goto(&app.url(&format!("/tickets/{ticket}"))).await;
    b.click("#purchase").await;
    b.wait_for_path(|p| p.starts_with("/orders/"), "the order page").await;
    b.find("#time-left").await;
    b.path().await.trim_start_matches("/orders/").to_string()
}

async fn pay_with(b: &Browser, token: &str) {
    b.fill("#token-field", token).await;
    b.click("#pay").await;
}

/// A user made through the API (for tests whose subject is not signing up).
pub(crate) async fn api_user(app: &TestApp, email: &str) -> Session {
    let res = app.signup_as(email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let cookie = session_cookie(&res).unwrap();
    let body: Value = res.json().await.unwrap();
    Session { cookie, id: body["id"].as_str().unwrap().to_string(), email: email.to_string() }
}

async fn order_status(app: &TestApp, buyer: &Session, order: &str) -> String {
    let (status, body) = app.get_json(&format!("/api/orders/{order}"), Some(buyer)).await;
    assert_eq!(status, StatusCode::OK);
    body["status"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn a_seller_lists_a_ticket_and_a_buyer_buys_and_pays_for_it_while_a_second_buyer_is_told_it_is_gone() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    let (seller, buyer, late) = (email("seller"), email("buyer"), email("late"));

    sign_up(&b, &app, &seller).await;
    let ticket = sell(&b, &app, "Concert in the park", "25.50").await;
    assert_eq!(b.text("h1").await, "Concert in the park");
    assert!(b.exists("#edit").await, "the owner sees Edit");
    assert!(!b.exists("#purchase").await, "the owner cannot purchase");
    sign_out(&b).await;

    sign_up(&b, &app, &buyer).await;
    b.goto(&app.url("/")).await;
    let listed = b.text("#tickets").await;
    assert!(listed.contains("Concert in the park") && listed.contains("$25.50"), "{listed}");
    b.click(&format!("a[href='/tickets/{ticket}']")).await;
    b.click("#purchase").await;
    b.wait_for_path(|p| p.starts_with("/orders/"), "the order page").await;
    let order = b.path().await.trim_start_matches("/orders/").to_string();
    assert!(b.text("#time-left").await.contains("left"));
    pay_with(&b, "tok_visa").await;
    assert!(b.text("#paid").await.contains("Paid"));
    assert_eq!(b.text("#order-status").await, "Paid");
    // The receipt: order number, ticket, price, when, the payment's reference; printable.
    b.click("#receipt-link").await;
    let receipt = b.text("#receipt").await;
    for part in [order.as_str(), "Concert in the park", "$25.50", "UTC", "ch_"] {
        assert!(receipt.contains(part), "{part} in {receipt}");
    }
    b.screenshot("receipt").await;
    // Sold, not reserved, and the buyer is told it is theirs.
    b.goto(&app.url(&format!("/tickets/{ticket}"))).await;
    assert_eq!(b.text("#ticket-status").await, "Sold");
    assert!(b.text("#bought").await.starts_with("You bought this ticket."));
    b.goto(&app.url("/orders")).await;
    assert!(b.text("#orders").await.contains("Paid"));
    sign_out(&b).await;

    sign_up(&b, &app, &late).await;
    b.goto(&app.url(&format!("/orders/{order}/receipt"))).await;
    assert_eq!(b.text("h1").await, "Page not found", "a receipt is its buyer's only");
    b.goto(&app.url("/")).await;
    assert!(!b.exists(&format!("a[href='/tickets/{ticket}']")).await, "a sold ticket is not listed");
    b.goto(&app.url(&format!("/tickets/{ticket}"))).await;
    assert_eq!(b.text("#ticket-status").await, "Sold");
    assert_eq!(b.text("#unavailable").await, "This ticket has been sold.");
    assert!(!b.exists("#purchase").await);

    sign_out(&b).await;
    sign_in(&b, &app, &seller).await;
    b.goto(&app.url("/tickets/mine")).await;
    assert!(b.text("#my-tickets").await.contains("Sold"), "the seller sees the ticket sold");

    let session = api_user(&app, &email("checker")).await;
    let (_, orders) = app.get_json(&format!("/api/orders/{order}"), Some(&session)).await;
    assert_eq!(orders["errors"][0]["message"], "Not authorized", "another user's order stays private");
    b.close().await;
}

#[actix_web::test]
async fn a_second_buyer_whose_page_is_stale_gets_a_clear_message_when_purchasing() {
    let app = spawn_app().await;
    let seller = api_user(&app, &email("seller")).await;
    let ticket = app.create_ticket(&seller, "Last seat", json!(10)).await["id"].as_str().unwrap().to_string();
    // Without JavaScript the page does not follow the ticket live, so it can be stale.
    let b = Browser::with(Options { javascript: false, ..Options::default() }).await;
    sign_up(&b, &app, &email("slow")).await;
    b.goto(&app.url(&format!("/tickets/{ticket}"))).await;
    b.find("#purchase").await;
    // Someone else buys it while this page is open.
    let fast = api_user(&app, &email("fast")).await;
    app.order_ok(&fast, &ticket).await;
    b.click("#purchase").await;
    assert_eq!(b.text("#problems").await, "Ticket is already reserved");
    assert_eq!(b.path().await, format!("/tickets/{ticket}/purchase"));
    b.close().await;
}

#[actix_web::test]
async fn an_order_left_unpaid_shows_as_expired_after_its_window() {
    // No live stream here (none may open): what the page says by itself when the time runs
    // out. (tests/api/live_pages.rs: the open page learns it from the server.)
    let app = spawn_app_with(|s| {
        s.orders.expiration_seconds = 3.0;
        s.live.max_streams = 0;
    })
    .await;
    let seller = api_user(&app, &email("seller")).await;
    let ticket = app.create_ticket(&seller, "Short window", json!(5)).await["id"].as_str().unwrap().to_string();
    let b = Browser::start().await;
    let buyer = email("buyer");
    sign_up(&b, &app, &buyer).await;
    let order = purchase(&b, &app, &ticket).await;
    // It says so plainly: no sentence around it, the badge says Expired, Pay and Cancel are
    // disabled.
    b.wait_for_text("#pay-within", "Time is up: this order has expired.").await;
    let page = b.text("#main").await;
    assert!(!page.contains("Pay within") && !page.contains("Awaiting payment"), "{page}");
    assert_eq!(b.text("#order-status").await, "Expired");
    let disabled = b.eval("return document.getElementById('pay').disabled && document.getElementById('cancel').getAttribute('aria-disabled') === 'true'").await;
    assert_eq!(disabled, json!(true), "Pay and Cancel are disabled");
    // A payment sent anyway (the button enabled again by hand) is refused in plain words, on
    // the order's own address.
    let api_buyer = Session { cookie: sign_in_cookie(&app, &buyer).await, id: String::new(), email: buyer.clone() };
    eventually(Duration::from_secs(10), "the server expired the order", || async {
        order_status(&app, &api_buyer, &order).await == "cancelled"
    })
    .await;
    b.eval("document.getElementById('pay').disabled = false; return true").await;
    pay_with(&b, "tok_visa").await;
    assert_eq!(b.text("#problems").await, "This order has expired, so it can no longer be paid.");
    assert_eq!(b.path().await, format!("/orders/{order}"));
    // Then the server's answer says so too.
    eventually(Duration::from_secs(10), "the order page says expired", || async {
        b.goto(&app.url(&format!("/orders/{order}"))).await;
        b.exists("#expired").await
    })
    .await;
    assert_eq!(b.text("#order-status").await, "Expired");
    assert!(!b.exists("#pay").await, "an expired order cannot be paid");
    b.click(&format!("#expired a[href='/tickets/{ticket}']")).await;
    b.find("#purchase").await;
    b.screenshot("order-expired").await;
    b.close().await;
}

#[actix_web::test]
async fn my_orders_lists_the_newest_first_and_tells_an_expired_order_from_one_the_buyer_cancelled() {
    let app = spawn_app_with(|s| s.orders.expiration_seconds = 2.0).await;
    let seller = api_user(&app, &email("seller")).await;
    let buyer = api_user(&app, &email("buyer")).await;
    let mut orders = Vec::new();
    for title in ["Left to expire", "Cancelled by me", "Paid for"] {
        let ticket = app.create_ticket(&seller, title, json!(5)).await["id"].as_str().unwrap().to_string();
        orders.push(app.order_ok(&buyer, &ticket).await["id"].as_str().unwrap().to_string());
    }
    let res = app.delete(&format!("/api/orders/{}", orders[1])).header("Cookie", &buyer.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.pay_ok(&buyer, &orders[2]).await;
    eventually(Duration::from_secs(10), "the server expired the first order", || async {
        order_status(&app, &buyer, &orders[0]).await == "cancelled"
    })
    .await;
    // Every window is over now: the cancelled order still reads as cancelled, not expired.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let html = app.browse("/orders").header("Cookie", &buyer.cookie).send().await.unwrap().text().await.unwrap();
    let cards: Vec<&str> = html.split("<li class=\"card\">").skip(1).collect();
    let badge = |card: &str| {
        card.split("class=\"badge")
            .nth(1)
            .and_then(|b| b.split('>').nth(1))
            .map(|b| b.split('<').next().unwrap_or_default().to_string())
    };
    let seen: Vec<(bool, bool, bool, Option<String>)> = cards
        .iter()
        .map(|c| (c.contains("Paid for"), c.contains("Cancelled by me"), c.contains("Left to expire"), badge(c)))
        .collect();
    assert_eq!(
        seen,
        [
            (true, false, false, Some("Paid".into())),
            (false, true, false, Some("Cancelled".into())),
            (false, false, true, Some("Expired".into())),
        ],
        "newest first, each as it ended: {html}"
    );
}

#[actix_web::test]
async fn pages_opened_again_after_the_fact_say_where_things_stand() {
    let app = spawn_app().await;
    let seller = api_user(&app, &email("seller")).await;
    let buyer = api_user(&app, &email("buyer")).await;
    let ticket = app.create_ticket(&seller, "After the fact", json!(5)).await["id"].as_str().unwrap().to_string();
    let order = app.order_ok(&buyer, &ticket).await["id"].as_str().unwrap().to_string();
    let page = |path: String| {
        let req = app.browse(&path).header("Cookie", &buyer.cookie);
        async move {
            let res = req.send().await.unwrap();
            (res.url().path().to_string(), res.text().await.unwrap())
        }
    };
    // Still payable: the decline's address says so, the cancel page asks.
    let (_, html) = page(format!("/orders/{order}?refused=declined")).await;
    assert!(html.contains("Your card was declined"), "{html}");
    assert!(page(format!("/orders/{order}/cancel")).await.1.contains("id=\"confirm-cancel\""));
    // Paid: the same addresses, reloaded, say nothing of a decline and ask nothing.
    app.pay_ok(&buyer, &order).await;
    let (_, html) = page(format!("/orders/{order}?refused=declined")).await;
    assert!(!html.contains("Your card was declined") && html.contains("id=\"paid\""), "{html}");
    let (path, html) = page(format!("/orders/{order}/cancel")).await;
    assert_eq!(path, format!("/orders/{order}"), "the cancel page sends to the order: {html}");
    assert!(!html.contains("confirm-cancel"));
    // So does a cancelled order's cancel page.
    let other = app.create_ticket(&seller, "Cancelled before", json!(5)).await["id"].as_str().unwrap().to_string();
    let cancelled = app.order_ok(&buyer, &other).await["id"].as_str().unwrap().to_string();
    let res = app.delete(&format!("/api/orders/{cancelled}")).header("Cookie", &buyer.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(page(format!("/orders/{cancelled}/cancel")).await.0, format!("/orders/{cancelled}"));
    // The edit form's way out goes back to the ticket.
    let listed = app.create_ticket(&seller, "Being edited", json!(5)).await["id"].as_str().unwrap().to_string();
    let res = app.browse(&format!("/tickets/{listed}/edit")).header("Cookie", &seller.cookie).send().await.unwrap();
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("href=\"/tickets/{listed}\" id=\"back\"")), "{html}");
    // A landing page past the end of the list says so, with the way back.
    let (_, html) = page("/?page=99".to_string()).await;
    assert!(
        html.contains("There is no page 99: the list ends before it.") && html.contains("id=\"first-page\""),
        "{html}"
    );
    assert!(!html.contains("No tickets for sale right now."));
}

#[actix_web::test]
async fn a_declined_card_shows_the_decline_and_leaves_the_order_payable() {
    let app = spawn_app().await;
    let seller = api_user(&app, &email("seller")).await;
    let ticket = app.create_ticket(&seller, "Declined at first", json!(30)).await["id"].as_str().unwrap().to_string();
    let b = Browser::start().await;
    let buyer = email("buyer");
    sign_up(&b, &app, &buyer).await;
    let order = purchase(&b, &app, &ticket).await;
    assert!(b.text("#test-tokens").await.contains("tok_chargeDeclined"), "dev mode documents the test tokens");
    pay_with(&b, "tok_chargeDeclined").await;
    assert_eq!(b.text("#problems").await, "Your card was declined");
    // Answered with a redirect: the address can be reloaded or shared (the pay address too).
    assert_eq!(b.path().await, format!("/orders/{order}"));
    b.goto(&app.url(&format!("/orders/{order}/pay"))).await;
    assert_eq!(b.path().await, format!("/orders/{order}"));
    assert!(b.exists("#pay").await, "the order is still payable");
    b.goto(&app.url(&format!("/orders/{order}?refused=declined"))).await;
    b.screenshot("order-declined").await;
    assert!(b.exists("#pay").await, "the order is still payable");
    let api_buyer = Session { cookie: sign_in_cookie(&app, &buyer).await, id: String::new(), email: buyer };
    assert_eq!(order_status(&app, &api_buyer, &order).await, "created");
    pay_with(&b, "tok_visa").await;
    b.find("#paid").await;
    assert_eq!(order_status(&app, &api_buyer, &order).await, "complete");
    b.close().await;
}

async fn sign_in_cookie(app: &TestApp, email: &str) -> String {
    session_cookie(&app.signin_as(email, PASSWORD).await).unwrap()
}

#[actix_web::test]
async fn a_seller_withdraws_a_listing_from_my_tickets() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    let seller = email("seller");
    sign_up(&b, &app, &seller).await;
    let kept = sell(&b, &app, "Staying", "12").await;
    let gone = sell(&b, &app, "Going away", "15").await;
    b.goto(&app.url("/tickets/mine")).await;
    b.screenshot("my-tickets").await;
    // Withdraw asks first: keeping it changes nothing.
    b.click(&format!("a[href='/tickets/{gone}/withdraw']")).await;
    assert_eq!(b.text("h1").await, "Withdraw Going away?");
    b.click("#keep").await;
    b.wait_for_path(|p| p == format!("/tickets/{gone}"), "the ticket's page").await;
    assert_eq!(b.text("#ticket-status").await, "For sale");
    b.goto(&app.url("/tickets/mine")).await;
    assert_eq!(b.text(&format!("a[href='/tickets/{gone}/withdraw']")).await, "Withdraw", "short words");
    b.click(&format!("a[href='/tickets/{gone}/withdraw']")).await;
    b.click("#confirm-withdraw").await;
    assert_eq!(b.text("#withdrawn").await, "Listing withdrawn.");
    let mine = b.text("#my-tickets").await;
    assert!(mine.contains("Staying") && !mine.contains("Going away"), "{mine}");
    b.goto(&app.url("/")).await;
    assert!(b.exists(&format!("a[href='/tickets/{kept}']")).await);
    assert!(!b.exists(&format!("a[href='/tickets/{gone}']")).await);
    assert_eq!(app.get(&format!("/api/tickets/{gone}")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    b.goto(&app.url(&format!("/tickets/{gone}"))).await;
    assert_eq!(b.text("h1").await, "Page not found");
    assert!(app.subjects_of(&gone).await.contains(&"ticket:deleted".to_string()));
    b.close().await;
}

#[actix_web::test]
async fn a_title_containing_a_script_tag_renders_as_text() {
    let app = spawn_app().await;
    let seller = api_user(&app, &email("seller")).await;
    let title = "<script>window.pwned = 1</script><b>bold</b> & \"quoted\"";
    let ticket = app.create_ticket(&seller, title, json!(9)).await["id"].as_str().unwrap().to_string();
    let b = Browser::start().await;
    for path in ["/".to_string(), format!("/tickets/{ticket}")] {
        b.goto(&app.url(&path)).await;
        assert_eq!(b.eval("return typeof window.pwned").await, json!("undefined"), "no script ran on {path}");
        assert!(!b.exists("main b").await, "no markup from the title on {path}");
        let source = b.client.source().await.unwrap();
        assert!(source.contains("&lt;script&gt;window.pwned = 1&lt;/script&gt;"), "escaped on {path}");
    }
    assert_eq!(b.text("h1").await, title);
    b.close().await;
}

#[actix_web::test]
async fn a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    let seller = email("seller");
    sign_up(&b, &app, &seller).await;
    b.goto(&app.url("/tickets/new")).await;
    b.fill("#title-field", "Forged").await;
    b.fill("#price-field", "10").await;
    b.eval("document.querySelector('form.stack input[name=csrf]').remove(); return null").await;
    b.click("#submit").await;
    b.wait_for_text("h1", "Form expired").await;
    b.screenshot("csrf-refused").await;
    // Nor does a token that is not this browser's work (a forged cross-site form).
    let session = api_user(&app, &email("victim")).await;
    let res = app
        .post("/tickets/new")
        .header("Cookie", format!("{}; csrf={}", session.cookie, "a".repeat(64)))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("csrf={}&title=Forged&price=10", "b".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (_, listed) = app.get_json("/api/tickets", None).await;
    assert_eq!(listed, json!([]), "no ticket was created");
    b.close().await;
}

#[actix_web::test]
async fn the_whole_buy_and_pay_flow_works_with_javascript_disabled() {
    let app = spawn_app().await;
    let b = Browser::with(Options { javascript: false, ..Options::default() }).await;
    let (seller, buyer) = (email("seller"), email("buyer"));
    sign_up(&b, &app, &seller).await;
    assert!(b.exists("html.no-js").await, "scripts really are off");
    let ticket = sell(&b, &app, "No script needed", "7").await;
    sign_out(&b).await;
    sign_up(&b, &app, &buyer).await;
    let order = purchase(&b, &app, &ticket).await;
    pay_with(&b, "tok_chargeDeclined").await;
    assert_eq!(b.text("#problems").await, "Your card was declined");
    // Answered with a redirect: the address can be reloaded or shared (the pay address too).
    assert_eq!(b.path().await, format!("/orders/{order}"));
    b.goto(&app.url(&format!("/orders/{order}/pay"))).await;
    assert_eq!(b.path().await, format!("/orders/{order}"));
    assert!(b.exists("#pay").await, "the order is still payable");
    b.goto(&app.url(&format!("/orders/{order}?refused=declined"))).await;
    pay_with(&b, "tok_visa").await;
    b.find("#paid").await;
    assert!(b.exists("html.no-js").await);
    let api_buyer = Session { cookie: sign_in_cookie(&app, &buyer).await, id: String::new(), email: buyer };
    assert_eq!(order_status(&app, &api_buyer, &order).await, "complete");
    b.close().await;
}

/// What the layout check found on one page.
const LAYOUT_CHECK: &str = r#"
    const doc = document.documentElement;
    const controls = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')]
        .filter(e => !e.disabled && e.getClientRects().length > 0);
    const unlabelled = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.name);
    controls.forEach((e, i) => e.setAttribute('data-control', String(i)));
    const header = document.querySelector('header');
    const targets = [...document.querySelectorAll('nav a, nav button')].filter(e => e.getClientRects().length > 0);
    return { width: window.innerWidth, overflow: doc.scrollWidth - window.innerWidth, h1: document.querySelectorAll('h1').length,
             unlabelled, controls: controls.length, header: header ? header.getBoundingClientRect().height : 0,
             smallest_target: Math.min(...targets.map(e => e.getBoundingClientRect().height)) };
"#;

/// Tabs through the page from the top; the controls reached, by their index.
async fn tab_through(b: &Browser, controls: usize) -> std::collections::BTreeSet<u64> {
    b.eval("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); return null").await;
    let mut reached = std::collections::BTreeSet::new();
    let body = b.find("body").await;
    body.send_keys("\u{E004}").await.unwrap();
    for _ in 0..controls + 3 {
        let at = b.eval("return document.activeElement && document.activeElement.getAttribute('data-control')").await;
        if let Some(i) = at.as_str().and_then(|s| s.parse().ok()) {
            reached.insert(i);
        }
        b.client.active_element().await.unwrap().send_keys("\u{E004}").await.unwrap();
    }
    reached
}

#[actix_web::test]
async fn every_page_fits_375_and_1280_pixels_labels_its_inputs_has_one_h1_is_reachable_by_tab_and_axe_clean() {
    let app = spawn_app().await;
    let seller = api_user(&app, &email("seller")).await;
    let long = "A very long ticket title that goes on and on to test that nothing overflows on narrow screens";
    let ticket = app.create_ticket(&seller, long, json!(99.99)).await["id"].as_str().unwrap().to_string();
    let other = app.create_ticket(&seller, "Second", json!(1)).await["id"].as_str().unwrap().to_string();
    for width in [375u32, 1280] {
        let b = Browser::with(Options { width, ..Options::default() }).await;
        let buyer = email(&format!("buyer{width}"));
        let mut pages: Vec<(String, String)> = vec![
            ("landing-signed-out".into(), "/".into()),
            ("signup".into(), "/auth/signup".into()),
            ("signin".into(), "/auth/signin".into()),
            ("forgot".into(), "/auth/forgot".into()),
            ("reset".into(), "/auth/reset?token=x".into()),
            ("not-found".into(), "/no/such/page".into()),
        ];
        for (name, path) in &pages {
            check_layout(&b, &app, name, path, width).await;
        }
        sign_up(&b, &app, &buyer).await;
        let order = purchase(&b, &app, if width == 375 { &ticket } else { &other }).await;
        let own = sell(&b, &app, "My own listing", "3").await;
        pages = vec![
            ("own-ticket".into(), format!("/tickets/{own}")),
            ("edit".into(), format!("/tickets/{own}/edit")),
            ("landing".into(), "/".into()),
            ("ticket".into(), format!("/tickets/{ticket}")),
            ("sell".into(), "/tickets/new".into()),
            ("order".into(), format!("/orders/{order}")),
            ("orders".into(), "/orders".into()),
            ("my-tickets".into(), "/tickets/mine".into()),
            ("withdraw".into(), format!("/tickets/{own}/withdraw")),
            ("cancel".into(), format!("/orders/{order}/cancel")),
        ];
        for (name, path) in &pages {
            check_layout(&b, &app, name, path, width).await;
        }
        b.goto(&app.url(&format!("/orders/{order}"))).await;
        pay_with(&b, "tok_visa").await;
        b.wait_for_text("#order-status", "Paid").await;
        check_layout(&b, &app, "paid-order", &format!("/orders/{order}"), width).await;
        check_layout(&b, &app, "receipt", &format!("/orders/{order}/receipt"), width).await;
        check_layout(&b, &app, "signout", "/auth/signout", width).await;
        b.close().await;
    }
}

async fn check_layout(b: &Browser, app: &TestApp, name: &str, path: &str, width: u32) {
    b.goto(&app.url(path)).await;
    b.find("h1").await;
    let found = b.eval(LAYOUT_CHECK).await;
    assert_eq!(found["width"], width, "{name}: the viewport is {width}px wide");
    assert!(found["overflow"].as_i64().unwrap() <= 0, "{name} at {width}px overflows: {found}");
    assert_eq!(found["h1"], 1, "{name} has one h1: {found}");
    assert_eq!(found["unlabelled"], json!([]), "{name}: every input is labelled");
    // The header stays two short lines at most; its links are targets of 24 px or more.
    assert!(found["header"].as_f64().unwrap() <= 90.0, "{name} at {width}px: a tall header: {found}");
    assert!(found["smallest_target"].as_f64().unwrap() >= 24.0, "{name} at {width}px: a small target: {found}");
    let controls = found["controls"].as_u64().unwrap() as usize;
    let reached = tab_through(b, controls).await;
    let missed: Vec<usize> = (0..controls).filter(|i| !reached.contains(&(*i as u64))).collect();
    assert!(missed.is_empty(), "{name} at {width}px: Tab never reached controls {missed:?} of {controls}");
    let violations = b.axe_violations().await;
    assert!(violations.is_empty(), "{name} at {width}px: axe-core finds {violations:#?}");
    b.screenshot(&format!("{name}-{width}")).await;
}

#[actix_web::test]
async fn the_landing_lists_the_newest_first_and_pages_back_and_a_missing_page_keeps_the_navigation() {
    let app = spawn_app().await;
    let seller = api_user(&app, &email("seller")).await;
    for n in 0..25 {
        app.create_ticket(&seller, &format!("Ticket {n:02}"), json!(1000 + n)).await;
    }
    let b = Browser::start().await;
    sign_up(&b, &app, &email("visitor")).await;
    b.goto(&app.url("/")).await;
    assert_eq!(b.text("#tickets li:first-child h2").await, "Ticket 24", "the newest first");
    assert!(b.text("#tickets li:first-child .price").await.starts_with("$1,024.00"), "thousands grouped");
    assert!(!b.exists("#first-page").await);
    b.click("#next-page").await;
    assert_eq!(b.text("#tickets li:first-child h2").await, "Ticket 04");
    b.click("#first-page").await;
    assert_eq!(b.text("#tickets li:first-child h2").await, "Ticket 24");
    // A missing page: still signed in (the navigation of whoever asks), and the icon exists.
    b.goto(&app.url("/no/such/page")).await;
    assert_eq!(b.text("h1").await, "Page not found");
    assert!(b.exists("#signout").await, "a signed-in person still looks signed in");
    b.goto(&app.url(&format!("/tickets/{}", uuid::Uuid::now_v7()))).await;
    assert!(b.exists("#signout").await);
    let icon = app.get("/favicon.ico").send().await.unwrap();
    assert_eq!(icon.status(), StatusCode::OK);
    // After a refused form the focus is on what to fix.
    b.goto(&app.url("/tickets/new")).await;
    b.fill("#title-field", "No price").await;
    b.click("#submit").await;
    b.find("#price-error").await;
    assert_eq!(b.eval("return document.activeElement.id").await, "price-field");
    b.close().await;
}

#[actix_web::test]
async fn pages_answer_with_a_strict_content_security_policy_and_no_raw_errors() {
    let app = spawn_app().await;
    let res = app.get("/").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    for directive in
        ["default-src 'none'", "script-src 'self'", "style-src 'self'", "form-action 'self'", "frame-ancestors 'none'"]
    {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"));
    let missing = app.browse("/tickets/not-a-ticket").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let text = missing.text().await.unwrap();
    assert!(text.contains("<h1>Page not found</h1>") && !text.contains("errors"), "{text}");
    let api_missing = app.get("/api/nothing").send().await.unwrap();
    assert_eq!(error_messages(api_missing).await, vec!["Not Found"], "the API keeps its JSON errors");
    let signed_out = app.get("/orders").send().await.unwrap();
    assert_eq!(signed_out.url().path(), "/auth/signin", "a signed-out visitor is sent to sign in");
}

#[actix_web::test]
async fn the_pages_keep_a_cookie_only_client_signed_in_across_three_access_token_lifetimes() {
    let app = spawn_app_with(|s| s.auth.access_token_seconds = 2).await;
    let client = reqwest::Client::builder().no_proxy().cookie_store(true).build().unwrap();
    let who = email("keeper");
    let res = client
        .post(app.url("/api/users/signup"))
        .json(&json!({"email": who, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(7) {
        let page = client.get(app.url("/orders")).send().await.unwrap();
        assert_eq!(page.url().path(), "/orders", "still signed in after {:?}", started.elapsed());
        assert!(page.text().await.unwrap().contains(&who), "the page names the user");
        let api = client.get(app.url("/api/orders")).send().await.unwrap();
        assert_eq!(api.status(), StatusCode::OK, "the API too after {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}

#[actix_web::test]
async fn with_the_stripe_gateway_the_order_page_sends_the_buyer_to_checkout_and_the_webhook_completes_the_order() {
    use crate::stripe_server::StripeServer;
    use ticketing::settings::{PaymentProvider, Secret};
    const SECRET: &str = "whsec_browser_checkout";
    let stripe = StripeServer::start().await;
    let base = stripe.base_url.clone();
    let app = spawn_app_with(move |s| {
        s.payments.provider = PaymentProvider::Stripe;
        s.payments.stripe_api_base = base;
        s.payments.stripe_secret_key = Secret::new("sk_test_browser");
        s.payments.webhook_secret = Secret::new(SECRET);
    })
    .await;
    stripe.set_webhook(&app.url("/api/payments/webhook"), SECRET);
    let seller = api_user(&app, &email("seller")).await;
    let ticket = app.create_ticket(&seller, "Checkout night", json!(25.5)).await["id"].as_str().unwrap().to_string();
    let b = Browser::start().await;
    let buyer = email("buyer");
    sign_up(&b, &app, &buyer).await;
    let order = purchase(&b, &app, &ticket).await;
    assert!(!b.exists("#token-field").await, "no card token form with Stripe");
    assert!(!b.exists("#test-tokens").await);
    b.click("#pay").await;
    // Stripe's hosted page (the local Stripe-compatible server's), reached by a redirect.
    assert_eq!(b.text("#product").await, "Checkout night");
    assert_eq!(b.text("#amount").await, "25.50 USD");
    b.screenshot("stripe-checkout").await;
    b.click("#pay").await;
    b.wait_for_path(|p| p == format!("/orders/{order}"), "back on the order page").await;
    b.find("#paid").await;
    let sessions = stripe.checkout_sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].metadata.get("orderId"), Some(&order));
    let api_buyer = Session { cookie: sign_in_cookie(&app, &buyer).await, id: String::new(), email: buyer };
    assert_eq!(order_status(&app, &api_buyer, &order).await, "complete");
    assert!(app.subjects_of(&order).await.contains(&"payment:created".to_string()));
    b.close().await;
}

#[actix_web::test]
async fn a_wrong_method_or_an_oversized_form_on_a_page_gets_a_page_not_json() {
    let app = spawn_app().await;
    let res = app.browse("/tickets/00000000-0000-7000-8000-000000000000/purchase").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(res.text().await.unwrap().contains("<h1>Page not found</h1>"));
    let big = format!("title={}", "x".repeat(70 * 1024));
    let res = app
        .post("/tickets/new")
        .header("Accept", BROWSER_ACCEPT)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(res.text().await.unwrap().contains("<h1>Too much text</h1>"));
}

/// A cookie-keeping client that has visited `path` (so it holds a CSRF cookie) and the token
/// of the form it got.
async fn form_client(app: &TestApp, path: &str) -> (reqwest::Client, String) {
    let client = browser_client();
    let page = client.get(app.url(path)).send().await.unwrap().text().await.unwrap();
    let token = page.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();
    (client, token)
}

/// The messages shown next to a field (`<p class="error" id="<field>-error">`), the input
/// pointing at them.
fn field_error(page: &str, field: &str) -> Option<String> {
    let marker = format!("id=\"{field}-error\"");
    let after = page.split(&marker).nth(1)?;
    let text = after.split_once('>')?.1.split("</p>").next()?.trim().to_string();
    let pointed = page
        .split("aria-describedby=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .any(|ids| ids.split(' ').any(|id| id == format!("{field}-error")));
    assert!(pointed, "the input points at its message");
    Some(text)
}

#[actix_web::test]
async fn refused_forms_show_the_apis_words_next_to_their_fields_and_keep_what_was_typed() {
    let app = spawn_app().await;
    let (client, csrf) = form_client(&app, "/auth/signup").await;
    let res = client
        .post(app.url("/auth/signup"))
        .form(&[("csrf", csrf.as_str()), ("email", "not-an-email"), ("password", "ab")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = res.text().await.unwrap();
    assert_eq!(field_error(&page, "email").as_deref(), Some("Email must be valid"));
    assert_eq!(field_error(&page, "password").as_deref(), Some("Password must be between 4 and 20 characters"));
    assert!(page.contains("value=\"not-an-email\""), "the email typed is kept");
    assert!(!page.contains("\"errors\""), "no raw JSON");
    // The first field to fix has the focus, and only it (HTML allows one `autofocus`).
    assert_eq!(page.matches(" autofocus").count(), 1, "{page}");
    let focused = page.split("<input").filter_map(|tag| tag.split('>').next()).find(|tag| tag.contains("autofocus"));
    assert!(focused.is_some_and(|tag| tag.contains("id=\"email-field\"")), "{focused:?}");
    assert!(page.contains("Email must be valid</p>"), "no trailing space: {page}");

    let taken = email("taken");
    api_user(&app, &taken).await;
    let res = client
        .post(app.url("/auth/signup"))
        .form(&[("csrf", csrf.as_str()), ("email", taken.as_str()), ("password", "good-pass")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("<p>Email in use</p>"));
    let res = client
        .post(app.url("/auth/signin"))
        .form(&[("csrf", csrf.as_str()), ("email", taken.as_str()), ("password", "wrong-pass")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("<p>Invalid credentials</p>"));

    let res = client
        .post(app.url("/auth/signin"))
        .form(&[("csrf", csrf.as_str()), ("email", taken.as_str()), ("password", PASSWORD), ("next", "/tickets/new")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.url().path(), "/tickets/new", "signed in, on to where the person was going");
    let res = client
        .post(app.url("/tickets/new"))
        .form(&[("csrf", csrf.as_str()), ("title", "   "), ("price", "-3")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = res.text().await.unwrap();
    assert_eq!(field_error(&page, "title").as_deref(), Some("Title is required"));
    assert_eq!(field_error(&page, "price").as_deref(), Some("Price must be greater than 0"));
    // The API's words are the seeds' for every price refused; the form says the rules first,
    // and the input points at both.
    assert!(page.contains("at most 1,000,000.00, with at most two decimals"), "{page}");
    assert!(page.contains("aria-describedby=\"price-hint price-error\""), "{page}");
    assert!(page.contains("href=\"/\" id=\"back\""), "a way out: {page}");
    for title in ["\u{0}", "\u{1}\u{2}"] {
        let res = client
            .post(app.url("/tickets/new"))
            .form(&[("csrf", csrf.as_str()), ("title", title), ("price", "5")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{title:?}");
        let page = res.text().await.unwrap();
        assert_eq!(field_error(&page, "title").as_deref(), Some("Title is required"), "{title:?}");
    }
    let (_, listed) = app.get_json("/api/tickets", None).await;
    assert_eq!(listed, json!([]), "a refused form changes nothing");

    // A problem with a hidden input (the reset link's token) is the form's own, told at its
    // top; the focus goes to the field there is to fix.
    let (client, csrf) = form_client(&app, "/auth/reset").await;
    let res = client
        .post(app.url("/auth/reset"))
        .form(&[("csrf", csrf.as_str()), ("token", ""), ("password", "ab")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = res.text().await.unwrap();
    assert!(page.contains("You must supply the token of the reset link"), "{page}");
    let focused = page.split("<input").filter_map(|tag| tag.split('>').next()).find(|tag| tag.contains("autofocus"));
    assert!(focused.is_some_and(|tag| tag.contains("id=\"password-field\"")), "{focused:?}");
}

#[actix_web::test]
async fn sign_in_never_redirects_off_the_site() {
    let app = spawn_app().await;
    let who = email("redirected");
    api_user(&app, &who).await;
    for next in ["https://evil.test/", "//evil.test/", "/\\evil.test", "/\t/evil.test", "/\n/x", "/ /evil.test"] {
        let (client, csrf) = form_client(&app, "/auth/signin").await;
        let client = client;
        let res = client
            .post(app.url("/auth/signin"))
            .form(&[("csrf", csrf.as_str()), ("email", who.as_str()), ("password", PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.url().as_str(), app.url("/"), "next={next} stays on the site");
    }
}

#[actix_web::test]
async fn an_overloaded_node_answers_pages_with_a_friendly_503_page() {
    let app = spawn_app_with(|s| s.http.max_in_flight = 0).await;
    let res = app.browse("/").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = res.text().await.unwrap();
    assert!(page.contains("<h1>Busy right now</h1>") && page.contains("try again"), "{page}");
    let api = app.get("/api/tickets").send().await.unwrap();
    assert_eq!(api.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(error_messages(api).await[0].contains("unavailable"), "the API keeps its JSON error");
}

#[actix_web::test]
async fn signing_in_on_a_page_with_another_users_stale_refresh_cookie_signs_in_the_new_user() {
    let app = spawn_app_with(|s| s.auth.access_token_seconds = 1).await;
    let (client, csrf) = form_client(&app, "/auth/signup").await;
    let (first, second) = (email("first"), email("second"));
    api_user(&app, &second).await;
    let res = client
        .post(app.url("/auth/signup"))
        .form(&[("csrf", csrf.as_str()), ("email", first.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.url().path(), "/");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The first user's access token has expired; their refresh cookie is still here.
    let res = client
        .post(app.url("/auth/signin"))
        .form(&[("csrf", csrf.as_str()), ("email", second.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.url().path(), "/");
    let (me, _) = (client.get(app.url("/api/users/currentuser")).send().await.unwrap(), ());
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["currentUser"]["email"], json!(second), "signed in as the new user: {me}");
}

#[actix_web::test]
async fn with_secure_cookies_configured_every_cookie_is_secure() {
    let app = spawn_app_with(|s| s.auth.secure_cookies = true).await;
    let page = app.get("/auth/signup").send().await.unwrap();
    let csrf = page.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
    assert!(csrf.iter().any(|c| c.starts_with("csrf=") && c.contains("Secure") && c.contains("HttpOnly")), "{csrf:?}");
    let res = app.signup_as(&email("secure"), PASSWORD).await;
    let cookies: Vec<String> =
        res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    for name in ["session=", "refresh="] {
        let set = cookies.iter().filter(|c| c.starts_with(name) && !c.contains("Max-Age=0")).collect::<Vec<_>>();
        assert_eq!(set.len(), 1, "{name} {cookies:?}");
        assert!(set[0].contains("Secure") && set[0].contains("HttpOnly") && set[0].contains("SameSite=Lax"), "{set:?}");
    }
}

#[actix_web::test]
async fn the_edit_page_tells_anyone_but_the_seller_that_they_cannot_edit() {
    let app = spawn_app().await;
    let seller = api_user(&app, &email("seller")).await;
    let ticket = app.create_ticket(&seller, "Not yours", json!(4)).await["id"].as_str().unwrap().to_string();
    let other = api_user(&app, &email("other")).await;
    let res = app.get(&format!("/tickets/{ticket}/edit")).header("Cookie", &other.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let page = res.text().await.unwrap();
    assert!(page.contains("Only the seller can edit this ticket.") && !page.contains("id=\"title-field\""), "{page}");
    let res = app.get(&format!("/tickets/{ticket}/edit")).header("Cookie", &seller.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("value=\"Not yours\""));
}

#[actix_web::test]
async fn cancelling_an_order_asks_first_without_javascript_too() {
    let app = spawn_app().await;
    let seller = api_user(&app, &email("seller")).await;
    let ticket = app.create_ticket(&seller, "Second thoughts", json!(40)).await["id"].as_str().unwrap().to_string();
    let b = Browser::with(Options { javascript: false, ..Options::default() }).await;
    sign_up(&b, &app, &email("buyer")).await;
    let order = purchase(&b, &app, &ticket).await;
    b.click("#cancel").await;
    assert_eq!(b.text("h1").await, "Cancel your order for Second thoughts?");
    // Keeping it changes nothing.
    b.click("#keep").await;
    b.wait_for_path(|p| p == format!("/orders/{order}"), "the order's page").await;
    assert_eq!(b.text("#order-status").await, "Awaiting payment");
    b.click("#cancel").await;
    b.click("#confirm-cancel").await;
    b.find("#cancelled").await;
    assert_eq!(b.text("#order-status").await, "Cancelled");
    b.close().await;
}
