//! `/api/orders`: place, list, show, cancel, as JSON over the order use cases.

use super::extract::JsonObject;
use crate::app::keyed::ClaimedKey;
use crate::domain::{OrderId, TicketId};
use crate::edge::caller::AuthUser;
use crate::edge::error::{ApiError, FieldError};
use crate::edge::AppState;
use crate::json::OrderView;
use actix_web::HttpMessage;
use actix_web::{web, HttpResponse};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/orders", web::post().to(create))
        .route("/api/orders", web::get().to(list))
        .route("/api/orders/{id}", web::get().to(show))
        .route("/api/orders/{id}", web::delete().to(cancel));
}

/// A path id that is malformed names no order: 404, like an unknown one.
pub fn order_id(raw: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(raw).ok_or(ApiError::NotFound)
}

#[utoipa::path(post, path = "/api/orders", tag = "orders", request_body = super::schemas::NewOrder,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes the request once; a retry replays the first answer")),
    responses((status = 201, description = "The order: the ticket held for the order window", body = crate::json::OrderView)))]
pub(super) async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: JsonObject,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let ticket_id = body.str("ticketId").and_then(TicketId::parse).ok_or_else(|| {
        ApiError::Validation(vec![FieldError { field: "ticketId", message: "TicketId must be provided" }])
    })?;
    // With an `Idempotency-Key`, the order's id derives from the key (`idempotency` put it here).
    let key = req.extensions().get::<ClaimedKey>().cloned();
    let order = state.app.place_order(user.id, ticket_id, key.as_ref()).await?;
    Ok(HttpResponse::Created().json(OrderView::of(&order)))
}

/// The caller's orders, oldest first.
#[utoipa::path(get, path = "/api/orders", tag = "orders",
    responses((status = 200, description = "The caller's orders, oldest first", body = Vec<crate::json::OrderView>)))]
pub(super) async fn list(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let orders = state.app.orders_of(user.id).await?;
    Ok(HttpResponse::Ok().json(orders.iter().map(OrderView::of).collect::<Vec<_>>()))
}

#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders", params(("id" = String, Path, format = "uuid")),
    responses((status = 200, description = "The order, for its buyer", body = crate::json::OrderView)))]
pub(super) async fn show(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let order = state.app.order(user.id, order_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(OrderView::of(&order)))
}

#[utoipa::path(delete, path = "/api/orders/{id}", tag = "orders", params(("id" = String, Path, format = "uuid")),
    responses((status = 204, description = "Cancelled, the ticket released (cancelling again changes nothing)")))]
pub(super) async fn cancel(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.app.cancel_order(user.id, order_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
