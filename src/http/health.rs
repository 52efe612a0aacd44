//! `/healthz` (the process is up) and `/readyz` (storage answers).

use super::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.contains(b"readyz-probe") {
        Ok(_) => HttpResponse::Ok().json(json!({ "status": "ready", "storage": "ok" })),
        Err(e) => {
            tracing::warn!(error = %e, "storage not ready");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(json!({ "errors": [{ "message": "Storage is not ready" }] }))
        }
    }
}
