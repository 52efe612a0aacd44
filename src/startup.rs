//! `Application`: builds a node from `Settings` (store, actor system, recovery, outbox and read
//! model, application layer, HTTP server) and runs it until it is stopped. Tests build the very
//! same thing on port 0.

use crate::actors::deadlines::Deadlines;
use crate::actors::faults::Faults;
use crate::actors::order::{Expire, OrderActor, OrderDeps};
use crate::actors::registry::Limits;
use crate::actors::ticket::{TicketActor, TicketDeps};
use crate::actors::Registry;
use crate::app::projection::ReadModel;
use crate::app::throttle::SignInThrottle;
use crate::app::{Accounts, App, Parts};
use crate::cluster::log::Retention;
use crate::cluster::{Cluster, Membership};
use crate::edge::AppState;
use crate::events::business::BusinessEvents;
use crate::events::live::Live;
use crate::events::{EventBus, EventSink, Publisher};
use crate::observability::Metrics;
use crate::payments::{offline::OfflineGateway, stripe::StripeGateway, Gateway};
use crate::replication::{Custody, Replication};
use crate::routing::events::BrokerEvents;
use crate::routing::freshness::Freshness;
use crate::routing::inbound::Inbound;
use crate::routing::{placement, Here, Router, ShardMap};
use crate::settings::{PaymentProvider, Settings};
use crate::storage::{Options as StoreOptions, Store};
use actix::Arbiter;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, HttpServer};
use anyhow::Context as _;
use std::net::TcpListener;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the requests the HTTP parser rejected are summarised in the log.
const PROTOCOL_ERROR_REPORT: Duration = Duration::from_secs(5);

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    arbiters: Vec<Arbiter>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let metrics = Metrics::new().context("metrics registry")?;
        let flush_metrics = metrics.clone();
        let options = StoreOptions {
            cache_bytes: settings.storage.cache_mb.saturating_mul(1 << 20),
            reserve_bytes: Some(settings.storage.reserve_mb.saturating_mul(1 << 20)),
            keep_history: settings.audit.retention().is_some(),
            queue_mail: settings.mail.enabled(),
        };
        let store =
            Store::open_with(&settings.storage.path, options, Arc::new(move |took| flush_metrics.flushed(took)))
                .with_context(|| format!("cannot open storage at {}", settings.storage.path.display()))?;
        let write_metrics = metrics.clone();
        store.observe_writes(Arc::new(move |written| write_metrics.written(written)));

        // The data dir must hold only shards this configuration gives this node.
        let shard_map = ShardMap::new(&settings.cluster);
        placement::check_and_record(&store, &settings.cluster.name, &shard_map)
            .context("this node's shards (cluster settings) do not fit its data dir")?;
        let mut arbiters: Vec<Arbiter> = Vec::new();

        // Recovery: the index of unfinished work is loaded into the wheel, and whatever is due
        // (expiries that passed while down, releases a crash cut short) fires as soon as the
        // wheel runs, before or as the first requests are served.
        let deadlines = Deadlines::new(metrics.clone());
        let started = Instant::now();
        let pending = deadlines.load(&store).context("loading the index of unfinished work")?;
        tracing::info!(pending, took_ms = started.elapsed().as_millis() as u64, "deadlines re-armed");
        // Rebuilt from entity records only when missing or of another version (an upgrade).
        let live = Live::new(settings.live.max_streams);
        let read_model = ReadModel::open(&store).context("opening the read model")?.indexed().telling(live.clone());
        // This node's and (in a cluster) every other node's public events.
        let events = EventBus::default();

        // Actors run on their own arbiters (one per core), apart from the HTTP workers.
        let actor_arbiters: Vec<Arbiter> = (0..settings.threads().max(1)).map(|_| Arbiter::new()).collect();
        let handles: Vec<_> = actor_arbiters.iter().map(|a| a.handle()).collect();
        arbiters.extend(actor_arbiters);
        let ask_timeout = Duration::from_millis(settings.actors.ask_timeout_ms);
        let idle = Duration::from_secs_f64(settings.actors.idle_seconds);
        let faults = Faults::new(&settings.testing.crash_at);
        let tickets = Registry::<TicketActor>::new(
            handles.clone(),
            TicketDeps {
                store: store.clone(),
                deadlines: deadlines.clone(),
                idle,
                fault_injection: settings.testing.fault_injection,
                faults: faults.clone(),
            },
            Limits::of(&settings.actors),
            metrics.clone(),
        );
        let gateway: Gateway = match settings.payments.provider {
            PaymentProvider::Offline => Arc::new(OfflineGateway::new(store.clone())),
            PaymentProvider::Stripe => Arc::new(
                StripeGateway::try_new(
                    &settings.payments.stripe_api_base,
                    settings.payments.stripe_secret_key.expose(),
                )
                .map_err(|e| anyhow::anyhow!("invalid setting payments.stripe_api_base: {e}"))?,
            ),
        };
        let orders = Registry::<OrderActor>::new(
            handles,
            OrderDeps {
                store: store.clone(),
                tickets: tickets.clone(),
                gateway: gateway.clone(),
                deadlines: deadlines.clone(),
                idle,
                faults,
            },
            Limits::of(&settings.actors),
            metrics.clone(),
        );
        // Replicated shards: every write goes to its shard's log, and this node keeps copies of
        // the shards it owns or follows.
        let replication = (shard_map.followed().len() + shard_map.mine().len() > 0
            && settings.cluster.effective_replicas() > 0)
            .then(|| {
                let copies: Vec<_> = shard_map.mine().iter().chain(shard_map.followed()).copied().collect();
                let custody =
                    Custody { tickets: tickets.clone(), orders: orders.clone(), deadlines: deadlines.clone() };
                let replication = Replication::new(
                    store.clone(),
                    &settings.cluster.node_id,
                    shard_map.shard_count(),
                    &copies,
                    custody,
                );
                if settings.testing.crash_at == "stall_following" {
                    replication.stall_first_follow();
                }
                replication
            });
        // The wheel fires this node's own deadlines, always locally; those of a shard another
        // node serves now are its (it re-arms them when it gains the shard).
        let (due, writes) = (orders.clone(), store.clone());
        actix_web::rt::spawn(deadlines.clone().run(move |order| {
            if writes.writes_slot(order.slot()) {
                due.tell(order, Expire)
            }
        }));

        // What this node runs for its own shards, whoever asks; the transport is given it.
        let here = Arc::new(Here {
            tickets,
            orders,
            accounts: Accounts::new(store.clone(), settings.auth.clone()),
            throttle: Arc::new(SignInThrottle::new(&settings.throttle)),
            store: store.clone(),
            map: shard_map.clone(),
        });
        let freshness = Arc::new(Freshness::default());
        let cluster = if settings.cluster.amqp_url.is_empty() {
            None
        } else {
            let membership = Membership {
                node: settings.cluster.node_id.clone(),
                cluster: settings.cluster.name.clone(),
                urls: settings.cluster.broker_urls(),
                epoch: shard_map.epoch(),
                shard_count: shard_map.shard_count(),
                mine: shard_map.mine().to_vec(),
                standby: shard_map.followed().to_vec(),
                replicated: replication.is_some(),
                takeover_grace: Duration::from_secs_f64(settings.cluster.takeover_grace_seconds.max(0.0)),
                retention: Retention {
                    max_bytes: settings.cluster.log_retention_bytes,
                    max_age_hours: settings.cluster.log_retention_hours,
                    segment_bytes: settings.cluster.log_segment_bytes,
                },
            };
            let inbound = Arc::new(Inbound::new(
                Arc::clone(&here),
                read_model.clone(),
                events.clone(),
                Arc::clone(&freshness),
                replication.clone(),
            ));
            let faults = crate::cluster::Faults {
                drop_a_reply: settings.testing.crash_at == "drop_forwarded_reply",
                refuse_first_serve: settings.testing.crash_at == "refuse_first_serve",
                slow_event_queue: settings.testing.crash_at == "slow_event_queue",
            };
            let (cluster, link) = Cluster::start(membership, inbound, metrics.clone(), faults)
                .await
                .context("cannot join the cluster")?;
            arbiters.push(link);
            if let Some(replication) = &replication {
                replication.attach(cluster.clone());
            }
            // Its own shards served (or, replicated, taken over by others) before the port opens.
            cluster.until_serving_all(Duration::from_secs(20)).await;
            tracing::info!(node = %settings.cluster.node_id, shards = shard_map.mine().len(), "joined the cluster");
            Some(cluster)
        };
        let router = Router::new(here, cluster.clone(), freshness, ask_timeout, settings.testing.wire_roundtrip)
            .with_replication(replication);
        if let Some(replication) = router.replication() {
            replication.copies_from(Arc::new(router.clone()));
        }

        let business = Rc::new(BusinessEvents::new(metrics.business().clone()));
        let sinks: Vec<Rc<dyn EventSink>> = vec![Rc::new(read_model.clone()), Rc::new(events.clone()), business];
        let mut publisher = Publisher::new(store.clone(), sinks, metrics.clone());
        if let Some(cluster) = &cluster {
            publisher = publisher.with_remote(Rc::new(BrokerEvents::new(cluster.clone())));
        }
        let delivery = publisher.delivery();
        actix_web::rt::spawn(publisher.run());

        if settings.admin.token.is_empty() {
            tracing::warn!("admin endpoints disabled: set admin.token (TICKETING_ADMIN__TOKEN) to enable /admin");
        }
        let app = App::new(Parts {
            settings: settings.clone(),
            store,
            router,
            deadlines,
            gateway,
            events,
            delivery,
            read_model,
            live,
            metrics,
        });
        let app = Arc::new(app);
        if cluster.is_some() {
            actix_web::rt::spawn(App::bootstrap_read_model(Arc::clone(&app)));
        }
        actix_web::rt::spawn(crate::app::housekeeping::run(Arc::clone(&app)));
        if settings.mail.enabled() {
            actix_web::rt::spawn(crate::mail::run(Arc::clone(&app)));
        }
        actix_web::rt::spawn(async {
            let mut every = tokio::time::interval(PROTOCOL_ERROR_REPORT);
            loop {
                every.tick().await;
                crate::observability::protocol_errors::report();
            }
        });
        let state = web::Data::new(AppState::new(settings.clone(), app));

        let listener = TcpListener::bind(settings.http.addr)
            .with_context(|| format!("cannot listen on {}", settings.http.addr))?;
        let port = listener.local_addr()?.port();
        let app_state = state.clone();
        let mut server = HttpServer::new(move || crate::routes::app(app_state.clone()))
            .shutdown_timeout(settings.http.shutdown_timeout_seconds)
            .client_request_timeout(Duration::from_secs_f64(settings.http.request_timeout_seconds));
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        let server = server.listen(listener)?.run();
        Ok(Self { port, server, state, arbiters })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from elsewhere (tests); SIGTERM/SIGINT do the same in the binary.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until stopped, then shuts down in order: requests drained (by the server), actors
    /// stopped, storage flushed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
        // Bounded like the drain: a disk that stopped answering must not keep the process up
        // (whatever was acknowledged is on disk already; the rest was never acknowledged).
        let drain = Duration::from_secs(self.state.app.settings().http.shutdown_timeout_seconds);
        match tokio::time::timeout(drain, self.state.app.store().close()).await {
            Ok(()) => tracing::info!("stopped: storage flushed"),
            Err(_) => tracing::error!("stopped without the last flush: the disk did not answer in time"),
        }
        served
    }
}
