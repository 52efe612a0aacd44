//! The business metrics of a replicated three-node cluster add up: a scripted day of trading
//! (listings, a withdrawal, orders paid, one after a declined card, cancelled, and left to
//! expire across a failover) gives exact sums over the nodes' `/metrics`, the killed node's
//! counted from its last scrape, as Prometheus would. Each change is counted once, by the node
//! serving its entity, never by a follower (with every shard followed, a follower that counted
//! would double every sum). Exact here because the node dies with its outbox delivered; a
//! change whose event was not yet marked delivered would be counted again by the new owner
//! (at least once, as the README says).

use crate::helpers::*;
use crate::load::{caught_up, shards_of, start_replicated_with, until_members};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The business series of one node: `name{labels}` → value (histograms by their `_count`).
async fn business(node: &ClusterNode) -> BTreeMap<String, f64> {
    let text = reqwest::get(node.url("/metrics")).await.unwrap().text().await.unwrap();
    let wanted = [
        "ticketing_orders_created_total",
        "ticketing_orders_paid_total",
        "ticketing_orders_cancelled_total",
        "ticketing_orders_paid_amount_cents_total",
        "ticketing_listings_total",
        "ticketing_payment_attempts_total",
        "ticketing_order_hold_duration_seconds_count",
    ];
    text.lines()
        .filter(|l| wanted.iter().any(|w| l.starts_with(&format!("{w}{{")) || l.starts_with(&format!("{w} "))))
        .filter_map(|l| l.rsplit_once(' ').map(|(series, v)| (series.to_string(), v.parse::<f64>().unwrap())))
        .collect()
}

fn add(into: &mut BTreeMap<String, f64>, from: &BTreeMap<String, f64>) {
    for (series, value) in from {
        *into.entry(series.clone()).or_default() += value;
    }
}

async fn sum(nodes: &[&ClusterNode]) -> BTreeMap<String, f64> {
    let mut total = BTreeMap::new();
    for node in nodes {
        add(&mut total, &business(node).await);
    }
    total
}

/// The non-zero series of `sums` (series a node exports at 0 are not part of what happened).
fn nonzero(sums: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    sums.iter().filter(|(_, v)| **v != 0.0).map(|(k, v)| (k.clone(), *v)).collect()
}

