//! A cluster of real `ticketing` processes for one test, and a client per node.

use crate::process::{start_node, Node};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// The three-node RabbitMQ cluster of the broker-loss tests (`scripts/brokers`).
pub const BROKERS: [&str; 3] = [
    "amqp://guest:guest@127.0.0.1:5681/%2f",
    "amqp://guest:guest@127.0.0.1:5682/%2f",
    "amqp://guest:guest@127.0.0.1:5683/%2f",
];
pub const ADMIN_TOKEN: &str = "cluster-test-admin-token";
/// Shards of a test cluster on the three-node broker, where shards are replicated: few, since
/// each has a log (a stream keeps files open on every broker node).
pub const BROKER_SHARDS: u32 = 8;

/// Tests on the three-node broker run one at a time: one of them stops a broker node.
static ON_BROKERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Someone signed in: a bearer token.
#[derive(Clone, Debug)]
pub struct Who {
    pub token: String,
}

/// One node as a client sees it.
#[derive(Clone)]
pub struct ClusterNode {
    pub id: String,
    pub base: String,
    http: reqwest::Client,
}

pub struct Member {
    pub process: Option<Node>,
    pub data: tempfile::TempDir,
    env: Vec<(String, String)>,
}

pub struct TestCluster {
    pub name: String,
    /// The broker URL the nodes use (a virtual host of the test's own, when it has one).
    pub amqp: String,
    vhost: Option<String>,
    /// The configured members (owners of the shards).
    owners: Vec<String>,
    pub nodes: Vec<ClusterNode>,
    pub members: Vec<Member>,
    ids: Vec<String>,
    /// Settings every node of this cluster gets (before a test's own).
    settings: Vec<(String, String)>,
    /// Held by a test on the three-node broker for as long as it runs.
    _serial: Option<tokio::sync::MutexGuard<'static, ()>>,
}

fn require_rabbitmq() {
    if std::net::TcpStream::connect_timeout(&"127.0.0.1:5672".parse().unwrap(), Duration::from_secs(2)).is_err() {
        panic!("RabbitMQ is not reachable on 127.0.0.1:5672: the cluster tests need it (scripts/test starts it)");
    }
}

pub fn unique_name() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

impl TestCluster {
    /// Starts `members` (owners of the shards) and `gateways` (nodes that own nothing).
    pub async fn start(members: &[&str], gateways: &[&str]) -> Self {
        Self::start_with(members, gateways, &[]).await
    }

    pub async fn start_with(members: &[&str], gateways: &[&str], extra: &[(&str, &str)]) -> Self {
        Self::start_on(members, gateways, extra, false).await
    }

    /// In a virtual host of its own, so that the test may cut every connection of the cluster
    /// (`rabbitmqctl close_all_connections --vhost`) without touching other tests.
    pub async fn start_isolated(members: &[&str]) -> Self {
        Self::start_on(members, &[], &[], true).await
    }

    /// One owner of every shard, which loses its first reply to a forwarded keyed write, and
    /// two gateways `b` and `c` (a short ask timeout, so the loss is a quick 504).
    pub async fn start_losing_a_reply() -> Self {
        let extra =
            [("TICKETING_TESTING__CRASH_AT", "drop_forwarded_reply"), ("TICKETING_ACTORS__ASK_TIMEOUT_MS", "1000")];
        Self::start_with(&["owner"], &["b", "c"], &extra).await
    }

    /// On the three-node broker of `scripts/brokers`: every node is given all three URLs.
    pub async fn start_on_brokers(members: &[&str], gateways: &[&str]) -> Self {
        Self::start_on_brokers_with(members, gateways, &[]).await
    }

