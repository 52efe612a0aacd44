//! # ticketing
//!
//! A ticket marketplace backend as a durable actor system.
//!
//! # Layout
//! * [`domain`]: tickets, orders, users and their rules: plain types, no I/O, no JSON.
//! * [`app`]: the use cases, called by every adapter; with the actors, the only code that
//!   touches storage.
//! * [`routing`]: where a command runs (this node, or the node owning its shard), and the one
//!   place its outcome is decided: commands as data, each with its reply type.
//! * [`actors`]: one actor per ticket (and order), commands as data, the registry that
//!   activates and passivates them, supervision.
//! * [`storage`]: where bytes hit the disk: sled, versioned envelopes, group commit, the
//!   free-space watch that turns a full disk into refused writes rather than a failed store.
//! * [`events`]: the durable outbox and its publisher.
//! * [`cluster`]: the transport, where a message crosses to another node: the broker link, the
//!   shard leases, requests, replies and events as bytes over RabbitMQ. It knows no app,
//!   actor or domain type.
//! * [`replication`]: replicated shards: each shard's copies follow its log (a RabbitMQ
//!   stream), and a node that takes a shard's lease begins a term before it serves it.
//! * [`deadline`]: when a caller stops waiting; it travels with a command.
//! * [`payments`]: the payment gateways (offline, Stripe) and webhook signatures.
//! * [`mail`]: where mail leaves the node: the queue each change writes, sent over SMTP.
//! * [`auth`]: password hashing and access tokens (accounts are in [`app::accounts`]).
//! * [`edge`]: what the JSON API and the pages share: the one error vocabulary and the shape
//!   an error is answered in (JSON or a page, as the client asks), the caller and the session
//!   cookies, CSRF, the field rules, the page shell, the request guards (in-flight bound, body
//!   deadline).
//! * [`http`]: a thin JSON adapter: the `/api` routes, JSON bodies, `Idempotency-Key`, the
//!   OpenAPI document, the probes and the admin API.
//! * [`web`]: the browser client: server-rendered pages over the same use cases and session.
//! * [`routes`]: the node's HTTP surface: the middleware in order and every route of both.
//! * [`json`]: the JSON forms of domain values and the typed view models the API and the pages
//!   share.
//! * [`observability`]: metrics and logging.
//! * [`settings`]: layered, typed configuration.
//! * [`startup`]: `Application::build(settings)` wires it all together.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod actors;
pub mod app;
pub mod auth;
pub mod cluster;
pub mod deadline;
pub mod domain;
pub mod edge;
pub mod events;
pub mod http;
pub mod json;
pub mod mail;
pub mod observability;
pub mod payments;
pub mod replication;
pub mod routes;
pub mod routing;
pub mod settings;
pub mod startup;
pub mod storage;
pub mod web;

pub use settings::Settings;
pub use startup::Application;
