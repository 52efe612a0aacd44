//! Live availability across a cluster: a stream on a gateway node (which owns no shard) carries
//! the changes made on the owner, each within 2 s, once; an id of another node's stream cannot
//! be resumed there (a reset); and a browser on the gateway's landing page loses a ticket
//! reserved on the owner within 2 s and gets it back when the order expires.

use crate::browser::Browser;
use crate::helpers::*;
use crate::sse::Stream;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateways_stream_carries_the_owners_changes_within_2_s() {
    let extra = [("TICKETING_ORDERS__EXPIRATION_SECONDS", "3")];
    let cluster = TestCluster::start_with(&["node-1"], &["gate"], &extra).await;
    let (owner, gate) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (seller, buyer) = (cluster.mint_user("seller@example.com"), cluster.mint_user("buyer@example.com"));
    let mut stream = Stream::open(&gate.base, None).await;
    let mut on_owner = Stream::open(&owner.base, None).await;

    let ticket = owner.create_ticket(&seller, "live", 10).await;
    let id = ticket["id"].clone();
    // The cluster has just started (its first event warms the path up): not the timed step.
    let listed = stream.next_within(Duration::from_secs(10)).await.expect("listed on the gateway");
    assert_eq!((listed.event.as_str(), &listed.data["id"]), ("listed", &id));

    let reserving = Instant::now();
    let (status, order) = owner.post("/api/orders", &buyer, json!({"ticketId": id})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let reserved = stream.next_within(Duration::from_secs(2)).await.expect("reserved on the gateway within 2 s");
    assert_eq!((reserved.event.as_str(), &reserved.data["id"]), ("reserved", &id));
    eprintln!("a reservation on the owner reached the gateway's stream in {:?}", reserving.elapsed());
    // The order expires on the owner: the ticket is released, on the gateway too.
    let released = stream.next_within(Duration::from_secs(8)).await.expect("released after the expiry");
    assert_eq!((released.event.as_str(), &released.data["id"]), ("released", &id));
    assert!(stream.next_within(Duration::from_millis(500)).await.is_none(), "each change once");

    // The owner's own stream saw the same changes, under its own ids: not resumable elsewhere.
    let mut last_on_owner = String::new();
    for wanted in ["listed", "reserved", "released"] {
        let e = on_owner.next().await;
        assert_eq!(e.event, wanted);
        last_on_owner = e.id;
    }
    let mut elsewhere = Stream::open(&gate.base, Some(&last_on_owner)).await;
    assert_eq!(elsewhere.next().await.event, "reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_on_a_gateway_sees_a_reservation_on_the_owner_within_2_s() {
    let extra = [("TICKETING_ORDERS__EXPIRATION_SECONDS", "3")];
    let cluster = TestCluster::start_with(&["node-1"], &["gate"], &extra).await;
    let (owner, gate) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (seller, buyer) = (cluster.mint_user("seller@example.com"), cluster.mint_user("buyer@example.com"));
    let ticket = owner.create_ticket(&seller, "seen from the gateway", 10).await;
    let id = ticket["id"].as_str().unwrap().to_string();
    let b = Browser::start().await;
    let card = format!("#tickets [data-ticket-id='{id}']");
    crate::wait::eventually(Duration::from_secs(5), "the gateway lists the ticket", || async {
        b.goto(&gate.url("/")).await;
        b.exists(&card).await
    })
    .await;
    let (status, order) = owner.post("/api/orders", &buyer, json!({"ticketId": id})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let reserved = Instant::now();
    crate::wait::eventually(Duration::from_secs(2), "the gateway's landing loses the ticket", || async {
        !b.exists(&card).await
    })
    .await;
    eprintln!("a reservation on the owner left the gateway's page in {:?}", reserved.elapsed());
    crate::wait::eventually(
        Duration::from_secs(8),
        "the gateway's landing lists it again after the expiry",
        || async { b.exists(&card).await },
    )
    .await;
    b.close().await;
}
