//! Mail in a replicated cluster: a shard's mail is sent by the node serving it, once (never by
//! the nodes following it, which hold the same queue), and when that node dies with mail
//! waiting (its SMTP server was down), by the node that takes the shard over.

use crate::helpers::*;
use crate::load::*;
use crate::smtp::{Received, Sink};
use crate::wait::eventually;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

/// `address`'s mail that names `order`.
fn about(sink: &Sink, address: &str, order: &str) -> Vec<Received> {
    sink.to(address).into_iter().filter(|m| m.body().contains(order)).collect()
}

/// Lists a ticket, reserves it and pays for it: the order's id.
async fn bought(node: &ClusterNode, seller: &Who, buyer: &Who, title: &str) -> String {
    let ticket = node.create_ticket(seller, title, 25).await;
    let (status, order) = node.post("/api/orders", buyer, json!({"ticketId": ticket["id"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let id = order["id"].as_str().unwrap().to_string();
    let (status, body) = node.post("/api/payments", buyer, json!({"orderId": id, "token": "tok_visa"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shards_mail_is_sent_once_by_its_server_and_after_it_dies_by_the_node_that_takes_it_over() {
    let sink = Sink::start().await;
    let url = sink.url();
    let (mut cluster, shards, _) = start_replicated_with(
        &[],
        &[("TICKETING_MAIL__SMTP_URL", url.as_str()), ("TICKETING_MAIL__RETRY_SECONDS", "0.5")],
    )
    .await;
    let seller = cluster.nodes[0].sign_up("seller@example.com").await;
    let buyer = cluster.nodes[1].sign_up("buyer@example.com").await;

    // With the server up: the confirmation and the sale, each once, though every shard's mail
    // queue is on two nodes.
    let first = bought(&cluster.nodes[2], &seller, &buyer, "first").await;
    eventually(Duration::from_secs(10), "the first order's two mails", || async {
        !about(&sink, "buyer@example.com", &first).is_empty() && !about(&sink, "seller@example.com", &first).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(about(&sink, "buyer@example.com", &first).len(), 1, "the confirmation, once");
    assert_eq!(about(&sink, "seller@example.com", &first).len(), 1, "the sale, once");

    // The server goes down; an order is paid; the node serving its shard dies with its mail
    // waiting.
    sink.set_down(true);
    let second = bought(&cluster.nodes[2], &seller, &buyer, "second").await;
    let shard = shard_of(&second, shards);
    let views = until_members(&live_members(&cluster, 3), Duration::from_secs(5), "the views", |_| true).await;
    let server = views.iter().find(|(_, v)| v.serving.contains(&shard)).map(|(id, _)| id.clone());
    let server = server.unwrap_or_else(|| panic!("no member serves shard {shard}: {views:#?}"));
    let victim = cluster.nodes.iter().position(|n| n.id == server).expect("the server is a member");
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.kill(victim);
    until_members(&live_members(&cluster, 3), Duration::from_secs(15), "the dead node's shards served again", |v| {
        served_once(v, shards)
    })
    .await;

    // The server is back: the node now serving the shard sends what waited, once.
    sink.set_down(false);
    eventually(Duration::from_secs(15), "the second order's two mails, from the shard's new server", || async {
        !about(&sink, "buyer@example.com", &second).is_empty()
            && !about(&sink, "seller@example.com", &second).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let confirmation = about(&sink, "buyer@example.com", &second);
    assert_eq!(confirmation.len(), 1, "the confirmation, once: {confirmation:#?}");
    assert_eq!(about(&sink, "seller@example.com", &second).len(), 1, "the sale, once");
    assert_eq!(about(&sink, "buyer@example.com", &first).len(), 1, "nothing sent before is sent again");
}
