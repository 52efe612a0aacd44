//! `/api/tickets`: create, list, show, update. The rules live in `domain::ticket`; the ticket
//! actor applies them; this file only parses requests and shapes responses.

use super::error::ApiError;
use super::extract::{AuthUser, JsonObject};
use super::AppState;
use crate::actors::ticket::{CreateTicket, GetTicket, UpdateTicket};
use crate::domain::{DraftFor, Ticket, TicketDraft, TicketId};
use crate::storage::keys;
use actix_web::{http::header, web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/tickets", web::post().to(create))
        .route("/api/tickets", web::get().to(list))
        .route("/api/tickets/{id}", web::get().to(show))
        .route("/api/tickets/{id}", web::put().to(update));
}

/// The API form of a ticket: `orderId` only while reserved or sold.
pub fn view(t: &Ticket) -> Value {
    let mut v =
        json!({"id": t.id, "title": t.title, "price": t.price.to_json(), "userId": t.user_id, "version": t.version});
    if let Some(order_id) = t.order_id {
        v["orderId"] = json!(order_id);
    }
    v
}

/// A path id that is malformed names no ticket: 404, like an unknown one.
pub fn ticket_id(raw: &str) -> Result<TicketId, ApiError> {
    TicketId::parse(raw).ok_or(ApiError::NotFound)
}

async fn create(state: web::Data<AppState>, user: AuthUser, body: JsonObject) -> Result<HttpResponse, ApiError> {
    let draft = TicketDraft::parse(body.get("title"), body.get("price"), DraftFor::Create)?;
    let ticket = state.tickets.ask(TicketId::new(), CreateTicket { seller: user.id, draft }).await?;
    Ok(HttpResponse::Created().json(view(&ticket)))
}

/// 404 for an id with no ticket, without activating an actor for it.
pub fn ensure_exists(state: &AppState, id: &TicketId) -> Result<(), ApiError> {
    if state.tickets.is_live(id) || state.store.contains(&keys::ticket(id))? {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// Reads one ticket through its actor.
pub async fn load(state: &AppState, id: TicketId) -> Result<Ticket, ApiError> {
    ensure_exists(state, &id)?;
    state.tickets.ask(id, GetTicket).await?.ok_or(ApiError::NotFound)
}

async fn show(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let ticket = load(&state, ticket_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(view(&ticket)))
}

async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let draft = TicketDraft::parse(body.get("title"), body.get("price"), DraftFor::Update)?;
    let id = ticket_id(&id)?;
    ensure_exists(&state, &id)?;
    let ticket = state.tickets.ask(id, UpdateTicket { caller: user.id, draft }).await?;
    Ok(HttpResponse::Ok().json(view(&ticket)))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// Tickets for sale (not reserved), oldest first, a page at a time. The cursor is the last id
/// of the previous page; the next page's URL is in the `Link` header.
async fn list(state: web::Data<AppState>, query: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => return Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_PAGE}"))),
        },
    };
    let mut after = match query.cursor.as_deref() {
        None => None,
        Some(raw) => Some(keys::ticket(&TicketId::parse(raw).ok_or_else(|| ApiError::bad_request("Invalid cursor"))?)),
    };
    const CHUNK: usize = 256;
    let mut page = Vec::with_capacity(limit.min(CHUNK));
    let mut more = false;
    'scan: loop {
        let chunk = state.store.scan::<Ticket>(&[keys::TICKET], after.as_deref(), CHUNK)?;
        let exhausted = chunk.len() < CHUNK;
        for (key, ticket) in chunk {
            after = Some(key);
            if ticket.order_id.is_some() {
                continue;
            }
            if page.len() == limit {
                more = true;
                break 'scan;
            }
            page.push(ticket);
        }
        if exhausted {
            break;
        }
    }
    let mut response = HttpResponse::Ok();
    if more {
        if let Some(last) = page.last() {
            response.insert_header((
                header::LINK,
                format!("</api/tickets?limit={limit}&cursor={}>; rel=\"next\"", last.id),
            ));
        }
    }
    Ok(response.json(page.iter().map(view).collect::<Vec<_>>()))
}
