//! The selling pages: the landing page (tickets for sale), a ticket's page (Purchase, or Edit
//! and Withdraw for its owner), selling and editing a ticket, and a seller's own tickets.

use super::forms::posted_by_user;
use super::layout::{field, general_problems, see_other, Ctx, FieldAttrs};
use super::problem::{problems, PageError, Problems};
use crate::app::projection::ListingState;
use crate::domain::{Price, TicketId, UserId};
use crate::edge::fields::ticket_draft;
use crate::edge::AppState;
use crate::json::TicketView;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(landing))
        .route("/tickets/new", web::get().to(new_page))
        .route("/tickets/new", web::post().to(create))
        .route("/tickets/mine", web::get().to(mine))
        .route("/tickets/{id}", web::get().to(show))
        .route("/tickets/{id}/purchase", web::post().to(purchase))
        .route("/tickets/{id}/edit", web::get().to(edit_page))
        .route("/tickets/{id}/edit", web::post().to(edit))
        .route("/tickets/{id}/withdraw", web::post().to(withdraw));
}

/// Tickets per landing page.
const PAGE: usize = 20;

/// A malformed id names no ticket.
fn ticket_id(raw: &str) -> Result<TicketId, PageError> {
    TicketId::parse(raw).ok_or(PageError::NotFound)
}

/// How a seller is shown: "you", or a short handle (emails are not published).
fn seller(ctx: &Ctx, seller: UserId) -> String {
    if ctx.user.as_ref().is_some_and(|u| u.id == seller) {
        return "you".into();
    }
    let id = seller.to_string();
    format!("seller {}", &id[id.len().saturating_sub(6)..])
}

#[derive(Deserialize)]
struct LandingQuery {
    cursor: Option<String>,
}

async fn landing(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<LandingQuery>,
) -> Result<HttpResponse, PageError> {
    let ctx = Ctx::of(&req);
    let after = q.cursor.as_deref().and_then(TicketId::parse);
    let (tickets, more) = state.app.list_tickets_for_sale(after, PAGE).await?;
    let tickets: Vec<TicketView> = tickets.iter().map(TicketView::of).collect();
    let body = html! {
        h1 { "Tickets for sale" }
        @if tickets.is_empty() {
            p.notice { "No tickets for sale right now." }
        } @else {
            ul.cards id="tickets" {
                @for t in &tickets {
                    li.card {
                        h2 { a href={ "/tickets/" (t.id) } { (t.title) } }
                        p { span.price { (t.price) } " · " span.muted { "sold by " (seller(&ctx, t.user_id)) } }
                    }
                }
            }
        }
        @if let (true, Some(last)) = (more, tickets.last()) {
            p.pager { a href={ "/?cursor=" (last.id) } rel="next" id="next-page" { "More tickets" } }
        }
    };
    Ok(ctx.render(StatusCode::OK, "Tickets for sale", body))
}

/// A ticket's page; `problems` are those of a purchase or withdrawal that was refused.
async fn ticket_page(
    state: &AppState,
    ctx: &Ctx,
    id: TicketId,
    problems: &Problems,
) -> Result<HttpResponse, PageError> {
    let ticket = state.app.ticket(id).await?;
    let view = TicketView::of(&ticket);
    let owner = ctx.user.as_ref().is_some_and(|u| u.id == ticket.user_id);
    // The viewer's own order for this ticket, if they hold it.
    let my_order = match (&ctx.user, ticket.order_id) {
        (Some(user), Some(order)) => state.app.order(user.id, order).await.ok(),
        _ => None,
    };
    let body = html! {
        h1 { (view.title) }
        (general_problems(problems))
        dl.facts {
            dt { "Price" } dd.price { (view.price) }
            dt { "Seller" } dd { (seller(ctx, view.user_id)) }
            dt { "Status" } dd id="ticket-status" {
                @if view.order_id.is_some() { span.badge.reserved { "Reserved" } } @else { span.badge { "For sale" } }
            }
        }
        @if owner {
            @if view.order_id.is_some() {
                p.notice { "A buyer holds this ticket, so it cannot be edited or withdrawn now." }
            } @else {
                div.actions {
                    a href={ "/tickets/" (view.id) "/edit" } id="edit" { "Edit" }
                    form.inline method="post" action={ "/tickets/" (view.id) "/withdraw" } {
                        (ctx.csrf_field())
                        button.danger type="submit" id="withdraw" { "Withdraw listing" }
                    }
                }
            }
        } @else if let Some(order) = &my_order {
            p.notice { "You reserved this ticket. " a href={ "/orders/" (order.id) } id="my-order" { "Go to your order" } }
        } @else if view.order_id.is_some() {
            p.notice id="unavailable" { "This ticket is reserved by another buyer and cannot be purchased." }
        } @else {
            form method="post" action={ "/tickets/" (view.id) "/purchase" } {
                (ctx.csrf_field())
                button type="submit" id="purchase" { "Purchase" }
            }
        }
        p { a href="/" { "Back to all tickets" } }
    };
    Ok(ctx.render(problems.status(), &view.title, body))
}

async fn show(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    ticket_page(&state, &Ctx::of(&req), ticket_id(&id)?, &Problems::none()).await
}

async fn purchase(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let id = ticket_id(&id)?;
    let (_, ctx, user) = posted_by_user(&req, &body, &format!("/tickets/{id}"))?;
    match state.app.place_order(user.id, id, None).await {
        Ok(order) => Ok(see_other(&format!("/orders/{}", order.id))),
        Err(e) => ticket_page(&state, &ctx, id, &problems(e)?).await,
    }
}

