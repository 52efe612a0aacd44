//! The transport: where a message crosses to another node. Several `ticketing` nodes share
//! nothing but RabbitMQ; this module carries bytes between them and knows no application,
//! actor or domain type (`tests/api/architecture.rs` checks it). What a message means, and
//! which node should get it, is decided above it, in `crate::routing`.
//!
//! * [`link`]: the broker connection: heartbeats, reconnect with backoff, and the topology
//!   declared on every connect. Each owned shard's request queue (`<name>.shard.N`) is an
//!   **exclusive** queue: the lease (another connection gets `RESOURCE_LOCKED`), the mailbox
//!   and the liveness signal at once. A node serves a shard only while it holds the lease.
//! * [`publish`]: every publish on the link's channel, with its confirm, and the one place a
//!   message the broker returned is matched to its request, by correlation id.
//! * [`rpc`]: a request to a shard's owner and its reply, with the outcome told truthfully:
//!   [`Undelivered::NotRun`] only when the request provably did not run.
//! * [`serve`]: the owner's side: deadline and epoch checks, then [`Inbound::serve`].
//! * [`events`]: event bytes to a topic exchange and every other node's into
//!   [`Inbound::event`].
//!
//! With no `cluster.amqp_url` there is no [`Cluster`] and every slot is served locally.

mod consumer;
pub mod events;
mod link;
pub mod log;
mod publish;
mod rpc;
mod serve;

pub use rpc::Undelivered;

use crate::deadline::Deadline;
use crate::observability::Metrics;
use futures_util::future::LocalBoxFuture;
use parking_lot::RwLock;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::{oneshot, watch};

/// A shard: a contiguous range of slots, and the unit of ownership (one lease queue each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shard(pub u32);

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Headers that travel with a request, a reply or an event (request id, trace context...).
pub type Headers = BTreeMap<String, String>;

/// A request that reached this node for a shard it holds.
pub struct Incoming {
    pub shard: Shard,
    pub body: Vec<u8>,
    pub headers: Headers,
    /// When the caller stops waiting.
    pub deadline: Deadline,
}

/// What this node runs for other nodes, given to the transport when it is built.
pub trait Inbound: Send + Sync + 'static {
    /// Runs a request for a shard this node holds: the reply's bytes, or why it was refused
    /// before anything ran (the caller then knows it did not run).
    fn serve(&self, request: Incoming) -> LocalBoxFuture<'static, Result<Vec<u8>, String>>;
    /// Applies another node's event (idempotent: redeliveries change nothing).
    fn event(&self, body: &[u8], headers: &Headers) -> Result<(), String>;
    /// This node took `shard`'s lease: makes it ready to serve (a replicated shard reads its
    /// log to the end and begins a term first). `false` gives the lease up again.
    fn lease_taken(&self, _shard: Shard) -> LocalBoxFuture<'static, bool> {
        Box::pin(std::future::ready(true))
    }
    /// Every lease went with the link: this node serves no shard until it takes them again.
    fn leases_lost(&self) {}
    /// This node is giving `shard`'s lease up: whatever made it ready stops, before another
    /// node can take it.
    fn lease_given_up(&self, _shard: Shard) {}
}

/// This node's place in the cluster, as the transport needs it.
#[derive(Clone, Debug)]
pub struct Membership {
    pub node: String,
    pub cluster: String,
    /// The broker: one URL per node of one RabbitMQ cluster (tried in turn).
    pub urls: Vec<String>,
    /// The shard map's epoch: a request from another epoch is refused.
    pub epoch: u32,
    pub shard_count: u32,
    /// The shards whose leases this node takes.
    pub mine: Vec<Shard>,
    /// The shards this node follows (replicated shards only): it takes one's lease when
    /// nobody holds it, at once once it has seen it held, and otherwise after
    /// `takeover_grace` (so at a cold start the preferred owners come first).
    pub standby: Vec<Shard>,
    /// Replicated shards: a held lease does not stop a start (the holder took over), and a
    /// lease is served only once [`Inbound::lease_taken`] made it ready.
    pub replicated: bool,
    pub takeover_grace: std::time::Duration,
    pub retention: log::Retention,
}

/// Queue and exchange names, all under the cluster's name.
#[derive(Clone, Debug)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// The names of the cluster called `prefix` (`cluster.name`).
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_string() }
    }

    pub fn shard(&self, shard: Shard) -> String {
        format!("{}.shard.{}", self.prefix, shard.0)
    }
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }
    pub fn log(&self, shard: u32) -> String {
        format!("{}.log.{shard}", self.prefix)
    }
    /// Where a node that begins serving a shard says so (every node's reply queue is bound).
    pub fn terms_exchange(&self) -> String {
        format!("{}.terms", self.prefix)
    }
    pub fn dead_letters(&self) -> String {
        format!("{}.dead", self.prefix)
    }
    pub fn node_events(&self, node: &str) -> String {
        format!("{}.events.{node}", self.prefix)
    }
}

