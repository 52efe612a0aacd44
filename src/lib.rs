//! # ticketing
//!
//! A ticket marketplace backend as a durable actor system.
//!
//! # Layout
//! * [`domain`]: tickets, orders, users and their rules: plain types, no I/O, no JSON.
//! * [`app`]: the use cases, called by every adapter; with the actors, the only code that
//!   touches storage.
//! * [`actors`]: one actor per ticket (and order), commands as data, the registry that
//!   activates and passivates them, supervision, and the router that finds an entity.
//! * [`storage`]: where bytes hit the disk: sled, versioned envelopes, group commit, the
//!   free-space watch that turns a full disk into refused writes rather than a failed store.
//! * [`events`]: the durable outbox and its publisher.
//! * [`cluster`]: where a message crosses to another node: shard map, broker link, forwarding
//!   and events over RabbitMQ.
//! * [`payments`]: the payment gateways (offline, Stripe) and webhook signatures.
//! * [`auth`]: password hashing and access tokens (accounts are in [`app::accounts`]).
//! * [`http`]: a thin JSON adapter: routes, extractors and the one error boundary.
//! * [`web`]: the browser client: server-rendered pages over the same use cases and session.
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
pub mod domain;
pub mod events;
pub mod http;
pub mod json;
pub mod observability;
pub mod payments;
pub mod settings;
pub mod startup;
pub mod storage;
pub mod web;

pub use settings::Settings;
pub use startup::Application;
