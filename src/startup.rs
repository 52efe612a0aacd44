//! `Application`: builds a node from `Settings` (store, actor system, timers, outbox, HTTP
//! server) and runs it until it is stopped. Tests build the very same thing on port 0.

use crate::actors::deadlines::Deadlines;
use crate::actors::order::{Faults, OrderActor, OrderDeps};
use crate::actors::ticket::{TicketActor, TicketDeps};
use crate::actors::Registry;
use crate::auth::Auth;
use crate::events::{EventBus, EventSink, Publisher};
use crate::http::{self, AppState};
use crate::observability::Metrics;
use crate::payments::{offline::OfflineGateway, stripe::StripeGateway, Gateway};
use crate::settings::{PaymentProvider, Settings};
use crate::storage::Store;
use actix::Arbiter;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{middleware, web, App, HttpServer};
use anyhow::Context as _;
use std::net::TcpListener;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        let store = Store::open(&settings.storage.path, Arc::new(move |took| flush_metrics.flushed(took)))
            .with_context(|| format!("cannot open storage at {}", settings.storage.path.display()))?;

        // Actors run on their own arbiters (one per core), apart from the HTTP workers.
        let arbiters: Vec<Arbiter> = (0..settings.threads().max(1)).map(|_| Arbiter::new()).collect();
        let handles: Vec<_> = arbiters.iter().map(|a| a.handle()).collect();
        let ask_timeout = Duration::from_millis(settings.actors.ask_timeout_ms);
        let idle = Duration::from_secs_f64(settings.actors.idle_seconds);
        let tickets = Registry::<TicketActor>::new(
            handles.clone(),
            TicketDeps { store: store.clone(), idle, fault_injection: settings.testing.fault_injection },
            ask_timeout,
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
        let faults = Faults::new(&settings.testing.crash_at);
        let deadlines = Deadlines::new(metrics.clone());
        let started = Instant::now();
        let pending = deadlines.load(&store).context("loading the deadline index")?;
        tracing::info!(pending, took_ms = started.elapsed().as_millis() as u64, "deadlines re-armed");
        let orders = Registry::<OrderActor>::new(
            handles,
            OrderDeps {
                store: store.clone(),
                tickets: tickets.clone(),
                gateway: gateway.clone(),
                deadlines: deadlines.clone(),
                idle,
                faults: faults.clone(),
            },
            ask_timeout,
            metrics.clone(),
        );
        actix_web::rt::spawn(deadlines.clone().run(orders.clone()));

        let events = EventBus::default();
        let sinks: Vec<Rc<dyn EventSink>> = vec![Rc::new(events.clone())];
        actix_web::rt::spawn(Publisher::new(store.clone(), sinks, metrics.clone()).run());

        if settings.admin.token.is_empty() {
            tracing::warn!("admin endpoints disabled: set admin.token (TICKETING_ADMIN__TOKEN) to enable /admin");
        }
        actix_web::rt::spawn(http::housekeeping(store.clone()));
        let auth = Auth::new(store.clone(), settings.auth.clone());
        let state = web::Data::new(AppState {
            settings: settings.clone(),
            store,
            auth,
            tickets,
            orders,
            deadlines,
            events,
            gateway,
            faults,
            metrics,
        });

        let listener = TcpListener::bind(settings.http.addr)
            .with_context(|| format!("cannot listen on {}", settings.http.addr))?;
        let port = listener.local_addr()?.port();
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(middleware::from_fn(http::idempotency::idempotency))
                .wrap(http::json_errors())
                .wrap(middleware::from_fn(http::observe))
                .configure(http::configure(app_state.clone()))
        })
        .shutdown_timeout(settings.http.shutdown_timeout_seconds);
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
        self.state.store.close().await;
        tracing::info!("stopped: storage flushed");
        served
    }
}
