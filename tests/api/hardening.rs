//! A server that defends itself: `HEAD` on every `GET` route, slow requests cut off with 408,
//! the HTTP parser's rejections summarised instead of one ERROR line each, refunds with the
//! offline gateway, and sign-in throttling.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn head_on_a_get_route_answers_like_get_without_a_body() {
    let app = spawn_app().await;
    let seller = app.signin().await;
    let ticket = app.create_ticket(&seller, "Headed", serde_json::json!(3)).await;
    let id = ticket["id"].as_str().unwrap();
    for path in ["/healthz".to_string(), "/api/tickets".into(), format!("/api/tickets/{id}"), "/".into()] {
        let get = app.get(&path).send().await.unwrap();
        let (status, kind, length) =
            (get.status(), get.headers()["content-type"].clone(), get.bytes().await.unwrap().len());
        let head = app.client.head(app.url(&path)).send().await.unwrap();
        assert_eq!(head.status(), status, "HEAD {path}");
        assert_eq!(head.headers()["content-type"], kind, "HEAD {path}");
        assert_eq!(head.headers()["content-length"], length.to_string().as_str(), "HEAD {path} tells GET's length");
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path} has no body");
    }
    let missing = app.client.head(app.url("/api/tickets/no-such-ticket")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// Opens a connection, sends `head`, then trickles `body` a byte every `pause`; returns what
/// the server answered and how long it took.
fn trickle(address: &str, head: &str, body: &[u8], pause: Duration) -> (String, Duration) {
    let mut stream = TcpStream::connect(address.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(10) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if !answer.is_empty() && answer.windows(4).any(|w| w == b"\r\n\r\n") && sent >= body.len() {
            break;
        }
        if sent < body.len() && started.elapsed() >= pause * (sent as u32 + 1) {
            if stream.write_all(&body[sent..sent + 1]).is_err() {
                continue;
            }
            sent += 1;
        }
    }
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

#[actix_web::test]
async fn a_body_trickled_a_byte_at_a_time_is_cut_off_with_408_in_the_apis_error_shape() {
    let app = spawn_app_with(|s| s.http.request_timeout_seconds = 1.0).await;
    let body = br#"{"email":"slow@test.com","password":"password"}"#;
    let head = format!(
        "POST /api/users/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let address = app.address.clone();
    let (answer, took) =
        tokio::task::spawn_blocking(move || trickle(&address, &head, body, Duration::from_millis(300))).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert!(answer.contains(r#"{"errors":[{"message":"The request took too long to arrive"}]}"#), "{answer}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    // A body that arrives in time is served as before.
    let res = app.signup_as("quick@test.com", "password").await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[actix_web::test]
async fn a_form_trickled_by_a_browser_is_cut_off_with_408_as_a_page() {
    let app = spawn_app_with(|s| s.http.request_timeout_seconds = 1.0).await;
    let body = b"csrf=x&email=slow%40test.com&password=password";
    let head = format!(
        "POST /auth/signin HTTP/1.1\r\nHost: x\r\nAccept: {BROWSER_ACCEPT}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let address = app.address.clone();
    let (answer, took) =
        tokio::task::spawn_blocking(move || trickle(&address, &head, body, Duration::from_millis(300))).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("content-type: text/html"), "{answer}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
}

#[actix_web::test]
async fn headers_trickled_a_byte_at_a_time_are_cut_off_too() {
    let app = spawn_app_with(|s| s.http.request_timeout_seconds = 1.0).await;
    let address = app.address.clone();
    let (answer, took) = tokio::task::spawn_blocking(move || {
        let partial = "POST /api/users/signin HTTP/1.1\r\nHost: x\r\n";
        trickle(&address, partial, b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Duration::from_millis(300))
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
}

#[actix_web::test]
async fn requests_the_http_parser_rejects_are_summarised_not_logged_one_error_each() {
    use std::io::BufRead;
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .arg("serve")
        .env("TICKETING_HTTP__ADDR", "127.0.0.1:0")
        .env("TICKETING_STORAGE__PATH", data.path())
        .env("TICKETING_LOG__LEVEL", "info")
        .env("TICKETING_LOG__FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = std::io::BufReader::new(stdout).lines().find_map(|l| l.ok().filter(|l| l.starts_with("listening on ")));
    let address = line.unwrap().trim_start_matches("listening on http://").trim().to_string();
    let hostile: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
    ];
    for i in 0..100 {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        stream.write_all(hostile[i % hostile.len()]).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "refused: {answer:?}");
    }
    // The summary comes within one report period (5 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<Value> = stderr.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(errors.is_empty(), "no ERROR line per rejected request: {errors:?}");
    let summaries: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "requests rejected by the HTTP parser since the last report")
        .collect();
    assert!(!summaries.is_empty() && summaries.len() <= 3, "one summary per period: {summaries:?}");
    assert!(summaries.iter().all(|l| l["level"] == "WARN"));
    let counted: u64 = summaries.iter().filter_map(|l| l["fields"]["count"].as_u64()).sum();
    assert_eq!(counted, 100, "every rejection counted: {summaries:?}");
}

const WEBHOOK_SECRET: &str = "whsec_hardening";

/// A signed `charge.succeeded` for `order` with `charge`, as the provider would send it.
async fn charge_webhook(app: &TestApp, event: &str, order: &str, charge: &str) -> reqwest::Response {
    charge_webhook_signed(app, event, order, charge, WEBHOOK_SECRET).await
}

/// A cancelled order: (buyer, order id).
async fn cancelled_order(app: &TestApp) -> (Session, String) {
    let seller = app.signin().await;
    let ticket = app.create_ticket(&seller, "Cancelled", serde_json::json!(20)).await;
    let buyer = app.signin().await;
    let order = app.order_ok(&buyer, ticket["id"].as_str().unwrap()).await["id"].as_str().unwrap().to_string();
    let res = app.delete(&format!("/api/orders/{order}")).header("Cookie", &buyer.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    (buyer, order)
}

#[actix_web::test]
async fn the_offline_gateway_refunds_a_charge_reported_for_a_cancelled_order_once() {
    use ticketing::payments::offline::OfflineGateway;
    let app = spawn_app_with(|s| s.payments.webhook_secret = ticketing::settings::Secret::new(WEBHOOK_SECRET)).await;
    let (buyer, order) = cancelled_order(&app).await;
    let res = charge_webhook(&app, "evt_late_1", &order, "ch_reported_late").await;
    assert_eq!(res.status(), StatusCode::OK, "handled, not 503 forever");
    // Another event about the same charge (the provider sends several) refunds nothing more.
    assert_eq!(charge_webhook(&app, "evt_late_2", &order, "ch_reported_late").await.status(), StatusCode::OK);
    let charges = OfflineGateway::charges(app.state.app.store()).unwrap();
    let refunded: Vec<_> = charges.iter().filter(|c| c.charge_id.as_deref() == Some("ch_reported_late")).collect();
    assert_eq!(refunded.len(), 1, "{charges:?}");
    assert!(refunded[0].refunded);
    let (_, shown) = app.get_json(&format!("/api/orders/{order}"), Some(&buyer)).await;
    assert_eq!(shown["status"], "cancelled");
}

#[actix_web::test]
async fn a_charge_stripe_will_not_refund_is_recorded_and_the_webhook_is_answered_not_retried_forever() {
    let stripe = crate::stripe_server::StripeServer::start().await;
    let base = stripe.base_url.clone();
    let app = spawn_app_with(move |s| {
        s.payments.provider = ticketing::settings::PaymentProvider::Stripe;
        s.payments.stripe_api_base = base;
        s.payments.stripe_secret_key = ticketing::settings::Secret::new("sk_test_hardening");
        s.payments.webhook_secret = ticketing::settings::Secret::new(WEBHOOK_SECRET);
    })
    .await;
    let (_, order) = cancelled_order(&app).await;
    let res = charge_webhook(&app, "evt_unknown_1", &order, "ch_stripe_never_made").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(stripe.requests_to("/v1/refunds").len(), 1, "asked once");
    assert_eq!(charge_webhook(&app, "evt_unknown_2", &order, "ch_stripe_never_made").await.status(), StatusCode::OK);
    assert_eq!(stripe.requests_to("/v1/refunds").len(), 1, "and not again: the refusal is recorded");
}

async fn sign_in_from(app: &TestApp, address: Option<&str>, email: &str, password: &str) -> reqwest::Response {
    let mut req = app.post("/api/users/signin").json(&serde_json::json!({"email": email, "password": password}));
    if let Some(address) = address {
        req = req.header("X-Forwarded-For", address);
    }
    req.send().await.unwrap()
}

#[actix_web::test]
async fn failed_sign_ins_are_throttled_per_account_and_address_with_429_and_retry_after() {
    let app = spawn_app_with(|s| {
        s.throttle.account_failures = 3;
        s.throttle.account_refill_seconds = 60.0;
        s.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    app.signup_as("victim@test.com", "right-pw").await;
    let attacker = Some("203.0.113.7");
    for _ in 0..3 {
        let res = sign_in_from(&app, attacker, "victim@test.com", "wrong-pw").await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
    let res = sign_in_from(&app, attacker, "victim@test.com", "wrong-pw").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "the failure that empties the bucket is still checked");
    for password in ["wrong-pw", "right-pw"] {
        let res = sign_in_from(&app, attacker, "victim@test.com", password).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "refused without checking the password");
        let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "Retry-After {wait}");
        assert_eq!(error_messages(res).await, ["Too many failed sign-ins; try again later"]);
    }
    let owner = sign_in_from(&app, Some("198.51.100.20"), "victim@test.com", "right-pw").await;
    assert_eq!(owner.status(), StatusCode::OK, "the owner elsewhere is not refused");
    let other_account = sign_in_from(&app, attacker, "someone@test.com", "whatever").await;
    assert_eq!(other_account.status(), StatusCode::BAD_REQUEST, "other accounts from that address are not refused yet");
}

#[actix_web::test]
async fn a_thousand_failures_from_one_address_never_refuse_the_real_user_from_another() {
    let app = spawn_app_with(|s| s.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    app.signup_as("target@test.com", "right-pw").await;
    let started = Instant::now();
    let mut refused = 0;
    for i in 0..1000 {
        let account = if i % 2 == 0 { "target@test.com".to_string() } else { format!("spray-{i}@test.com") };
        let res = sign_in_from(&app, Some("192.0.2.66"), &account, "wrong-pw").await;
        match res.status() {
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            StatusCode::BAD_REQUEST => {}
            other => panic!("attempt {i}: {other}"),
        }
    }
    assert!(refused >= 950, "the attacking address is throttled: {refused} of 1000 refused");
    let res = sign_in_from(&app, Some("192.0.2.200"), "target@test.com", "right-pw").await;
    assert_eq!(res.status(), StatusCode::OK, "the real user signs in from another address");
    eprintln!("1,000 failed sign-ins answered in {:?}", started.elapsed());
}

#[actix_web::test]
async fn x_forwarded_for_from_an_untrusted_peer_does_not_pick_the_address_failures_count_against() {
    let app = spawn_app_with(|s| {
        s.throttle.address_failures = 3;
        s.throttle.address_refill_seconds = 60.0;
    })
    .await;
    for i in 0..4 {
        let forged = format!("10.9.9.{i}");
        let res = sign_in_from(&app, Some(&forged), &format!("nobody-{i}@test.com"), "wrong-pw").await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
    let res = sign_in_from(&app, Some("10.9.9.99"), "nobody@test.com", "wrong-pw").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "all counted against the real peer, 127.0.0.1");
}

#[actix_web::test]
async fn correct_sign_ins_are_never_throttled_by_the_defaults() {
    let app = spawn_app().await;
    app.signup_as("busy@test.com", "right-pw").await;
    for _ in 0..60 {
        assert_eq!(sign_in_from(&app, None, "busy@test.com", "right-pw").await.status(), StatusCode::OK);
    }
}

#[actix_web::test]
async fn a_flood_of_wrong_passwords_sent_all_at_once_is_held_to_the_limit() {
    let app = spawn_app_with(|s| {
        s.throttle.account_failures = 3;
        s.throttle.account_refill_seconds = 60.0;
    })
    .await;
    app.signup_as("flooded@test.com", "right-pw").await;
    let attempts = (0..100).map(|_| sign_in_from(&app, None, "flooded@test.com", "wrong-pw"));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts).await.iter().map(|r| r.status()).collect();
    let checked = statuses.iter().filter(|s| **s == StatusCode::BAD_REQUEST).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(checked + refused, 100, "{statuses:?}");
    // The burst, plus at most the attempts already hashing when it tripped (2 per core).
    let permits = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    assert!(checked <= 3 + permits, "{checked} passwords checked of 100 sent at once");
}

#[actix_web::test]
async fn forwarded_hops_are_read_from_the_right_with_ports_and_names_not_skipped() {
    let app = spawn_app_with(|s| {
        s.throttle.address_failures = 3;
        s.throttle.address_refill_seconds = 60.0;
        s.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    // The proxy wrote a name, not an address: the entries left of it are the client's own
    // words, so rotating them changes nothing.
    for i in 0..4 {
        let forwarded = format!("10.1.1.{i}, unknown");
        let res = sign_in_from(&app, Some(&forwarded), &format!("x{i}@test.com"), "wrong-pw").await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
    let res = sign_in_from(&app, Some("10.1.1.99, unknown"), "y@test.com", "wrong-pw").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // `address:port` is the address; IPv6 clients are counted by their /64.
    for i in 0..4 {
        let res =
            sign_in_from(&app, Some(&format!("[2001:db8:1:2::{i}]:443")), &format!("v{i}@test.com"), "wrong-pw").await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
    let res = sign_in_from(&app, Some("2001:db8:1:2::ffff"), "w@test.com", "wrong-pw").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "the same /64");
    let res = sign_in_from(&app, Some("203.0.113.5:5555"), "z@test.com", "wrong-pw").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "another client is not refused");
}