/// What `/admin/cluster` and `/readyz` report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClusterStatus {
    pub node: String,
    pub cluster: String,
    pub epoch: u32,
    pub shards: u32,
    pub link_up: bool,
    pub owned: Vec<u32>,
    pub held: Vec<u32>,
    /// The shards this node serves now (held and ready).
    pub serving: Vec<u32>,
}

/// The link to the other nodes; cheap to clone.
#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

struct Inner {
    membership: Membership,
    names: Names,
    /// The live broker session, `None` while the link is down.
    session: watch::Sender<Option<Arc<link::Session>>>,
    /// The leases held now.
    held: RwLock<BTreeSet<Shard>>,
    /// How many times each lease was taken here (`Cluster::took`): what served one taking of
    /// a lease must not give up a later one.
    takings: parking_lot::Mutex<BTreeMap<Shard, u64>>,
    /// The held leases being served (ready: their request queue is consumed).
    serving: RwLock<BTreeSet<Shard>>,
    /// Leases seen held by another node since start (taken over at once when they go).
    seen_held: RwLock<BTreeSet<Shard>>,
    started: std::time::Instant,
    /// When the latest publish the broker confirmed was sent (its connection, which holds the
    /// leases, was alive then).
    confirmed_sent: parking_lot::Mutex<Option<std::time::Instant>>,
    /// The link's heartbeat (read once from the URL: it bounds how fresh a lease must be, on
    /// every request).
    heartbeat: std::time::Duration,
    /// Counts broker sessions: a term is bound to the session whose leases it was begun under.
    generation: std::sync::atomic::AtomicU64,
    retention: log::Retention,
    /// The channel a follower's lag probes share (a channel per probe costs the broker a
    /// process each time), with the session it belongs to.
    probe_channel: parking_lot::Mutex<Option<(u64, lapin::Channel)>>,
    /// Requests and probes waiting for what comes back, by correlation id.
    pending: dashmap::DashMap<String, oneshot::Sender<publish::Arrival>>,
    /// The shard each waiting request was sent to (a new term there ends its wait).
    pending_shard: dashmap::DashMap<String, Shard>,
    inbound: Arc<dyn Inbound>,
    metrics: Metrics,
    /// Bounds the forwarded requests running at once (`link::IN_FLIGHT`).
    intake: Arc<tokio::sync::Semaphore>,
    /// The broker node (index into `membership.urls`) the next connect tries first.
    next_broker: std::sync::atomic::AtomicUsize,
    /// Test-only fault: the reply to the first request carrying this header is not sent, as
    /// if the link lost it (`testing.crash_at = "drop_forwarded_reply"` sets it above).
    drop_reply_marked: std::sync::atomic::AtomicBool,
    /// Test-only fault: the shards whose first serving after their lease was taken fails
    /// still to come (`Faults::refuse_first_serve`).
    refuse_serve: parking_lot::Mutex<Option<BTreeSet<Shard>>>,
    /// Test-only fault: `Faults::slow_event_queue`.
    slow_event_queue: bool,
}

/// Test-only faults of the transport (`testing.crash_at`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// `"drop_forwarded_reply"`: the reply to the first request marked [`DROPPABLE`] is lost.
    pub drop_a_reply: bool,
    /// `"refuse_first_serve"`: the first time each shard's lease is ready to serve, consuming
    /// its requests fails (as when the channel closes at that moment): the lease is given up.
    pub refuse_first_serve: bool,
    /// `"slow_event_queue"`: declaring this node's event queue takes 4 s longer (as on a
    /// loaded broker, where a quorum queue can take that long).
    pub slow_event_queue: bool,
}

/// A request header that marks a reply the test-only fault may drop.
pub const DROPPABLE: &str = "x-droppable";

impl Cluster {
    /// Connects to the broker and takes the leases of the shards this node owns; `inbound`
    /// serves other nodes' requests and events from the first moment. Fails (the node must not
    /// start) if the broker cannot be reached, or if another node holds one of those leases:
    /// two nodes are configured to own the same shard.
    pub async fn start(
        membership: Membership,
        inbound: Arc<dyn Inbound>,
        metrics: Metrics,
        faults: Faults,
    ) -> anyhow::Result<(Self, actix::Arbiter)> {
        let cluster = Self(Arc::new(Inner {
            names: Names::new(&membership.cluster),
            retention: membership.retention,
            probe_channel: parking_lot::Mutex::new(None),
            heartbeat: link::heartbeat_of(membership.urls.first().map_or("", String::as_str)),
            membership,
            session: watch::channel(None).0,
            held: RwLock::new(BTreeSet::new()),
            takings: parking_lot::Mutex::new(BTreeMap::new()),
            serving: RwLock::new(BTreeSet::new()),
            seen_held: RwLock::new(BTreeSet::new()),
            started: std::time::Instant::now(),
            generation: std::sync::atomic::AtomicU64::new(0),
            confirmed_sent: parking_lot::Mutex::new(None),
            pending: dashmap::DashMap::new(),
            pending_shard: dashmap::DashMap::new(),
            inbound,
            metrics,
            intake: Arc::new(tokio::sync::Semaphore::new(link::IN_FLIGHT)),
            next_broker: std::sync::atomic::AtomicUsize::new(0),
            drop_reply_marked: std::sync::atomic::AtomicBool::new(faults.drop_a_reply),
            refuse_serve: parking_lot::Mutex::new(faults.refuse_first_serve.then(BTreeSet::new)),
            slow_event_queue: faults.slow_event_queue,
        }));
        // The link lives on its own thread, apart from the HTTP workers and the actors.
        let arbiter = actix::Arbiter::new();
        let (started_tx, started_rx) = oneshot::channel();
        let link = cluster.clone();
        arbiter.spawn(async move { link::run(link, started_tx).await });
        match started_rx.await {
            Ok(Ok(())) => Ok((cluster, arbiter)),
            Ok(Err(reason)) => {
                arbiter.stop();
                Err(anyhow::anyhow!(reason))
            }
            Err(_) => Err(anyhow::anyhow!("the cluster link stopped before connecting")),
        }
    }

