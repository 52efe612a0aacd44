//! The browser client: server-rendered HTML pages over the same use cases as the JSON API
//! (`crate::app`), sharing its session cookies (`http::session`), its validation and its words
//! for every refusal (`http::error`), and its typed view models (`crate::json`).
//!
//! Every form works without JavaScript (a POST answered by a 303 redirect, or by the form
//! again with its errors); `static/countdown.js` only animates the order page's time left.
//! Every page carries a strict Content-Security-Policy, and every form a CSRF token (`csrf`).
//!
//! * [`layout`]: the page shell (head, navigation, main) and the response headers.
//! * [`csrf`]: double-submit tokens.
//! * [`problem`]: a refused use case in plain words, next to its field, or an error page.
//! * [`forms`]: reading a posted form.
//! * `auth`, `tickets`, `orders`: the pages, one file per area.
//! * `assets`: the stylesheet and the script, compiled into the binary.

mod assets;
mod auth;
pub mod csrf;
mod forms;
pub mod layout;
mod orders;
pub mod problem;
mod tickets;

use actix_web::web;

/// Registers the pages and their assets.
pub fn routes(cfg: &mut web::ServiceConfig) {
    assets::routes(cfg);
    auth::routes(cfg);
    tickets::routes(cfg);
    orders::routes(cfg);
}

/// Whether `path` is one of the pages (not the API, the admin endpoints or the probes): its
/// errors are pages too.
pub fn is_page(path: &str) -> bool {
    !(path.starts_with("/api/")
        || path == "/api"
        || path.starts_with("/admin")
        || matches!(path, "/healthz" | "/readyz" | "/metrics"))
}