fn expected(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_day_over_three_nodes_with_an_expiry_and_a_failover_gives_exact_sums() {
    let (mut cluster, _, owners) = start_replicated_with(&[], &[("TICKETING_ORDERS__EXPIRATION_SECONDS", "12")]).await;
    // The victim owns shards; the tickets of the orders left to expire are listed through it
    // (so they live on its shards) and expire after it died, on their new owners.
    let victim = (0..3).find(|i| !shards_of(&owners, &cluster.nodes[*i].id).is_empty()).unwrap();
    let victim_id = cluster.nodes[victim].id.clone();
    let seller = cluster.mint_user("seller@example.com");
    let buyer = cluster.mint_user("buyer@example.com");
    let nodes = cluster.nodes.clone();

    // Five listings through each node (15), one withdrawn; 3 paid (one after a declined
    // card), 3 cancelled by the buyer, each step through another node than the last.
    let mut tickets = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for k in 0..5u32 {
            let price = 10 + 5 * (i as u32) + k;
            let t = node.create_ticket(&seller, &format!("t{i}-{k}"), price).await;
            tickets.push((i, t["id"].as_str().unwrap().to_string(), price));
        }
    }
    let withdrawn = &tickets[1].1;
    let res = reqwest::Client::new().delete(nodes[2].url(&format!("/api/tickets/{withdrawn}")));
    assert_eq!(nodes[2].send(res, Some(&seller)).await.0, StatusCode::NO_CONTENT);
    let others: Vec<&(usize, String, u32)> =
        tickets.iter().filter(|(i, id, _)| *i != victim && id != withdrawn).take(6).collect();
    let mut paid_cents = 0.0;
    for (n, (_, ticket, price)) in others.iter().enumerate() {
        let via = &nodes[n % 3];
        let (status, order) = via.post("/api/orders", &buyer, json!({"ticketId": ticket})).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        let order = order["id"].as_str().unwrap().to_string();
        let next = &nodes[(n + 1) % 3];
        if n < 3 {
            if n == 0 {
                let declined = json!({"orderId": order, "token": "tok_chargeDeclined"});
                assert_eq!(next.post("/api/payments", &buyer, declined).await.0, StatusCode::PAYMENT_REQUIRED);
            }
            let pay = json!({"orderId": order, "token": "tok_visa"});
            assert_eq!(next.post("/api/payments", &buyer, pay).await.0, StatusCode::CREATED);
            paid_cents += f64::from(*price) * 100.0;
        } else {
            let req = reqwest::Client::new().delete(next.url(&format!("/api/orders/{order}")));
            assert_eq!(next.send(req, Some(&buyer)).await.0, StatusCode::NO_CONTENT);
        }
    }
    // Three left to expire, on the victim's shards.
    let expiring: Vec<&(usize, String, u32)> =
        tickets.iter().filter(|(i, id, _)| *i == victim && id != withdrawn).take(3).collect();
    for (n, (_, ticket, _)) in expiring.iter().enumerate() {
        let (status, order) = nodes[(victim + n) % 3].post("/api/orders", &buyer, json!({"ticketId": ticket})).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
    }
    let reserved = Instant::now();

    let before_kill = expected(&[
        ("ticketing_listings_total{change=\"created\"}", 15.0),
        ("ticketing_listings_total{change=\"withdrawn\"}", 1.0),
        ("ticketing_orders_created_total", 9.0),
        ("ticketing_orders_paid_total", 3.0),
        ("ticketing_orders_paid_amount_cents_total", paid_cents),
        ("ticketing_orders_cancelled_total{reason=\"buyer\"}", 3.0),
        ("ticketing_order_hold_duration_seconds_count{outcome=\"paid\"}", 3.0),
        ("ticketing_order_hold_duration_seconds_count{outcome=\"released\"}", 3.0),
        ("ticketing_payment_attempts_total{outcome=\"paid\"}", 3.0),
        ("ticketing_payment_attempts_total{outcome=\"declined\"}", 1.0),
    ]);
    let all: Vec<&ClusterNode> = nodes.iter().collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut sums = nonzero(&sum(&all).await);
    while sums != before_kill {
        assert!(Instant::now() < deadline, "before the kill: {sums:#?}\nexpected {before_kill:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        sums = nonzero(&sum(&all).await);
    }
    // Its outbox marked delivered, and that logged to its followers: the victim's last scrape.
    outboxes_published(std::slice::from_ref(&nodes[victim]), Duration::from_secs(5)).await;
    until_members(&nodes, Duration::from_secs(5), "every follower at its log's end", caught_up).await;
    let last_scrape = business(&nodes[victim]).await;
    assert!(reserved.elapsed() < Duration::from_secs(11), "the orders must expire after the kill");
    cluster.kill(victim);

    // The survivors serve its shards and expire its pending orders.
    let survivors: Vec<&ClusterNode> = nodes.iter().filter(|n| n.id != victim_id).collect();
    let after = {
        let mut a = before_kill.clone();
        a.insert("ticketing_orders_cancelled_total{reason=\"expired\"}".into(), 3.0);
        a.insert("ticketing_order_hold_duration_seconds_count{outcome=\"released\"}".into(), 6.0);
        a
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut total = last_scrape.clone();
        add(&mut total, &sum(&survivors).await);
        let total = nonzero(&total);
        if total == after {
            break;
        }
        assert!(Instant::now() < deadline, "after the failover: {total:#?}\nexpected {after:#?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // And they stay exact: nothing is counted twice a moment later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut total = last_scrape;
    add(&mut total, &sum(&survivors).await);
    assert_eq!(nonzero(&total), after);
}