    pub fn membership(&self) -> &Membership {
        &self.0.membership
    }

    pub fn names(&self) -> &Names {
        &self.0.names
    }

    /// This node took `shard`'s lease: it holds it, under a new taking.
    fn took(&self, shard: Shard) {
        self.0.held.write().insert(shard);
        *self.0.takings.lock().entry(shard).or_default() += 1;
    }

    /// How many times this node took `shard`'s lease (0: never).
    fn taking(&self, shard: Shard) -> u64 {
        self.0.takings.lock().get(&shard).copied().unwrap_or(0)
    }

    /// Whether this node holds the lease of `shard` now.
    pub fn holds(&self, shard: Shard) -> bool {
        self.0.held.read().contains(&shard)
    }

    /// Whether this node serves `shard` now (holds its lease and made it ready).
    pub fn serves(&self, shard: Shard) -> bool {
        self.0.serving.read().contains(&shard)
    }

    /// The shards this node serves now.
    pub fn serving(&self) -> Vec<Shard> {
        self.0.serving.read().iter().copied().collect()
    }

    /// The heartbeat of the link (the URL's `heartbeat`, [`link::DEFAULT_HEARTBEAT_SECONDS`]
    /// otherwise): the broker drops the connection (and its leases) of a node it has not heard
    /// from for about two of them.
    pub fn heartbeat(&self) -> std::time::Duration {
        self.0.heartbeat
    }

    /// Whether this node's leases were certainly held less than half a heartbeat ago: a
    /// publish sent since then was confirmed on the connection that holds them. A node paused
    /// or cut off for longer may have lost them to a follower without knowing yet, so it
    /// serves nothing of a replicated shard (not even a read) until it hears from the broker.
    pub fn leases_fresh(&self) -> bool {
        let window = self.heartbeat() / 2;
        self.0.confirmed_sent.lock().is_some_and(|at| at.elapsed() < window)
    }

    /// A publish sent at `at` was confirmed.
    fn confirmed_at(&self, at: std::time::Instant) {
        let mut last = self.0.confirmed_sent.lock();
        if last.is_none_or(|l| l < at) {
            *last = Some(at);
        }
    }

    /// The current broker session's number (0 while never connected).
    pub fn generation(&self) -> u64 {
        self.0.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn link_up(&self) -> bool {
        self.0.session.borrow().is_some()
    }

    /// Whether the link is up and this node serves every shard it owns (with replicated
    /// shards: every shard it holds, once it has had time to take its own).
    pub fn serving_all(&self) -> bool {
        if !self.link_up() {
            return false;
        }
        let serving = self.0.serving.read();
        if self.0.membership.replicated {
            // Every lease held is served, and each of its own shards is served here or by the
            // node that took it over.
            let seen = self.0.seen_held.read();
            return self.0.held.read().iter().all(|s| serving.contains(s))
                && self.0.membership.mine.iter().all(|s| serving.contains(s) || (seen.contains(s) && !self.holds(*s)));
        }
        self.0.membership.mine.iter().all(|s| serving.contains(s))
    }

    /// Waits (at most `limit`) until [`Cluster::serving_all`]: a starting node with replicated
    /// shards serves its own (or learns who took them) before it opens its port.
    pub async fn until_serving_all(&self, limit: std::time::Duration) {
        let until = std::time::Instant::now() + limit;
        while !self.serving_all() && std::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn status(&self) -> ClusterStatus {
        let m = &self.0.membership;
        ClusterStatus {
            node: m.node.clone(),
            cluster: m.cluster.clone(),
            epoch: m.epoch,
            shards: m.shard_count,
            link_up: self.link_up(),
            owned: m.mine.iter().map(|s| s.0).collect(),
            held: self.0.held.read().iter().map(|s| s.0).collect(),
            serving: self.0.serving.read().iter().map(|s| s.0).collect(),
        }
    }

    fn connection(&self) -> Option<Arc<lapin::Connection>> {
        self.session().map(|s| Arc::clone(&s.connection))
    }

    fn session(&self) -> Option<Arc<link::Session>> {
        self.0.session.borrow().clone()
    }

    fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
}
