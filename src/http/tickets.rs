//! `/api/tickets`: create, list, show, update, withdraw, as JSON over the ticket use cases.

use super::extract::JsonObject;
use crate::domain::{TicketDraft, TicketId};
use crate::edge::caller::AuthUser;
use crate::edge::fields::ticket_draft;
use crate::edge::search::SearchParams;
use crate::edge::{ApiError, AppState};
use crate::json::{self, TicketView};
use actix_web::{http::header, web, HttpResponse};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/tickets", web::post().to(create))
        .route("/api/tickets", web::get().to(list))
        // Before `{id}`, which would take "stream" for an id.
        .route(super::ticket_stream::PATH, web::get().to(super::ticket_stream::stream))
        .route("/api/tickets/{id}", web::get().to(show))
        .route("/api/tickets/{id}", web::put().to(update))
        .route("/api/tickets/{id}", web::delete().to(withdraw));
}

/// A path id that is malformed names no ticket: 404, like an unknown one.
pub fn ticket_id(raw: &str) -> Result<TicketId, ApiError> {
    TicketId::parse(raw).ok_or(ApiError::NotFound)
}

/// The draft in a request body, with the route's wording for invalid fields.
fn draft(body: &JsonObject, updating: bool) -> Result<TicketDraft, ApiError> {
    ticket_draft(body.str("title"), json::price_from(body.get("price")), updating)
}

#[utoipa::path(post, path = "/api/tickets", tag = "tickets", request_body = super::schemas::TicketDraftBody,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes the create once, through any node")),
    responses((status = 201, description = "The ticket, listed for sale", body = crate::json::TicketView)))]
pub(super) async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: JsonObject,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // With an Idempotency-Key the ticket is made once, whichever node a retry goes through.
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| crate::app::idempotency::key_digest(&user.id.to_string(), k));
    let ticket = state.app.create_ticket(user.id, draft(&body, false)?, key).await?;
    Ok(HttpResponse::Created().json(TicketView::of(&ticket)))
}

#[utoipa::path(get, path = "/api/tickets/{id}", tag = "tickets", params(("id" = String, Path, format = "uuid")),
    responses((status = 200, description = "The ticket", body = crate::json::TicketView)))]
pub(super) async fn show(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let ticket = state.app.ticket(ticket_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(TicketView::of(&ticket)))
}

#[utoipa::path(put, path = "/api/tickets/{id}", tag = "tickets", params(("id" = String, Path, format = "uuid")),
    request_body = super::schemas::TicketDraftBody,
    responses((status = 200, description = "The ticket, edited by its owner", body = crate::json::TicketView)))]
pub(super) async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let draft = draft(&body, true)?;
    let ticket = state.app.update_ticket(user.id, ticket_id(&id)?, draft).await?;
    Ok(HttpResponse::Ok().json(TicketView::of(&ticket)))
}

/// The owner withdraws a listing (204); a reserved or sold one stays.
#[utoipa::path(delete, path = "/api/tickets/{id}", tag = "tickets", params(("id" = String, Path, format = "uuid")),
    responses((status = 204, description = "The listing withdrawn by its owner (`ticket:deleted`)")))]
pub(super) async fn withdraw(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.app.withdraw_ticket(user.id, ticket_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
    q: Option<String>,
    #[serde(rename = "minPrice")]
    min_price: Option<String>,
    #[serde(rename = "maxPrice")]
    max_price: Option<String>,
    sort: Option<String>,
    page: Option<String>,
}

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// Tickets for sale (not reserved), a page at a time. Without `q`, `minPrice`, `maxPrice`,
/// `sort` or `page`: oldest first, the cursor being the last id of the previous page (the
/// seeds' clients see what they always saw). With any of them: a search of the index, newest
/// first by default, numbered pages. The next page's URL is in the `Link` header.
#[utoipa::path(get, path = "/api/tickets", tag = "tickets",
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100)"),
           ("cursor" = Option<String>, Query, format = "uuid", description = "The last id of the previous page (not with a search)"),
           ("q" = Option<String>, Query, max_length = 200, description = "Words of the title, all of them (case and accents ignored); the last, of 3 characters or more, also finds the longer words it begins (`conc` finds `concert`)"),
           ("minPrice" = Option<f64>, Query, minimum = 0, maximum = 1000000, description = "Lowest price"),
           ("maxPrice" = Option<f64>, Query, minimum = 0, maximum = 1000000, description = "Highest price"),
           ("sort" = Option<String>, Query, pattern = "^(newest|price|-price)$", description = "`newest` (default), `price` (cheapest first) or `-price`"),
           ("page" = Option<u32>, Query, minimum = 1, maximum = 10000, description = "Page of a search (default 1)")),
    responses((status = 200, description = "Tickets for sale; the next page in the `Link` header", body = Vec<crate::json::TicketView>)))]
pub(super) async fn list(state: web::Data<AppState>, query: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => return Err(ApiError::bad_parameter("limit", format!("limit must be between 1 and {MAX_PAGE}"))),
        },
    };
    let search = SearchParams::given(
        query.q.as_deref(),
        query.min_price.as_deref(),
        query.max_price.as_deref(),
        query.sort.as_deref(),
        query.page.as_deref(),
    )?;
    if let Some(search) = search {
        if query.cursor.is_some() {
            return Err(ApiError::bad_parameter("cursor", "cursor is for the list without a search: use page"));
        }
        let (found, more) = state.app.search_tickets(&search.query(limit)?).await?;
        let mut response = HttpResponse::Ok();
        if more {
            response.insert_header((header::LINK, format!("</api/tickets?{}>; rel=\"next\"", search.next(limit))));
        }
        return Ok(response.json(found.iter().map(TicketView::of).collect::<Vec<_>>()));
    }
    let after = match query.cursor.as_deref() {
        None => None,
        Some(raw) => Some(TicketId::parse(raw).ok_or_else(|| ApiError::bad_parameter("cursor", "Invalid cursor"))?),
    };
    let (page, more) = state.app.list_tickets_for_sale(after, limit).await?;
    let mut response = HttpResponse::Ok();
    if let (true, Some(last)) = (more, page.last()) {
        response
            .insert_header((header::LINK, format!("</api/tickets?limit={limit}&cursor={}>; rel=\"next\"", last.id)));
    }
    Ok(response.json(page.iter().map(TicketView::of).collect::<Vec<_>>()))
}
