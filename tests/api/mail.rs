//! Mail through SMTP (`[mail] smtp_url`), against an SMTP server started in the test: the
//! order confirmed with its receipt (to the buyer), the ticket sold (to the seller), the
//! order expired; each with a Message-ID of its own. A mail server that is down delays mail,
//! not requests. Password reset: the same answer for every address, a link that works once
//! for 30 minutes and ends every session. Mail off (the default): nothing is queued.

use crate::helpers::*;
use crate::smtp::Sink;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn with_mail(url: String, expiry: f64) -> TestApp {
    spawn_app_with(move |s| {
        s.mail.smtp_url = url;
        s.mail.base_url = "https://tickets.example".into();
        s.mail.retry_seconds = 0.2;
        s.orders.expiration_seconds = expiry;
    })
    .await
}

/// How long paying for `order` took.
async fn pay(app: &TestApp, who: &Session, order: &str) -> Duration {
    let started = Instant::now();
    app.pay_ok(who, order).await;
    started.elapsed()
}

#[actix_web::test]
async fn a_paid_order_mails_the_buyer_a_receipt_and_the_seller_a_sale_and_an_expired_one_says_so() {
    let sink = Sink::start().await;
    let app = with_mail(sink.url(), 2.0).await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let ticket = app.create_ticket(&seller, "Mailed gig", json!(1200)).await;
    let order = app.order_ok(&buyer, ticket["id"].as_str().unwrap()).await;
    let order_id = order["id"].as_str().unwrap();
    pay(&app, &buyer, order_id).await;
    eventually(Duration::from_secs(10), "the buyer's and the seller's mail", || async {
        !sink.to(&buyer.email).is_empty() && !sink.to(&seller.email).is_empty()
    })
    .await;
    let receipt = &sink.to(&buyer.email)[0];
    assert_eq!(receipt.header("Subject").as_deref(), Some("Your ticket: Mailed gig"));
    let body = receipt.body();
    for part in
        [order_id, "$1,200.00", "Payment reference: ch_", &format!("https://tickets.example/orders/{order_id}/receipt")]
    {
        assert!(body.contains(part), "{part} in {body}");
    }
    let sale = &sink.to(&seller.email)[0];
    assert_eq!(sale.header("Subject").as_deref(), Some("You sold Mailed gig"));

    // An order left to expire.
    let other = app.create_ticket(&seller, "Left to expire", json!(5)).await;
    let unpaid = app.order_ok(&buyer, other["id"].as_str().unwrap()).await;
    eventually(Duration::from_secs(15), "the expiry mail", || async { sink.to(&buyer.email).len() == 2 }).await;
    let expired = &sink.to(&buyer.email)[1];
    assert_eq!(expired.header("Subject").as_deref(), Some("Your order for Left to expire expired"));
    assert!(expired.body().contains(unpaid["id"].as_str().unwrap()));

    // Each once, each named for good: three mails, three Message-IDs.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let all = sink.received.lock().unwrap().clone();
    assert_eq!(all.len(), 3, "{all:#?}");
    let ids: std::collections::BTreeSet<String> = all.iter().filter_map(|m| m.header("Message-ID")).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids.iter().all(|id| id.ends_with("@ticketing.invalid>")), "{ids:?}");
}

#[actix_web::test]
async fn a_mail_server_that_is_down_delays_mail_and_no_request() {
    // A port with nothing on it, taken again by the server later.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = with_mail(format!("smtp://127.0.0.1:{port}"), 900.0).await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let mut slowest = Duration::ZERO;
    for n in 0..5 {
        let ticket = app.create_ticket(&seller, &format!("gig {n}"), json!(10)).await;
        let order = app.order_ok(&buyer, ticket["id"].as_str().unwrap()).await;
        slowest = slowest.max(pay(&app, &buyer, order["id"].as_str().unwrap()).await);
    }
    assert!(slowest < Duration::from_secs(2), "a payment took {slowest:?} while mail is down");
    eventually(Duration::from_secs(10), "tries failed and were counted", || async {
        let metrics = app.get("/metrics").send().await.unwrap().text().await.unwrap();
        metrics.contains("ticketing_mail_total{outcome=\"failed\"}")
    })
    .await;
    // The server comes up: what waited is sent.
    let sink = Sink::start_on(port).await;
    eventually(Duration::from_secs(10), "the waiting mail", || async { sink.to(&buyer.email).len() == 5 }).await;
}

