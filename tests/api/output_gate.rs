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
