//! `/healthz` (the process is up), `/readyz` (storage answers and takes writes and, in a
//! cluster, the broker link is up) and `/metrics` (Prometheus).

use super::AppState;
use crate::app::StorageState;
use actix_web::{web, HttpResponse};
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = serde_json::Value)))]
pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready: storage answers and takes writes and, in a cluster, the broker link and leases are held", body = serde_json::Value),
              (status = 503, description = "Not ready; `storage` is `full` while the disk is full (reads served, writes refused with 507)", body = serde_json::Value)))]
pub(super) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    // In a cluster: the link, the map epoch and the shards this node serves now.
    let cluster = state.app.cluster_status();
    match state.app.ready() {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready", "storage": "ok", "cluster": cluster })),
        Err(e) => {
            let link_down = cluster.as_ref().is_some_and(|c| !c.link_up);
            let leases_missing = cluster.as_ref().is_some_and(|c| c.held.len() < c.owned.len());
            let storage = state.app.storage_state();
            tracing::warn!(error = %e, link_down, leases_missing, storage = storage.as_str(), "not ready");
            let message = if link_down {
                "The broker link is down"
            } else if storage == StorageState::Full {
                "Storage is full: writes are refused until space is freed"
            } else if storage == StorageState::Failed {
                "Storage failed: writes are refused until the node is restarted"
            } else if leases_missing {
                "This node does not hold the lease of every shard it owns yet"
            } else {
                "Storage is not ready"
            };
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(json!({ "errors": [{ "message": message }], "storage": storage.as_str(), "cluster": cluster }))
        }
    }
}

/// Prometheus text exposition. Gauges of live state are sampled at scrape time.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.app.render_metrics())
}
