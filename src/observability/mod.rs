//! Metrics (Prometheus) and logging set-up. The metrics are what the admin endpoints show, as
//! numbers a scraper can graph.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::Arc;
use std::time::Duration;

pub mod business;
pub mod telemetry;
pub use business::Business;

struct Inner {
    registry: Registry,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    activations: IntCounterVec,
    passivations: IntCounterVec,
    restarts: IntCounterVec,
    live_actors: IntGaugeVec,
    mailbox_depth: IntGaugeVec,
    timers_pending: IntGauge,
    outbox_backlog: IntGauge,
    storage_writable: IntGauge,
    storage_available: IntGauge,
    events_quarantined: prometheus::IntCounter,
    flush_latency: Histogram,
    shed: IntCounterVec,
    forwarded: IntCounterVec,
    forward_latency: Histogram,
    cluster_events: IntCounterVec,
    link_up: IntGauge,
    event_lag: Histogram,
    shard_copies: prometheus::IntGaugeVec,
    follower_lag: prometheus::IntGaugeVec,
    log_appends: IntCounterVec,
    spans: IntCounterVec,
    live_streams: IntGauge,
    live_closed: IntCounter,
    search_index: IntGaugeVec,
    mail: IntCounterVec,
    storage_written: IntCounterVec,
    /// `storage_written`'s (keys, bytes) counters by (tree, kind, removed), resolved once:
    /// every flush reports, and a label lookup hashes every label each time.
    storage_written_by: parking_lot::Mutex<WrittenCounters>,
    business: Business,
    ready: IntGauge,
    shards: IntGaugeVec,
}

/// The node's metrics; cheap to clone. Each test app has its own registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

