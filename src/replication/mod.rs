//! Replicated shards: where a shard's copies follow its log, and where a node takes a shard
//! over. Built on the store's logging of every write (`storage::log`) and the transport's
//! streams and leases (`cluster::log`, `cluster::link`); the rules of which entries count are
//! [`chain`]'s.
//!
//! Every shard has a log, a RabbitMQ stream. Its owner (the node holding its lease) appends
//! each write before acknowledging it; the next `cluster.replicas` members of the shard's
//! ranking follow the log into their own data dir ([`copy`]). Taking a lease (a failover, or
//! a reconnect retaking its own) begins a **term**: the node appends a term marker, reads the
//! log up to it (so it holds every entry that counted), rebuilds its copy from the log if it
//! holds writes that never reached it, re-arms the shard's deadlines and only then serves.
//! Losing a lease, or an entry the log did not confirm, stops the shard here at once: its
//! actors are evicted and the store refuses its writes.

pub mod chain;
mod copy;
pub mod snapshot;

use crate::actors::deadlines::Deadlines;
use crate::actors::order::OrderActor;
use crate::actors::ticket::TicketActor;
use crate::actors::Registry;
use crate::cluster::log::CONFIRM_WITHIN;
use crate::cluster::{Cluster, Shard};
use crate::storage::log::{Appender, ShardLogs};
use crate::storage::Store;
use dashmap::DashMap;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// What a node does with its copies of shards when it gains or loses one.
pub struct Custody {
    pub tickets: Registry<TicketActor>,
    pub orders: Registry<OrderActor>,
    pub deadlines: Deadlines,
}

/// One copy as `/admin/cluster` shows it.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CopyStatus {
    pub shard: u32,
    /// The number of the last entry in this copy.
    pub applied: u64,
    pub term: u64,
    /// Entries in the log not yet read (markers included); `null` until known.
    pub lag: Option<u64>,
    /// Whether this node serves the shard (`false`: it follows).
    pub serving: bool,
    /// Why following stopped, if it did.
    pub error: Option<String>,
    /// Snapshots loaded into this copy (its log no longer held what it needed).
    pub snapshots: u64,
    /// Times following read nothing for a while though behind, and subscribed again.
    pub resubscribed: u64,
}

/// An entry for the log, from the writer thread, and where its confirm goes.
type Append = (u32, Vec<u8>, oneshot::Sender<Result<(), String>>);

/// Attempts at a new term while holding the lease after an unconfirmed entry, before the
/// lease is given up.
const RELEAD_ATTEMPTS: usize = 3;

/// The store's side of the logs: hands entries to the replication's publishing task.
struct Logger {
    appends: mpsc::UnboundedSender<Append>,
    unconfirmed: mpsc::UnboundedSender<u32>,
}

impl Appender for Logger {
    fn append(&self, shard: u32, entry: Vec<u8>) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        // A closed channel drops `tx`: the write counts as not confirmed.
        let _ = self.appends.send((shard, entry, tx));
        rx
    }

    fn unconfirmed(&self, shard: u32, _why: String) {
        let _ = self.unconfirmed.send(shard);
    }
}

#[derive(Clone)]
pub struct Replication(Arc<Inner>);

struct Inner {
    store: Store,
    logs: Arc<ShardLogs>,
    node: String,
    custody: Custody,
    cluster: watch::Sender<Option<Cluster>>,
    /// The task of each shard this node owns or follows.
    copies: HashMap<u32, mpsc::UnboundedSender<copy::Order>>,
    /// The broker session each shard's term was begun under (appends go on that one only).
    generations: DashMap<u32, u64>,
    /// Shards beginning a new term after an unconfirmed entry.
    releading: dashmap::DashSet<u32>,
    status: DashMap<u32, CopyStatus>,
    /// Where snapshots come from (the router, once it exists).
    source: std::sync::OnceLock<Arc<dyn snapshot::CopySource + Send + Sync>>,
    /// `testing.crash_at = "stall_following"`: each copy's first subscription to its log goes
    /// quiet, as a stream consumer can (a broker node restarted under it).
    stall_first_follow: std::sync::atomic::AtomicBool,
    /// Taken by `attach`.
    receivers: parking_lot::Mutex<Option<(mpsc::UnboundedReceiver<Append>, mpsc::UnboundedReceiver<u32>)>>,
}

impl Replication {
    /// Turns logging on in `store` for `shards` shards; `copies` are the shards this node owns
    /// or follows.
    pub fn new(store: Store, node: &str, shards: u32, copies: &[Shard], custody: Custody) -> Self {
        let (appends, appends_rx) = mpsc::unbounded_channel();
        let (unconfirmed, unconfirmed_rx) = mpsc::unbounded_channel();
        let logs = Arc::new(ShardLogs::new(shards, Arc::new(Logger { appends, unconfirmed })));
        store.with_logs(Arc::clone(&logs));
        let mut tasks = HashMap::new();
        let mut receivers = Vec::new();
        for shard in copies {
            let (tx, rx) = mpsc::unbounded_channel();
            tasks.insert(shard.0, tx);
            receivers.push((shard.0, rx));
        }
        let replication = Self(Arc::new(Inner {
            store,
            logs,
            node: node.to_string(),
            custody,
            cluster: watch::channel(None).0,
            copies: tasks,
            generations: DashMap::new(),
            releading: dashmap::DashSet::new(),
            status: DashMap::new(),
            source: std::sync::OnceLock::new(),
            stall_first_follow: std::sync::atomic::AtomicBool::new(false),
            receivers: parking_lot::Mutex::new(Some((appends_rx, unconfirmed_rx))),
        }));
        for (shard, orders) in receivers {
            replication.0.status.insert(shard, CopyStatus { shard, ..Default::default() });
            actix_web::rt::spawn(copy::run(replication.clone(), shard, orders));
        }
        replication
    }