async fn withdraw(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let id = ticket_id(&id)?;
    let (_, ctx, user) = posted_by_user(&req, &body, &format!("/tickets/{id}"))?;
    match state.app.withdraw_ticket(user.id, id).await {
        Ok(()) => Ok(see_other("/tickets/mine?withdrawn=1")),
        Err(e) => ticket_page(&state, &ctx, id, &problems(e)?).await,
    }
}

/// The sell and edit form.
fn ticket_form(ctx: &Ctx, heading: &str, action: &str, title: &str, price: &str, problems: &Problems) -> HttpResponse {
    let body = html! {
        h1 { (heading) }
        form.stack method="post" action=(action) novalidate {
            (ctx.csrf_field())
            (general_problems(problems))
            (field(problems, "title", "Title", "text", title, FieldAttrs { required: true, ..FieldAttrs::default() }))
            (field(problems, "price", "Price (USD)", "text", price, FieldAttrs { required: true, inputmode: Some("decimal"), ..FieldAttrs::default() }))
            button type="submit" id="submit" { "Save" }
        }
    };
    ctx.render(problems.status(), heading, body)
}

async fn new_page(req: HttpRequest) -> Result<HttpResponse, PageError> {
    let ctx = Ctx::of(&req);
    ctx.signed_in("/tickets/new")?;
    Ok(ticket_form(&ctx, "Sell a ticket", "/tickets/new", "", "", &Problems::none()))
}

async fn create(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, PageError> {
    save(&state, &req, &body, None).await
}

async fn edit_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = ticket_id(&id)?;
    let ctx = Ctx::of(&req);
    let user = ctx.signed_in(&format!("/tickets/{id}/edit"))?;
    let ticket = state.app.ticket(id).await?;
    // Only its owner edits a ticket, and only while no order holds it: say so before the form.
    let refusal = if ticket.user_id != user.id {
        Some("Only the seller can edit this ticket.")
    } else if ticket.order_id.is_some() {
        Some("Cannot edit a reserved ticket")
    } else {
        None
    };
    if let Some(refusal) = refusal {
        return ticket_page(&state, &ctx, id, &Problems::one(StatusCode::FORBIDDEN, refusal)).await;
    }
    let view = TicketView::of(&ticket);
    let action = format!("/tickets/{id}/edit");
    Ok(ticket_form(&ctx, "Edit ticket", &action, &view.title, &price_text(ticket.price), &Problems::none()))
}

async fn edit(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    save(&state, &req, &body, Some(ticket_id(&id)?)).await
}

/// The sell form (`editing: None`) or the edit form posted: the ticket's page, or the form
/// again with what was refused.
async fn save(
    state: &AppState,
    req: &HttpRequest,
    body: &web::Bytes,
    editing: Option<TicketId>,
) -> Result<HttpResponse, PageError> {
    let (heading, action) = match editing {
        Some(id) => ("Edit ticket", format!("/tickets/{id}/edit")),
        None => ("Sell a ticket", "/tickets/new".to_string()),
    };
    let (form, ctx, user) = posted_by_user(req, body, &action)?;
    let (title, price) = (form.get("title").unwrap_or_default(), form.get("price").unwrap_or_default());
    let result = match (ticket_draft(Some(title), Price::parse(price), editing.is_some()), editing) {
        (Ok(draft), Some(id)) => state.app.update_ticket(user.id, id, draft).await.map_err(Into::into),
        (Ok(draft), None) => state.app.create_ticket(user.id, draft, None).await.map_err(Into::into),
        (Err(e), _) => Err(e),
    };
    match result {
        Ok(ticket) => Ok(see_other(&format!("/tickets/{}", ticket.id))),
        Err(e) => Ok(ticket_form(&ctx, heading, &action, title, price, &problems(e)?)),
    }
}

/// A price as a form field holds it (`12.5` → `12.50`, `20` → `20`).
fn price_text(price: Price) -> String {
    match price.whole_units() {
        Some(units) => units.to_string(),
        None => price.decimal(),
    }
}

#[derive(Deserialize)]
struct MineQuery {
    withdrawn: Option<String>,
}

async fn mine(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<MineQuery>,
) -> Result<HttpResponse, PageError> {
    let ctx = Ctx::of(&req);
    let user = ctx.signed_in("/tickets/mine")?;
    let listings: Vec<_> = state
        .app
        .tickets_of_seller(user.id)
        .await?
        .into_iter()
        .filter(|l| l.state != ListingState::Withdrawn)
        .collect();
    let body: Markup = html! {
        h1 { "My tickets" }
        @if q.withdrawn.is_some() { p.notice role="status" id="withdrawn" { "Listing withdrawn." } }
        @if listings.is_empty() {
            p.notice { "You are not selling any tickets. " a href="/tickets/new" { "Sell a ticket" } }
        } @else {
            ul.cards id="my-tickets" {
                @for listing in &listings {
                    @let t = TicketView::of(&listing.ticket);
                    li.card {
                        h2 { a href={ "/tickets/" (t.id) } { (t.title) } }
                        p { span.price { (t.price) } " " (state_badge(listing.state)) }
                        @if listing.state == ListingState::ForSale {
                            div.actions {
                                a href={ "/tickets/" (t.id) "/edit" } { "Edit " span.muted { (t.title) } }
                                form.inline method="post" action={ "/tickets/" (t.id) "/withdraw" } {
                                    (ctx.csrf_field())
                                    button.danger type="submit" { "Withdraw " (t.title) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(ctx.render(StatusCode::OK, "My tickets", body))
}

fn state_badge(state: ListingState) -> Markup {
    match state {
        ListingState::ForSale => html! { span.badge { "For sale" } },
        ListingState::Reserved => html! { span.badge.reserved { "Reserved" } },
        ListingState::Sold => html! { span.badge.sold { "Sold" } },
        ListingState::Withdrawn => html! { span.badge.cancelled { "Withdrawn" } },
    }
}
