//! Replicated shards, on the three-node broker of `scripts/brokers`: a shard's owner appends
//! every write to the shard's RabbitMQ stream before acknowledging it, the next node in the
//! shard's ranking follows that stream into its own data dir, and takes the shard over when the
//! owner dies (its lease queue `<name>.shard.N` vanishes). Killing owners under load costs their
//! shards seconds and nothing acknowledged; a node whose disk is lost rebuilds its copies from
//! the logs and can serve them; a follower whose subscription goes quiet subscribes again.

use crate::helpers::*;
use crate::load::*;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_owner_under_load_loses_nothing_and_its_shards_are_served_again_within_3_s() {
    let (mut cluster, shards, owners) = start_replicated().await;

    let Running { load, accounts, seller, early, buyers, probes, pending_before, writers } =
        start_load(&cluster, &owners, shards).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Round 1: the owner of the tickets listed through node-3 dies.
    let v1 = index_of(&cluster, &owner_of(&cluster, &probes[16]).await);
    let v1_id = cluster.nodes[v1].id.clone();
    let v1_owned = shards_of(&owners, &v1_id);
    let (took1, served1) = kill_under_load(&mut cluster, &load, v1, &probes, &seller, shards, 1).await;
    eprintln!(
        "failover 1: {v1_id} SIGKILLed, a write to one of its {} shards acknowledged {took1:?} after",
        served1.len()
    );
    let views = until_members(
        &live_members(&cluster, 3),
        Duration::from_secs(10),
        "the dead node's shards served again",
        |v| served_once(v, shards),
    )
    .await;
    assert!(took1 <= Duration::from_secs(3), "failover 1 took {took1:?}: {views:#?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // It comes back: it follows the shards it lost, and does not take them back.
    cluster.restart(v1);
    load.targets.lock().unwrap().push(cluster.nodes[v1].clone());
    let restarted = Instant::now();
    // Under the load, it follows every shard it lost...
    until_members(
        &live_members(&cluster, 3),
        Duration::from_secs(30),
        "the restarted node follows what it lost",
        |v| served_once(v, shards) && v1_owned.iter().all(|s| v[&v1_id].following.contains_key(s)),
    )
    .await;
    // ... and, the writers holding off for a moment, every copy reaches the end of its log.
    load.paused.store(true, Ordering::SeqCst);
    let views = until_members(&live_members(&cluster, 3), Duration::from_secs(20), "lag 0 everywhere", |v| {
        served_once(v, shards) && caught_up(v)
    })
    .await;
    load.paused.store(false, Ordering::SeqCst);
    eprintln!("{v1_id} restarted: following every shard it lost, lag 0 everywhere, after {:?}", restarted.elapsed());
    let taken_back: Vec<_> = views[&v1_id].serving.intersection(&v1_owned).collect();
    assert!(taken_back.is_empty(), "{v1_id} took back shards it lost: {taken_back:?}");
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // Round 2: the survivor serving most of the first victim's shards dies; each shard it
    // served goes to a node that followed it (the restarted one, for the shards it lost).
    let v2 = (0..3)
        .filter(|i| *i != v1)
        .max_by_key(|i| views[&cluster.nodes[*i].id].serving.intersection(&v1_owned).count())
        .unwrap();
    let v2_id = cluster.nodes[v2].id.clone();
    let followers_before = views.clone();
    let (took2, served2) = kill_under_load(&mut cluster, &load, v2, &probes, &seller, shards, 2).await;
    eprintln!(
        "failover 2: {v2_id} SIGKILLed, a write to one of its {} shards acknowledged {took2:?} after",
        served2.len()
    );
    let views = until_members(
        &live_members(&cluster, 3),
        Duration::from_secs(10),
        "the second victim's shards served again",
        |v| served_once(v, shards),
    )
    .await;
    assert!(took2 <= Duration::from_secs(3), "failover 2 took {took2:?}: {views:#?}");
    for s in &served2 {
        let (server, _) = views.iter().find(|(_, v)| v.serving.contains(s)).unwrap();
        assert!(
            followers_before[server].following.contains_key(s),
            "shard {s} of {v2_id} taken by {server}, which did not follow it"
        );
    }
    let to_restarted = served2.iter().filter(|s| views[&v1_id].serving.contains(s)).count();
    eprintln!("{to_restarted} of the {} shards of {v2_id} now served by the restarted {v1_id}", served2.len());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    load.stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }

    let ledger = std::mem::take(&mut *load.ledger.lock().unwrap());
    assert!(ledger.violations.is_empty(), "answers no write may get: {:?}", ledger.violations);
    let alive = load.targets.lock().unwrap().clone();
    assert_eq!(alive.len(), 3, "two members and the gateway");
    let settled =
        everything_settled(&ledger, &alive, &[&early, &buyers[0], &buyers[1]], &accounts, &pending_before).await;
    eprintln!(
        "failover times: {took1:?} ({v1_id}), {took2:?} ({v2_id}); {settled}, {} accounts, \
         {} pending orders expired after the kills",
        accounts.len(),
        pending_before.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_disk_is_lost_rebuilds_from_snapshots_and_the_logs() {
    // Logs that keep little (4 KiB segments, 8 KiB kept): the writes made while the node is
    // down push what it would need out of them, so it must start from snapshots.
    let (mut cluster, shards, owners) = start_replicated_with(
        &[],
        &[("TICKETING_CLUSTER__LOG_SEGMENT_BYTES", "4096"), ("TICKETING_CLUSTER__LOG_RETENTION_BYTES", "8192")],
    )
    .await;

    // Acknowledged writes on every member: accounts, tickets (some edited), orders paid,
    // cancelled and pending (the default 15-minute window: they stay pending).
    let accounts = sign_up_on_every_member(&cluster, &owners, shards).await;
    let seller = cluster.mint_user("seller@example.com");
    let buyer = cluster.mint_user("buyer@example.com");
    // ticket → (title, the order holding it); order → status.
    let mut tickets: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    let mut orders: BTreeMap<String, &str> = BTreeMap::new();
    for m in 0..3 {
        for k in 0..20 {
            let node = &cluster.nodes[(m + k) % 3];
            let mut title = format!("t{m}-{k}");
            let t = cluster.nodes[m].create_ticket(&seller, &title, 10).await;
            let id = t["id"].as_str().unwrap().to_string();
            if k % 3 == 0 {
                title = format!("t{m}-{k} edited");
                let (status, body) =
                    node.put(&format!("/api/tickets/{id}"), &seller, json!({"title": title, "price": 11})).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
            let mut holder = None;
            if k % 4 != 0 {
                let (status, order) = node.post("/api/orders", &buyer, json!({"ticketId": id})).await;
                assert_eq!(status, StatusCode::CREATED, "{order}");
                let order_id = order["id"].as_str().unwrap().to_string();
                let status = match k % 4 {
                    1 => {
                        let pay = json!({"orderId": order_id, "token": "tok_visa"});
                        assert_eq!(node.post("/api/payments", &buyer, pay).await.0, StatusCode::CREATED);
                        holder = Some(order_id.clone());
                        "complete"
                    }
                    2 => {
                        let req = reqwest::Client::new().delete(node.url(&format!("/api/orders/{order_id}")));
                        assert_eq!(node.send(req, Some(&buyer)).await.0, StatusCode::NO_CONTENT);
                        "cancelled"
                    }
                    _ => {
                        holder = Some(order_id.clone());
                        "created"
                    }
                };
                orders.insert(order_id, status);
            }
            tickets.insert(id, (title, holder));
        }
    }

    // A member that owns shards dies and its disk is lost (with 8 shards one of the three
    // may own none).
    let wiped = (0..3).find(|i| !shards_of(&owners, &cluster.nodes[*i].id).is_empty()).unwrap();
    let wiped_id = cluster.nodes[wiped].id.clone();
    let wiped_owned = shards_of(&owners, &wiped_id);
    cluster.kill(wiped);
    cluster.wipe_data(wiped);
    assert_eq!(std::fs::read_dir(cluster.members[wiped].data.path()).unwrap().count(), 0, "the data dir is empty");
    let rest: Vec<usize> = (0..3).filter(|i| *i != wiped).collect();
    let others: Vec<ClusterNode> = rest.iter().map(|i| cluster.nodes[*i].clone()).collect();
    until_members(&others, Duration::from_secs(15), "the wiped node's shards served by the others", |v| {
        served_once(v, shards)
    })
    .await;
    // While it is down, its shards (served by their followers) take writes it never sees:
    // enough of them that their logs no longer hold their beginning.
    let mut while_down = 0;
    for round in 0..30 {
        for (n, (id, (title, holder))) in tickets.iter_mut().enumerate() {
            if holder.is_some() || !wiped_owned.contains(&shard_of(id, shards)) {
                continue;
            }
            let (status, body) = others[n % 2]
                .put(
                    &format!("/api/tickets/{id}"),
                    &seller,
                    json!({"title": format!("{id} edit {round} while {wiped_id} was down"), "price": 12}),
                )
                .await;
            assert_eq!(
                status,
                StatusCode::OK,
                "edit of {id} via {} while {wiped_id} is down: {body}",
                others[n % 2].id
            );
            *title = body["title"].as_str().unwrap().to_string();
            while_down += 1;
        }
    }
    assert!(
        while_down > 0,
        "no free ticket on the shards {wiped_owned:?} of {wiped_id}: {:?}",
        tickets.iter().map(|(id, (_, h))| (shard_of(id, shards), h.is_some())).collect::<Vec<_>>()
    );

    // It restarts on the empty dir and rebuilds, from the logs, a copy of every shard it owns.
    cluster.restart(wiped);
    let restarted = Instant::now();
    let views =
        until_members(&cluster.nodes.clone(), Duration::from_secs(60), "the wiped node rebuilt its copies", |v| {
            served_once(v, shards) && caught_up(v) && wiped_owned.iter().all(|s| v[&wiped_id].following.contains_key(s))
        })
        .await;
    let follows: BTreeSet<u64> = views[&wiped_id].following.keys().copied().collect();
    // The logs of the shards written while it was down no longer began at their start: each of
    // those copies began from a snapshot of the owner's.
    let (_, view) = cluster.nodes[wiped].admin("/admin/cluster").await;
    let from_snapshots: BTreeSet<u64> = view["copies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["snapshots"].as_u64() > Some(0))
        .map(|c| c["shard"].as_u64().unwrap())
        .collect();
    assert!(
        wiped_owned.is_subset(&from_snapshots),
        "{wiped_id} loaded snapshots of {from_snapshots:?}, not of every shard written while it was down {wiped_owned:?}"
    );
    eprintln!(
        "{wiped_id} rebuilt copies of {} shards in {:?}, {} of them from snapshots ({while_down} edits while it was down)",
        follows.len(),
        restarted.elapsed(),
        from_snapshots.len()
    );
    let taken_back: Vec<_> = views[&wiped_id].serving.intersection(&wiped_owned).collect();
    assert!(taken_back.is_empty(), "{wiped_id} took back shards it lost: {taken_back:?}");
    // Its metrics say the same: a copy followed per shard, each caught up.
    let (_, metrics) = cluster.nodes[wiped].get("/metrics", None).await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    let following = format!("ticketing_cluster_shard_copies{{role=\"following\"}} {}", follows.len());
    assert!(metrics.lines().any(|l| l == following), "{following} in\n{metrics}");
    for shard in &follows {
        let caught_up = format!("ticketing_cluster_follower_lag_entries{{shard=\"{shard}\"}} 0");
        assert!(metrics.lines().any(|l| l == caught_up), "{caught_up}");
    }
    // And the gauges the shard alert adds up (deploy/prometheus/alerts.yml): the cluster's
    // shards, and the ones this node serves.
    let serving = views[&wiped_id].serving.len();
    for line in [
        format!("ticketing_cluster_shards{{state=\"total\"}} {BROKER_SHARDS}"),
        format!("ticketing_cluster_shards{{state=\"serving\"}} {serving}"),
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }

    // The other holder of those copies (the node serving most of the shards it follows) dies:
    // the wiped node serves them from what it rebuilt.
    let other = rest
        .iter()
        .copied()
        .max_by_key(|i| views[&cluster.nodes[*i].id].serving.intersection(&follows).count())
        .unwrap();
    let other_id = cluster.nodes[other].id.clone();
    let copies: BTreeSet<u64> = views[&other_id].serving.intersection(&follows).copied().collect();
    assert!(!copies.is_empty(), "{wiped_id} follows no shard {other_id} serves");
    let on_copies = tickets.keys().filter(|id| copies.contains(&shard_of(id, shards))).count();
    assert!(on_copies > 0, "no acknowledged ticket on the shards {wiped_id} must serve from its copy");
    let killed_at = Instant::now();
    cluster.kill(other);
    let third = (0..3).find(|i| *i != wiped && *i != other).unwrap();
    let survivors = vec![cluster.nodes[wiped].clone(), cluster.nodes[third].clone()];
    let views = until_members(&survivors, Duration::from_secs(15), "the rebuilt copies served", |v| {
        served_once(v, shards) && copies.is_subset(&v[&wiped_id].serving)
    })
    .await;
    eprintln!(
        "{other_id} SIGKILLed: {wiped_id} serves the {} shards of it it had rebuilt {:?} after ({} in all)",
        copies.len(),
        killed_at.elapsed(),
        views[&wiped_id].serving.len()
    );

    // Every acknowledged write, read through both survivors: the ones on its rebuilt copies
    // come from what the wiped node read back from the logs.
    for (id, (title, holder)) in &tickets {
        for node in &survivors {
            let (status, ticket) = node.get(&format!("/api/tickets/{id}"), None).await;
            assert_eq!(status, StatusCode::OK, "ticket {id} via {}: {ticket}", node.id);
            assert_eq!(ticket["title"].as_str(), Some(title.as_str()), "ticket {id} via {}", node.id);
            assert_eq!(ticket["orderId"].as_str(), holder.as_deref(), "ticket {id} via {}", node.id);
        }
    }
    for (id, status) in &orders {
        for node in &survivors {
            let (code, order) = node.get(&format!("/api/orders/{id}"), Some(&buyer)).await;
            assert_eq!((code, order["status"].as_str()), (StatusCode::OK, Some(*status)), "order {id} via {}", node.id);
        }
    }
    sign_in_everywhere(&accounts, &survivors).await;

    // And the rebuilt copies take writes: an edit and a reservation on each shard it now serves
    // from them, where a free ticket is.
    let buyer2 = cluster.mint_user("after@example.com");
    let mut written = 0;
    for (id, (_, holder)) in &tickets {
        if holder.is_some() || !copies.contains(&shard_of(id, shards)) {
            continue;
        }
        let node = &survivors[written % 2];
        let (status, body) =
            node.put(&format!("/api/tickets/{id}"), &seller, json!({"title": "rebuilt", "price": 13})).await;
        assert_eq!(status, StatusCode::OK, "edit of {id} via {}: {body}", node.id);
        let (status, order) = node.post("/api/orders", &buyer2, json!({"ticketId": id})).await;
        assert_eq!(status, StatusCode::CREATED, "reserve {id} via {}: {order}", node.id);
        let (_, ticket) = survivors[(written + 1) % 2].get(&format!("/api/tickets/{id}"), None).await;
        assert_eq!((ticket["title"].as_str(), &ticket["orderId"]), (Some("rebuilt"), &order["id"]), "{ticket}");
        written += 1;
    }
    eprintln!(
        "{} tickets, {} orders, {} accounts read back; {on_copies} tickets on the rebuilt copies, {written} written to after",
        tickets.len(),
        orders.len(),
        accounts.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_log_goes_quiet_while_behind_subscribes_again_and_catches_up() {
    // Every copy's first subscription to its log reads nothing, as a stream consumer can go
    // quiet without its channel closing: each follower must notice and subscribe again.
    let (cluster, members, shards) = start_with_fault("stall_following").await;
    until_members(&members, Duration::from_secs(20), "every shard served", |v| served_once(v, shards)).await;
    // A write on every shard.
    let seller = cluster.mint_user("seller@example.com");
    let mut written = BTreeSet::new();
    for n in 0..200 {
        if written.len() == shards as usize {
            break;
        }
        let t = cluster.nodes[n % 3].create_ticket(&seller, &format!("after-{n}"), 10).await;
        written.insert(shard_of(t["id"].as_str().unwrap(), shards));
    }
    assert_eq!(written.len(), shards as usize, "a write on every shard");
    // Every follower has it: it saw its subscription read nothing while the log grew (the
    // log's length comes from the broker's statistics, seconds late), subscribed again and
    // read the term's marker and the write.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (mut behind, mut resubscribed) = (Vec::new(), BTreeSet::new());
        for node in &members {
            let (_, view) = node.admin("/admin/cluster").await;
            for copy in view["following"].as_array().unwrap() {
                let got = |field: &str| copy[field].as_u64().unwrap_or(0);
                if got("resubscribed") > 0 {
                    resubscribed.insert(got("shard"));
                }
                if got("term") == 0 || got("applied") == 0 {
                    behind.push(format!("{}: {copy}", node.id));
                }
            }
        }
        if behind.is_empty() && resubscribed.len() == shards as usize {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "followers without the write: {behind:#?}; shards whose follower subscribed again: {resubscribed:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    until_members(&members, Duration::from_secs(20), "every shard served, followed and caught up", |v| {
        served_once(v, shards) && replicated(v, shards) && caught_up(v)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_given_up_after_its_term_began_ends_that_term_and_its_copy_follows_again() {
    // On every node, each shard's first serving fails after its term began (as when the
    // channel closes at that moment): the lease is given up, and another node, or this one,
    // takes it in a new term. The term given up must end here: a copy still "serving" in it
    // would follow nothing, and if this node took the lease again it would serve that stale
    // copy without beginning a term.
    let (cluster, members, shards) = start_with_fault("refuse_first_serve").await;
    let settled = |v: &BTreeMap<String, Replication>| {
        served_once(v, shards)
            && replicated(v, shards)
            && caught_up(v)
            && v.values().all(|n| n.claimed.keys().copied().collect::<BTreeSet<u64>>() == n.serving)
    };
    let views =
        until_members(&members, Duration::from_secs(45), "every copy serving only what its node serves", settled).await;
    // Every shard is served in a term begun after the one given up.
    for (node, view) in &views {
        for (shard, term) in &view.claimed {
            assert!(*term >= 2, "{node} serves shard {shard} in term {term}: no new term was begun");
        }
    }
    // And its copies take what is written next.
    let seller = cluster.mint_user("seller@example.com");
    for n in 0..24 {
        cluster.nodes[n % 3].create_ticket(&seller, &format!("after-{n}"), 10).await;
    }
    until_members(&members, Duration::from_secs(10), "every copy at the end of its log after the writes", settled)
        .await;
}

/// Three members on the three-node broker, with replicated shards and the test-only fault
/// `fault` (`testing.crash_at`) on each: the cluster, its members and its shard count.
async fn start_with_fault(fault: &str) -> (TestCluster, Vec<ClusterNode>, u64) {
    let cluster = TestCluster::start_on_brokers_with(
        &["node-1", "node-2", "node-3"],
        &[],
        &[("TICKETING_CLUSTER__REPLICAS", "1"), ("TICKETING_TESTING__CRASH_AT", fault)],
    )
    .await;
    let members = live_members(&cluster, 3);
    let (_, view) = cluster.nodes[0].admin("/admin/cluster").await;
    let shards = view["shards"]["count"].as_u64().unwrap();
    (cluster, members, shards)
}