    /// [`TestCluster::start_on_brokers`], every node also given the settings `extra`.
    pub async fn start_on_brokers_with(members: &[&str], gateways: &[&str], extra: &[(&str, &str)]) -> Self {
        let serial = ON_BROKERS.lock().await;
        for url in BROKERS {
            let port = url.split(':').nth(3).and_then(|p| p.split('/').next()).unwrap();
            // A broker node a test before this one stopped may still be starting again.
            let since = Instant::now();
            while std::net::TcpStream::connect_timeout(
                &format!("127.0.0.1:{port}").parse().unwrap(),
                Duration::from_secs(2),
            )
            .is_err()
            {
                assert!(
                    since.elapsed() < Duration::from_secs(30),
                    "the broker cluster is not up on {port}: run scripts/brokers (scripts/test does)"
                );
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        let mut cluster = Self::start_on_url(members, gateways, extra, BROKERS.join(",")).await;
        cluster._serial = Some(serial);
        cluster
    }

    async fn start_on(members: &[&str], gateways: &[&str], extra: &[(&str, &str)], own_vhost: bool) -> Self {
        require_rabbitmq();
        if own_vhost {
            return Self::start_on_url(members, gateways, extra, String::new()).await;
        }
        Self::start_on_url(members, gateways, extra, AMQP.to_string()).await
    }

    /// `amqp` empty: a virtual host of the test's own on the system's broker.
    async fn start_on_url(members: &[&str], gateways: &[&str], extra: &[(&str, &str)], amqp: String) -> Self {
        let name = unique_name();
        let own_vhost = amqp.is_empty();
        let (amqp, vhost) = if own_vhost {
            rabbitmqctl(&["add_vhost", &name]);
            rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]);
            (format!("amqp://guest:guest@127.0.0.1:5672/{name}"), Some(name.clone()))
        } else {
            (amqp, None)
        };
        let owners = members.iter().map(|m| m.to_string()).collect();
        // On the three-node broker shards are replicated, and few (each has a log: a stream
        // keeps files open on every broker node). The tests on the system's single broker were
        // written for shards without logs, one owner each, 64 of them.
        let settings = if amqp.contains(',') {
            vec![("TICKETING_CLUSTER__SHARDS".to_string(), BROKER_SHARDS.to_string())]
        } else {
            vec![("TICKETING_CLUSTER__REPLICAS".to_string(), "0".to_string())]
        };
        let mut cluster = Self {
            name,
            amqp,
            vhost,
            owners,
            settings,
            nodes: Vec::new(),
            members: Vec::new(),
            ids: Vec::new(),
            _serial: None,
        };
        for id in members.iter().chain(gateways) {
            let mut env: Vec<(String, String)> = cluster.env(id, members);
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            let data = tempfile::tempdir().unwrap();
            let process = spawn(&env, data.path());
            cluster.nodes.push(ClusterNode::new(id, &process.address));
            cluster.members.push(Member { process: Some(process), data, env });
            cluster.ids.push(id.to_string());
        }
        cluster
    }

    fn env(&self, id: &str, members: &[&str]) -> Vec<(String, String)> {
        [
            ("TICKETING_CLUSTER__AMQP_URL", self.amqp.clone()),
            ("TICKETING_CLUSTER__NAME", self.name.clone()),
            ("TICKETING_CLUSTER__NODE_ID", id.to_string()),
            ("TICKETING_CLUSTER__MEMBERS", members.join(",")),
            ("TICKETING_ADMIN__TOKEN", ADMIN_TOKEN.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(self.settings.iter().cloned())
        .collect()
    }

    /// A signed-in user without a sign-up (a token signed with the nodes' secret): for load.
    pub fn mint_user(&self, email: &str) -> Who {
        mint(&uuid::Uuid::now_v7().to_string(), email)
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].process.take() {
            p.kill();
        }
    }

    /// Restarts node `i` on its data dir (a new port).
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.start_node(i);
    }

