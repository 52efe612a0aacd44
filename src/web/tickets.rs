//! The selling pages: the landing page (tickets for sale), a ticket's page (Purchase, or Edit
//! and Withdraw for its owner), selling and editing a ticket, and a seller's own tickets.

use super::forms::{posted_by_user, Confirmation};
use super::layout::{field, general_problems, see_other, Ctx, FieldAttrs};
use super::problem::{problems, PageError, Problems};
use crate::app::projection::ListingState;
use crate::app::search::Sort;
use crate::domain::{OrderStatus, Price, TicketId, UserId, MAX_PRICE_CENTS, MAX_TITLE_CHARS};
use crate::edge::fields::ticket_draft;
use crate::edge::search::SearchParams;
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
        .route("/tickets/{id}/withdraw", web::get().to(confirm_withdraw))
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
    q: Option<String>,
    sort: Option<String>,
    page: Option<String>,
}

/// The tickets for sale, newest first, with a search box and a sort choice (a GET form: it
/// works without JavaScript). The script keeps the first page of the newest live (the cards
/// carry their ticket's id); any page loses a ticket once it is reserved, sold or withdrawn.
async fn landing(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<LandingQuery>,
) -> Result<HttpResponse, PageError> {
    let ctx = Ctx::of(&req);
    let search = match SearchParams::parse(filled(&q.q), None, None, filled(&q.sort), filled(&q.page)) {
        Ok(search) => search,
        Err(e) => return landing_refused(&ctx, &problems(e)?),
    };
    let query = match search.query(PAGE) {
        Ok(query) => query,
        Err(e) => return landing_refused(&ctx, &problems(e)?),
    };
    // Taken before the list is read: the script's stream starts there (see `Live::position`).
    let since = state.app.live().position();
    let (tickets, more) = state.app.search_tickets(&query).await?;
    let tickets: Vec<TicketView> = tickets.iter().map(TicketView::of).collect();
    let me = ctx.user.as_ref().map(|u| u.id.to_string()).unwrap_or_default();
    let newest = search.sort == Sort::Newest && search.q.trim().is_empty();
    let live = if newest && search.page == 1 { "newest" } else { "filtered" };
    let sort_value = search.sort.as_str();
    let page_link = |page: usize| {
        let mut pairs = vec![("sort", sort_value.to_string()), ("page", page.to_string())];
        if !search.q.is_empty() {
            pairs.insert(0, ("q", search.q.clone()));
        }
        format!("/?{}", serde_urlencoded::to_string(pairs).unwrap_or_default())
    };
    let body = html! {
        h1 { "Tickets for sale" }
        form.search method="get" action="/" role="search" {
            div.field {
                label for="q-field" { "Find a ticket" }
                input id="q-field" name="q" type="search" value=(search.q) placeholder="Band, city, venue…";
            }
            div.field {
                label for="sort-field" { "Sort by" }
                select id="sort-field" name="sort" {
                    @for (value, words) in [("newest", "Newest"), ("price", "Price, low to high"), ("-price", "Price, high to low")] {
                        option value=(value) selected[value == sort_value] { (words) }
                    }
                }
            }
            button type="submit" id="search" { "Search" }
        }
        @let nothing = if search.page > 1 {
            format!("There is no page {}: the list ends before it.", search.page)
        } else if newest {
            "No tickets for sale right now.".to_string()
        } else {
            "No tickets match. Try fewer words.".to_string()
        };
        p.notice id="no-tickets" hidden[!tickets.is_empty()] { (nothing) }
        ul.cards id="tickets" data-live-list=(live) data-live-since=(since) data-me=(me) {
            @for t in &tickets {
                li.card data-ticket-id=(t.id) {
                    h2 { a href={ "/tickets/" (t.id) } { (t.title) } }
                    p { span.price { (t.price) } " · " span.muted { "sold by " (seller(&ctx, t.user_id)) } }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if search.page > 1 {
                a href=(page_link(1)) id="first-page" { "First page" }
                a href=(page_link(search.page - 1)) rel="prev" id="previous-page" { "Previous page" }
            }
            @if more { a href=(page_link(search.page + 1)) rel="next" id="next-page" { "Next page" } }
        }
    };
    Ok(ctx.render(StatusCode::OK, "Tickets for sale", body))
}

/// A parameter the form sent, unless left empty.
fn filled(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

/// The landing page for a search it cannot run: what is wrong, and the way back.
fn landing_refused(ctx: &Ctx, problems: &Problems) -> Result<HttpResponse, PageError> {
    let body = html! {
        h1 { "Tickets for sale" }
        (general_problems(problems))
        p { a href="/" { "See the newest tickets" } }
    };
    Ok(ctx.render(problems.status(), "Tickets for sale", body))
}

/// A ticket's page; `problems` are those of a purchase or withdrawal that was refused.
async fn ticket_page(
    state: &AppState,
    ctx: &Ctx,
    id: TicketId,
    problems: &Problems,
    saved: bool,
) -> Result<HttpResponse, PageError> {
    let since = state.app.live().position();
    let ticket = state.app.ticket(id).await?;
    let view = TicketView::of(&ticket);
    let owner = ctx.user.as_ref().is_some_and(|u| u.id == ticket.user_id);
    // The viewer's own order for this ticket, if they hold it.
    let my_order = match (&ctx.user, ticket.order_id) {
        (Some(user), Some(order)) => state.app.order(user.id, order).await.ok(),
        _ => None,
    };
    // Held by an order: sold once that order is paid (the read model knows; the ticket itself
    // only names its order).
    let sold = ticket.order_id.is_some()
        && match &my_order {
            Some(order) => order.status == OrderStatus::Complete,
            None => state.app.listing_state(id).await? == Some(ListingState::Sold),
        };
    let listing = match (sold, ticket.order_id) {
        (true, _) => ListingState::Sold,
        (false, Some(_)) => ListingState::Reserved,
        (false, None) => ListingState::ForSale,
    };
    // What the page shows, for its script to tell a change it already shows from a new one.
    let shown = match listing {
        ListingState::Sold => "sold",
        ListingState::Reserved => "reserved",
        ListingState::ForSale | ListingState::Withdrawn => "for-sale",
    };
    let body = html! {
        h1 { (view.title) }
        (general_problems(problems))
        @if saved && owner {
            p.notice role="status" id="saved" { "Saved. This is your listing as buyers see it." }
        }
        dl.facts {
            dt { "Price" } dd.price { (view.price) }
            dt { "Seller" } dd { (seller(ctx, view.user_id)) }
            dt { "Status" } dd id="ticket-status" data-live-ticket=(view.id) data-live-since=(since)
                data-live-url={ "/tickets/" (view.id) } data-live-version=(ticket.version) data-live-state=(shown) {
                (state_badge(listing))
            }
        }
        @if owner {
            @if sold {
                p.notice id="sold" { "Sold. The buyer has paid for this ticket." }
            } @else if view.order_id.is_some() {
                p.notice { "A buyer holds this ticket, so it cannot be edited or withdrawn now." }
            } @else {
                div.actions {
                    a href={ "/tickets/" (view.id) "/edit" } id="edit" { "Edit" }
                    a.button.danger href={ "/tickets/" (view.id) "/withdraw" } id="withdraw" { "Withdraw listing" }
                }
            }
        } @else if let Some(order) = &my_order {
            @if sold {
                p.notice id="bought" { "You bought this ticket. " a href={ "/orders/" (order.id) } id="my-order" { "See your order" } }
            } @else {
                p.notice { "You reserved this ticket. " a href={ "/orders/" (order.id) } id="my-order" { "Go to your order" } }
            }
        } @else if sold {
            p.notice id="unavailable" { "This ticket has been sold." }
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

#[derive(serde::Deserialize)]
struct ShowQuery {
    /// Just saved by its seller (after the sell or edit form's redirect).
    saved: Option<String>,
}

async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<ShowQuery>,
) -> Result<HttpResponse, PageError> {
    ticket_page(&state, &Ctx::of(&req), ticket_id(&id)?, &Problems::none(), q.saved.is_some()).await
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
        Err(e) => ticket_page(&state, &ctx, id, &problems(e)?, false).await,
    }
}

/// Withdrawing asks first: this page, whose form confirms (it works without JavaScript).
async fn confirm_withdraw(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = ticket_id(&id)?;
    let ctx = Ctx::of(&req);
    ctx.signed_in(&format!("/tickets/{id}/withdraw"))?;
    Ok(withdraw_page(&ctx, &TicketView::of(&state.app.ticket(id).await?)))
}

fn withdraw_page(ctx: &Ctx, t: &TicketView) -> HttpResponse {
    Confirmation {
        title: "Withdraw a listing",
        question: html! { "Withdraw " (t.title) "?" },
        consequence: "It will no longer be for sale. This cannot be undone.",
        action: format!("/tickets/{}/withdraw", t.id),
        confirm: ("confirm-withdraw", "Withdraw listing"),
        keep: (format!("/tickets/{}", t.id), "Keep it for sale"),
    }
    .render(ctx)
}

async fn withdraw(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let id = ticket_id(&id)?;
    let (form, ctx, user) = posted_by_user(&req, &body, &format!("/tickets/{id}"))?;
    if !form.confirmed() {
        return Ok(withdraw_page(&ctx, &TicketView::of(&state.app.ticket(id).await?)));
    }
    match state.app.withdraw_ticket(user.id, id).await {
        Ok(()) => Ok(see_other("/tickets/mine?withdrawn=1")),
        Err(e) => ticket_page(&state, &ctx, id, &problems(e)?, false).await,
    }
}

/// The sell and edit form.
fn ticket_form(ctx: &Ctx, heading: &str, action: &str, title: &str, price: &str, problems: &Problems) -> HttpResponse {
    let title_hint = format!("One line, at most {MAX_TITLE_CHARS} characters.");
    let most = Price::from_cents(MAX_PRICE_CENTS).grouped();
    let price_hint = format!("More than 0 and at most {most}, with at most two decimals: 25 or 12.50.");
    // Editing goes back to the ticket, selling to the landing page.
    let back = action.strip_suffix("/edit").unwrap_or("/");
    let body = html! {
        h1 { (heading) }
        form.stack method="post" action=(action) novalidate {
            (ctx.csrf_field())
            (general_problems(problems))
            (field(problems, "title", "Title", "text", title, FieldAttrs { required: true, hint: Some(title_hint), ..FieldAttrs::default() }))
            (field(problems, "price", "Price (USD)", "text", price, FieldAttrs { required: true, inputmode: Some("decimal"), hint: Some(price_hint), ..FieldAttrs::default() }))
            div.actions {
                button type="submit" id="submit" { "Save" }
                a href=(back) id="back" { "Cancel" }
            }
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
        return ticket_page(&state, &ctx, id, &Problems::one(StatusCode::FORBIDDEN, refusal), false).await;
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
        Ok(ticket) => Ok(see_other(&format!("/tickets/{}?saved=1", ticket.id))),
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
                    @let title_id = format!("title-{}", t.id);
                    li.card {
                        h2 id=(title_id) { a href={ "/tickets/" (t.id) } { (t.title) } }
                        p { span.price { (t.price) } " " (state_badge(listing.state)) }
                        @if listing.state == ListingState::ForSale {
                            // Short words; the card's title says which ticket.
                            div.actions {
                                a href={ "/tickets/" (t.id) "/edit" } aria-describedby=(title_id) { "Edit" }
                                a.button.danger href={ "/tickets/" (t.id) "/withdraw" } aria-describedby=(title_id) { "Withdraw" }
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
