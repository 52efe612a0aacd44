//! Replicated shards, on the three-node broker of `scripts/brokers`: a shard's owner appends
//! every write to the shard's RabbitMQ stream before acknowledging it, the next node in the
//! shard's ranking follows that stream into its own data dir, and takes the shard over when the
//! owner dies (its lease queue `<name>.shard.N` vanishes). Killing owners under load costs their
//! shards seconds and nothing acknowledged; a node whose disk is lost rebuilds its copies from
//! the logs and can serve them.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The orders' window in the load test: pending orders made before a kill expire in the test.
const EXPIRATION_SECONDS: u64 = 6;

/// The shard of the slot an id carries (as `owner_of` computes it).
fn shard_of(id: &str, shards: u64) -> u64 {
    let bytes = uuid::Uuid::parse_str(id).unwrap().into_bytes();
    let slot = u64::from(u16::from_be_bytes([bytes[14], bytes[15]])) % 4096;
    slot * shards / 4096
}

fn index_of(cluster: &TestCluster, id: &str) -> usize {
    cluster.nodes.iter().position(|n| n.id == id).unwrap()
}

/// The members (not gateways) running now.
fn live_members(cluster: &TestCluster, members: usize) -> Vec<ClusterNode> {
    (0..members).filter(|i| cluster.members[*i].process.is_some()).map(|i| cluster.nodes[i].clone()).collect()
}

/// What one member's `/admin/cluster` says about replication.
#[derive(Clone, Debug, Default)]
struct Replication {
    /// The shards it serves now.
    serving: BTreeSet<u64>,
    /// The shards it follows, with how many entries it is behind (None: not reported).
    following: BTreeMap<u64, Option<u64>>,
    /// The configured owner (rank 1) of every shard.
    owners: Vec<String>,
}

async fn replication(node: &ClusterNode) -> Replication {
    let (status, view) = node.admin("/admin/cluster").await;
    assert_eq!(status, StatusCode::OK, "/admin/cluster of {}: {view}", node.id);
    let serving = view["serving"].as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default();
    let following = view["following"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| Some((f["shard"].as_u64()?, f["lag"].as_u64()))).collect())
        .unwrap_or_default();
    let owners = view["shards"]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["owner"].as_str().unwrap().to_string())
        .collect();
    Replication { serving, following, owners }
}

