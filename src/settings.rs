//! Typed, layered settings: `config/default.toml` (compiled in), then the `--config` file, then
//! `TICKETING_<SECTION>__<KEY>` environment variables. Unknown keys and invalid values stop
//! start-up with a message naming the setting.

use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

const DEFAULTS: &str = include_str!("../config/default.toml");
const DEV_JWT_SECRET: &str = "dev-only-insecure-jwt-secret";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub app: AppSettings,
    pub http: HttpSettings,
    pub storage: StorageSettings,
    pub auth: AuthSettings,
    pub actors: ActorSettings,
    pub orders: OrderSettings,
    pub payments: PaymentSettings,
    pub admin: AdminSettings,
    pub cluster: ClusterSettings,
    pub log: LogSettings,
    pub throttle: ThrottleSettings,
    pub audit: AuditSettings,
    pub live: LiveSettings,
    pub mail: MailSettings,
    pub telemetry: TelemetrySettings,
    pub testing: TestingSettings,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Dev,
    Production,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSettings {
    pub mode: Mode,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub addr: SocketAddr,
    pub workers: usize,
    pub body_limit_bytes: usize,
    pub shutdown_timeout_seconds: u64,
    /// Requests served at once; past it a request is answered 503 + Retry-After at once.
    pub max_in_flight: usize,
    /// Seconds a client has to send a request's headers, and then as long for its body;
    /// slower ones are answered 408 (a trickled body must not hold a connection for minutes).
    pub request_timeout_seconds: f64,
    /// Proxies whose `X-Forwarded-For` names the client's address; from anyone else the
    /// header is ignored (it would let a client pick the address its failures count against).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub path: PathBuf,
    /// sled's page cache, in MiB.
    pub cache_mb: u64,
    /// Free space kept in reserve on the data dir's disk, in MiB: below it writes are refused
    /// (507) and the headroom file of this size is given back to flush what was accepted
    /// (`storage::space`). 0 turns the watch off.
    pub reserve_mb: u64,
}

/// A secret: never printed by `Debug`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"[redacted]\"" })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub jwt_secret: Secret,
    pub access_token_seconds: u64,
    pub refresh_token_seconds: u64,
    pub secure_cookies: bool,
}

/// Failed sign-ins allowed before a client waits (`app::throttle`); only failures count.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Failures one client address may make at once, whatever the account...
    pub address_failures: u32,
    /// ...and then one more every this many seconds.
    pub address_refill_seconds: f64,
    /// Failures for one account from one address at once...
    pub account_failures: u32,
    /// ...and then one more every this many seconds.
    pub account_refill_seconds: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSettings {
    pub idle_seconds: f64,
    pub ask_timeout_ms: u64,
    pub threads: usize,
    /// Requests queued for one actor; past it a request is answered 503 + Retry-After at once.
    pub mailbox_limit: usize,
    /// Live actors of one kind past which the least recently used idle ones are passivated.
    pub max_live: usize,
    /// An actor whose entity is settled for good (an order cancelled and released, or
    /// complete) is passivated after this much idleness instead of `idle_seconds`.
    pub settled_idle_seconds: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSettings {
    pub expiration_seconds: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentProvider {
    Offline,
    Stripe,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentSettings {
    pub provider: PaymentProvider,
    pub stripe_secret_key: Secret,
    pub stripe_api_base: String,
    pub webhook_secret: Secret,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    pub token: Secret,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// This node's name in `members` and in the broker's queue names.
    pub node_id: String,
    /// RabbitMQ URL, or the URLs of a RabbitMQ cluster's nodes separated by commas (the link
    /// goes through another when one fails); empty runs a single node that owns every shard.
    pub amqp_url: Secret,
    /// The cluster's name: recorded in the data dir, and the prefix of its queues and exchanges.
    pub name: String,
    /// Shards (ranges of slots); fixed when the cluster is created.
    pub shards: u32,
    /// The nodes that own shards (rendezvous hashing). Empty: this node alone. A node that is
    /// not listed owns nothing and forwards every request (a gateway).
    pub members: Vec<String>,
    /// The shard map's version; bumped when `members` changes (a documented, manual move).
    pub epoch: u32,
    /// Copies of each shard besides its owner's, on the next members in the shard's ranking,
    /// each following the shard's log (README "Running a cluster"). Unset: 1 with two or more
    /// members, 0 otherwise; 0 turns the logs off.
    #[serde(default)]
    pub replicas: Option<u32>,
    /// At start-up, how long a follower leaves a lease nobody holds to its preferred owner.
    #[serde(default = "default_takeover_grace")]
    pub takeover_grace_seconds: f64,
    /// What each shard's log keeps at least (0: no limit), in bytes and hours: the broker
    /// drops whole segments past it. A follower behind what the log still holds starts again
    /// from a snapshot its owner sends; an owner restarted after its term's beginning was
    /// dropped cannot begin a term itself (README "Running a cluster").
    #[serde(default)]
    pub log_retention_bytes: u64,
    #[serde(default)]
    pub log_retention_hours: u64,
    /// The size of a log's segment files on the broker (the unit retention drops).
    #[serde(default = "default_log_segment_bytes")]
    pub log_segment_bytes: u64,
}

fn default_log_segment_bytes() -> u64 {
    8 << 20
}

fn default_takeover_grace() -> f64 {
    10.0
}

impl ClusterSettings {
    /// Copies of each shard besides its owner's (see `replicas`); 0 without a broker.
    pub fn effective_replicas(&self) -> u32 {
        if self.amqp_url.expose().is_empty() {
            return 0;
        }
        let others = (self.members.len() as u32).saturating_sub(1);
        self.replicas.unwrap_or(others.min(1)).min(others)
    }

    /// The broker's node URLs (`amqp_url`, split at commas).
    pub fn broker_urls(&self) -> Vec<String> {
        self.amqp_url.expose().split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_string).collect()
    }
}

/// Distributed tracing: spans exported over OTLP/HTTP (`observability::telemetry`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// A collector's OTLP/HTTP traces endpoint (`http://host:4318/v1/traces`); empty: no export.
    pub otlp_endpoint: String,
    pub service_name: String,
    /// The share of new traces exported, 0 to 1. A trusted proxy's or another node's
    /// decision (the `traceparent` sampled flag) is kept; a client's is not.
    pub sample_ratio: f64,
    /// Finished spans waiting for export at most; past it new ones are dropped (and counted).
    pub max_queue: usize,
    /// Longest one export may take (a collector that does not answer).
    pub export_timeout_seconds: f64,
}

/// The audit trail: every ticket's and order's events, kept with the entity after delivery.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Days an event is kept in its entity's history (pruned hourly); 0 keeps none.
    pub retention_days: u32,
}

