//! `Application`: builds a node from `Settings` (store, actor system, HTTP server) and runs it
//! until it is stopped. Tests build the very same thing on port 0.

use crate::actors::ticket::{TicketActor, TicketDeps};
use crate::actors::Registry;
use crate::auth::Auth;
use crate::http::{self, AppState};
use crate::observability::Metrics;
use crate::settings::Settings;
use crate::storage::Store;
use actix::Arbiter;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{middleware, web, App, HttpServer};
use anyhow::Context as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

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
        let store = Store::open(
            &settings.storage.path,
            Arc::new(move |took| flush_metrics.flushed(took)),
        )
        .with_context(|| format!("cannot open storage at {}", settings.storage.path.display()))?;

        // Actors run on their own arbiters (one per core), apart from the HTTP workers.
        let arbiters: Vec<Arbiter> = (0..settings.threads().max(1))
            .map(|_| Arbiter::new())
            .collect();
        let handles: Vec<_> = arbiters.iter().map(|a| a.handle()).collect();
        let ask_timeout = Duration::from_millis(settings.actors.ask_timeout_ms);
        let idle = Duration::from_secs_f64(settings.actors.idle_seconds);
        let tickets = Registry::<TicketActor>::new(
            handles,
            TicketDeps {
                store: store.clone(),
                idle,
                fault_injection: settings.testing.fault_injection,
            },
            ask_timeout,
            metrics.clone(),
        );
        let auth = Auth::new(store.clone(), settings.auth.clone());
        let state = web::Data::new(AppState {
            settings: settings.clone(),
            store,
            auth,
            tickets,
            metrics,
        });

        let listener = TcpListener::bind(settings.http.addr)
            .with_context(|| format!("cannot listen on {}", settings.http.addr))?;
        let port = listener.local_addr()?.port();
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(http::json_errors())
                .wrap(middleware::from_fn(http::observe))
                .configure(http::configure(app_state.clone()))
        })
        .shutdown_timeout(settings.http.shutdown_timeout_seconds);
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        let server = server.listen(listener)?.run();
        Ok(Self {
            port,
            server,
            state,
            arbiters,
        })
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