/// Polls the `/admin/cluster` of `nodes` until `done` holds of their views (by node id), and
/// returns those views; fails after `within`, showing the last ones.
async fn until_members(
    nodes: &[ClusterNode],
    within: Duration,
    what: &str,
    done: impl Fn(&BTreeMap<String, Replication>) -> bool,
) -> BTreeMap<String, Replication> {
    let deadline = Instant::now() + within;
    loop {
        let mut views = BTreeMap::new();
        for node in nodes {
            views.insert(node.id.clone(), replication(node).await);
        }
        if done(&views) {
            return views;
        }
        assert!(Instant::now() < deadline, "{what}: still not after {within:?}: {views:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every shard is served, each by exactly one of these nodes.
fn served_once(views: &BTreeMap<String, Replication>, shards: u64) -> bool {
    let all: BTreeSet<u64> = views.values().flat_map(|v| v.serving.iter().copied()).collect();
    let total: usize = views.values().map(|v| v.serving.len()).sum();
    all == (0..shards).collect() && total == shards as usize
}

/// Every shard is followed by a node other than the one serving it.
fn replicated(views: &BTreeMap<String, Replication>, shards: u64) -> bool {
    (0..shards).all(|s| {
        views.iter().any(|(server, v)| {
            v.serving.contains(&s) && views.iter().any(|(id, f)| id != server && f.following.contains_key(&s))
        })
    })
}

/// Every node's copy of every shard it follows is at the end of the shard's log.
fn caught_up(views: &BTreeMap<String, Replication>) -> bool {
    views.values().all(|v| v.following.values().all(|lag| *lag == Some(0)))
}

fn shards_of(owners: &[String], node: &str) -> BTreeSet<u64> {
    owners.iter().enumerate().filter(|(_, o)| o.as_str() == node).map(|(s, _)| s as u64).collect()
}

/// Signs up accounts (password "password") through every node in turn until every member owns
/// at least two of them: (email, user id).
async fn sign_up_on_every_member(cluster: &TestCluster, owners: &[String], shards: u64) -> Vec<(String, String)> {
    let members: BTreeSet<&str> = owners.iter().map(String::as_str).collect();
    let mut per_owner: HashMap<String, usize> = HashMap::new();
    let mut accounts = Vec::new();
    for n in 0..60 {
        if members.iter().all(|m| per_owner.get(*m).copied().unwrap_or(0) >= 2) {
            break;
        }
        let email = format!("account{n}@example.com");
        let node = &cluster.nodes[n % cluster.nodes.len()];
        let res = node.account("signup", &email).await;
        assert_eq!(res.status(), StatusCode::CREATED, "sign-up via {}", node.id);
        let body: Value = res.json().await.unwrap();
        let id = body["id"].as_str().unwrap().to_string();
        *per_owner.entry(owners[shard_of(&id, shards) as usize].clone()).or_default() += 1;
        accounts.push((email, id));
    }
    assert!(
        members.iter().all(|m| per_owner.get(*m).copied().unwrap_or(0) >= 2),
        "accounts on every member: {per_owner:?}"
    );
    accounts
}

async fn sign_in_everywhere(accounts: &[(String, String)], nodes: &[ClusterNode]) {
    for (email, _) in accounts {
        for node in nodes {
            assert_eq!(
                node.account("signin", email).await.status(),
                StatusCode::OK,
                "{email} signs in via {}",
                node.id
            );
        }
    }
}

/// How an order must end once every pending order has expired.
#[derive(Clone, Debug)]
struct Fate {
    ticket: String,
    buyer: Who,
    ends: Vec<&'static str>,
}

/// Every write the load and the test made, as acknowledged.
#[derive(Default)]
struct Ledger {
    /// Ticket → the titles it may have: its last acknowledged one, then those of the writes
    /// since whose outcome is unknown (504, or no answer from a node being killed).
    tickets: HashMap<String, Vec<String>>,
    /// Acknowledged orders.
    orders: HashMap<String, Fate>,
    /// When the last reservation that may have made an order was sent.
    last_reservation: Option<Instant>,
    /// Answers no write may get (checked at the end, with everything the load saw).
    violations: Vec<String>,
}

impl Ledger {
    fn acknowledged_title(&mut self, ticket: &str, title: String) {
        self.tickets.insert(ticket.to_string(), vec![title]);
    }

    fn maybe_title(&mut self, ticket: &str, title: String) {
        self.tickets.entry(ticket.to_string()).or_default().push(title);
    }
}

/// The writers' shared state: the nodes alive now (the test updates it around kills and
/// restarts), the ledger, and the tickets created under load for the reservers.
struct Load {
    stop: AtomicBool,
    /// Writers hold off while set (for a moment in which every log is still).
    paused: AtomicBool,
    targets: Mutex<Vec<ClusterNode>>,
    ledger: Mutex<Ledger>,
    pool: Mutex<Vec<String>>,
    http: reqwest::Client,
}

impl Load {
    fn target(&self, n: usize) -> ClusterNode {
        let targets = self.targets.lock().unwrap();
        targets[n % targets.len()].clone()
    }

    /// A request that may meet a node being killed: None when no answer came (outcome unknown).
    async fn call(&self, req: reqwest::RequestBuilder, who: &Who) -> Option<(StatusCode, Value)> {
        let res = req.bearer_auth(&who.token).send().await.ok()?;
        let status = res.status();
        let text = res.text().await.ok()?;
        Some((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    fn violation(&self, what: String) {
        self.ledger.lock().unwrap().violations.push(what);
    }

    /// Whether to stop, after waiting out a pause.
    async fn stopped(&self) -> bool {
        while self.paused.load(Ordering::SeqCst) && !self.stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.stop.load(Ordering::SeqCst)
    }
}

fn unknown(answer: &Option<(StatusCode, Value)>) -> bool {
    matches!(answer, None | Some((StatusCode::GATEWAY_TIMEOUT, _)))
}

fn not_run(answer: &Option<(StatusCode, Value)>) -> bool {
    matches!(answer, Some((StatusCode::SERVICE_UNAVAILABLE, _)))
}

/// Lists tickets, paced, through every node in turn.
async fn create_tickets(load: Arc<Load>, w: usize, seller: Who) {
    let mut i = 0;
    while !load.stopped().await {
        let node = load.target(w + i);
        let title = format!("load{w}-{i}");
        let req = load.http.post(node.url("/api/tickets")).json(&json!({"title": title, "price": 5}));
        let answer = load.call(req, &seller).await;
        match answer {
            Some((StatusCode::CREATED, body)) => {
                let id = body["id"].as_str().unwrap().to_string();
                load.ledger.lock().unwrap().acknowledged_title(&id, title);
                load.pool.lock().unwrap().push(id);
                // Paced: the tests beside this one share the two cores.
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            ref a if unknown(a) || not_run(a) => tokio::time::sleep(Duration::from_millis(50)).await,
            Some((status, body)) => load.violation(format!("create via {}: {status} {body}", node.id)),
            None => unreachable!(),
        }
        i += 1;
    }
}

/// Reserves every ticket created under load, in order, as `buyer`: two reservers race for each
/// ticket; the first pays every other order it gets, the second never pays.
async fn reserve_tickets(load: Arc<Load>, r: usize, buyer: Who) {
    let (mut cursor, mut got) = (0, 0);
    while !load.stopped().await {
        let Some(ticket) = load.pool.lock().unwrap().get(cursor).cloned() else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        cursor += 1;
        let node = load.target(r + cursor);
        let sent = Instant::now();
        let req = load.http.post(node.url("/api/orders")).json(&json!({"ticketId": ticket}));
        let answer = load.call(req, &buyer).await;
        match answer {
            Some((StatusCode::CREATED, order)) => {
                let id = order["id"].as_str().unwrap().to_string();
                let mut ends = vec!["cancelled"];
                if r == 0 && got % 2 == 0 {
                    let node = load.target(r + cursor + 1);
                    let req =
                        load.http.post(node.url("/api/payments")).json(&json!({"orderId": id, "token": "tok_visa"}));
                    let paid = load.call(req, &buyer).await;
                    match paid {
                        Some((StatusCode::CREATED, _)) => ends = vec!["complete"],
                        ref a if not_run(a) => {}
                        ref a if unknown(a) => ends = vec!["complete", "cancelled"],
                        Some((status, body)) => load.violation(format!("pay {id} via {}: {status} {body}", node.id)),
                        None => unreachable!(),
                    }
                }
                got += 1;
                let mut ledger = load.ledger.lock().unwrap();
                ledger.orders.insert(id, Fate { ticket, buyer: buyer.clone(), ends });
                ledger.last_reservation = Some(sent);
            }
            // Taken by the other reserver.
            Some((StatusCode::BAD_REQUEST, _)) => {}
            ref a if not_run(a) => {}
            ref a if unknown(a) => load.ledger.lock().unwrap().last_reservation = Some(sent),
            Some((status, body)) => load.violation(format!("reserve {ticket} via {}: {status} {body}", node.id)),
            None => unreachable!(),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Edits `tickets` (never reserved) in turn, through every node in turn.
async fn update_tickets(load: Arc<Load>, seller: Who, tickets: Vec<String>) {
    let mut i = 0;
    while !load.stopped().await {
        let ticket = &tickets[i % tickets.len()];
        let node = load.target(i);
        let title = format!("edit-{i}");
        let req = load.http.put(node.url(&format!("/api/tickets/{ticket}"))).json(&json!({"title": title, "price": 7}));
        let answer = load.call(req, &seller).await;
        match answer {
            Some((StatusCode::OK, _)) => load.ledger.lock().unwrap().acknowledged_title(ticket, title),
            ref a if not_run(a) => {}
            ref a if unknown(a) => load.ledger.lock().unwrap().maybe_title(ticket, title),
            Some((status, body)) => load.violation(format!("edit {ticket} via {}: {status} {body}", node.id)),
            None => unreachable!(),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        i += 1;
    }
}

/// Edits the tickets `on_dead_shards` in turn through the nodes alive until one edit is
/// acknowledged: how long after `killed_at` that was.
async fn first_write_after(
    load: &Load,
    seller: &Who,
    on_dead_shards: &[String],
    killed_at: Instant,
    round: usize,
) -> Duration {
    for k in 0.. {
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "round {round}: no write to the dead node's shards acknowledged 30 s after the kill"
        );
        let ticket = &on_dead_shards[k % on_dead_shards.len()];
        let node = load.target(k);
        let title = format!("probe{round}-{k}");
        let req = load.http.put(node.url(&format!("/api/tickets/{ticket}"))).json(&json!({"title": title, "price": 9}));
        let answer = load.call(req, seller).await;
        match answer {
            Some((StatusCode::OK, _)) => {
                let took = killed_at.elapsed();
                load.ledger.lock().unwrap().acknowledged_title(ticket, title);
                return took;
            }
            ref a if not_run(a) => {}
            ref a if unknown(a) => load.ledger.lock().unwrap().maybe_title(ticket, title),
            Some((status, body)) => panic!("round {round}: edit of {ticket} via {}: {status} {body}", node.id),
            None => unreachable!(),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!()
}

/// SIGKILLs member `victim` under the running load and measures until a write to a ticket of
/// a shard it served is acknowledged through the others. Returns that time and those shards.
async fn kill_under_load(
    cluster: &mut TestCluster,
    load: &Load,
    victim: usize,
    probes: &[String],
    seller: &Who,
    shards: u64,
    round: usize,
) -> (Duration, BTreeSet<u64>) {
    let served = replication(&cluster.nodes[victim]).await.serving;
    assert!(!served.is_empty(), "round {round}: {} serves nothing", cluster.nodes[victim].id);
    let on_dead_shards: Vec<String> =
        probes.iter().filter(|t| served.contains(&shard_of(t, shards))).cloned().collect();
    assert!(!on_dead_shards.is_empty(), "round {round}: no probe ticket on the shards of {}", cluster.nodes[victim].id);
    let victim_id = cluster.nodes[victim].id.clone();
    let killed_at = Instant::now();
    cluster.kill(victim);
    load.targets.lock().unwrap().retain(|n| n.id != victim_id);
    let took = first_write_after(load, seller, &on_dead_shards, killed_at, round).await;
    (took, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_owner_under_load_loses_nothing_and_its_shards_are_served_again_within_3_s() {
    let expiration = EXPIRATION_SECONDS.to_string();
    let extra = [("TICKETING_ORDERS__EXPIRATION_SECONDS", expiration.as_str()), ("TICKETING_CLUSTER__REPLICAS", "1")];
    let mut cluster = TestCluster::start_on_brokers_with(&["node-1", "node-2", "node-3"], &["gate"], &extra).await;
    let (_, view) = cluster.nodes[0].admin("/admin/cluster").await;
    let shards = view["shards"]["count"].as_u64().unwrap();
    // Every shard served by one member and followed, caught up, by another.
    let views =
        until_members(&live_members(&cluster, 3), Duration::from_secs(20), "every shard served and followed", |v| {
            served_once(v, shards) && replicated(v, shards) && caught_up(v)
        })
        .await;
    let owners = views.values().next().unwrap().owners.clone();

    // Before any kill: accounts on every member, tickets listed through every member (so on
    // its shards), orders paid, cancelled and left pending.
    let accounts = sign_up_on_every_member(&cluster, &owners, shards).await;
    let seller = cluster.mint_user("seller@example.com");
    let early = cluster.mint_user("early@example.com");
    let mut ledger = Ledger::default();
    let (mut probes, mut edited, mut held) = (Vec::new(), Vec::new(), Vec::new());
    for m in 0..3 {
        let node = &cluster.nodes[m];
        for k in 0..8 {
            for (list, kind) in [(&mut probes, "probe"), (&mut edited, "edited")] {
                let title = format!("{kind}{m}-{k}");
                let t = node.create_ticket(&seller, &title, 10).await;
                let id = t["id"].as_str().unwrap().to_string();
                ledger.acknowledged_title(&id, title);
                list.push(id);
            }
        }
        for k in 0..6 {
            let title = format!("held{m}-{k}");
            let t = node.create_ticket(&seller, &title, 10).await;
            let id = t["id"].as_str().unwrap().to_string();
            ledger.acknowledged_title(&id, title);
            held.push(id);
        }
    }
    let mut pending_before = Vec::new();
    // Paid and cancelled ones first, the pending ones last: their windows end after the kill.
    for pending in [false, true] {
        for (i, ticket) in held.iter().enumerate().filter(|(i, _)| (i % 3 == 2) == pending) {
            let node = &cluster.nodes[(i + 1) % 4];
            let (status, order) = node.post("/api/orders", &early, json!({"ticketId": ticket})).await;
            assert_eq!(status, StatusCode::CREATED, "reserve {ticket} via {}: {order}", node.id);
            let id = order["id"].as_str().unwrap().to_string();
            let ends = match i % 3 {
                0 => {
                    let pay = json!({"orderId": id, "token": "tok_visa"});
                    let (status, body) = cluster.nodes[(i + 2) % 4].post("/api/payments", &early, pay).await;
                    assert_eq!(status, StatusCode::CREATED, "{body}");
                    "complete"
                }
                1 => {
                    let node = &cluster.nodes[(i + 2) % 4];
                    let req = reqwest::Client::new().delete(node.url(&format!("/api/orders/{id}")));
                    assert_eq!(node.send(req, Some(&early)).await.0, StatusCode::NO_CONTENT);
                    "cancelled"
                }
                _ => {
                    pending_before.push(id.clone());
                    ledger.last_reservation = Some(Instant::now());
                    "cancelled"
                }
            };
            ledger.orders.insert(id, Fate { ticket: ticket.clone(), buyer: early.clone(), ends: vec![ends] });
        }
    }

    // The load: two listers, two reservers racing for what they list, one editor, through the
    // gateway and every member alive.
    let load = Arc::new(Load {
        stop: AtomicBool::new(false),
        paused: AtomicBool::new(false),
        targets: Mutex::new(cluster.nodes.clone()),
        ledger: Mutex::new(ledger),
        pool: Mutex::default(),
        http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap(),
    });
    let buyers = [cluster.mint_user("reserver0@example.com"), cluster.mint_user("reserver1@example.com")];
    let mut writers = Vec::new();
    for (w, buyer) in buyers.iter().enumerate() {
        writers.push(tokio::spawn(create_tickets(load.clone(), w, seller.clone())));
        writers.push(tokio::spawn(reserve_tickets(load.clone(), w, buyer.clone())));
    }
    writers.push(tokio::spawn(update_tickets(load.clone(), seller.clone(), edited.clone())));
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
    let reader = &alive[0];

    // Every account made before the kills signs in, through every node alive.
    sign_in_everywhere(&accounts, &alive).await;

    // Every order of every buyer: the acknowledged ones and any a reservation with an unknown
    // outcome made.
    let mut orders: BTreeMap<String, (String, Who)> = BTreeMap::new();
    for buyer in [&early, &buyers[0], &buyers[1]] {
        let acknowledged: BTreeSet<&String> =
            ledger.orders.iter().filter(|(_, f)| f.buyer.token == buyer.token).map(|(id, _)| id).collect();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, listed) = reader.get("/api/orders", Some(buyer)).await;
            assert_eq!(status, StatusCode::OK, "{listed}");
            let listed: BTreeMap<String, String> = listed
                .as_array()
                .unwrap()
                .iter()
                .map(|o| (o["id"].as_str().unwrap().to_string(), o["ticket"]["id"].as_str().unwrap().to_string()))
                .collect();
            let missing: Vec<_> = acknowledged.iter().filter(|id| !listed.contains_key(**id)).collect();
            if missing.is_empty() {
                orders.extend(listed.into_iter().map(|(id, ticket)| (id, (ticket, buyer.clone()))));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "acknowledged orders not in the buyer's list via {}: {missing:?}",
                reader.id
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Every window has passed: pending orders expired, the paid ones complete.
    let last = ledger.last_reservation.unwrap();
    let expired_by = last + Duration::from_secs(EXPIRATION_SECONDS + 1);
    tokio::time::sleep(expired_by.saturating_duration_since(Instant::now())).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut statuses: BTreeMap<String, String> = BTreeMap::new();
    for (id, (ticket, buyer)) in &orders {
        let allowed: Vec<&str> = match ledger.orders.get(id) {
            Some(fate) => {
                assert_eq!(&fate.ticket, ticket, "order {id}");
                fate.ends.clone()
            }
            None => vec!["complete", "cancelled"],
        };
        let status = loop {
            let (code, order) = reader.get(&format!("/api/orders/{id}"), Some(buyer)).await;
            assert_eq!(code, StatusCode::OK, "order {id} via {}: {order}", reader.id);
            let status = order["status"].as_str().unwrap().to_string();
            if allowed.contains(&status.as_str()) {
                break status;
            }
            assert!(Instant::now() < deadline, "order {id} is {status}, not one of {allowed:?}: {order}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        for node in &alive {
            let (code, order) = node.get(&format!("/api/orders/{id}"), Some(buyer)).await;
            assert_eq!(
                (code, order["status"].as_str()),
                (StatusCode::OK, Some(status.as_str())),
                "order {id} via {}",
                node.id
            );
        }
        statuses.insert(id.clone(), status);
    }
    for id in &pending_before {
        assert_eq!(
            statuses.get(id).map(String::as_str),
            Some("cancelled"),
            "pending order {id} made before the kills expired"
        );
    }

    // No ticket has two live orders, and each ticket is held by its live order (and only then),
    // with its acknowledged title, through every node alive.
    let mut live: HashMap<&String, Vec<&String>> = HashMap::new();
    for (id, (ticket, _)) in &orders {
        if statuses[id] != "cancelled" {
            live.entry(ticket).or_default().push(id);
        }
    }
    for (ticket, held_by) in &live {
        assert!(held_by.len() <= 1, "ticket {ticket} sold twice: {held_by:?}");
    }
    // (A cancelled order's hold is released just after its status changes: a few moments.)
    let deadline = Instant::now() + Duration::from_secs(10);
    for (id, titles) in &ledger.tickets {
        let order = live.get(id).map(|o| o[0].as_str());
        for node in &alive {
            loop {
                let (status, ticket) = node.get(&format!("/api/tickets/{id}"), None).await;
                assert_eq!(status, StatusCode::OK, "ticket {id} via {}: {ticket}", node.id);
                let title = ticket["title"].as_str().unwrap_or_default();
                assert!(
                    titles.iter().any(|t| t == title),
                    "ticket {id} via {}: {title:?}, acknowledged {titles:?}",
                    node.id
                );
                if ticket["orderId"].as_str() == order {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "ticket {id} via {}: held by {}, its live order is {order:?}",
                    node.id,
                    ticket["orderId"]
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let uncertain = ledger.tickets.values().filter(|t| t.len() > 1).count();
    eprintln!(
        "failover times: {took1:?} ({v1_id}), {took2:?} ({v2_id}); {} tickets ({uncertain} with an unknown last edit), \
         {} orders ({} acknowledged), {} accounts, {} pending orders expired after the kills",
        ledger.tickets.len(),
        orders.len(),
        ledger.orders.len(),
        accounts.len(),
        pending_before.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_disk_is_lost_rebuilds_from_the_logs() {
    let mut cluster = TestCluster::start_on_brokers_with(
        &["node-1", "node-2", "node-3"],
        &[],
        &[("TICKETING_CLUSTER__REPLICAS", "1")],
    )
    .await;
    let (_, view) = cluster.nodes[0].admin("/admin/cluster").await;
    let shards = view["shards"]["count"].as_u64().unwrap();
    let views =
        until_members(&cluster.nodes.clone(), Duration::from_secs(20), "every shard served and followed", |v| {
            served_once(v, shards) && replicated(v, shards) && caught_up(v)
        })
        .await;
    let owners = views.values().next().unwrap().owners.clone();

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
    // While it is down, its shards (served by their followers) take writes it never sees.
    let mut while_down = 0;
    for (n, (id, (title, holder))) in tickets.iter_mut().enumerate() {
        if holder.is_some() || !wiped_owned.contains(&shard_of(id, shards)) {
            continue;
        }
        *title = format!("{title} while {wiped_id} was down");
        let (status, body) =
            others[n % 2].put(&format!("/api/tickets/{id}"), &seller, json!({"title": title, "price": 12})).await;
        assert_eq!(status, StatusCode::OK, "edit of {id} via {} while {wiped_id} is down: {body}", others[n % 2].id);
        while_down += 1;
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
    eprintln!("{wiped_id} rebuilt copies of {} shards from the logs in {:?}", follows.len(), restarted.elapsed());
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