    /// Stops every node (SIGTERM), reconfigures all with `members` under `epoch`, adds nodes
    /// for the members not running yet (fresh data dirs, not started) and returns their indexes.
    pub fn stop_and_reconfigure(&mut self, members: &[&str], epoch: u32) -> Vec<usize> {
        for m in &mut self.members {
            m.stop();
        }
        let mut added = Vec::new();
        for id in members {
            if !self.ids.iter().any(|known| known == id) {
                self.ids.push(id.to_string());
                self.nodes.push(ClusterNode::new(id, "http://not-started"));
                self.members.push(Member { process: None, data: tempfile::tempdir().unwrap(), env: Vec::new() });
                added.push(self.ids.len() - 1);
            }
        }
        for i in 0..self.ids.len() {
            let mut env = self.env(&self.ids[i].clone(), members);
            env.push(("TICKETING_CLUSTER__EPOCH".into(), epoch.to_string()));
            self.members[i].env = env;
        }
        added
    }

    /// Runs `ticketing shard <args>` with node `i`'s configuration (the node stopped).
    pub fn shard_command(&self, i: usize, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
            .arg("shard")
            .args(args)
            .envs(self.members[i].env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("TICKETING_STORAGE__PATH", self.members[i].data.path())
            .env("TICKETING_LOG__LEVEL", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "ticketing shard {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Deletes everything in node `i`'s data dir, the node stopped (killed): its disk is lost.
    /// The dir itself stays, empty, for [`TestCluster::restart`] to start the node on.
    pub fn wipe_data(&mut self, i: usize) {
        assert!(self.members[i].process.is_none(), "wipe the data dir of a stopped node only");
        for entry in std::fs::read_dir(self.members[i].data.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }

    /// Starts one more node that owns nothing (a gateway joining the running cluster).
    pub fn add_gateway(&mut self, id: &str) -> usize {
        let owners: Vec<&str> = self.owners.iter().map(String::as_str).collect();
        let env = self.env(id, &owners);
        let data = tempfile::tempdir().unwrap();
        let process = spawn(&env, data.path());
        self.nodes.push(ClusterNode::new(id, &process.address));
        self.members.push(Member { process: Some(process), data, env });
        self.ids.push(id.to_string());
        self.nodes.len() - 1
    }

    /// Starts node `i` (stopped or never started) with its configuration.
    pub fn start_node(&mut self, i: usize) {
        let process = spawn(&self.members[i].env, self.members[i].data.path());
        self.nodes[i].base = process.address.clone();
        self.members[i].process = Some(process);
    }

    /// Runs a node that is expected to refuse to start; its exit status and stderr.
    pub fn run_to_exit(&self, id: &str, members: &[&str], data: &Path) -> (ExitStatus, String) {
        self.run_to_exit_in(id, members, data, 1)
    }

    pub fn run_to_exit_in(&self, id: &str, members: &[&str], data: &Path, epoch: u32) -> (ExitStatus, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ticketing"));
        cmd.arg("serve")
            .env("TICKETING_HTTP__ADDR", "127.0.0.1:0")
            .env("TICKETING_STORAGE__PATH", data)
            .env("TICKETING_LOG__LEVEL", "warn")
            .env("TICKETING_CLUSTER__EPOCH", epoch.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in self.env(id, members) {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
                return (status, stderr);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the node neither started nor refused within 40 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Member {
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.terminate();
        }
    }
}

impl Drop for TestCluster {
    /// Stops the nodes, then deletes the test's durable queues and exchanges from the broker.
    fn drop(&mut self) {
        for m in &mut self.members {
            m.process.take();
        }
        if let Some(vhost) = &self.vhost {
            rabbitmqctl(&["delete_vhost", vhost]);
            return;
        }
        let (name, ids) = (self.name.clone(), self.ids.clone());
        let broker = self.amqp.split(',').next().unwrap_or(AMQP).to_string();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(delete_broker_objects(&broker, &name, &ids));
        })
        .join();
    }
}

/// The node id owning the slot of `id`, by the map of `/admin/cluster` of node 0.
pub async fn owner_of(cluster: &TestCluster, id: &str) -> String {
    let (_, view) = cluster.nodes[0].admin("/admin/cluster").await;
    let bytes = uuid::Uuid::parse_str(id).unwrap().into_bytes();
    let slot = u32::from(u16::from_be_bytes([bytes[14], bytes[15]])) % 4096;
    let shards = view["shards"]["count"].as_u64().unwrap() as u32;
    view["shards"]["assignments"][(slot * shards / 4096) as usize]["owner"].as_str().unwrap().to_string()
}

/// Runs `rabbitmqctl` (the tests run as the broker's administrator).
pub fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl").args(args).output();
    assert!(out.as_ref().is_ok_and(|o| o.status.success()), "rabbitmqctl {args:?}: {out:?}");
}

pub async fn delete_broker_objects(broker: &str, name: &str, ids: &[String]) {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let audit = format!("{name}.audit");
    let names = ticketing::cluster::Names::new(name);
    ticketing::cluster::events::delete_cluster(broker, &names, &ids, 64, &[&audit]).await;
}

fn spawn(env: &[(String, String)], data: &Path) -> Node {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    start_node(data, &env)
}

pub fn mint(id: &str, email: &str) -> Who {
    Who { token: crate::process::bearer_token(id, email) }
}

impl ClusterNode {
    fn new(id: &str, address: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Self { id: id.to_string(), base: address.to_string(), http }
    }

    /// The same node through new connections (those open while it was stopped are dropped).
    pub fn reconnected(&self) -> Self {
        Self::new(&self.id, &self.base)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn account(&self, action: &str, email: &str) -> reqwest::Response {
        crate::process::account(&self.http, &self.base, action, email).await
    }

    /// Signs up through this node (password "password").
    pub async fn sign_up(&self, email: &str) -> Who {
        let res = self.account("signup", email).await;
        assert_eq!(res.status(), StatusCode::CREATED, "sign-up via {}", self.id);
        let body: Value = res.json().await.unwrap();
        mint(body["id"].as_str().unwrap(), email)
    }

    pub async fn create_ticket(&self, who: &Who, title: &str, price: u32) -> Value {
        let (status, body) = self.post("/api/tickets", who, json!({"title": title, "price": price})).await;
        assert_eq!(status, StatusCode::CREATED, "create via {}: {body}", self.id);
        body
    }

    pub async fn send(&self, req: reqwest::RequestBuilder, who: Option<&Who>) -> (StatusCode, Value) {
        let req = match who {
            Some(w) => req.bearer_auth(&w.token),
            None => req,
        };
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str, who: Option<&Who>) -> (StatusCode, Value) {
        self.send(self.http.get(self.url(path)), who).await
    }

    pub async fn post(&self, path: &str, who: &Who, body: Value) -> (StatusCode, Value) {
        self.send(self.http.post(self.url(path)).json(&body), Some(who)).await
    }

    pub async fn put(&self, path: &str, who: &Who, body: Value) -> (StatusCode, Value) {
        self.send(self.http.put(self.url(path)).json(&body), Some(who)).await
    }

    pub async fn admin(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.get(self.url(path)).bearer_auth(ADMIN_TOKEN), None).await
    }

    pub async fn ready(&self) -> bool {
        matches!(self.http.get(self.url("/readyz")).send().await, Ok(r) if r.status() == StatusCode::OK)
    }
}

/// Declares a durable queue bound to every event of the cluster, as an outside consumer would.
pub async fn audit_queue(amqp: &str, name: &str) -> String {
    audit_queue_of(amqp, name, false).await
}

/// [`audit_queue`], a quorum queue when `replicated` (it survives a broker node).
pub async fn audit_queue_of(amqp: &str, name: &str, replicated: bool) -> String {
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::{AMQPValue, FieldTable};
    let conn = lapin::Connection::connect(amqp, lapin::ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let exchange = format!("{name}.events");
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel
        .exchange_declare(exchange.as_str().into(), lapin::ExchangeKind::Topic, durable, FieldTable::default())
        .await
        .unwrap();
    let mut args = FieldTable::default();
    if replicated {
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    }
    let queue = format!("{name}.audit");
    let options = QueueDeclareOptions { durable: true, ..Default::default() };
    channel.queue_declare(queue.as_str().into(), options, args).await.unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = conn.close(200, "declared".into()).await;
    queue
}

/// Waits until every node that answers has published all it wrote (its outbox backlog 0):
/// events held back by a publish retry (after a broker or connection fault) are out, so a
/// drain sees them. A node that does not answer (killed) is left out: its shards' new owners
/// publish what it left.
pub async fn outboxes_published(nodes: &[ClusterNode], within: Duration) {
    crate::wait::eventually(within, "every outbox published", || async {
        for node in nodes {
            let scrape = tokio::time::timeout(Duration::from_secs(2), reqwest::get(node.url("/metrics")));
            let Ok(Ok(res)) = scrape.await else { continue };
            let Ok(text) = res.text().await else { continue };
            if !text.lines().any(|l| l == "ticketing_outbox_backlog 0") {
                return false;
            }
        }
        true
    })
    .await;
}

/// Every message in `queue` now: (slot, seq, "<routing key> <entity id> v<version>", routing key).
pub async fn drain(amqp: &str, queue: &str, expect_at_least: usize) -> Vec<(u32, u64, String, String)> {
    use lapin::options::{BasicAckOptions, BasicConsumeOptions};
    use lapin::types::{AMQPValue, FieldTable};
    let conn = lapin::Connection::connect(amqp, lapin::ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let mut consumer = channel
        .basic_consume(queue.into(), "audit".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let mut out = Vec::new();
    loop {
        let wait = if out.len() >= expect_at_least { Duration::from_secs(2) } else { Duration::from_secs(15) };
        let Ok(Some(Ok(delivery))) = tokio::time::timeout(wait, consumer.next()).await else { break };
        let headers = delivery.properties.headers().clone().unwrap_or_default();
        let slot = match headers.inner().get("x-slot") {
            Some(AMQPValue::LongUInt(s)) => *s,
            other => panic!("event without x-slot: {other:?}"),
        };
        let seq = match headers.inner().get("x-seq") {
            Some(AMQPValue::LongLongInt(s)) => *s as u64,
            other => panic!("event without x-seq: {other:?}"),
        };
        let payload: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
        let identity = format!("{} {} v{}", delivery.routing_key, payload["id"], payload["version"]);
        out.push((slot, seq, identity, delivery.routing_key.to_string()));
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    let _ = conn.close(200, "drained".into()).await;
    out
}

/// Checks the events an outside consumer got (`drain`) against the acknowledged creates: one
/// event per (slot, seq) and one position per event, no gap in any slot's numbers, and a
/// `ticket:created` for every id in `created`. Returns (distinct events, slots).
pub fn assert_every_event_once<'a>(
    messages: &[(u32, u64, String, String)],
    created: impl IntoIterator<Item = &'a String>,
) -> (usize, usize) {
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    let mut by_position: BTreeMap<(u32, u64), String> = BTreeMap::new();
    for (slot, seq, identity, _) in messages {
        if let Some(seen) = by_position.insert((*slot, *seq), identity.clone()) {
            assert_eq!(&seen, identity, "one (slot, seq) is one event");
        }
    }
    let mut ids: HashMap<&String, usize> = HashMap::new();
    for identity in by_position.values() {
        *ids.entry(identity).or_default() += 1;
    }
    assert!(ids.values().all(|n| *n == 1), "an event under two positions");
    let mut per_slot: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
    for (slot, seq) in by_position.keys() {
        per_slot.entry(*slot).or_default().insert(*seq);
    }
    for (slot, seqs) in &per_slot {
        let expected: BTreeSet<u64> = (1..=*seqs.iter().last().unwrap()).collect();
        assert_eq!(seqs, &expected, "gap in slot {slot}");
    }
    let published: BTreeSet<String> = by_position
        .values()
        .filter(|i| i.starts_with("ticket.created"))
        .map(|i| i.split('"').nth(1).unwrap().to_string())
        .collect();
    for id in created {
        assert!(published.contains(id), "ticket:created of acknowledged {id} never published");
    }
    (by_position.len(), per_slot.len())
}
