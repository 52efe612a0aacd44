//! Durability of acknowledged writes across SIGKILL, orderly SIGTERM shutdown, and start-up
//! refusal on bad settings: all against the real binary.

use crate::process::start_node;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;

fn client() -> Client {
    Client::builder().no_proxy().build().unwrap()
}

#[actix_web::test]
async fn every_acknowledged_write_survives_a_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let mut node = start_node(data.path(), &[]);
    let http = client();
    let base = node.address.clone();

    // A burst of concurrent writes: 10 users, each creating 3 tickets and updating one twice.
    let work = (0..10).map(|u| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let email = format!("durable-{u}@test.com");
            let res = crate::process::account(&http, &base, "signup", &email).await;
            assert_eq!(res.status(), StatusCode::CREATED);
            let cookie = crate::helpers::session_cookie(&res).unwrap();
            let mut tickets = HashMap::new();
            for t in 0..3 {
                let res = http
                    .post(format!("{base}/api/tickets"))
                    .header("Cookie", &cookie)
                    .json(&json!({"title": format!("u{u}t{t}"), "price": 10 + t}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::CREATED);
                let body: Value = res.json().await.unwrap();
                tickets.insert(body["id"].as_str().unwrap().to_string(), body);
            }
            let first = tickets.keys().next().unwrap().clone();
            for round in 0..2 {
                let res = http
                    .put(format!("{base}/api/tickets/{first}"))
                    .header("Cookie", &cookie)
                    .json(&json!({"title": format!("edited {round}"), "price": 99}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK);
                let body: Value = res.json().await.unwrap();
                tickets.insert(first.clone(), body);
            }
            (email, tickets)
        }
    });
    let acknowledged: Vec<(String, HashMap<String, Value>)> = futures::future::join_all(work).await;
    node.kill();

    let node = start_node(data.path(), &[]);
    let base = node.address.clone();
    for (email, tickets) in &acknowledged {
        let res = crate::process::account(&http, &base, "signin", email).await;
        assert_eq!(res.status(), StatusCode::OK, "user {email} survived");
        for (id, expected) in tickets {
            let res = http.get(format!("{base}/api/tickets/{id}")).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "ticket {id} survived");
            let stored: Value = res.json().await.unwrap();
            assert_eq!(&stored, expected, "ticket {id} kept its acknowledged version");
        }
    }
}

#[actix_web::test]
async fn sigterm_drains_flushes_and_exits_zero() {
    let data = tempfile::tempdir().unwrap();
    let mut node = start_node(data.path(), &[]);
    let http = client();
    let res = crate::process::account(&http, &node.address, "signup", "term@test.com").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let status = node.terminate();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let node = start_node(data.path(), &[]);
    let res = crate::process::account(&http, &node.address, "signin", "term@test.com").await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[test]
fn invalid_settings_stop_start_up_with_a_clear_message() {
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .arg("serve")
        .env("TICKETING_STORAGE__PATH", data.path())
        .env("TICKETING_ORDERS__EXPIRATION_SECONDS", "-5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("orders.expiration_seconds"), "{stderr}");
}

#[actix_web::test]
async fn json_logs_carry_request_and_actor_spans() {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .arg("serve")
        .env("TICKETING_HTTP__ADDR", "127.0.0.1:0")
        .env("TICKETING_STORAGE__PATH", data.path())
        .env("TICKETING_LOG__FORMAT", "json")
        .env("TICKETING_LOG__LEVEL", "debug,actix=info,actix_server=info,actix_web=info,hyper=info,sled=info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = BufReader::new(stdout).lines().find_map(|l| l.ok().filter(|l| l.starts_with("listening on "))).unwrap();
    let base = line.trim_start_matches("listening on ").trim().to_string();
    let http = client();
    let res = crate::process::account(&http, &base, "signup", "logs@test.com").await;
    let cookie = crate::helpers::session_cookie(&res).unwrap();
    let res = http
        .post(format!("{base}/api/tickets"))
        .header("Cookie", cookie)
        .json(&json!({"title": "logged", "price": 3}))
        .send()
        .await
        .unwrap();
    let ticket: Value = res.json().await.unwrap();
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty());
    let with_actor_span = lines.iter().any(|l| {
        let span = &l["span"];
        span["name"] == "actor"
            && span["kind"] == "ticket"
            && span["id"] == ticket["id"]
            && l["spans"]
                .as_array()
                .is_some_and(|parents| parents.iter().any(|s| s["name"] == "request" && s["route"] == "/api/tickets"))
    });
    assert!(with_actor_span, "a log line inside the ticket actor's span, within the request span:\n{stderr}");
}
