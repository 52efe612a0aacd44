//! The JSON API: a thin adapter over the application layer (`crate::app`). Handlers parse a
//! request into typed values, call one use case, and shape the response; no domain rule,
//! storage access or actor lives here (`tests/api/architecture.rs` checks it). What the API
//! shares with the pages (the error vocabulary, the caller, the session, the field rules) is
//! in `crate::edge`; the API names nothing of the pages, and `crate::routes` wires both.
//!
//! * `users`, `tickets`, `orders`, `payments`: the `/api` routes, one file per area;
//!   `ticket_stream`: the live ticket changes (Server-Sent Events).
//! * [`extract`]: JSON object bodies. [`idempotency`]: `Idempotency-Key` on POST.
//! * [`openapi`]: the document generated from the handlers; [`schemas`]: the bodies it names.
//! * `health`: the probes and the metrics. `admin`, `admin_page`: the admin API and its page.
//! * `testing`: routes that exist only with `testing.fault_injection`.

pub mod admin;
pub mod admin_page;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod openapi;
pub mod orders;
pub mod payments;
pub mod schemas;
pub mod testing;
pub mod ticket_stream;
pub mod tickets;
pub mod users;

/// `health` still names the state by its old place (`super::AppState`); the rest of the API
/// names `crate::edge::AppState`.
pub use crate::edge::AppState;
