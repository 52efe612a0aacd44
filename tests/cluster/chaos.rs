//! Chaos on a replicated cluster, on the three-node broker of `scripts/brokers`: three members
//! and a gateway under buyers for two minutes (and at least ten kills); a member SIGKILLed
//! whenever every shard is served and every copy is at the end of its log (one of them with its
//! data dir wiped before it restarts), and the broker node every node is linked to stopped and
//! started again. Afterwards nothing acknowledged is lost, no ticket is sold twice, every hold is
//! settled and every expiry fired.

use crate::helpers::*;
use crate::load::*;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long the chaos lasts at least (`CHAOS_SECONDS` to change it), and the kills it makes at
/// least.
const CHAOS_SECONDS: u64 = 120;
const KILLS: usize = 10;

/// Starts a stopped broker node again however the test ends, for the tests after it.
struct StartAgain(&'static str);

impl Drop for StartAgain {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl").args(["-n", self.0, "start_app"]).output();
        let _ = std::process::Command::new("rabbitmqctl").args(["-n", self.0, "await_startup"]).output();
    }
}

/// Waits until every shard is served once, followed by another member, and every copy is at
/// the end of its log. The load runs meanwhile; if that moment does not come within 5 s (lag is
/// sampled each second, and writes keep coming), the writers hold off until it does. Returns
/// the views and whether the writers had to hold off.
async fn steady(
    cluster: &TestCluster,
    load: &Load,
    shards: u64,
    round: usize,
) -> (BTreeMap<String, Replication>, bool) {
    let since = Instant::now();
    let mut paused = false;
    loop {
        let mut views = BTreeMap::new();
        for node in live_members(cluster, 3) {
            views.insert(node.id.clone(), replication(&node).await);
        }
        if served_once(&views, shards) && replicated(&views, shards) && caught_up(&views) {
            load.paused.store(false, Ordering::SeqCst);
            return (views, paused);
        }
        if since.elapsed() > Duration::from_secs(5) && !paused {
            load.paused.store(true, Ordering::SeqCst);
            paused = true;
        }
        if since.elapsed() >= Duration::from_secs(60) {
            // Each node's own account (link, leases held, every copy's term, lag and errors).
            let mut own = BTreeMap::new();
            for node in live_members(cluster, 3) {
                let (_, mut view) = node.admin("/admin/cluster").await;
                if let Some(view) = view.as_object_mut() {
                    view.remove("shards");
                }
                own.insert(node.id.clone(), view);
            }
            panic!(
                "round {round}: every shard served, followed and caught up: still not after 60 s: {views:#?}\n\
                 the members' own views: {own:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_minutes_of_kills_a_wiped_disk_and_a_lost_broker_node_lose_nothing() {
    let chaos_for =
        Duration::from_secs(std::env::var("CHAOS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(CHAOS_SECONDS));
    let (mut cluster, shards, owners) = start_replicated().await;
    let Running { load, accounts, seller, early, buyers, mut probes, pending_before, writers } =
        start_load(&cluster, &owners, shards).await;
    // A probe ticket on every shard, so that a write to any dead node's shards can be timed.
    for n in 0.. {
        let covered: std::collections::BTreeSet<u64> = probes.iter().map(|t| shard_of(t, shards)).collect();
        if covered.len() == shards as usize {
            break;
        }
        assert!(n < 200, "no probe ticket on some shard after 200 listings: {covered:?}");
        let title = format!("cover-{n}");
        let ticket = cluster.nodes[n % 3].create_ticket(&seller, &title, 10).await;
        let id = ticket["id"].as_str().unwrap().to_string();
        load.ledger.lock().unwrap().acknowledged_title(&id, title);
        probes.push(id);
    }

    let started = Instant::now();
    let (mut failovers, mut held_off, mut wiped, mut broker_back) = (Vec::new(), 0, None, None);
    let mut round = 0;
    while started.elapsed() < chaos_for || failovers.len() < KILLS {
        round += 1;
        assert!(started.elapsed() < chaos_for * 3, "only {} kills in {:?}", failovers.len(), started.elapsed());
        let (views, paused) = steady(&cluster, &load, shards, round).await;
        held_off += usize::from(paused);

        // Halfway: the broker node every node is linked to stops; every node is serving again,
        // through the two others, within 15 s; then it starts again.
        if broker_back.is_none() && started.elapsed() >= chaos_for / 2 {
            let _start_again = StartAgain("brk1@localhost");
            rabbitmqctl(&["-n", "brk1@localhost", "stop_app"]);
            let stopped = Instant::now();
            let members = live_members(&cluster, 3);
            let deadline = stopped + Duration::from_secs(15);
            let alive = load.targets.lock().unwrap().clone();
            for node in &alive {
                while !node.ready().await {
                    assert!(Instant::now() < deadline, "{} not ready 15 s after its broker node stopped", node.id);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            until_members(&members, left, "every shard served again 15 s after the broker node stopped", |v| {
                served_once(v, shards)
            })
            .await;
            broker_back = Some(stopped.elapsed());
            eprintln!(
                "round {round}: broker node brk1 stopped; every node ready and every shard served after {:?}",
                stopped.elapsed()
            );
            // Dropping the guard starts it again.
            continue;
        }

        // The member serving most shards dies; the second one to die loses its disk too.
        let victim = (0..3).max_by_key(|i| (views[&cluster.nodes[*i].id].serving.len(), (i + round) % 3)).unwrap();
        let victim_id = cluster.nodes[victim].id.clone();
        let (took, served) = kill_under_load(&mut cluster, &load, victim, &probes, &seller, shards, round).await;
        let wipe = failovers.len() == 1;
        if wipe {
            cluster.wipe_data(victim);
            wiped = Some(victim_id.clone());
        }
        until_members(
            &live_members(&cluster, 3),
            Duration::from_secs(10),
            "the dead node's shards served again",
            |v| served_once(v, shards),
        )
        .await;
        eprintln!(
            "round {round}: {victim_id} SIGKILLed{} serving {} shards; a write to them acknowledged {took:?} after",
            if wipe { " and its data dir wiped," } else { "," },
            served.len()
        );
        assert!(took <= Duration::from_secs(3), "round {round}: failover took {took:?}");
        failovers.push(took);
        cluster.restart(victim);
        load.targets.lock().unwrap().push(cluster.nodes[victim].clone());
    }
    let chaos_took = started.elapsed();
    steady(&cluster, &load, shards, round + 1).await;
    load.stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }

    let ledger = std::mem::take(&mut *load.ledger.lock().unwrap());
    assert!(ledger.violations.is_empty(), "answers no write may get: {:?}", ledger.violations);
    assert!(broker_back.is_some(), "the broker node was stopped during the chaos");
    assert!(wiped.is_some(), "a member's disk was lost during the chaos");
    let alive = load.targets.lock().unwrap().clone();
    assert_eq!(alive.len(), 4, "three members and the gateway");
    let settled =
        everything_settled(&ledger, &alive, &[&early, &buyers[0], &buyers[1]], &accounts, &pending_before).await;
    failovers.sort();
    eprintln!(
        "chaos for {chaos_took:?}: {} kills (writers held off before {held_off} of them), failover min {:?} / median {:?} / max {:?}; \
         {} wiped; broker node lost for {broker_back:?}; {settled}, {} accounts, {} pending orders expired",
        failovers.len(),
        failovers[0],
        failovers[failovers.len() / 2],
        failovers[failovers.len() - 1],
        wiped.unwrap_or_default(),
        accounts.len(),
        pending_before.len()
    );
}