#[actix_web::test]
async fn a_password_reset_link_works_once_and_ends_every_session_and_says_nothing_of_unknown_addresses() {
    let sink = Sink::start().await;
    let app = with_mail(sink.url(), 900.0).await;
    let user = app.signin().await;
    let ask = |email: String| {
        let req = app.post("/api/users/password-reset").json(&json!({ "email": email }));
        async move {
            let res = req.send().await.unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    };
    let known = ask(user.email.clone()).await;
    let unknown = ask("nobody@example.com".into()).await;
    assert_eq!(known.0, StatusCode::ACCEPTED);
    assert_eq!(known, unknown, "the same answer whether or not the address has an account");
    eventually(Duration::from_secs(10), "the reset mail", || async { sink.to(&user.email).len() == 1 }).await;
    assert!(sink.to("nobody@example.com").is_empty());
    let body = sink.to(&user.email)[0].body();
    let token = body.split("token=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    assert_eq!(token.len(), 96, "{body}");
    // Stored hashed: the token is in no file of the data dir.
    assert!(!contains_bytes(app.data.path(), token.as_bytes()), "the token is not stored");

    let reset = |token: String, password: &'static str| {
        let req = app.post("/api/users/password-reset/confirm").json(&json!({"token": token, "password": password}));
        async move { req.send().await.unwrap() }
    };
    let res = reset(token.clone(), "new-secret").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // The old password no longer works, the new one does; the session from before is over.
    assert_eq!(app.signin_as(&user.email, "password").await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.signin_as(&user.email, "new-secret").await.status(), StatusCode::OK);
    let refresh = app.post("/api/users/refresh").header("Cookie", &user.cookie).send().await.unwrap();
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED, "the refresh token from before is revoked");
    // Once only.
    let again = reset(token, "other-secret").await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(again).await, ["This reset link is not valid any more: ask for a new one"]);
    // A made-up or malformed token, a too-short password: clear 400s.
    let forged = reset("ab".repeat(48), "whatever").await;
    assert_eq!(error_messages(forged).await, ["This reset link is not valid any more: ask for a new one"]);
    let short = reset("x".into(), "no").await;
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn an_expired_link_is_refused_and_requests_are_throttled() {
    let sink = Sink::start().await;
    let app = with_mail(sink.url(), 900.0).await;
    let user = app.signin().await;
    let res = app.post("/api/users/password-reset").json(&json!({"email": user.email})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    eventually(Duration::from_secs(10), "the reset mail", || async { sink.to(&user.email).len() == 1 }).await;
    let body = sink.to(&user.email)[0].body();
    let token = body.split("token=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    // Its 30 minutes passed (the record's expiry moved back).
    let store = app.state.app.store();
    let (key, mut record) = store
        .sweep_all::<ticketing::domain::PasswordReset>(ticketing::storage::keys::PASSWORD_RESET)
        .unwrap()
        .remove(0);
    record.expires_at_ms -= 31 * 60 * 1000;
    let mut batch = ticketing::storage::WriteBatch::default();
    batch.put(key, &record).unwrap();
    store.commit(batch).await.unwrap();
    let res = app
        .post("/api/users/password-reset/confirm")
        .json(&json!({"token": token, "password": "later"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // A flood from one address is refused for a while (429 with Retry-After).
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let res = app.post("/api/users/password-reset").json(&json!({"email": user.email})).send().await.unwrap();
        statuses.push(res.status());
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
}

#[actix_web::test]
async fn with_mail_off_nothing_is_queued() {
    let app = spawn_app().await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let ticket = app.create_ticket(&seller, "quiet", json!(10)).await;
    let order = app.order_ok(&buyer, ticket["id"].as_str().unwrap()).await;
    pay(&app, &buyer, order["id"].as_str().unwrap()).await;
    let queued =
        app.state.app.store().sweep_all::<ticketing::domain::MailEntry>(ticketing::storage::keys::MAIL).unwrap();
    assert!(queued.is_empty());
}

/// Whether any file under `dir` holds `needle`.
fn contains_bytes(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            contains_bytes(&path, needle)
        } else {
            std::fs::read(&path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        }
    })
}

#[actix_web::test]
async fn a_forgotten_password_is_reset_from_the_pages() {
    let sink = Sink::start().await;
    let app = with_mail(sink.url(), 900.0).await;
    let user = app.signin().await;
    let b = crate::browser::Browser::start().await;
    b.goto(&app.url("/auth/signin")).await;
    b.click("#forgot").await;
    b.fill("#email-field", &user.email).await;
    b.click("#submit").await;
    assert!(b.text("#asked").await.starts_with("If an account has this address"));
    eventually(Duration::from_secs(10), "the reset mail", || async { sink.to(&user.email).len() == 1 }).await;
    let body = sink.to(&user.email)[0].body();
    let link = body.lines().find(|l| l.contains("/auth/reset?token=")).unwrap().trim().to_string();
    let path = link.trim_start_matches("https://tickets.example");
    b.goto(&app.url(path)).await;
    b.fill("#password-field", "fresh-pw").await;
    b.click("#submit").await;
    b.wait_for_path(|p| p == "/auth/signin", "the sign-in page").await;
    assert_eq!(b.text("#notice").await, "Your password is changed. Sign in with it.");
    b.fill("#email-field", &user.email).await;
    b.fill("#password-field", "fresh-pw").await;
    b.click("#submit").await;
    b.find("#signout").await;
    b.close().await;
}

#[actix_web::test]
async fn a_mail_the_server_refuses_for_good_is_dropped_and_holds_no_other_back() {
    let sink = Sink::start().await;
    let app = with_mail(sink.url(), 900.0).await;
    // An address the server refuses, asking for a reset link first: its mail is in the queue
    // before everyone else's.
    let email = format!("reject-{}@test.com", uuid::Uuid::new_v4().simple());
    assert_eq!(app.signup_as(&email, "password").await.status(), StatusCode::CREATED);
    let res = app.post("/api/users/password-reset").json(&json!({ "email": email })).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let ticket = app.create_ticket(&seller, "after the refused one", json!(10)).await;
    let order = app.order_ok(&buyer, ticket["id"].as_str().unwrap()).await;
    pay(&app, &buyer, order["id"].as_str().unwrap()).await;
    eventually(Duration::from_secs(10), "the others' mail", || async {
        sink.to(&buyer.email).len() == 1 && sink.to(&seller.email).len() == 1
    })
    .await;
    // Its slot's pass may drop it just after the sink has the others'.
    eventually(Duration::from_secs(10), "the refused mail dropped and counted once", || async {
        let metrics = app.get("/metrics").send().await.unwrap().text().await.unwrap();
        metrics.contains("ticketing_mail_total{outcome=\"dropped\"} 1")
    })
    .await;
}
