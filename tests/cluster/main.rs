//! The cluster against the real RabbitMQ on 127.0.0.1:5672: real `ticketing` processes on
//! random ports, each with its own data dir, and a cluster name (the prefix of every queue and
//! exchange) unique to the test. RabbitMQ must be reachable: these tests fail, never skip,
//! when it is not (`scripts/test` starts it).

#[path = "../api/process.rs"]
mod process;
// Shared with the API tests; only part of it is used here.
#[allow(dead_code)]
#[path = "../api/browser.rs"]
mod browser;
#[allow(dead_code)]
#[path = "../api/smtp.rs"]
mod smtp;
#[path = "../api/sse.rs"]
mod sse;
#[path = "../api/wait.rs"]
mod wait;

mod brokers;
mod business;
mod chaos;
mod contract;
mod failover;
mod faults;
mod fencing;
mod helpers;
mod live;
mod load;
mod mail;
mod moves;
mod traces;
mod truth;

use helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_created_on_one_node_is_bought_on_another_and_paid_on_a_third() {
    let cluster = TestCluster::start(&["node-1", "node-2", "node-3"], &[]).await;
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let seller = a.sign_up("seller@example.com").await;
    let buyer = b.sign_up("buyer@example.com").await;
    // Each signed up through one node and lives on the node of its email's slot: signing in
    // through every node works.
    for node in &cluster.nodes {
        assert_eq!(node.account("signin", "buyer@example.com").await.status(), StatusCode::OK, "{}", node.id);
    }
    let ticket = a.create_ticket(&seller, "concert", 20).await;
    let unsold = a.create_ticket(&seller, "opera", 30).await;
    let id = ticket["id"].as_str().unwrap();
    for node in &cluster.nodes {
        let (status, seen) = node.get(&format!("/api/tickets/{id}"), None).await;
        assert_eq!((status, seen["title"].clone()), (StatusCode::OK, json!("concert")), "{}", node.id);
    }
    let (status, order) = b.post("/api/orders", &buyer, json!({"ticketId": id})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["id"].as_str().unwrap();
    // The buyer reads its own write through the node it used, at once.
    let (_, mine) = b.get("/api/orders", Some(&buyer)).await;
    assert!(mine.as_array().unwrap().iter().any(|o| o["id"] == order["id"]), "{mine}");
    let (status, paid) = c.post("/api/payments", &buyer, json!({"orderId": order_id, "token": "tok_visa"})).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    // Every node's lists agree within a second: the sold ticket is gone from sale, the other
    // is listed, and the buyer's order is complete.
    let deadline = Instant::now() + Duration::from_secs(1);
    for node in &cluster.nodes {
        loop {
            let (_, listed) = node.get("/api/tickets", None).await;
            let ids: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|t| t["id"].as_str()).collect();
            let (_, orders) = node.get("/api/orders", Some(&buyer)).await;
            let agreed = ids == [unsold["id"].as_str().unwrap()]
                && orders.as_array().unwrap().iter().any(|o| o["id"] == order["id"] && o["status"] == "complete");
            if agreed {
                break;
            }
            assert!(Instant::now() < deadline, "{} disagrees after 1 s: tickets {ids:?}, orders {orders}", node.id);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The nodes that learned the ticket's events from node-1 measured how far behind they were.
    for node in &cluster.nodes[1..] {
        let (_, metrics) = node.get("/metrics", None).await;
        let count = metrics
            .as_str()
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("ticketing_cluster_event_lag_seconds_count "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        assert!(count.is_some_and(|c| c > 0.0), "{}: {count:?}", node.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_buyers_over_three_nodes_for_one_ticket_make_exactly_one_order() {
    let cluster = TestCluster::start(&["node-1", "node-2", "node-3"], &[]).await;
    let seller = cluster.nodes[0].sign_up("seller@example.com").await;
    let ticket = cluster.nodes[0].create_ticket(&seller, "flash", 10).await;
    let id = ticket["id"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let node = cluster.nodes[i % 3].clone();
        let buyer = cluster.mint_user(&format!("buyer{i}@example.com"));
        let id = id.clone();
        tasks.push(tokio::spawn(async move { node.post("/api/orders", &buyer, json!({"ticketId": id})).await.0 }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for task in tasks {
        *statuses.entry(task.await.unwrap().as_u16()).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&201), Some(&1), "{statuses:?}");
    assert_eq!(statuses.get(&400), Some(&299), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_configured_to_own_the_same_shards_cannot_both_serve_them() {
    let cluster = TestCluster::start(&["node-1"], &[]).await;
    // A second node whose configuration (members = itself) also gives it every shard.
    let dir = tempfile::tempdir().unwrap();
    let (status, stderr) = cluster.run_to_exit("node-2", &["node-2"], dir.path());
    assert!(!status.success(), "the second owner must not start");
    assert!(stderr.contains("served by another node"), "a clear reason: {stderr}");
    // The first is unaffected.
    let seller = cluster.nodes[0].sign_up("seller@example.com").await;
    cluster.nodes[0].create_ticket(&seller, "still here", 5).await;
}

/// A node whose event queue cannot be consumed (here a queue of its name declared otherwise
/// already: a classic one) refuses to start with the broker's reason, after its connection
/// attempts, instead of waiting for ever without a port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_event_queue_cannot_be_consumed_refuses_to_start() {
    use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
    let cluster = TestCluster::start(&["node-1"], &[]).await;
    let queue = ticketing::cluster::Names::new(&cluster.name).node_events("node-2");
    let conn = lapin::Connection::connect(&cluster.amqp, lapin::ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    channel.queue_declare(queue.as_str().into(), durable, Default::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (status, stderr) = cluster.run_to_exit("node-2", &["node-1"], dir.path());
    channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await.unwrap();
    assert!(!status.success(), "a node that cannot consume its events must not start");
    assert!(stderr.contains("cannot consume from RabbitMQ"), "a clear reason: {stderr}");
    println!("refused to start after {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_configuration_would_move_shards_it_holds_refuses_to_start() {
    let mut cluster = TestCluster::start(&["node-1"], &[]).await;
    let seller = cluster.nodes[0].sign_up("seller@example.com").await;
    for i in 0..20 {
        cluster.nodes[0].create_ticket(&seller, &format!("t{i}"), 5).await;
    }
    let data = cluster.members[0].data.path().to_path_buf();
    cluster.members[0].stop();
    // The same data dir, now told to share its shards with node-2.
    let (status, stderr) = cluster.run_to_exit_in("node-1", &["node-1", "node-2"], &data, 2);
    assert!(!status.success());
    assert!(stderr.contains("would move shards"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_joins_later_lists_what_was_listed_and_sold_before_it_joined() {
    let mut cluster = TestCluster::start(&["node-1", "node-2"], &[]).await;
    let seller = cluster.mint_user("seller@example.com");
    let buyer = cluster.mint_user("buyer@example.com");
    let mut for_sale = Vec::new();
    for i in 0..12 {
        let ticket = cluster.nodes[i % 2].create_ticket(&seller, &format!("early {i}"), 5).await;
        for_sale.push(ticket["id"].as_str().unwrap().to_string());
    }
    // One of them sold before the newcomer exists.
    let sold = for_sale.pop().unwrap();
    let (status, order) = cluster.nodes[0].post("/api/orders", &buyer, json!({"ticketId": sold})).await;
    assert_eq!(status, StatusCode::CREATED);
    let pay = json!({"orderId": order["id"], "token": "tok_visa"});
    assert_eq!(cluster.nodes[1].post("/api/payments", &buyer, pay).await.0, StatusCode::CREATED);

    let late = cluster.add_gateway("late");
    let node = cluster.nodes[late].clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, listed) = node.get("/api/tickets?limit=100", None).await;
        let mut ids: Vec<String> =
            listed.as_array().unwrap().iter().filter_map(|t| t["id"].as_str().map(String::from)).collect();
        ids.sort();
        let (_, orders) = node.get("/api/orders", Some(&buyer)).await;
        let complete = orders.as_array().unwrap().iter().any(|o| o["id"] == order["id"] && o["status"] == "complete");
        let mut expected = for_sale.clone();
        expected.sort();
        if ids == expected && complete {
            break;
        }
        assert!(Instant::now() < deadline, "the newcomer's lists after 10 s: {ids:?}, orders {orders}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
