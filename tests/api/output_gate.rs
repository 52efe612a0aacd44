//! The output gate: a ticket actor takes update after update without waiting for the disk,
//! but no reply, and no event (the read model behind the lists), shows a version before the
//! flush that covers it. SIGKILL mid-load, restart: nothing anyone saw is gone.

use crate::process::{account, create_ticket, start_node};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn no_client_or_event_consumer_sees_a_version_that_a_sigkill_takes_back() {
    let data = tempfile::tempdir().unwrap();
    let mut node = start_node(data.path(), &[]);
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let cookie =
        crate::helpers::session_cookie(&account(&http, &node.address, "signup", "gate@test.com").await).unwrap();
    let ticket = create_ticket(&http, &node.address, &cookie, "gated", 5).await;
    let id = ticket["id"].as_str().unwrap().to_string();
    let seen = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + Duration::from_millis(1500);
    let writers = (0..24).map(|w| {
        let (http, cookie, seen, url) =
            (http.clone(), cookie.clone(), Arc::clone(&seen), format!("{}/api/tickets/{id}", node.address));
        async move {
            let mut n = 0;
            while Instant::now() < stop_at {
                n += 1;
                let body = json!({"title": "gated", "price": 1 + (w * 31 + n) % 90});
                let Ok(res) = http.put(&url).header("Cookie", &cookie).json(&body).send().await else { break };
                if let Ok(v) = res.json::<Value>().await {
                    seen.fetch_max(v["version"].as_u64().unwrap_or(0), Ordering::SeqCst);
                }
            }
        }
    });
    // An event consumer: the read model behind the list, fed by published events.
    let reader = {
        let (http, seen, url) = (http.clone(), Arc::clone(&seen), format!("{}/api/tickets?limit=100", node.address));
        async move {
            while Instant::now() < stop_at {
                let Ok(res) = http.get(&url).send().await else { break };
                if let Ok(list) = res.json::<Value>().await {
                    for t in list.as_array().into_iter().flatten() {
                        seen.fetch_max(t["version"].as_u64().unwrap_or(0), Ordering::SeqCst);
                    }
                }
            }
        }
    };
    futures::future::join(futures::future::join_all(writers), reader).await;
    node.kill();
    let seen = seen.load(Ordering::SeqCst);
    assert!(seen > 50, "the load made progress ({seen} versions)");
    let node = start_node(data.path(), &[]);
    let after: Value =
        http.get(format!("{}/api/tickets/{id}", node.address)).send().await.unwrap().json().await.unwrap();
    let version = after["version"].as_u64().unwrap();
    assert!(version >= seen, "a client saw version {seen}, but after SIGKILL and restart the ticket is at {version}");
}

/// A ticket actor may be passivated (here by the admin, as often as possible) while updates
/// it accepted are still on their way to disk: the next activation must read every one of
/// them, so the final version counts every acknowledged update and no update is lost.
#[actix_web::test]
async fn passivating_between_queued_writes_loses_no_update() {
    use ticketing::settings::Secret;
    let app = crate::helpers::spawn_app_with(|s| s.admin.token = Secret::new("gate-admin")).await;
    let seller = app.signin().await;
    let ticket = app.create_ticket(&seller, "passivated", json!(5)).await;
    let id = ticket["id"].as_str().unwrap().to_string();
    let stop_at = Instant::now() + Duration::from_millis(1500);
    let acknowledged = Arc::new(AtomicU64::new(0));
    let writers = (0..16).map(|w| {
        let (app, cookie, id, acknowledged) = (&app, seller.cookie.clone(), id.clone(), Arc::clone(&acknowledged));
        async move {
            let mut n = 0;
            while Instant::now() < stop_at {
                n += 1;
                let res = app
                    .put(&format!("/api/tickets/{id}"))
                    .header("Cookie", &cookie)
                    .json(&json!({"title": "passivated", "price": 1 + (w * 13 + n) % 90}))
                    .send()
                    .await
                    .unwrap();
                if res.status() == reqwest::StatusCode::OK {
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    });
    let passivator = async {
        let mut passivated = 0;
        while Instant::now() < stop_at {
            let res = app
                .post(&format!("/admin/actors/ticket/{id}/passivate"))
                .bearer_auth("gate-admin")
                .send()
                .await
                .unwrap();
            if res.json::<Value>().await.unwrap()["passivated"] == true {
                passivated += 1;
            }
        }
        passivated
    };
    let (_, passivated) = futures::future::join(futures::future::join_all(writers), passivator).await;
    assert!(passivated > 0, "the actor was passivated during the load");
    let (_, after) = app.get_json(&format!("/api/tickets/{id}"), None).await;
    assert_eq!(
        after["version"],
        json!(acknowledged.load(Ordering::SeqCst)),
        "every acknowledged update is in the ticket"
    );
}
