//! The broker is not one machine: the nodes are given the URLs of a three-node RabbitMQ cluster
//! (`scripts/brokers`), and losing the broker node they are linked to costs seconds, not data.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many of `cluster`'s node connections go to the broker node listening on `port` now.
fn connections_on(port: u16, cluster: &str) -> usize {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["-n", "brk2@localhost", "-q", "list_connections", "port", "client_properties"])
        .output()
        .unwrap();
    let port = format!("{port}\t");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(&port) && l.contains(&format!("({cluster})")))
        .count()
}

/// Starts the stopped broker node again however the test ends, for the tests after it.
struct Restart(&'static str);

impl Drop for Restart {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl").args(["-n", self.0, "start_app"]).output();
        let _ = std::process::Command::new("rabbitmqctl").args(["-n", self.0, "await_startup"]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_broker_node_the_cluster_is_linked_to_costs_seconds_and_nothing_acknowledged() {
    let cluster = TestCluster::start_on_brokers(&["node-1", "node-2"], &["gate"]).await;
    // Every node links to the first broker node it is given: that is the one that goes.
    let audit = audit_queue_of(BROKERS[1], &cluster.name, true).await;
    let seller = cluster.mint_user("seller@example.com");
    let stop = Arc::new(AtomicBool::new(false));
    let first_ok_after: Arc<Mutex<HashMap<String, Duration>>> = Arc::default();
    let lost_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..3 {
        let node = cluster.nodes[w % 3].clone();
        let (seller, stop, first_ok_after, lost_at) =
            (seller.clone(), stop.clone(), first_ok_after.clone(), lost_at.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged: HashMap<String, String> = HashMap::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let title = format!("w{w}-{i}");
                let (status, body) = node.post("/api/tickets", &seller, json!({"title": title, "price": 5})).await;
                if status == StatusCode::CREATED {
                    acknowledged.insert(body["id"].as_str().unwrap().to_string(), title);
                    // Paced: the tests beside this one share the two cores.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    if let Some(at) = *lost_at.lock().unwrap() {
                        first_ok_after.lock().unwrap().entry(node.id.clone()).or_insert_with(|| at.elapsed());
                    }
                } else {
                    assert!(status.is_server_error(), "only refusals while the broker fails over: {status} {body}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                i += 1;
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(connections_on(5681, &cluster.name), 3, "every node linked to the first broker node");
    let _restart = Restart("brk1@localhost");
    *lost_at.lock().unwrap() = Some(Instant::now());
    rabbitmqctl(&["-n", "brk1@localhost", "stop_app"]);
    let stopped = Instant::now();
    // Every node is ready again (linked through another broker node, its leases taken again).
    let deadline = stopped + Duration::from_secs(15);
    for node in &cluster.nodes {
        while !node.ready().await {
            assert!(Instant::now() < deadline, "{} not ready 15 s after its broker node stopped", node.id);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let ready_after = stopped.elapsed();
    let moved = connections_on(5682, &cluster.name) + connections_on(5683, &cluster.name);
    assert_eq!(moved, 3, "every node linked through another broker node");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = HashMap::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    let first_ok_after = first_ok_after.lock().unwrap().clone();
    for node in &cluster.nodes {
        let took = first_ok_after.get(&node.id).copied();
        assert!(
            took.is_some_and(|t| t < Duration::from_secs(15)),
            "writes through {} again within 15 s: {took:?}",
            node.id
        );
    }
    assert!(acknowledged.len() > 20, "the writers made progress: {}", acknowledged.len());

    // Nothing acknowledged is lost: each reads back through every node.
    for (n, (id, title)) in acknowledged.iter().enumerate() {
        let node = &cluster.nodes[n % 3];
        let (status, ticket) = node.get(&format!("/api/tickets/{id}"), None).await;
        assert_eq!((status, ticket["title"].as_str()), (StatusCode::OK, Some(title.as_str())), "{id} via {}", node.id);
    }
    // No event lost: every acknowledged create's `ticket:created` reached the replicated audit
    // queue, one per (slot, seq), with no gap in any slot's numbers.
    outboxes_published(&cluster.nodes, Duration::from_secs(30)).await;
    let messages = drain(BROKERS[1], &audit, acknowledged.len()).await;
    let (distinct, _) = assert_every_event_once(&messages, acknowledged.keys());
    println!(
        "broker node stopped: every node ready again after {ready_after:?}, writes again after {first_ok_after:?}; \
         {} acknowledged creates, {} events ({} redelivered)",
        acknowledged.len(),
        messages.len(),
        messages.len() - distinct
    );
}
