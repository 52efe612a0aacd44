//! `/healthz` (the process is up), `/readyz` (storage answers) and `/metrics` (Prometheus).

use super::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.app.ready() {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready", "storage": "ok" })),
        Err(e) => {
            tracing::warn!(error = %e, "storage not ready");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(json!({ "errors": [{ "message": "Storage is not ready" }] }))
        }
    }
}

/// Prometheus text exposition. Gauges of live state are sampled at scrape time.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.app.render_metrics())
}
