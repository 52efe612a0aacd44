//! # ticketing
//!
//! A ticket marketplace backend as a durable actor system.
//!
//! # Layout
//! * [`domain`]: tickets, orders, users and their rules: plain types, no I/O.
//! * [`actors`]: one actor per ticket (and order), the registry that activates and passivates
//!   them, supervision.
//! * [`storage`]: where bytes hit the disk: sled, versioned envelopes, group commit.
//! * [`events`]: the durable outbox and its publisher.
//! * [`payments`]: the payment gateways (offline, Stripe) and webhook signatures.
//! * [`auth`]: accounts, passwords, access and refresh tokens.
//! * [`http`]: routes, extractors and the one error boundary.
//! * [`observability`]: metrics and logging.
//! * [`settings`]: layered, typed configuration.
//! * [`startup`]: `Application::build(settings)` wires it all together.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod actors;
pub mod auth;
pub mod domain;
pub mod events;
pub mod http;
pub mod observability;
pub mod payments;
pub mod settings;
pub mod startup;
pub mod storage;

pub use settings::Settings;
pub use startup::Application;