/// The (keys, bytes) counters of `storage_written_total` by (tree, kind, removed).
type WrittenCounters = std::collections::HashMap<(&'static str, &'static str, bool), [prometheus::IntCounter; 2]>;

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("ticketing".into()), None)?;
        let kind = &["kind"];
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )?;
        let http_latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route"),
            &["method", "route"],
        )?;
        let activations = IntCounterVec::new(Opts::new("actor_activations_total", "Actors activated"), kind)?;
        let passivations = IntCounterVec::new(Opts::new("actor_passivations_total", "Actors passivated"), kind)?;
        let restarts = IntCounterVec::new(Opts::new("actor_restarts_total", "Supervisor restarts"), kind)?;
        let live_actors = IntGaugeVec::new(Opts::new("actors_live", "Live actors by kind"), kind)?;
        let mailbox_depth = IntGaugeVec::new(Opts::new("actor_mailbox_depth", "Queued messages by kind"), kind)?;
        let timers_pending = IntGauge::new("timers_pending", "Order deadlines armed on this node")?;
        let outbox_backlog = IntGauge::new("outbox_backlog", "Events written but not yet published")?;
        let storage_writable =
            IntGauge::new("storage_writable", "1 while the store takes writes; 0 while its disk is full or it failed")?;
        let storage_available = IntGauge::new(
            "storage_available_bytes",
            "Free space of the data dir's disk at the storage writer's last look",
        )?;
        let shed = IntCounterVec::new(
            Opts::new(
                "requests_shed_total",
                "Requests refused with 503 at once by a bound (node in-flight or actor mailbox)",
            ),
            &["bound"],
        )?;
        let events_quarantined =
            prometheus::IntCounter::new("events_quarantined_total", "Undecodable outbox records moved aside")?;
        let flush_latency = Histogram::with_opts(
            HistogramOpts::new("storage_flush_duration_seconds", "Duration of one group-commit flush")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]),
        )?;
        let forwarded = IntCounterVec::new(
            Opts::new("cluster_forwarded_total", "Requests forwarded to the node owning the shard, by outcome"),
            &["outcome"],
        )?;
        let forward_latency = Histogram::with_opts(
            HistogramOpts::new("cluster_forward_duration_seconds", "Round trip of a forwarded request")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0]),
        )?;
        let cluster_events = IntCounterVec::new(
            Opts::new(
                "cluster_events_total",
                "Domain events on the broker: published, confirmed, consumed, redelivered",
            ),
            &["what"],
        )?;
        let link_up = IntGauge::new("cluster_link_up", "1 while the broker link is up (clustered nodes)")?;
        let shard_copies = prometheus::IntGaugeVec::new(
            Opts::new("cluster_shard_copies", "This node's copies of replicated shards, served or followed"),
            &["role"],
        )?;
        let follower_lag = prometheus::IntGaugeVec::new(
            Opts::new("cluster_follower_lag_entries", "Entries of a shard's log a following copy has not read yet"),
            &["shard"],
        )?;
        let log_appends = IntCounterVec::new(
            Opts::new(
                "cluster_log_appended_total",
                "Entries (unit=entries) and bytes (unit=bytes) this node appended to shard logs",
            ),
            &["unit"],
        )?;
        registry.register(Box::new(log_appends.clone()))?;
        let spans = IntCounterVec::new(
            Opts::new(
                "spans_total",
                "Trace spans the collector took (outcome=exported), whose export failed (failed), or dropped because the exporter's queue was full (dropped)",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(spans.clone()))?;
        let live_streams = IntGauge::new("live_streams", "Live ticket streams (GET /api/tickets/stream) open")?;
        registry.register(Box::new(live_streams.clone()))?;
        let live_closed = IntCounter::new(
            "live_streams_overflowed_total",
            "Live ticket streams closed because their client fell 256 events behind",
        )?;
        registry.register(Box::new(live_closed.clone()))?;
        let search_index = IntGaugeVec::new(
            Opts::new(
                "search_index",
                "The ticket search index: tickets for sale in it (unit=tickets) and its estimated heap (unit=bytes)",
            ),
            &["unit"],
        )?;
        registry.register(Box::new(search_index.clone()))?;
        let mail = IntCounterVec::new(
            Opts::new(
                "mail_total",
                "Mail the SMTP server took (outcome=sent), refused or could not be reached for (failed, tried again), or dropped (no recipient any more, undecodable)",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(mail.clone()))?;
        let storage_written = IntCounterVec::new(
            Opts::new(
                "storage_written_total",
                "Keys (unit=keys) and bytes of key + value (unit=bytes) the writer applied, by tree, record kind and op (put or remove)",
            ),
            &["tree", "kind", "op", "unit"],
        )?;
        registry.register(Box::new(storage_written.clone()))?;
        registry.register(Box::new(shard_copies.clone()))?;
        registry.register(Box::new(follower_lag.clone()))?;
        let event_lag = Histogram::with_opts(
            HistogramOpts::new(
                "cluster_event_lag_seconds",
                "From another node publishing an event to this node's read model applying it",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 300.0]),
        )?;
        registry.register(Box::new(event_lag.clone()))?;
        for metric in [&forwarded, &cluster_events] {
            registry.register(Box::new(metric.clone()))?;
        }
        registry.register(Box::new(forward_latency.clone()))?;
        registry.register(Box::new(link_up.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_latency.clone()))?;
        registry.register(Box::new(activations.clone()))?;
        registry.register(Box::new(passivations.clone()))?;
        registry.register(Box::new(restarts.clone()))?;
        registry.register(Box::new(live_actors.clone()))?;
        registry.register(Box::new(mailbox_depth.clone()))?;
        registry.register(Box::new(timers_pending.clone()))?;
        registry.register(Box::new(outbox_backlog.clone()))?;
        registry.register(Box::new(storage_writable.clone()))?;
        registry.register(Box::new(storage_available.clone()))?;
        registry.register(Box::new(events_quarantined.clone()))?;
        registry.register(Box::new(shed.clone()))?;
        registry.register(Box::new(flush_latency.clone()))?;
        let business = Business::new(&registry)?;
        let ready = IntGauge::new("ready", "1 while the node is ready (what /readyz answers 200 for)")?;
        registry.register(Box::new(ready.clone()))?;
        let shards = IntGaugeVec::new(
            Opts::new(
                "cluster_shards",
                "Shards of the cluster (state=total, the same on every node) and those this node serves now (state=serving)",
            ),
            &["state"],
        )?;
        registry.register(Box::new(shards.clone()))?;
        // Present at 0 from the start, so an alert or a ratio over them is defined before the first event.
        for bound in ["node", "mailbox"] {
            shed.with_label_values(&[bound]);
        }
        for role in ["serving", "following"] {
            shard_copies.with_label_values(&[role]);
        }
        Ok(Self(Arc::new(Inner {
            registry,
            http_requests,
            http_latency,
            activations,
            passivations,
            restarts,
            live_actors,
            mailbox_depth,
            timers_pending,
            outbox_backlog,
            storage_writable,
            storage_available,
            events_quarantined,
            flush_latency,
            shed,
            forwarded,
            forward_latency,
            cluster_events,
            link_up,
            event_lag,
            shard_copies,
            follower_lag,
            log_appends,
            spans,
            live_streams,
            live_closed,
            search_index,
            mail,
            storage_written,
            storage_written_by: Default::default(),
            business,
            ready,
            shards,
        })))
    }

    /// How the marketplace is doing: orders, payments, listings, webhooks.
    pub fn business(&self) -> &Business {
        &self.0.business
    }

    pub fn activated(&self, kind: &str) {
        self.0.activations.with_label_values(&[kind]).inc();
    }
    pub fn passivated(&self, kind: &str) {
        self.0.passivations.with_label_values(&[kind]).inc();
    }
    pub fn restarted(&self, kind: &str) {
        self.0.restarts.with_label_values(&[kind]).inc();
    }
    pub fn flushed(&self, took: Duration) {
        self.0.flush_latency.observe(took.as_secs_f64());
    }
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.0.http_requests.with_label_values(&[method, route, &status.to_string()]).inc();
        self.0.http_latency.with_label_values(&[method, route]).observe(took.as_secs_f64());
    }
    pub fn set_live(&self, kind: &str, live: usize, mailbox: i64) {
        self.0.live_actors.with_label_values(&[kind]).set(live as i64);
        self.0.mailbox_depth.with_label_values(&[kind]).set(mailbox);
    }
    /// A request refused at once by `bound` (`node` or `mailbox`).
    pub fn shed(&self, bound: &str) {
        self.0.shed.with_label_values(&[bound]).inc();
    }

    pub fn set_timers_pending(&self, n: usize) {
        self.0.timers_pending.set(n as i64);
    }
    pub fn event_quarantined(&self) {
        self.0.events_quarantined.inc();
    }
    pub fn set_outbox_backlog(&self, n: usize) {
        self.0.outbox_backlog.set(n as i64);
    }
    /// Whether the store takes writes, and the free space last seen (0 when not watched).
    pub fn set_storage(&self, writable: bool, available_bytes: u64) {
        self.0.storage_writable.set(i64::from(writable));
        self.0.storage_available.set(i64::try_from(available_bytes).unwrap_or(i64::MAX));
    }

    /// A forwarded request ended with `outcome` (`ok`, `unroutable`, `timeout`, `link_down`, ...).
    pub fn forwarded(&self, outcome: &str, took: Duration) {
        self.0.forwarded.with_label_values(&[outcome]).inc();
        self.0.forward_latency.observe(took.as_secs_f64());
    }
    /// `n` domain events were `what` (`published`, `confirmed`, `consumed`, `redelivered`).
    pub fn cluster_events(&self, what: &str, n: usize) {
        self.0.cluster_events.with_label_values(&[what]).inc_by(n as u64);
    }
    /// Another node's event reached this node's read model `ms` after it was published.
    pub fn event_lag(&self, ms: i64) {
        self.0.event_lag.observe(ms.max(0) as f64 / 1000.0);
    }
    pub fn set_link_up(&self, up: bool) {
        self.0.link_up.set(i64::from(up));
    }

    /// What one writer group applied (write amplification).
    pub fn written(&self, written: &[crate::storage::Written]) {
        let mut by = self.0.storage_written_by.lock();
        for w in written {
            let [keys, bytes] = by.entry((w.tree, w.kind, w.removed)).or_insert_with(|| {
                let op = if w.removed { "remove" } else { "put" };
                ["keys", "bytes"].map(|unit| self.0.storage_written.with_label_values(&[w.tree, w.kind, op, unit]))
            });
            keys.inc_by(w.keys);
            bytes.inc_by(w.bytes);
        }
    }

    /// Brings the span counters up to the exporter's (process-wide) counts.
    pub fn sync_spans(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let totals =
            [("exported", &telemetry::EXPORTED), ("failed", &telemetry::FAILED), ("dropped", &telemetry::DROPPED)];
        for (outcome, total) in totals {
            catch_up(&self.0.spans.with_label_values(&[outcome]), total.load(Relaxed));
        }
    }

    /// Samples the live streams: open now, and closed for falling behind since start.
    pub fn set_live_streams(&self, open: usize, overflowed: u64) {
        self.0.live_streams.set(open as i64);
        catch_up(&self.0.live_closed, overflowed);
    }

    /// A mail sent, failed or dropped.
    pub fn mail(&self, outcome: &str) {
        self.0.mail.with_label_values(&[outcome]).inc();
    }

    /// Samples the search index: tickets in it and its estimated heap.
    pub fn set_search_index(&self, tickets: usize, bytes: usize) {
        self.0.search_index.with_label_values(&["tickets"]).set(tickets as i64);
        self.0.search_index.with_label_values(&["bytes"]).set(bytes as i64);
    }

    /// An entry of `bytes` appended to a shard's log.
    pub fn log_appended(&self, bytes: usize) {
        self.0.log_appends.with_label_values(&["entries"]).inc();
        self.0.log_appends.with_label_values(&["bytes"]).inc_by(bytes as u64);
    }

    /// Samples this node's copies of replicated shards: how many it serves and follows, and
    /// each followed copy's lag (entries not yet read).
    pub fn set_copies(&self, serving: usize, following: &[(u32, u64)]) {
        self.0.shard_copies.with_label_values(&["serving"]).set(serving as i64);
        self.0.shard_copies.with_label_values(&["following"]).set(following.len() as i64);
        self.0.follower_lag.reset();
        for (shard, lag) in following {
            self.0.follower_lag.with_label_values(&[&shard.to_string()]).set(*lag as i64);
        }
    }

    pub fn set_ready(&self, ready: bool) {
        self.0.ready.set(i64::from(ready));
    }

    /// A clustered node's shards: how many the cluster has, and how many this one serves.
    pub fn set_shards(&self, total: u32, serving: usize) {
        self.0.shards.with_label_values(&["total"]).set(i64::from(total));
        self.0.shards.with_label_values(&["serving"]).set(serving as i64);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.0.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "metrics cannot be encoded");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

