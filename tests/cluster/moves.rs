//! Moving shards to a new node by hand: export from the old owners, import into the new one,
//! restart everyone under the new member list and epoch.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use ticketing::routing::{Shard, ShardMap};

fn map(me: &str, members: &[&str], epoch: u32) -> ShardMap {
    ShardMap::of(me, members, 64, epoch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_moved_to_a_new_node_keep_every_acknowledged_change() {
    let mut cluster = TestCluster::start(&["node-1", "node-2"], &[]).await;
    let seller = cluster.mint_user("seller@example.com");
    let buyer = cluster.mint_user("buyer@example.com");
    // Acknowledged state on both nodes: tickets (some edited), orders (some paid, some
    // cancelled, some pending).
    let mut tickets = Vec::new();
    for i in 0..40 {
        let node = &cluster.nodes[i % 2];
        let mut ticket = node.create_ticket(&seller, &format!("t{i}"), 10).await;
        if i % 3 == 0 {
            let (status, edited) = node
                .put(
                    &format!("/api/tickets/{}", ticket["id"].as_str().unwrap()),
                    &seller,
                    json!({"title": format!("t{i}-edited"), "price": 11}),
                )
                .await;
            assert_eq!(status, StatusCode::OK);
            ticket = edited;
        }
        tickets.push(ticket);
    }
    let mut orders = Vec::new();
    for (i, ticket) in tickets.iter().enumerate().filter(|(i, _)| i % 4 == 1) {
        let node = &cluster.nodes[i % 2];
        let (status, order) = node.post("/api/orders", &buyer, json!({"ticketId": ticket["id"]})).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        let id = order["id"].as_str().unwrap().to_string();
        let expected = match i % 3 {
            0 => {
                let (status, _) = node.post("/api/payments", &buyer, json!({"orderId": id, "token": "tok_visa"})).await;
                assert_eq!(status, StatusCode::CREATED);
                "complete"
            }
            1 => {
                let req = reqwest::Client::new().delete(node.url(&format!("/api/orders/{id}")));
                assert_eq!(node.send(req, Some(&buyer)).await.0, StatusCode::NO_CONTENT);
                "cancelled"
            }
            _ => "created",
        };
        orders.push((id, expected));
    }
    // The move: node-3 joins; the shards it wins go to it from their old owners.
    let (old, new) = (map("x", &["node-1", "node-2"], 1), map("x", &["node-1", "node-2", "node-3"], 2));
    let added = cluster.stop_and_reconfigure(&["node-1", "node-2", "node-3"], 2);
    assert_eq!(added, vec![2]);
    let dir = tempfile::tempdir().unwrap();
    let mut moved = Vec::new();
    for shard in (0..new.shard_count()).map(Shard).filter(|s| new.owner(*s) == "node-3") {
        let from = if old.owner(shard) == "node-1" { 0 } else { 1 };
        let file = dir.path().join(format!("shard-{}.bin", shard.0));
        let file = file.to_str().unwrap();
        cluster.shard_command(from, &["export", "--shard", &shard.0.to_string(), "--out", file, "--remove"]);
        cluster.shard_command(2, &["import", "--in", file]);
        moved.push(shard);
    }
    assert!(!moved.is_empty());
    let lives_on_3 = |id: &str| {
        let bytes = uuid::Uuid::parse_str(id).unwrap().into_bytes();
        let slot = ticketing::domain::Slot::from_field(u16::from_be_bytes([bytes[14], bytes[15]]));
        new.owner(new.shard_of(slot)) == "node-3"
    };
    assert!(tickets.iter().any(|t| lives_on_3(t["id"].as_str().unwrap())), "some data moved");
    // An old owner restarted with the map from before the move refuses the shards it gave away
    // (it holds no data for them, but its new owner serves them now).
    let from = if old.owner(moved[0]) == "node-1" { 0 } else { 1 };
    let data = cluster.members[from].data.path().to_path_buf();
    let (status, stderr) = cluster.run_to_exit_in(&cluster.nodes[from].id.clone(), &["node-1", "node-2"], &data, 1);
    assert!(!status.success() && stderr.contains("exported away"), "{stderr}");
    for i in 0..3 {
        cluster.start_node(i);
    }
    // Every acknowledged change reads back, through every node.
    for node in &cluster.nodes {
        for ticket in &tickets {
            let (status, seen) = node.get(&format!("/api/tickets/{}", ticket["id"].as_str().unwrap()), None).await;
            assert_eq!(status, StatusCode::OK, "{} via {}", ticket["id"], node.id);
            assert_eq!(seen["title"], ticket["title"], "via {}", node.id);
            assert!(seen["version"].as_u64() >= ticket["version"].as_u64(), "via {}: {seen}", node.id);
        }
        for (id, status) in &orders {
            let (code, order) = node.get(&format!("/api/orders/{id}"), Some(&buyer)).await;
            assert_eq!((code, order["status"].as_str()), (StatusCode::OK, Some(*status)), "{id} via {}", node.id);
        }
    }
    // node-3 serves what it imported.
    let (_, view) = cluster.nodes[2].admin("/admin/cluster").await;
    let serving: Vec<u64> = view["serving"].as_array().unwrap().iter().filter_map(|s| s.as_u64()).collect();
    assert_eq!(serving, moved.iter().map(|s| u64::from(s.0)).collect::<Vec<_>>());
}
