//! The stylesheet and the script, compiled into the binary: nothing to build, nothing to
//! install, and a page never depends on a file beside the binary.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

const STYLESHEET: &str = include_str!("static/app.css");
const SCRIPT: &str = include_str!("static/app.js");
const FAVICON: &str = include_str!("static/favicon.svg");

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/app.css", web::get().to(|| async { asset("text/css; charset=utf-8", STYLESHEET) }))
        .route("/static/app.js", web::get().to(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        // Browsers ask for it on every first visit: the mark, not a 404.
        .route("/favicon.ico", web::get().to(|| async { asset("image/svg+xml", FAVICON) }));
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}
