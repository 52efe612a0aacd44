//! `/api/orders`: place, list, show, cancel. Placement is the two-actor protocol in
//! `actors::order`; this file only parses and shapes.

use super::error::ApiError;
use super::extract::{AuthUser, JsonObject};
use super::AppState;
use crate::actors::order::{place_order, CancelOrder, GetOrder};
use crate::domain::{FieldError, Order, OrderId, TicketId};
use crate::storage::keys;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/orders", web::post().to(create))
        .route("/api/orders", web::get().to(list))
        .route("/api/orders/{id}", web::get().to(show))
        .route("/api/orders/{id}", web::delete().to(cancel));
}

pub fn view(o: &Order) -> Value {
    json!({
        "id": o.id,
        "userId": o.user_id,
        "status": o.status.as_str(),
        "expiresAt": o.expires_at_iso(),
        "version": o.version,
        "ticket": {"id": o.ticket.id, "title": o.ticket.title, "price": o.ticket.price.to_json(), "version": o.ticket.version},
    })
}

pub fn order_id(raw: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(raw).ok_or(ApiError::NotFound)
}

/// 404 for an id with no order, without activating an actor for it.
pub fn ensure_exists(state: &AppState, id: &OrderId) -> Result<(), ApiError> {
    if state.orders.is_live(id) || state.store.contains(&keys::order(id))? {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

async fn create(state: web::Data<AppState>, user: AuthUser, body: JsonObject) -> Result<HttpResponse, ApiError> {
    let ticket_id = body.str("ticketId").and_then(TicketId::parse).ok_or_else(|| {
        ApiError::Validation(vec![FieldError { field: "ticketId", message: "TicketId must be provided" }])
    })?;
    super::tickets::ensure_exists(&state, &ticket_id)?;
    let window_ms = (state.settings.orders.expiration_seconds * 1000.0) as i64;
    let order =
        place_order(&state.tickets, &state.orders, &state.deadlines, &state.faults, user.id, ticket_id, window_ms)
            .await?;
    Ok(HttpResponse::Created().json(view(&order)))
}

/// The caller's orders, oldest first (order ids are time-ordered).
async fn list(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let prefix = keys::orders_of_user(&user.id);
    let mut orders = Vec::new();
    for key in state.store.scan_keys(&prefix, usize::MAX)? {
        let Some(id) = key.get(prefix.len()..).and_then(|b| <[u8; 16]>::try_from(b).ok()) else {
            continue;
        };
        if let Some(order) = state.store.get::<Order>(&keys::order(&OrderId::from_bytes(id)))? {
            orders.push(view(&order));
        }
    }
    Ok(HttpResponse::Ok().json(orders))
}

async fn show(state: web::Data<AppState>, user: AuthUser, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = order_id(&id)?;
    ensure_exists(&state, &id)?;
    let order = state.orders.ask(id, GetOrder).await?.ok_or(ApiError::NotFound)?;
    order.check_owner(user.id)?;
    Ok(HttpResponse::Ok().json(view(&order)))
}

async fn cancel(state: web::Data<AppState>, user: AuthUser, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = order_id(&id)?;
    ensure_exists(&state, &id)?;
    state.orders.ask(id, CancelOrder { caller: user.id }).await?;
    Ok(HttpResponse::NoContent().finish())
}
