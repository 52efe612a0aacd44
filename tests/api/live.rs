//! `GET /api/tickets/stream`: every ticket change as a buyer sees it, once, in order;
//! `Last-Event-ID` resumes without a gap or resets, a page's `since` resumes where it can;
//! streams are bounded per node, outside `http.max_in_flight`; a client that never reads is
//! closed, not buffered for.

use crate::helpers::*;
use crate::sse::Stream;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[actix_web::test]
async fn every_ticket_change_is_told_once_in_order_as_a_buyer_sees_it() {
    let app = spawn_app().await;
    let mut stream = Stream::open(&app.address, None).await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let t = app.create_ticket(&seller, "gig", json!(20)).await;
    let id = t["id"].as_str().unwrap();
    let res = app
        .put(&format!("/api/tickets/{id}"))
        .header("Cookie", &seller.cookie)
        .json(&json!({"title": "gig!", "price": 25}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let order = app.order_ok(&buyer, id).await;
    let res = app.delete(&format!("/api/orders/{}", order["id"].as_str().unwrap())).header("Cookie", &buyer.cookie);
    assert_eq!(res.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    // Released once the cancellation reached the ticket.
    let mut seen: Vec<(String, String)> = Vec::new();
    for _ in 0..4 {
        let e = stream.next().await;
        seen.push((e.event, e.data["id"].as_str().unwrap().to_string()));
    }
    let order = app.order_ok(&buyer, id).await;
    app.pay_ok(&buyer, order["id"].as_str().unwrap()).await;
    let other = app.create_ticket(&seller, "other", json!(5)).await;
    let other_id = other["id"].as_str().unwrap();
    let res = app.delete(&format!("/api/tickets/{other_id}")).header("Cookie", &seller.cookie);
    assert!(res.send().await.unwrap().status().is_success());
    for _ in 0..4 {
        let e = stream.next().await;
        if e.event == "sold" {
            assert_eq!(e.data["orderId"], order["id"], "the ticket as sold, with its order");
        }
        seen.push((e.event, e.data["id"].as_str().unwrap().to_string()));
    }
    let expect: Vec<(String, String)> = [
        ("listed", id),
        ("updated", id),
        ("reserved", id),
        ("released", id),
        ("reserved", id),
        ("sold", id),
        ("listed", other_id),
        ("withdrawn", other_id),
    ]
    .iter()
    .map(|(e, i)| (e.to_string(), i.to_string()))
    .collect();
    assert_eq!(seen, expect);
    // Nothing more: no change is told twice.
    assert!(stream.next_within(Duration::from_millis(500)).await.is_none());
}

#[actix_web::test]
async fn last_event_id_resumes_without_a_gap_and_an_id_it_cannot_resume_resets() {
    let app = spawn_app().await;
    let seller = app.signin().await;
    let mut stream = Stream::open(&app.address, None).await;
    for n in 0..3 {
        app.create_ticket(&seller, &format!("t{n}"), json!(5)).await;
    }
    let mut last = String::new();
    for _ in 0..3 {
        last = stream.next().await.id;
    }
    drop(stream);
    let mut missed = Vec::new();
    for n in 3..5 {
        missed.push(app.create_ticket(&seller, &format!("t{n}"), json!(5)).await["id"].clone());
    }
    app.published().await;
    let mut resumed = Stream::open(&app.address, Some(&last)).await;
    for id in &missed {
        let e = resumed.next().await;
        assert_eq!((e.event.as_str(), &e.data["id"]), ("listed", id));
    }
    // Then what comes next.
    let later = app.create_ticket(&seller, "t5", json!(5)).await;
    assert_eq!(resumed.next().await.data["id"], later["id"]);
    // Another node's id, an earlier start's, garbage: a reset, then the stream goes on.
    for id in ["0-1", "deadbeef-3", "nonsense"] {
        let mut reset = Stream::open(&app.address, Some(id)).await;
        assert_eq!(reset.next().await.event, "reset", "{id}");
    }
}

/// The value of the first `data-live-since` attribute of a page.
fn since_of(page: &str) -> String {
    let at = page.find("data-live-since=\"").unwrap_or_else(|| panic!("no stream position in {page}"));
    let rest = &page[at + "data-live-since=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[actix_web::test]
async fn a_page_names_where_it_was_read_and_its_stream_starts_there_on_the_same_node() {
    let app = spawn_app().await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let mut watcher = Stream::open(&app.address, None).await;
    let t = app.create_ticket(&seller, "between", json!(5)).await;
    let id = t["id"].as_str().unwrap();
    assert_eq!(watcher.next().await.event, "listed");
    let read = |path: String, session: Option<&Session>| {
        let mut req = app.browse(&path);
        if let Some(session) = session {
            req = req.header("Cookie", &session.cookie);
        }
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let landing = since_of(&read("/".into(), None).await);
    let ticket_page = since_of(&read(format!("/tickets/{id}"), None).await);
    assert_eq!(landing, ticket_page, "no change between the two pages");
    // Reserved after the pages were read, before their scripts' streams open.
    let order = app.order_ok(&buyer, id).await;
    let reserved = watcher.next().await;
    assert_eq!((reserved.event.as_str(), reserved.data["id"].as_str()), ("reserved", Some(id)));
    let path = format!("/api/tickets/stream?since={landing}");
    let mut from_page = Stream::open_at(&app.address, &path, None).await;
    let first = from_page.next().await;
    assert_eq!((first.event.as_str(), &first.id), ("reserved", &reserved.id), "the change between page and stream");
    // A browser reconnecting sends the last id it got, which wins over the page's position.
    let mut reconnected = Stream::open_at(&app.address, &path, Some(&reserved.id)).await;
    assert!(reconnected.next_within(Duration::from_millis(300)).await.is_none(), "nothing told twice");
    // The order's page names its position too, after the reservation.
    let order_page = read(format!("/orders/{}", order["id"].as_str().unwrap()), Some(&buyer)).await;
    assert_eq!(since_of(&order_page), reserved.id);
    // A page read on another node (behind a load balancer) or before a restart: no reset,
    // which would only have the page read there again; the stream starts with the next change.
    let mut elsewhere = Stream::open_at(&app.address, "/api/tickets/stream?since=0-1", None).await;
    let next = app.create_ticket(&seller, "next", json!(5)).await;
    let e = elsewhere.next().await;
    assert_eq!((e.event.as_str(), &e.data["id"]), ("listed", &next["id"]));
    let res = app.get("/api/tickets/stream?from=1").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert!(body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("from")), "{body}");
}

#[actix_web::test]
async fn a_stream_that_heard_no_change_still_reconnects_from_where_it_was() {
    let app = spawn_app().await;
    let seller = app.signin().await;
    app.create_ticket(&seller, "before", json!(5)).await;
    app.published().await;
    // A quiet page's stream: no change comes, but it is told where it stands.
    let mut quiet = Stream::open(&app.address, None).await;
    assert!(quiet.next_within(Duration::from_millis(300)).await.is_none());
    let stood = quiet.last_id.clone();
    assert!(!stood.is_empty(), "an id-only frame names where the stream stands");
    drop(quiet);
    // Its connection drops; a change comes meanwhile; the browser reconnects with that id.
    let missed = app.create_ticket(&seller, "while away", json!(5)).await;
    app.published().await;
    let mut again = Stream::open(&app.address, Some(&stood)).await;
    let e = again.next().await;
    assert_eq!((e.event.as_str(), &e.data["id"]), ("listed", &missed["id"]), "the change it missed");
}

#[actix_web::test]
async fn streams_are_bounded_per_node_outside_max_in_flight_and_send_heartbeats() {
    let app = spawn_app_with(|s| {
        s.live.max_streams = 1;
        s.live.heartbeat_seconds = 0.2;
        s.http.max_in_flight = 1;
    })
    .await;
    let mut open = Stream::open(&app.address, None).await;
    let res = app.get("/api/tickets/stream").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    // The open stream holds no place among the requests in flight.
    assert_eq!(app.get("/api/tickets").send().await.unwrap().status(), StatusCode::OK);
    // An idle stream carries heartbeats.
    assert!(open.next_within(Duration::from_millis(900)).await.is_none());
    assert!(open.comments >= 2, "{} heartbeats", open.comments);
    // A closed stream frees its place.
    drop(open);
    eventually(Duration::from_secs(5), "the stream's place is free", || async {
        app.get("/api/tickets/stream").send().await.unwrap().status() == StatusCode::OK
    })
    .await;
}

/// A number in the node's `/metrics`.
async fn metric(base: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(series)).and_then(|v| v.trim().parse().ok()).unwrap_or(-1.0)
}

/// `rounds` edits of each of `tickets`, 16 at a time: one `updated` change each.
async fn edit(base: &str, token: &str, tickets: &[String], rounds: usize) {
    let http = reqwest::Client::new();
    let mut work = futures::stream::iter((0..rounds).flat_map(|r| tickets.iter().map(move |t| (r, t.clone()))))
        .map(|(r, t)| {
            let req = http.put(format!("{base}/api/tickets/{t}")).bearer_auth(token);
            async move {
                let res = req.json(&json!({"title": "edited", "price": 10 + r % 90})).send().await.unwrap();
                assert_eq!(res.status(), StatusCode::OK);
            }
        })
        .buffer_unordered(16);
    while work.next().await.is_some() {}
}

#[actix_web::test]
async fn a_client_that_never_reads_is_dropped_and_costs_no_memory() {
    // A node of its own: its RSS is only its own (this binary runs many tests at once).
    let dir = tempfile::tempdir().unwrap();
    let node = crate::process::start_node(dir.path(), &[("TICKETING_STORAGE__CACHE_MB", "8")]);
    let base = node.address.clone();
    let seller = uuid::Uuid::now_v7().to_string();
    let token = crate::process::bearer_token(&seller, "seller@example.com");
    let http = reqwest::Client::new();
    let mut tickets = Vec::new();
    for n in 0..16 {
        let res = http
            .post(format!("{base}/api/tickets"))
            .bearer_auth(&token)
            .json(&json!({"title": format!("t{n}"), "price": 10}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        tickets.push(res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    // Warmed up by as many edits as the test makes, so what grows after is the stream's.
    edit(&base, &token, &tickets, 500).await;
    let before = crate::process::rss_kib(node.child.id());

    // A connection with a small receive window that asks for the stream and never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket.connect(base.trim_start_matches("http://").parse().unwrap()).await.unwrap();
    use tokio::io::AsyncWriteExt;
    stuck.write_all(b"GET /api/tickets/stream HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    eventually(Duration::from_secs(5), "the stream is open", || async {
        metric(&base, "ticketing_live_streams ").await == 1.0
    })
    .await;
    let started = Instant::now();
    let mut rounds = 0;
    while metric(&base, "ticketing_live_streams_overflowed_total ").await < 1.0 {
        assert!(started.elapsed() < Duration::from_secs(90), "not dropped after {} changes", rounds * 16);
        edit(&base, &token, &tickets, 50).await;
        rounds += 50;
    }
    let grown_mib = crate::process::rss_kib(node.child.id()).saturating_sub(before) / 1024;
    assert!(grown_mib < 20, "RSS grew {grown_mib} MiB over {} changes", rounds * 16);
    eprintln!("a client that never reads: dropped after {} changes; RSS grew {grown_mib} MiB", rounds * 16);
    // Its place among live.max_streams is held until the client goes away.
    assert_eq!(metric(&base, "ticketing_live_streams ").await, 1.0);
    drop(stuck);
    eventually(Duration::from_secs(10), "the place given back once the client is gone", || async {
        metric(&base, "ticketing_live_streams ").await == 0.0
    })
    .await;
}
