//! Where a message crosses to another node: several `ticketing` nodes as one marketplace,
//! sharing nothing but RabbitMQ.
//!
//! * [`shard_map`]: which node owns which shard (ranges of the slots every id carries), from
//!   the configuration alone, with an epoch.
//! * [`placement`]: the start-up check of the configuration against what the data dir holds.
//! * [`link`]: the broker connection: heartbeats, reconnect with backoff, and the topology
//!   declared on every connect. Each owned shard's request queue (`<name>.shard.N`) is an
//!   **exclusive** queue: the lease (another connection gets `RESOURCE_LOCKED`), the mailbox
//!   and the liveness signal at once. A node serves a shard only while it holds the lease.
//! * [`rpc`]: forwarding a request to the owner (mandatory publish with confirms: an owner that
//!   is down has no queue, so the broker returns the request at once and the caller answers
//!   503) and matching replies by correlation id on the node's exclusive reply queue.
//! * [`serve`]: the owner's side: deadline and epoch checks, then the application runs it.
//! * [`shard_move`]: `ticketing shard export` / `import`: moving a shard by hand, and backups.
//! * [`events`]: domain events to a topic exchange (persistent, confirmed, de-duplicable by
//!   slot and sequence) and every other node's events into this node's read model.
//!
//! With no `cluster.amqp_url` there is no [`Cluster`] and every slot is served locally.

pub mod events;
mod link;
pub mod messages;
pub mod placement;
mod rpc;
mod serve;
pub mod shard_map;
pub mod shard_move;

pub use shard_map::{Shard, ShardMap};

use crate::domain::{Event, Slot};
use crate::observability::Metrics;
use crate::settings::Settings;
use futures_util::future::LocalBoxFuture;
use messages::{Reply, Request};
use parking_lot::RwLock;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{oneshot, watch, Notify};

/// What this node runs for other nodes: requests for the shards it owns, and their events.
/// Implemented by the application layer.
pub trait Handler: Send + Sync + 'static {
    fn serve(&self, request: Request) -> LocalBoxFuture<'_, Reply>;
    /// Applies another node's event to this node's read model (idempotent).
    fn apply_event(&self, event: &Event) -> Result<(), String>;
}

/// Where a request for a slot goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// This node owns the shard and holds its lease.
    Local,
    /// Another node owns it.
    Remote(Shard),
    /// This node owns it but does not hold its lease now (the broker link is down): refused,
    /// so that a shard is never served by two nodes.
    Fenced,
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
}

/// This node's membership of the cluster; cheap to clone.
#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

struct Inner {
    map: ShardMap,
    names: Names,
    cluster: String,
    url: String,
    /// The live broker session, `None` while the link is down.
    session: watch::Sender<Option<Arc<link::Session>>>,
    /// The leases held now.
    held: RwLock<BTreeSet<Shard>>,
    /// Forwarded requests waiting for their reply, by correlation id.
    pending: dashmap::DashMap<String, oneshot::Sender<Vec<u8>>>,
    handler: OnceLock<Arc<dyn Handler>>,
    handler_set: Notify,
    metrics: Metrics,
    /// Test-only fault (`testing.crash_at = "drop_forwarded_reply"`): the first reply this
    /// node would send to a forwarded keyed ticket create is lost, as if the link dropped it.
    drop_a_reply: std::sync::atomic::AtomicBool,
    /// Bounds the forwarded requests running at once (`link::IN_FLIGHT`).
    intake: Arc<tokio::sync::Semaphore>,
}

impl Cluster {
    /// Connects to the broker and takes the leases of the shards this node owns. Fails (the
    /// node must not start) if the broker cannot be reached, or if another node holds one of
    /// those leases: two nodes are configured to own the same shard.
    pub async fn start(settings: &Settings, metrics: Metrics) -> anyhow::Result<(Self, actix::Arbiter)> {
        let cluster = Self(Arc::new(Inner {
            map: ShardMap::new(&settings.cluster),
            names: Names::new(&settings.cluster.name),
            cluster: settings.cluster.name.clone(),
            url: settings.cluster.amqp_url.expose().to_string(),
            session: watch::channel(None).0,
            held: RwLock::new(BTreeSet::new()),
            pending: dashmap::DashMap::new(),
            handler: OnceLock::new(),
            handler_set: Notify::new(),
            metrics,
            drop_a_reply: std::sync::atomic::AtomicBool::new(settings.testing.crash_at == "drop_forwarded_reply"),
            intake: Arc::new(tokio::sync::Semaphore::new(link::IN_FLIGHT)),
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

    /// Starts serving other nodes: requests for owned shards, and their events.
    pub fn attach(&self, handler: Arc<dyn Handler>) {
        if self.0.handler.set(handler).is_ok() {
            self.0.handler_set.notify_waiters();
            self.0.handler_set.notify_one();
        }
    }

    async fn handler(&self) -> Arc<dyn Handler> {
        loop {
            if let Some(h) = self.0.handler.get() {
                return Arc::clone(h);
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), self.0.handler_set.notified()).await;
        }
    }

    pub fn map(&self) -> &ShardMap {
        &self.0.map
    }

    pub fn names(&self) -> &Names {
        &self.0.names
    }

    /// Where a request for `slot` goes.
    pub fn place(&self, slot: Slot) -> Place {
        let shard = self.0.map.shard_of(slot);
        if !self.0.map.is_mine(shard) {
            Place::Remote(shard)
        } else if self.0.held.read().contains(&shard) {
            Place::Local
        } else {
            Place::Fenced
        }
    }

    pub fn link_up(&self) -> bool {
        self.0.session.borrow().is_some()
    }

    /// Whether the link is up and this node holds the lease of every shard it owns.
    pub fn serving_all(&self) -> bool {
        self.link_up() && self.0.held.read().len() == self.0.map.mine().len()
    }

    pub fn status(&self) -> ClusterStatus {
        let map = &self.0.map;
        ClusterStatus {
            node: map.me().to_string(),
            cluster: self.0.cluster.clone(),
            epoch: map.epoch(),
            shards: map.shard_count(),
            link_up: self.link_up(),
            owned: map.mine().iter().map(|s| s.0).collect(),
            held: self.0.held.read().iter().map(|s| s.0).collect(),
        }
    }

    fn session(&self) -> Option<Arc<link::Session>> {
        self.0.session.borrow().clone()
    }

    fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
}
