//! Integration tests against the real `Application` on a random port, and against the real
//! binary where a process must die or restart.

mod admin;
mod architecture;
mod audit;
mod auth;
mod bad_input;
mod browser;
mod business_metrics;
mod crash;
mod deploy;
mod disk_full;
mod durability;
mod error_shape;
mod event_schemas;
mod flushes;
mod hardening;
mod helpers;
mod idempotency;
mod logs;
mod migration;
mod openapi;
mod orders;
mod output_gate;
mod overload;
mod payments;
mod process;
mod restart_scale;
mod sessions;
mod stripe_checkout;
mod stripe_gateway;
mod stripe_server;
mod supervision;
mod tickets;
mod web;
mod withdraw;
