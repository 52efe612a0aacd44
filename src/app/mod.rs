//! The application layer: the use cases, as the adapters (the JSON API in `crate::http`, HTML
//! pages later, a remote node's router) call them. A use case takes typed values and returns
//! domain types or one typed [`AppError`]; it reaches entities through [`Router`] by id,
//! without knowing where they live, and reads lists from the read model. This layer and the
//! entity actors are the only code that touches storage.
//!
//! * [`tickets`]: sell, edit, show, list for sale, a seller's tickets.
//! * [`orders`]: place, cancel, show, a buyer's orders.
//! * [`payments`]: pay, and the provider's webhook.
//! * [`admin`]: what operators see of live actors and the cluster.
//! * [`history`]: the audit trail: an entity's kept events, an order's timeline.
//! * [`users`]: sign up, sign in, refresh, sign out, routed to the user's node.
//! * [`accounts`], [`account_requests`]: the account records, and the requests a user's node
//!   serves.
//! * [`keyed`]: requests with an `Idempotency-Key`; [`idempotency`]: the records behind it.
//! * [`bootstrap`]: a joining node's read model filled from the other nodes.
//! * [`shard_move`]: moving a shard between nodes by hand.
//! * [`projection`]: the read model, fed by the outbox.
//! * [`housekeeping`]: pruning of expired records.
//! * [`seed`]: fills a closed data dir (benchmark and recovery tests).
//! * [`throttle`]: failed sign-ins counted per address and per account.

pub mod account_requests;
pub mod accounts;
pub mod admin;
mod bootstrap;
pub mod error;
pub mod history;
pub mod housekeeping;
pub mod idempotency;
pub mod keyed;
pub mod orders;
pub mod password_reset;
pub mod payments;
pub mod projection;
pub mod search;
pub mod seed;
pub mod shard_move;
pub mod throttle;
pub mod tickets;
pub mod users;

pub use account_requests::AccountRequest;
pub use accounts::{Accounts, Session};
pub use error::AppError;

use crate::actors::deadlines::Deadlines;
use crate::events::live::Live;
use crate::events::{Delivery, EventBus};
use crate::observability::Metrics;
use crate::payments::Gateway;
use crate::routing::Router;
use crate::settings::Settings;
use crate::storage::{Health, Store};
use projection::ReadModel;

/// What the node's storage can do now, as `/readyz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageState {
    /// Reads and writes.
    Ok,
    /// The disk is full: reads are served, writes refused (507) until space is freed.
    Full,
    /// The storage engine failed: reads are served, writes refused until a restart.
    Failed,
}

impl StorageState {
    /// The word `/readyz` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Full => "full",
            Self::Failed => "failed",
        }
    }
}

/// Everything the use cases need, shared by all adapters and workers.
pub struct App {
    settings: Settings,
    store: Store,
    router: Router,
    deadlines: Deadlines,
    gateway: Gateway,
    events: EventBus,
    delivery: Delivery,
    read_model: ReadModel,
    live: Live,
    metrics: Metrics,
}

/// The parts a node is built from (see `crate::startup`).
pub struct Parts {
    pub settings: Settings,
    pub store: Store,
    pub router: Router,
    pub deadlines: Deadlines,
    pub gateway: Gateway,
    pub events: EventBus,
    pub delivery: Delivery,
    pub read_model: ReadModel,
    pub live: Live,
    pub metrics: Metrics,
}

impl App {
    pub fn new(parts: Parts) -> Self {
        Self {
            settings: parts.settings,
            store: parts.store,
            router: parts.router,
            deadlines: parts.deadlines,
            gateway: parts.gateway,
            events: parts.events,
            delivery: parts.delivery,
            read_model: parts.read_model,
            live: parts.live,
            metrics: parts.metrics,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn accounts(&self) -> &Accounts {
        &self.router.here().accounts
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A user's address, read where their account lives (`None`: no such account).
    pub async fn contact(&self, user: crate::domain::UserId) -> Result<Option<String>, AppError> {
        self.router.ask(crate::routing::command::ContactOf { user }).await
    }

    /// The live ticket changes (the stream's subscribers).
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// The published events of this node and, in a cluster, of the others (tests and
    /// subscribers).
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The node's store (tests and tools; adapters go through the use cases).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where commands run (tests and inspection).
    pub fn router(&self) -> &Router {
        &self.router
    }

    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The read model, once it holds every change acknowledged before this call, here and
    /// through this node elsewhere (waiting at most a second; a slower publisher is logged and
    /// the list served as it is).
    async fn fresh_read_model(&self) -> &ReadModel {
        let limit = std::time::Duration::from_secs(1);
        futures_util::join!(self.delivery.caught_up(limit), self.router.forwarded_writes_applied(limit));
        &self.read_model
    }

    /// Whether storage answers and takes writes and, in a cluster, the broker link is up
    /// (readiness). A full disk is [`AppError::StorageFull`].
    pub fn ready(&self) -> Result<(), AppError> {
        self.store.contains(b"readyz-probe")?;
        self.store.writable()?;
        if self.router.cluster().is_some_and(|c| !c.serving_all()) {
            return Err(AppError::Unavailable);
        }
        Ok(())
    }

    /// What the node's storage can do now (`/readyz`, metrics).
    pub fn storage_state(&self) -> StorageState {
        match self.store.health() {
            Health::Ok => StorageState::Ok,
            Health::Full { .. } => StorageState::Full,
            Health::Failed(_) => StorageState::Failed,
        }
    }

    /// This node's place in the cluster (`None` on a single node).
    pub fn cluster_status(&self) -> Option<crate::cluster::ClusterStatus> {
        self.router.cluster().map(crate::cluster::Cluster::status)
    }

    /// Samples the gauges of live state into the metrics, then renders them (Prometheus text).
    pub fn render_metrics(&self) -> String {
        let (tickets, orders) = (&self.router.here().tickets, &self.router.here().orders);
        self.metrics.set_live("ticket", tickets.live_count(), tickets.mailbox_total());
        self.metrics.set_live("order", orders.live_count(), orders.mailbox_total());
        self.metrics.set_timers_pending(self.deadlines.pending());
        self.metrics.set_storage(self.storage_state() == StorageState::Ok, self.store.available_bytes());
        self.metrics.set_ready(self.ready().is_ok());
        self.metrics.sync_spans();
        self.metrics.set_live_streams(self.live.streams(), self.live.overflowed());
        let index = self.read_model.index();
        self.metrics.set_search_index(index.listed(), index.heap_bytes());
        if let Some(cluster) = self.cluster_status() {
            self.metrics.set_shards(cluster.shards, cluster.serving.len());
        }
        if let Some(replication) = self.router.replication() {
            let copies = replication.status();
            let following: Vec<(u32, u64)> =
                copies.iter().filter(|c| !c.serving).map(|c| (c.shard, c.lag.unwrap_or(0))).collect();
            self.metrics.set_copies(copies.len() - following.len(), &following);
        }
        self.metrics.render()
    }
}
