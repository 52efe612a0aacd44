//! Test-only routes, registered only when `testing.fault_injection = true`.

use super::tickets::ticket_id;
use crate::edge::{ApiError, AppState};
use actix_web::{web, HttpResponse};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/testing/tickets/{id}/panic", web::post().to(panic_ticket));
}

/// Makes the ticket's actor panic inside a rule, so a test can watch its supervisor restart it.
/// The caller gets what any request hitting a panic gets: a 500.
async fn panic_ticket(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    state.app.inject_panic(ticket_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "panicked": false })))
}