tokio::task_local! {
    /// The id of the request being served: an HTTP request's (its `X-Request-Id`, or a new
    /// one), carried with a forwarded request to the owning node, so both nodes log it.
    pub static REQUEST_ID: String;
}

/// The message header that carries [`REQUEST_ID`] to another node.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the request being served, or empty outside one.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Installs the global `tracing` subscriber: human-readable or JSON lines, on stderr (stdout
/// carries only the "listening on" line that scripts read). The HTTP parser's own error line
/// per rejected request is held back and summarised ([`protocol_errors`]).
///
/// With `telemetry` naming a collector, also the OpenTelemetry layer that exports this
/// crate's spans ([`telemetry`]); the pipeline is returned, to be shut down at exit.
pub fn init_logging(
    level: &str,
    json: bool,
    telemetry: Option<(&crate::settings::TelemetrySettings, &str)>,
) -> Result<Option<telemetry::Telemetry>, String> {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // lapin logs every message the broker returns (a request for a shard whose owner is
        // down) at WARN with its whole body; the cluster counts those in its metrics instead.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},lapin::returned_messages=error")));
    // The parser's own lines go to the counter instead. `Targets` filters decide per callsite,
    // once, so events that no layer wants stay free (and cheaper to ask than a closure).
    let not_the_parser = Targets::new()
        .with_default(tracing::level_filters::LevelFilter::TRACE)
        .with_target(protocol_errors::TARGET, tracing::level_filters::LevelFilter::OFF);
    let parser_errors = Targets::new().with_target(protocol_errors::TARGET, tracing::Level::WARN);
    // Colour only for a person at a terminal: under systemd, a container runtime or `nohup`
    // stderr is a file or a pipe, and escape codes would end up in it.
    // `NO_COLOR` (no-color.org) turns it off there too.
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(on_terminal && !no_color);
    let lines = if json { lines.json().boxed() } else { lines.boxed() };
    let started = match telemetry {
        Some((settings, node)) => telemetry::Telemetry::start(settings, node)?,
        None => None,
    };
    let (pipeline, otel) = match started {
        Some((pipeline, tracer)) => {
            // This crate's spans, with the debug ones made for traces only (an actor's step,
            // a storage commit), and its events from INFO.
            // (A `FilterFn` caches its answer per callsite; the hint keeps the process-wide
            // level at DEBUG, so `log` records of dependencies below it stay unexamined.)
            let ours = tracing_subscriber::filter::filter_fn(|meta| {
                let wanted = if meta.is_span() { tracing::Level::DEBUG } else { tracing::Level::INFO };
                meta.target().starts_with("ticketing") && *meta.level() <= wanted
            })
            .with_max_level_hint(tracing::level_filters::LevelFilter::DEBUG);
            // Per span: no thread, source location or idle time recorded (cost, not insight).
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_threads(false)
                .with_location(false)
                .with_tracked_inactivity(false);
            (Some(pipeline), Some(layer.with_filter(ours)))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(lines.with_filter(not_the_parser).with_filter(filter))
        .with(protocol_errors::Counter.with_filter(parser_errors))
        .with(otel)
        .try_init();
    Ok(pipeline)
}

/// Requests the HTTP parser rejects (a bad `Content-Length`, a NUL in a header, a bad
/// version...). actix answers each with an empty 400 and logs an ERROR line: a client could
/// fill the logs. Those lines are counted here instead, and [`report`](protocol_errors::report)
/// logs one WARN per period with the count and the last one seen.
pub mod protocol_errors {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tracing::field::{Field, Visit};

    /// Where actix-http logs a connection's protocol errors.
    pub const TARGET: &str = "actix_http::h1::dispatcher";

    /// Process-wide, as the subscriber that feeds them is.
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static LAST: parking_lot::Mutex<String> = parking_lot::Mutex::new(String::new());

    /// The layer that counts them.
    pub struct Counter;

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Counter {
        fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            if event.metadata().target() != TARGET {
                return;
            }
            SEEN.fetch_add(1, Ordering::Relaxed);
            let mut message = Message(String::new());
            event.record(&mut message);
            *LAST.lock() = message.0.chars().take(200).collect();
        }
    }

    struct Message(String);

    impl Visit for Message {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }

    /// Logs what was counted since the last call, if anything; returns the count (for the
    /// metrics).
    pub fn report() -> u64 {
        let seen = SEEN.swap(0, Ordering::Relaxed);
        if seen > 0 {
            let last = std::mem::take(&mut *LAST.lock());
            tracing::warn!(count = seen, last = %last, "requests rejected by the HTTP parser since the last report");
        }
        seen
    }
}

/// Brings `counter` up to `total`, a count kept elsewhere (sampled at each scrape). One at a
/// time: two scrapes at once would add the same difference twice.
fn catch_up(counter: &IntCounter, total: u64) {
    static ONE_AT_A_TIME: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock();
    counter.inc_by(total.saturating_sub(counter.get()));
}