impl AuditSettings {
    /// How long an event is kept (`None`: the trail is off).
    pub fn retention(&self) -> Option<std::time::Duration> {
        (self.retention_days > 0).then(|| std::time::Duration::from_secs(u64::from(self.retention_days) * 86_400))
    }
}

/// Mail through SMTP (`crate::mail`): off while `smtp_url` is empty.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// `smtp://host:port` (plain, or `?tls=required` for STARTTLS), `smtps://user:pass@host`.
    pub smtp_url: String,
    /// The sender, `Name <address>`.
    pub from: String,
    /// The site's address, for the links in mail (`https://tickets.example.com`).
    pub base_url: String,
    /// Seconds between tries while the mail server fails.
    pub retry_seconds: f64,
}

impl MailSettings {
    pub fn enabled(&self) -> bool {
        !self.smtp_url.is_empty()
    }
}

/// The live ticket stream (`GET /api/tickets/stream`, Server-Sent Events).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSettings {
    /// Streams open at once on this node; past it a new one is answered 503.
    pub max_streams: usize,
    /// Seconds between heartbeats on an idle stream (proxies close silent connections).
    pub heartbeat_seconds: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestingSettings {
    pub fault_injection: bool,
    pub crash_at: String,
    /// Round-trip every command and reply to an entity through the wire encoding, as if it
    /// crossed to another node (the test suite runs with it on).
    pub wire_roundtrip: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Settings {
    /// Defaults, then `file` (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let mut builder =
            config::Config::builder().add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        let env: std::collections::HashMap<String, String> =
            env.into_iter().filter(|(k, _)| k.starts_with("TICKETING_")).collect();
        builder = builder.add_source(
            config::Environment::with_prefix("TICKETING")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("cluster.members")
                .with_list_parse_key("http.trusted_proxies")
                .source(Some(env)),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, reason: &str| Err(SettingsError::Invalid { key, reason: reason.to_string() });
        let telemetry = &self.telemetry;
        if !(0.0..=1.0).contains(&telemetry.sample_ratio) {
            return invalid("telemetry.sample_ratio", "must be between 0 and 1");
        }
        // (The exporter's queue is allocated whole at start.)
        let queue_ok = (1..=1_000_000).contains(&telemetry.max_queue);
        let timeout_ok = telemetry.export_timeout_seconds > 0.0 && telemetry.export_timeout_seconds <= 600.0;
        if !(queue_ok && timeout_ok) {
            return invalid(
                "telemetry",
                "max_queue must be 1 to 1,000,000 and export_timeout_seconds between 0 and 600",
            );
        }
        if self.auth.jwt_secret.expose().len() < 16 {
            return invalid("auth.jwt_secret", "must be at least 16 characters");
        }
        if self.app.mode == Mode::Production && self.auth.jwt_secret.expose() == DEV_JWT_SECRET {
            return invalid("auth.jwt_secret", "the default secret is refused in production mode");
        }
        if self.http.body_limit_bytes == 0 {
            return invalid("http.body_limit_bytes", "must be greater than 0");
        }
        if self.auth.access_token_seconds == 0 || self.auth.refresh_token_seconds == 0 {
            return invalid("auth.access_token_seconds", "token lifetimes must be greater than 0");
        }
        if !self.actors.idle_seconds.is_finite() || self.actors.idle_seconds <= 0.0 {
            return invalid("actors.idle_seconds", "must be a finite number greater than 0");
        }
        if self.actors.mailbox_limit == 0 {
            return invalid("actors.mailbox_limit", "must be greater than 0");
        }
        if self.actors.max_live == 0 {
            return invalid("actors.max_live", "must be greater than 0");
        }
        if !self.actors.settled_idle_seconds.is_finite() || self.actors.settled_idle_seconds < 0.01 {
            return invalid("actors.settled_idle_seconds", "must be a number of seconds, at least 0.01");
        }
        if !(self.live.heartbeat_seconds >= 0.05 && self.live.heartbeat_seconds <= 3600.0) {
            return invalid("live.heartbeat_seconds", "must be between 0.05 and 3600");
        }
        if !(self.mail.retry_seconds >= 0.05 && self.mail.retry_seconds <= 3600.0) {
            return invalid("mail.retry_seconds", "must be between 0.05 and 3600");
        }
        if self.mail.enabled() && self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return invalid("mail.from", "must be an address, e.g. \"ticketing <no-reply@example.com>\"");
        }
        if self.http.max_in_flight == 0 {
            return invalid("http.max_in_flight", "must be greater than 0");
        }
        if self.storage.cache_mb == 0 {
            return invalid("storage.cache_mb", "must be greater than 0");
        }
        if self.actors.ask_timeout_ms == 0 {
            return invalid("actors.ask_timeout_ms", "must be greater than 0");
        }
        let t = &self.throttle;
        if t.address_failures == 0 || t.account_failures == 0 {
            return invalid("throttle", "address_failures and account_failures must be at least 1");
        }
        if !(t.address_refill_seconds > 0.0 && t.account_refill_seconds > 0.0)
            || t.address_refill_seconds > 86400.0
            || t.account_refill_seconds > 86400.0
        {
            return invalid("throttle", "refill seconds must be greater than 0 and at most 86400");
        }
        if !(self.http.request_timeout_seconds > 0.0 && self.http.request_timeout_seconds <= 3600.0) {
            return invalid("http.request_timeout_seconds", "must be greater than 0 and at most 3600");
        }
        if self.orders.expiration_seconds.is_nan() || self.orders.expiration_seconds <= 0.0 {
            return invalid("orders.expiration_seconds", "must be greater than 0");
        }
        if self.cluster.shards == 0 {
            return invalid("cluster.shards", "must be greater than 0");
        }
        if self.cluster.shards > crate::domain::SLOTS {
            return invalid("cluster.shards", "must be at most 4096 (the number of slots)");
        }
        let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
        if !name_ok(&self.cluster.node_id) {
            return invalid("cluster.node_id", "must be letters, digits, '-' or '_'");
        }
        if !name_ok(&self.cluster.name) {
            return invalid("cluster.name", "must be letters, digits, '-' or '_'");
        }
        if let Some(bad) = self.cluster.members.iter().find(|m| !name_ok(m)) {
            return invalid("cluster.members", &format!("{bad:?} is not a node id"));
        }
        if self.cluster.epoch == 0 {
            return invalid("cluster.epoch", "must be greater than 0");
        }
        if self.payments.provider == PaymentProvider::Stripe && self.payments.stripe_secret_key.is_empty() {
            return invalid("payments.stripe_secret_key", "is required when payments.provider = \"stripe\"");
        }
        if self.storage.path.as_os_str().is_empty() {
            return invalid("storage.path", "must not be empty");
        }
        Ok(())
    }

    pub fn threads(&self) -> usize {
        match self.actors.threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }
}

#[cfg(test)]
#[path = "settings_test.rs"]
mod tests;
