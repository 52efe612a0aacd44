//! Load on a replicated cluster for the tests that kill its members: writers that keep a
//! ledger of every answer, the views of `/admin/cluster` the tests wait on, and the check that
//! nothing acknowledged was lost once the load stops.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
/// The orders' window in the load test: pending orders made before a kill expire in the test.
pub const EXPIRATION_SECONDS: u64 = 6;

/// The shard of the slot an id carries (as `owner_of` computes it).
pub fn shard_of(id: &str, shards: u64) -> u64 {
    let bytes = uuid::Uuid::parse_str(id).unwrap().into_bytes();
    let slot = u64::from(u16::from_be_bytes([bytes[14], bytes[15]])) % 4096;
    slot * shards / 4096
}

pub fn index_of(cluster: &TestCluster, id: &str) -> usize {
    cluster.nodes.iter().position(|n| n.id == id).unwrap()
}

/// The members (not gateways) running now.
pub fn live_members(cluster: &TestCluster, members: usize) -> Vec<ClusterNode> {
    (0..members).filter(|i| cluster.members[*i].process.is_some()).map(|i| cluster.nodes[i].clone()).collect()
}

/// What one member's `/admin/cluster` says about replication.
#[derive(Clone, Debug, Default)]
pub struct Replication {
    /// The shards it serves now.
    pub serving: BTreeSet<u64>,
    /// The shards it follows, with how many entries it is behind (None: not reported).
    pub following: BTreeMap<u64, Option<u64>>,
    /// The configured owner (rank 1) of every shard.
    pub owners: Vec<String>,
    /// The shards whose copy here says it serves (in a term), with that term.
    pub claimed: BTreeMap<u64, u64>,
}

