//! A node paused (SIGSTOP) for longer than its ask timeout while buyers reserve and cancel, as
//! a slow fsync or a VM pause would: requests in flight when it resumes find their asks timed
//! out, some before their command started, some after. The answers must be true: a 503 only for a command that did not run (read back:
//! nothing changed), a 504 for one that may have, and a retry with the same `Idempotency-Key`
//! gets the original answer or makes the change exactly once.

use crate::process::{bearer_token, signal, start_node};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Requests sent at once before a pause.
const BURST: usize = 40;
/// The ask timeout of the node, and how long it is paused: well past it.
const ASK_TIMEOUT_MS: &str = "800";
const PAUSE: Duration = Duration::from_millis(1200);
const PAUSES: usize = 10;

fn mint(email: &str) -> String {
    bearer_token(&uuid::Uuid::now_v7().to_string(), email)
}

/// One request as a client saw it.
#[derive(Clone, Debug)]
struct Sent {
    buyer: String,
    key: String,
    ticket: String,
    order: Option<String>,
    status: StatusCode,
    body: Value,
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Runs `one` for every job, a burst of `BURST` at once before each of `PAUSES` pauses: the
/// node is stopped a few milliseconds into the burst, with most of it in flight.
async fn under_pauses<F, Fut>(pid: u32, mut jobs: Vec<Sent>, one: F) -> Vec<Sent>
where
    F: Fn(Sent) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Sent> + Send + 'static,
{
    let mut done = Vec::new();
    let mut pause = 0;
    while !jobs.is_empty() {
        let burst: Vec<Sent> = jobs.drain(..BURST.min(jobs.len())).collect();
        let running: Vec<_> = burst.into_iter().map(|job| tokio::spawn(one.clone()(job))).collect();
        if pause < PAUSES {
            tokio::time::sleep(Duration::from_millis(2 + (pause as u64 % 4))).await;
            signal(pid, libc::SIGSTOP);
            tokio::time::sleep(PAUSE).await;
            signal(pid, libc::SIGCONT);
            pause += 1;
        }
        for r in running {
            done.push(r.await.unwrap());
        }
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_paused_past_its_ask_timeout_answers_truly_and_keyed_retries_change_things_once() {
    let data = tempfile::tempdir().unwrap();
    let mut node = start_node(data.path(), &[("TICKETING_ACTORS__ASK_TIMEOUT_MS", ASK_TIMEOUT_MS)]);
    let pid = node.child.id();
    let base = node.address.clone();
    let http = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let seller = mint("seller@example.com");
    let mut tickets = Vec::new();
    for i in 0..400 {
        let req = http
            .post(format!("{base}/api/tickets"))
            .bearer_auth(&seller)
            .json(&json!({"title": format!("t{i}"), "price": 5}));
        let (status, body) = send(req).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        tickets.push(body["id"].as_str().unwrap().to_string());
    }

    // Reservations, each by a buyer of its own with a key of its own, through the pauses.
    let jobs: Vec<Sent> = tickets
        .iter()
        .enumerate()
        .map(|(i, t)| Sent {
            buyer: mint(&format!("buyer{i}@example.com")),
            key: format!("reserve-{i}"),
            ticket: t.clone(),
            order: None,
            status: StatusCode::OK,
            body: Value::Null,
        })
        .collect();
    let reserve = {
        let (http, base) = (http.clone(), base.clone());
        move |mut job: Sent| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let req = http
                    .post(format!("{base}/api/orders"))
                    .bearer_auth(&job.buyer)
                    .header("Idempotency-Key", &job.key)
                    .json(&json!({"ticketId": job.ticket}));
                let (status, body) = send(req).await;
                job.order = body["id"].as_str().map(str::to_string);
                (job.status, job.body) = (status, body);
                job
            }
        }
    };
    let reserved = under_pauses(pid, jobs, reserve.clone()).await;
    let count = |sent: &[Sent], s: StatusCode| sent.iter().filter(|x| x.status == s).count();
    let (refused, unsure) =
        (count(&reserved, StatusCode::SERVICE_UNAVAILABLE), count(&reserved, StatusCode::GATEWAY_TIMEOUT));
    for s in &reserved {
        assert!(
            [StatusCode::CREATED, StatusCode::SERVICE_UNAVAILABLE, StatusCode::GATEWAY_TIMEOUT].contains(&s.status),
            "{s:?}"
        );
    }
    assert!(refused + unsure > 0, "the pauses timed some asks out (else this test proves nothing)");

    // Read back: a reservation answered 503 made no order; then every buyer not answered 201
    // retries with the same key: 201, with the order its first attempt made if it made one,
    // and never a second order.
    let mut orders: HashMap<String, String> = HashMap::new();
    for s in &reserved {
        let (_, mine) = send(http.get(format!("{base}/api/orders")).bearer_auth(&s.buyer)).await;
        let mine = mine.as_array().unwrap().clone();
        match s.status {
            StatusCode::SERVICE_UNAVAILABLE => assert!(mine.is_empty(), "answered 503 but reserved: {s:?} {mine:?}"),
            StatusCode::CREATED => assert_eq!(mine.len(), 1, "{s:?}"),
            _ => assert!(mine.len() <= 1, "{s:?} {mine:?}"),
        }
        let made = mine.first().map(|o| o["id"].as_str().unwrap().to_string());
        let final_order = if s.status == StatusCode::CREATED {
            s.order.clone().unwrap()
        } else {
            let again = reserve(s.clone()).await;
            assert_eq!(again.status, StatusCode::CREATED, "the keyed retry: {again:?}");
            if let Some(made) = &made {
                assert_eq!(again.order.as_ref(), Some(made), "the retry answers the order the first attempt made");
            }
            again.order.unwrap()
        };
        let (_, mine) = send(http.get(format!("{base}/api/orders")).bearer_auth(&s.buyer)).await;
        assert_eq!(mine.as_array().unwrap().len(), 1, "exactly one order: {s:?} {mine}");
        let (_, ticket) = send(http.get(format!("{base}/api/tickets/{}", s.ticket))).await;
        assert_eq!(ticket["orderId"].as_str(), Some(final_order.as_str()), "the ticket is held by it");
        orders.insert(s.buyer.clone(), final_order);
    }

    // Cancels through the pauses: 503 left the order as it was; any retry is 204 and the
    // order cancelled once.
    let jobs: Vec<Sent> = reserved
        .iter()
        .map(|s| Sent { order: orders.get(&s.buyer).cloned(), status: StatusCode::OK, body: Value::Null, ..s.clone() })
        .collect();
    let cancel = {
        let (http, base) = (http.clone(), base.clone());
        move |mut job: Sent| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let order = job.order.clone().unwrap();
                let req = http.delete(format!("{base}/api/orders/{order}")).bearer_auth(&job.buyer);
                (job.status, job.body) = send(req).await;
                job
            }
        }
    };
    let cancelled = under_pauses(pid, jobs, cancel.clone()).await;
    let (c_refused, c_unsure) =
        (count(&cancelled, StatusCode::SERVICE_UNAVAILABLE), count(&cancelled, StatusCode::GATEWAY_TIMEOUT));
    for s in &cancelled {
        let order = s.order.clone().unwrap();
        let (_, now) = send(http.get(format!("{base}/api/orders/{order}")).bearer_auth(&s.buyer)).await;
        match s.status {
            StatusCode::NO_CONTENT => assert_eq!(now["status"], "cancelled", "{s:?}"),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(now["status"], "created", "answered 503 but cancelled: {s:?}")
            }
            StatusCode::GATEWAY_TIMEOUT => {}
            other => panic!("unexpected {other}: {s:?}"),
        }
        if s.status != StatusCode::NO_CONTENT {
            let again = cancel(s.clone()).await;
            assert_eq!(again.status, StatusCode::NO_CONTENT, "the retry: {again:?}");
        }
        let (_, now) = send(http.get(format!("{base}/api/orders/{order}")).bearer_auth(&s.buyer)).await;
        assert_eq!(now["status"], "cancelled");
        let (_, ticket) = send(http.get(format!("{base}/api/tickets/{}", s.ticket))).await;
        assert!(ticket["orderId"].is_null(), "released once cancelled: {ticket}");
    }
    // Each order was cancelled once: one `order:cancelled` version (created v0 → cancelled v1).
    for s in &cancelled {
        let order = s.order.clone().unwrap();
        let (_, now) = send(http.get(format!("{base}/api/orders/{order}")).bearer_auth(&s.buyer)).await;
        assert_eq!(now["version"], 1, "one change: {now}");
    }
    println!(
        "reservations: {} sent, {refused} answered 503 (none made), {unsure} answered 504 (retried: one order each); \
         cancels: {c_refused} answered 503 (none made), {c_unsure} answered 504",
        reserved.len()
    );
    node.kill();
}
