//! The browser client: server-rendered HTML pages over the same use cases as the JSON API
//! (`crate::app`). What the pages share with the API lives in `crate::edge`: the session
//! cookies, the caller, the field rules and the words for every refusal, the CSRF tokens and
//! the page shell; the view models are `crate::json`'s. The pages name nothing of the API.
//!
//! Every form works without JavaScript (a POST answered by a 303 redirect, or by the form
//! again with its errors); `static/app.js` only enhances them: the order page's time left, live
//! availability (`GET /api/tickets/stream`), the focus after a refused form.
//! Every page carries a strict Content-Security-Policy, and every form a CSRF token
//! (`crate::edge::csrf`).
//!
//! * [`layout`]: who is asking and what their forms need, the navigation, form fields.
//! * [`problem`]: a refused use case in plain words, next to its field, or an error page.
//! * [`forms`]: reading a posted form.
//! * `auth`, `reset`, `tickets`, `orders`: the pages, one file per area.
//! * `assets`: the stylesheet and the script, compiled into the binary.

mod assets;
mod auth;
mod forms;
pub mod layout;
mod orders;
pub mod problem;
mod reset;
mod tickets;

use actix_web::web;

/// Registers the pages and their assets.
pub fn routes(cfg: &mut web::ServiceConfig) {
    assets::routes(cfg);
    auth::routes(cfg);
    reset::routes(cfg);
    tickets::routes(cfg);
    orders::routes(cfg);
}
