//! The edge: what the JSON API (`crate::http`) and the pages (`crate::web`) share, so that
//! neither needs the other. Both stand on this module; it names neither of them
//! (`tests/api/architecture.rs`), and the wiring of both onto one server is `crate::routes`.
//!
//! # Layout
//! * [`state`]: [`AppState`], what every handler and middleware is given.
//! * [`error`]: [`ApiError`], the one error vocabulary: statuses and the API's words for every
//!   refusal (the pages show the same words).
//! * [`fields`]: sign-up, sign-in and ticket fields read into domain values, refused in those
//!   words, for a JSON body and a form alike. [`search`]: a ticket search's parameters, the
//!   same way.
//! * [`shape`]: the one decision of how an error is answered (JSON or an HTML page), from the
//!   path and the client's `Accept`.
//! * [`answer`]: the middleware that makes every error answer leave in that shape.
//! * [`page`]: the HTML document shell, the page headers and the error pages.
//! * [`caller`]: who is asking (the signed-in user) and from which address.
//! * [`session`]: the session cookies and their renewal.
//! * [`csrf`]: double-submit tokens for every form.
//! * [`observe`]: per request: the in-flight bound, the span, the metrics, the panic guard.
//! * [`body_deadline`]: a body arrives in time and under the limit, or is refused (408, 413).

pub mod answer;
pub mod body_deadline;
pub mod caller;
pub mod csrf;
pub mod error;
pub mod fields;
pub mod observe;
pub mod page;
pub mod search;
pub mod session;
pub mod shape;
pub mod state;

pub use error::ApiError;
pub use state::AppState;