    /// Starts following and publishing through `cluster` (once it is up).
    pub fn attach(&self, cluster: Cluster) {
        self.0.cluster.send_replace(Some(cluster.clone()));
        let Some((mut appends, mut unconfirmed)) = self.0.receivers.lock().take() else { return };
        // Entries are published in the writer's order, and confirmed concurrently.
        let publisher = self.clone();
        actix_web::rt::spawn(async move {
            while let Some((shard, entry, confirmed)) = appends.recv().await {
                let generation = publisher.0.generations.get(&shard).map(|g| *g);
                let Some(generation) = generation else {
                    let _ = confirmed.send(Err("no term here".into()));
                    continue;
                };
                // A broker that stops taking publishes (a resource alarm blocks the connection)
                // must not hold every later entry: past the confirm bound it counts as not
                // confirmed, like a confirm that does not come.
                let sent = tokio::time::timeout(CONFIRM_WITHIN, cluster.append(shard, generation, &entry)).await;
                let sent = sent.unwrap_or_else(|_| Err(format!("not sent within {CONFIRM_WITHIN:?}")));
                match sent {
                    Ok(confirm) => {
                        actix_web::rt::spawn(async move {
                            let _ = confirmed.send(confirm.await);
                        });
                    }
                    Err(e) => {
                        let _ = confirmed.send(Err(e));
                    }
                }
            }
        });
        let relead = self.clone();
        actix_web::rt::spawn(async move {
            while let Some(shard) = unconfirmed.recv().await {
                relead.stopped(shard);
                let again = relead.clone();
                actix_web::rt::spawn(async move { again.lead_while_held(shard).await });
            }
        });
    }

    /// Snapshots are asked for through `source` (the router: it reaches any shard's owner).
    pub fn copies_from(&self, source: Arc<dyn snapshot::CopySource + Send + Sync>) {
        let _ = self.0.source.set(source);
    }

    /// Makes `shard` ready to serve here (its lease was just taken): a new term, the log read
    /// to it. `false` if it could not be.
    pub async fn lead(&self, shard: u32) -> bool {
        let Some(copy) = self.0.copies.get(&shard) else {
            tracing::error!(shard, "a lease taken for a shard this node has no copy of");
            return false;
        };
        let (tx, rx) = oneshot::channel();
        if copy.send(copy::Order::Lead(tx)).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// After an unconfirmed entry: begins a new term while this node still holds the lease
    /// (once at a time per shard).
    async fn lead_while_held(&self, shard: u32) {
        if !self.0.releading.insert(shard) {
            return;
        }
        self.lead_again(shard).await;
        self.0.releading.remove(&shard);
    }

    async fn lead_again(&self, shard: u32) {
        for _ in 0..RELEAD_ATTEMPTS {
            let Some(cluster) = self.cluster() else { return };
            if !cluster.holds(Shard(shard)) || self.0.logs.term(shard).is_some() {
                return;
            }
            if self.lead(shard).await {
                tracing::info!(shard, "shard re-established in a new term");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        // This copy cannot begin a term (the log no longer holds what it would need): a
        // follower that kept up may.
        if let Some(cluster) = self.cluster().filter(|c| c.holds(Shard(shard)) && self.0.logs.term(shard).is_none()) {
            tracing::warn!(shard, "could not begin a new term here: the shard's lease is given up");
            cluster.give_up(Shard(shard)).await;
        }
    }

    /// Every lease went with the link: every shard led here stops.
    pub fn lost_all(&self) {
        let led: Vec<u32> = self.0.generations.iter().map(|e| *e.key()).collect();
        for shard in led {
            self.stopped(shard);
        }
    }

    /// Test-only (`testing.crash_at = "stall_following"`): every copy's first subscription to
    /// its log reads nothing, so that following must notice and subscribe again.
    pub fn stall_first_follow(&self) {
        self.0.stall_first_follow.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn stalls_first_follow(&self) -> bool {
        self.0.stall_first_follow.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// This node gave `shard`'s lease up (it could not serve it): if a term was begun here,
    /// it ends before another node can take the lease.
    pub fn given_up(&self, shard: u32) {
        if self.0.generations.contains_key(&shard) {
            self.stopped(shard);
        }
    }

    /// `shard` is no longer served here: writes refused, actors evicted, its copy follows.
    fn stopped(&self, shard: u32) {
        self.0.logs.fence(shard);
        self.0.generations.remove(&shard);
        let slots = self.0.logs.slots(shard);
        self.0.custody.tickets.evict(slots.clone());
        self.0.custody.orders.evict(slots);
        if let Some(mut status) = self.0.status.get_mut(&shard) {
            status.serving = false;
        }
        if let Some(copy) = self.0.copies.get(&shard) {
            let _ = copy.send(copy::Order::Follow);
        }
    }

    /// This node's copies.
    pub fn status(&self) -> Vec<CopyStatus> {
        let mut all: Vec<CopyStatus> = self.0.status.iter().map(|e| e.value().clone()).collect();
        all.sort_by_key(|c| c.shard);
        all
    }

    fn cluster(&self) -> Option<Cluster> {
        self.0.cluster.borrow().clone()
    }
}
