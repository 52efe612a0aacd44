//! Bounded work: a full actor mailbox or a node at its in-flight bound answers 503 with
//! `Retry-After` at once, counts it, queues nothing, and keeps memory flat.

use crate::helpers::spawn_app_with;
use crate::process::{account, create_ticket, rss_kib, start_node};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

fn shed(metrics: &str, bound: &str) -> u64 {
    let name = format!("ticketing_requests_shed_total{{bound=\"{bound}\"}}");
    metrics.lines().find_map(|l| l.strip_prefix(&name)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Sends `n` requests at once; the statuses and whether every 503 carried Retry-After and the
/// JSON error shape.
async fn burst(n: usize, send: impl Fn(usize) -> reqwest::RequestBuilder) -> (Vec<StatusCode>, bool) {
    let answers = futures::future::join_all((0..n).map(|i| {
        let request = send(i);
        async move {
            let res = request.send().await.expect("answered, not timed out");
            let status = res.status();
            let retry_after = res.headers().contains_key("retry-after");
            let body: Value = res.json().await.unwrap_or(Value::Null);
            let shaped = body["errors"][0]["message"].is_string();
            (status, status != StatusCode::SERVICE_UNAVAILABLE || (retry_after && shaped))
        }
    }))
    .await;
    let well_formed = answers.iter().all(|(_, ok)| *ok);
    (answers.into_iter().map(|(s, _)| s).collect(), well_formed)
}

#[actix_web::test]
async fn a_full_mailbox_answers_503_with_retry_after_and_applies_nothing_it_refused() {
    let app = spawn_app_with(|s| s.actors.mailbox_limit = 2).await;
    let seller = app.signin().await;
    let ticket = app.create_ticket(&seller, "hot seat", json!(10)).await;
    let id = ticket["id"].as_str().unwrap().to_string();
    let (statuses, well_formed) = burst(150, |i| {
        app.put(&format!("/api/tickets/{id}"))
            .header("Cookie", &seller.cookie)
            .json(&json!({"title": "hot seat", "price": 10 + i}))
    })
    .await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count() as u64;
    let refused = statuses.iter().filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE).count() as u64;
    assert_eq!(ok + refused, 150, "only 200 or 503: {statuses:?}");
    assert!(refused > 0, "a mailbox bound of 2 refuses some of 150 simultaneous updates");
    assert!(well_formed, "every 503 carries Retry-After and the JSON error shape");
    let (_, ticket) = app.get_json(&format!("/api/tickets/{id}"), None).await;
    assert_eq!(ticket["version"], json!(ok), "each 200 is one version; a refused update changed nothing");
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(shed(&metrics, "mailbox"), refused, "every refusal is counted");
}

#[actix_web::test]
async fn a_node_at_its_in_flight_bound_answers_503_at_once_but_still_answers_probes() {
    let app = spawn_app_with(|s| s.http.max_in_flight = 3).await;
    let seller = app.signin().await;
    let ticket = app.create_ticket(&seller, "seat", json!(10)).await;
    let id = ticket["id"].as_str().unwrap().to_string();
    let (statuses, well_formed) = burst(200, |_| app.get(&format!("/api/tickets/{id}"))).await;
    let refused = statuses.iter().filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE).count() as u64;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::SERVICE_UNAVAILABLE), "{statuses:?}");
    assert!(refused > 0, "200 simultaneous reads exceed an in-flight bound of 3");
    assert!(well_formed, "every 503 carries Retry-After and the JSON error shape");
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(shed(&metrics, "node"), refused);
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
}

#[actix_web::test]
async fn overload_keeps_memory_flat_and_never_times_out() {
    let data = tempfile::tempdir().unwrap();
    let node = start_node(data.path(), &[("TICKETING_ACTORS__MAILBOX_LIMIT", "4")]);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let res = account(&http, &node.address, "signup", "overload@test.com").await;
    let cookie = crate::helpers::session_cookie(&res).unwrap();
    let ticket = create_ticket(&http, &node.address, &cookie, "hot", 5).await;
    let url = format!("{}/api/tickets/{}", node.address, ticket["id"].as_str().unwrap());
    let mut rss = Vec::new();
    let mut refused = 0;
    for round in 0..5 {
        let (statuses, well_formed) = burst(300, |i| {
            http.put(&url).header("Cookie", &cookie).json(&json!({"title": "hot", "price": 1 + (i + round) % 50}))
        })
        .await;
        assert!(well_formed);
        assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::SERVICE_UNAVAILABLE), "{statuses:?}");
        refused += statuses.iter().filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE).count();
        rss.push(rss_kib(node.child.id()));
    }
    assert!(refused > 0, "a mailbox bound of 4 refuses some of 300 simultaneous updates");
    let growth = rss[4].saturating_sub(rss[0]);
    assert!(growth < 16 * 1024, "RSS grew {growth} KiB over four more overloaded rounds: {rss:?}");
}
