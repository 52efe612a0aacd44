//! The cost of durability, counted: one reservation is one disk flush. Measured on the real
//! binary through `/metrics` (the group-commit flush histogram's `_count`), between two quiet
//! moments, so nothing but the reservations themselves is counted: not the ticket actor and the
//! order actor flushing separately, and not the outbox publisher flushing after them.

use crate::helpers::session_cookie;
use crate::process::{account, start_node};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const RESERVATIONS: u64 = 50;
const FLUSHES: &str = "ticketing_storage_flush_duration_seconds_count";
const BACKLOG: &str = "ticketing_outbox_backlog";
/// The counter must stand still this long for the node to count as quiet.
const QUIET_FOR: Duration = Duration::from_millis(300);
const QUIET_WITHIN: Duration = Duration::from_secs(3);

/// The value of an unlabelled sample in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

struct Scrape {
    flushes: u64,
    backlog: u64,
}

async fn scrape(http: &Client, base: &str) -> Scrape {
    let text = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let flushes = metric(&text, FLUSHES).unwrap_or_else(|| panic!("/metrics has no {FLUSHES}:\n{text}"));
    Scrape { flushes: flushes as u64, backlog: metric(&text, BACKLOG).unwrap_or(0.0) as u64 }
}

/// Where the flush counter settled, or, if it never stood still, where it was when we gave up
/// and how fast it moved with no request in flight.
struct Settled {
    flushes: u64,
    quiet: bool,
    idle_per_second: f64,
}

/// Waits until the outbox is empty and the flush counter has not moved for `QUIET_FOR` (at most
/// `QUIET_WITHIN`).
async fn settle(http: &Client, base: &str) -> Settled {
    let began = Instant::now();
    let first = scrape(http, base).await.flushes;
    let (mut last, mut still_since) = (first, Instant::now());
    loop {
        let now = scrape(http, base).await;
        if now.flushes != last {
            (last, still_since) = (now.flushes, Instant::now());
        } else if now.backlog == 0 && still_since.elapsed() >= QUIET_FOR {
            return Settled { flushes: last, quiet: true, idle_per_second: 0.0 };
        }
        if began.elapsed() > QUIET_WITHIN {
            let idle_per_second = (now.flushes - first) as f64 / began.elapsed().as_secs_f64();
            return Settled { flushes: now.flushes, quiet: false, idle_per_second };
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn fifty_sequential_reservations_cost_exactly_fifty_flushes() {
    let data = tempfile::tempdir().unwrap();
    let mut node = start_node(data.path(), &[]);
    let base = node.address.clone();
    let http = Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let mut cookies = Vec::new();
    for who in ["seller", "buyer"] {
        let res = account(&http, &base, "signup", &format!("{who}@flushes.test")).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        cookies.push(session_cookie(&res).expect("signed in"));
    }
    let (seller, buyer) = (&cookies[0], &cookies[1]);
    let mut tickets = Vec::new();
    for i in 0..RESERVATIONS {
        let res = http
            .post(format!("{base}/api/tickets"))
            .header("Cookie", seller)
            .json(&json!({"title": format!("seat {i}"), "price": 10}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        tickets.push(res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }

    let before = settle(&http, &base).await;
    let started = Instant::now();
    for ticket in &tickets {
        let res = http
            .post(format!("{base}/api/orders"))
            .header("Cookie", buyer)
            .json(&json!({"ticketId": ticket}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED, "reserving ticket {ticket}");
    }
    let took = started.elapsed();
    let right_after = scrape(&http, &base).await.flushes;
    let after = settle(&http, &base).await;
    assert_eq!(node.terminate().code(), Some(0));

    let flushes = after.flushes - before.flushes;
    eprintln!(
        "{RESERVATIONS} sequential reservations took {took:?}; flush counter {} → {right_after} right after → {} \
         settled (quiet before: {}, after: {})",
        before.flushes, after.flushes, before.quiet, after.quiet
    );
    if !(before.quiet && after.quiet) {
        let idle = before.idle_per_second.max(after.idle_per_second);
        let during = right_after - before.flushes;
        panic!(
            "the node never went quiet ({QUIET_FOR:?} without a flush, within {QUIET_WITHIN:?}): with no request in \
             flight it flushed {idle:.1} times a second, so the flushes of {RESERVATIONS} reservations cannot be \
             isolated; the counter moved by {during} while they ran ({took:?}, of which about {:.0} idle), i.e. \
             about {:.1} flushes per reservation",
            idle * took.as_secs_f64(),
            (during as f64 - idle * took.as_secs_f64()) / RESERVATIONS as f64
        );
    }
    assert_eq!(
        flushes, RESERVATIONS,
        "{RESERVATIONS} sequential reservations cost {flushes} flushes ({FLUSHES} {} → {}), not one each",
        before.flushes, after.flushes
    );
}
