//! Fencing. A paused owner: while it is stopped its follower takes its shards over, and once it
//! runs again it acknowledges nothing for them and never answers an older version of a ticket
//! than one already acknowledged (lapin notices the missed heartbeats as it resumes, and
//! requests that waited in its sockets meanwhile are dropped by the HTTP request timeout).
//! An owner that cannot hear from the broker although its connection stays open (here: the
//! broker blocks publishers) stops serving its shards, reads included, within half a
//! heartbeat, since it cannot know whether it still holds its leases.

use crate::helpers::*;
use crate::process::signal;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_that_runs_again_acknowledges_nothing_and_no_version_goes_back() {
    // A 2 s heartbeat: the broker drops a silent node's connection (and its leases) in ~4 s.
    let urls: Vec<String> = BROKERS.iter().map(|u| format!("{u}?heartbeat=2")).collect();
    let urls = urls.join(",");
    let extra = [("TICKETING_CLUSTER__AMQP_URL", urls.as_str()), ("TICKETING_CLUSTER__REPLICAS", "1")];
    let cluster = TestCluster::start_on_brokers_with(&["node-1", "node-2", "node-3"], &[], &extra).await;
    let seller = cluster.mint_user("seller@example.com");
    // Tickets served by the node about to be paused (a node creates in shards it serves).
    let mut paused = 0;
    for i in 0..3 {
        let (_, view) = cluster.nodes[i].admin("/admin/cluster").await;
        if !view["serving"].as_array().unwrap().is_empty() {
            paused = i;
            break;
        }
    }
    let (owner, other) = (cluster.nodes[paused].clone(), cluster.nodes[(paused + 1) % 3].clone());
    let mut acknowledged: BTreeMap<String, u64> = BTreeMap::new();
    for n in 0..10 {
        let t = owner.create_ticket(&seller, &format!("t{n}"), 10).await;
        assert_eq!(owner_of(&cluster, t["id"].as_str().unwrap()).await, owner.id);
        acknowledged.insert(t["id"].as_str().unwrap().to_string(), t["version"].as_u64().unwrap());
    }
    let pid = cluster.members[paused].process.as_ref().unwrap().child.id();
    signal(pid, libc::SIGSTOP);
    let stopped = Instant::now();
    // Its follower takes over: every ticket is updated through another node.
    for (id, version) in acknowledged.iter_mut() {
        loop {
            let (status, body) =
                other.put(&format!("/api/tickets/{id}"), &seller, json!({"title": "after", "price": 11})).await;
            if status == StatusCode::OK {
                *version = body["version"].as_u64().unwrap();
                break;
            }
            assert!(
                stopped.elapsed() < Duration::from_secs(30),
                "{id} not writable through {} while paused: {status} {body}",
                other.id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!("paused {}: its tickets writable again through {} after {:?}", owner.id, other.id, stopped.elapsed());
    signal(pid, libc::SIGCONT);
    let owner = owner.reconnected();
    // From the moment it runs again: no read older than what was acknowledged, no write
    // acknowledged for a shard it lost.
    let resumed = Instant::now();
    let (mut refused, mut answered) = (0, 0);
    while resumed.elapsed() < Duration::from_secs(4) {
        for (id, version) in &acknowledged {
            let (status, body) = owner.get(&format!("/api/tickets/{id}"), None).await;
            if status == StatusCode::OK {
                answered += 1;
                let seen = body["version"].as_u64().unwrap();
                assert!(seen >= *version, "{id} read through {} at version {seen}, {version} acknowledged", owner.id);
            } else {
                assert!(status.is_server_error(), "{id}: {status} {body}");
                refused += 1;
            }
        }
        let id = acknowledged.keys().next().unwrap();
        let (status, body) =
            owner.put(&format!("/api/tickets/{id}"), &seller, json!({"title": "late", "price": 12})).await;
        if status == StatusCode::OK {
            // Only through the shard's current server, after the version acknowledged before.
            assert!(body["version"].as_u64().unwrap() > acknowledged[id], "{body}");
            let (_, current) = other.get(&format!("/api/tickets/{id}"), None).await;
            assert_eq!(current["title"], "late", "an acknowledged write is the current state");
        }
    }
    eprintln!("after SIGCONT: {refused} reads refused, {answered} answered, none older than acknowledged");
    // It serves again (forwarding to the new owner), if not yet within those seconds.
    let (id, version) = acknowledged.iter().next().unwrap();
    crate::wait::eventually(Duration::from_secs(30), "the resumed node serves again", || async {
        let (status, body) = owner.get(&format!("/api/tickets/{id}"), None).await;
        status == StatusCode::OK && body["version"].as_u64().is_some_and(|seen| seen >= *version)
    })
    .await;
}

/// Clears the broker's memory alarm however the test ends.
struct Unblock;

impl Drop for Unblock {
    fn drop(&mut self) {
        for node in ["brk1@localhost", "brk2@localhost", "brk3@localhost"] {
            let _ = std::process::Command::new("rabbitmqctl")
                .args(["-n", node, "set_vm_memory_high_watermark", "0.4"])
                .output();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_that_hears_nothing_from_the_broker_stops_serving_reads_within_half_a_heartbeat() {
    let urls: Vec<String> = BROKERS.iter().map(|u| format!("{u}?heartbeat=2")).collect();
    let urls = urls.join(",");
    let extra = [("TICKETING_CLUSTER__AMQP_URL", urls.as_str()), ("TICKETING_CLUSTER__REPLICAS", "1")];
    let cluster = TestCluster::start_on_brokers_with(&["node-1", "node-2"], &[], &extra).await;
    let seller = cluster.mint_user("seller@example.com");
    let owner = cluster.nodes[0].clone();
    let ticket = owner.create_ticket(&seller, "concert", 10).await;
    let path = format!("/api/tickets/{}", ticket["id"].as_str().unwrap());
    assert_eq!(owner.get(&path, None).await.0, StatusCode::OK);
    // The broker blocks every publisher: nothing this node sends is confirmed any more, while
    // its connection (and its leases, as far as it knows) stays open.
    let _unblock = Unblock;
    let blocked = Instant::now();
    for node in ["brk1@localhost", "brk2@localhost", "brk3@localhost"] {
        rabbitmqctl(&["-n", node, "set_vm_memory_high_watermark", "0.0000001"]);
    }
    let refused_after = loop {
        let (status, _) = owner.get(&path, None).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break blocked.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            blocked.elapsed() < Duration::from_secs(5),
            "still serving reads {:?} after the broker went silent",
            blocked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("reads refused {refused_after:?} after the broker was told to stop confirming (heartbeat 2 s)");
    drop(_unblock);
    // Heard from again: it serves again.
    let back = Instant::now();
    while owner.get(&path, None).await.0 != StatusCode::OK {
        assert!(back.elapsed() < Duration::from_secs(15), "not serving again once the broker confirms");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