pub async fn replication(node: &ClusterNode) -> Replication {
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
    let claimed = view["copies"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|c| c["serving"].as_bool() == Some(true))
                .filter_map(|c| Some((c["shard"].as_u64()?, c["term"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    Replication { serving, following, owners, claimed }
}

/// Polls the `/admin/cluster` of `nodes` until `done` holds of their views (by node id), and
/// returns those views; fails after `within`, showing the last ones.
pub async fn until_members(
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
pub fn served_once(views: &BTreeMap<String, Replication>, shards: u64) -> bool {
    let all: BTreeSet<u64> = views.values().flat_map(|v| v.serving.iter().copied()).collect();
    let total: usize = views.values().map(|v| v.serving.len()).sum();
    all == (0..shards).collect() && total == shards as usize
}

/// Every shard is followed by a node other than the one serving it.
pub fn replicated(views: &BTreeMap<String, Replication>, shards: u64) -> bool {
    (0..shards).all(|s| {
        views.iter().any(|(server, v)| {
            v.serving.contains(&s) && views.iter().any(|(id, f)| id != server && f.following.contains_key(&s))
        })
    })
}

/// Every node's copy of every shard it follows is at the end of the shard's log.
pub fn caught_up(views: &BTreeMap<String, Replication>) -> bool {
    views.values().all(|v| v.following.values().all(|lag| *lag == Some(0)))
}

pub fn shards_of(owners: &[String], node: &str) -> BTreeSet<u64> {
    owners.iter().enumerate().filter(|(_, o)| o.as_str() == node).map(|(s, _)| s as u64).collect()
}

/// Signs up accounts (password "password") through every node in turn until every member owns
/// at least two of them: (email, user id).
pub async fn sign_up_on_every_member(cluster: &TestCluster, owners: &[String], shards: u64) -> Vec<(String, String)> {
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

pub async fn sign_in_everywhere(accounts: &[(String, String)], nodes: &[ClusterNode]) {
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
pub struct Fate {
    pub ticket: String,
    pub buyer: Who,
    pub ends: Vec<&'static str>,
}

/// Every write the load and the test made, as acknowledged.
#[derive(Default)]
pub struct Ledger {
    /// Ticket → the titles it may have: its last acknowledged one, then those of the writes
    /// since whose outcome is unknown (504, or no answer from a node being killed).
    pub tickets: HashMap<String, Vec<String>>,
    /// Acknowledged orders.
    pub orders: HashMap<String, Fate>,
    /// When the last reservation that may have made an order was sent.
    pub last_reservation: Option<Instant>,
    /// Answers no write may get (checked at the end, with everything the load saw).
    pub violations: Vec<String>,
}

impl Ledger {
    pub fn acknowledged_title(&mut self, ticket: &str, title: String) {
        self.tickets.insert(ticket.to_string(), vec![title]);
    }

    pub fn maybe_title(&mut self, ticket: &str, title: String) {
        self.tickets.entry(ticket.to_string()).or_default().push(title);
    }
}

/// The writers' shared state: the nodes alive now (the test updates it around kills and
/// restarts), the ledger, and the tickets created under load for the reservers.
pub struct Load {
    pub stop: AtomicBool,
    /// Writers hold off while set (for a moment in which every log is still).
    pub paused: AtomicBool,
    pub targets: Mutex<Vec<ClusterNode>>,
    pub ledger: Mutex<Ledger>,
    pub pool: Mutex<Vec<String>>,
    pub http: reqwest::Client,
}

impl Load {
    pub fn target(&self, n: usize) -> ClusterNode {
        let targets = self.targets.lock().unwrap();
        targets[n % targets.len()].clone()
    }

    /// A request that may meet a node being killed: None when no answer came (outcome unknown).
    pub async fn call(&self, req: reqwest::RequestBuilder, who: &Who) -> Option<(StatusCode, Value)> {
        let res = req.bearer_auth(&who.token).send().await.ok()?;
        let status = res.status();
        let text = res.text().await.ok()?;
        Some((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    pub fn violation(&self, what: String) {
        self.ledger.lock().unwrap().violations.push(what);
    }

    /// Whether to stop, after waiting out a pause.
    pub async fn stopped(&self) -> bool {
        while self.paused.load(Ordering::SeqCst) && !self.stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.stop.load(Ordering::SeqCst)
    }
}

pub fn unknown(answer: &Option<(StatusCode, Value)>) -> bool {
    matches!(answer, None | Some((StatusCode::GATEWAY_TIMEOUT, _)))
}

pub fn not_run(answer: &Option<(StatusCode, Value)>) -> bool {
    matches!(answer, Some((StatusCode::SERVICE_UNAVAILABLE, _)))
}

/// Lists tickets, paced, through every node in turn.
pub async fn create_tickets(load: Arc<Load>, w: usize, seller: Who) {
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
pub async fn reserve_tickets(load: Arc<Load>, r: usize, buyer: Who) {
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
pub async fn update_tickets(load: Arc<Load>, seller: Who, tickets: Vec<String>) {
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
pub async fn first_write_after(
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
pub async fn kill_under_load(
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

/// What [`everything_settled`] found.
pub struct Settled {
    pub tickets: usize,
    /// Tickets whose last edit had an unknown outcome.
    pub uncertain: usize,
    pub orders: usize,
    pub acknowledged_orders: usize,
}

impl std::fmt::Display for Settled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tickets ({} with an unknown last edit), {} orders ({} acknowledged)",
            self.tickets, self.uncertain, self.orders, self.acknowledged_orders
        )
    }
}

/// What `ask` answers, asked again while it is a 5xx until `deadline`: a shard between servers
/// (its lease lost on a starved machine and taken over) answers 503 for a moment, which the
/// API says truthfully; it is not a loss.
async fn answered<F, Fut>(deadline: Instant, path: &str, ask: F) -> (StatusCode, serde_json::Value)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (StatusCode, serde_json::Value)>,
{
    loop {
        let (code, body) = ask().await;
        if !code.is_server_error() || Instant::now() >= deadline {
            return (code, body);
        }
        eprintln!("{path}: {code} {body}, asked again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Once the load has stopped and every order window has passed: every account signs in, every
/// acknowledged order is in its buyer's list and ended as it must (pending ones expired), no
/// ticket has two live orders, and every ticket has an acknowledged title and is held by its
/// live order, through every node `alive`.
pub async fn everything_settled(
    ledger: &Ledger,
    alive: &[ClusterNode],
    buyers: &[&Who],
    accounts: &[(String, String)],
    pending_before: &[String],
) -> Settled {
    let reader = &alive[0];

    // Every account made before the kills signs in, through every node alive.
    sign_in_everywhere(accounts, alive).await;

    // Every order of every buyer: the acknowledged ones and any a reservation with an unknown
    // outcome made.
    let mut orders: BTreeMap<String, (String, Who)> = BTreeMap::new();
    for buyer in buyers.iter().copied() {
        let acknowledged: BTreeSet<&String> =
            ledger.orders.iter().filter(|(_, f)| f.buyer.token == buyer.token).map(|(id, _)| id).collect();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, listed) = answered(deadline, "/api/orders", || reader.get("/api/orders", Some(buyer))).await;
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
            let path = format!("/api/orders/{id}");
            let (code, order) = answered(deadline, &path, || reader.get(&path, Some(buyer))).await;
            assert_eq!(code, StatusCode::OK, "order {id} via {}: {order}", reader.id);
            let status = order["status"].as_str().unwrap().to_string();
            if allowed.contains(&status.as_str()) {
                break status;
            }
            assert!(Instant::now() < deadline, "order {id} is {status}, not one of {allowed:?}: {order}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        for node in alive {
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
    for id in pending_before {
        assert_eq!(
            statuses.get(id).map(String::as_str),
            Some("cancelled"),
            "pending order {id} made before the kills expired"
        );
        // Its history was kept through the kills (it replicates with the shard) and is read
        // from its shard's server through any node: reserved, then expired.
        for node in alive {
            let path = format!("/admin/orders/{id}/history");
            let (code, history) = answered(Instant::now() + Duration::from_secs(15), &path, || node.admin(&path)).await;
            assert_eq!(code, StatusCode::OK, "history of {id} via {}: {history}", node.id);
            let entries = history["entries"].as_array().unwrap();
            let subjects: Vec<&str> = entries.iter().map(|e| e["event"].as_str().unwrap()).collect();
            assert_eq!(subjects, ["order:created", "expiration:complete", "order:cancelled"], "{id} via {}", node.id);
            assert_eq!(entries[2]["reason"], "expired", "{id} via {}", node.id);
        }
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
        for node in alive {
            loop {
                let path = format!("/api/tickets/{id}");
                let (status, ticket) = answered(deadline, &path, || node.get(&path, None)).await;
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
    Settled { tickets: ledger.tickets.len(), uncertain, orders: orders.len(), acknowledged_orders: ledger.orders.len() }
}

/// Three members (`node-1..3`, the owners of every shard) and a gateway (`gate`) on the
/// three-node broker, with replicated shards and orders that expire after
/// [`EXPIRATION_SECONDS`]; see [`start_replicated_with`].
pub async fn start_replicated() -> (TestCluster, u64, Vec<String>) {
    let expiration = EXPIRATION_SECONDS.to_string();
    start_replicated_with(&["gate"], &[("TICKETING_ORDERS__EXPIRATION_SECONDS", expiration.as_str())]).await
}

/// Three members (`node-1..3`, the owners of every shard) and `gateways` on the three-node
/// broker, with replicated shards and the `extra` settings; returned once every shard is
/// served by one member and followed, caught up, by another: the cluster, its shard count and
/// each shard's configured owner.
pub async fn start_replicated_with(gateways: &[&str], extra: &[(&str, &str)]) -> (TestCluster, u64, Vec<String>) {
    let mut settings = vec![("TICKETING_CLUSTER__REPLICAS", "1")];
    settings.extend_from_slice(extra);
    let cluster = TestCluster::start_on_brokers_with(&["node-1", "node-2", "node-3"], gateways, &settings).await;
    let (_, view) = cluster.nodes[0].admin("/admin/cluster").await;
    let shards = view["shards"]["count"].as_u64().unwrap();
    let views =
        until_members(&live_members(&cluster, 3), Duration::from_secs(20), "every shard served and followed", |v| {
            served_once(v, shards) && replicated(v, shards) && caught_up(v)
        })
        .await;
    let owners = views.values().next().unwrap().owners.clone();
    (cluster, shards, owners)
}

/// The load running on a cluster, and what was written before it.
pub struct Running {
    pub load: Arc<Load>,
    pub accounts: Vec<(String, String)>,
    pub seller: Who,
    /// The buyer of the orders made before the load.
    pub early: Who,
    /// The two reservers of the load.
    pub buyers: [Who; 2],
    /// Tickets listed through each member (so on its shards), never reserved nor edited by the load.
    pub probes: Vec<String>,
    /// Orders left pending before the load: they expire under it.
    pub pending_before: Vec<String>,
    pub writers: Vec<tokio::task::JoinHandle<()>>,
}

/// Writes through three members and a gateway (`cluster.nodes[0..4]`): accounts on every
/// member, tickets listed through every member, orders paid, cancelled and left pending; then
/// starts the load: two listers, two reservers racing for what they list, one editor, through
/// every node alive.
pub async fn start_load(cluster: &TestCluster, owners: &[String], shards: u64) -> Running {
    let accounts = sign_up_on_every_member(cluster, owners, shards).await;
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
    Running { load, accounts, seller, early, buyers, probes, pending_before, writers }
}
