//! The buying pages: my orders, and an order's page with the time left, Pay and Cancel. With
//! the offline gateway the buyer types a test card token; with Stripe the server opens a
//! Checkout Session and sends the buyer there, and the signed webhook completes the order.

use super::forms::{posted_by_user, Confirmation};
use super::layout::{field, general_problems, see_other, Ctx, FieldAttrs};
use super::problem::{problems, PageError, Problems};
use crate::app::AppError;
use crate::domain::{iso_utc, now_ms, DomainError, Order, OrderId, OrderStatus, Step};
use crate::edge::caller::AuthUser;
use crate::edge::AppState;
use crate::json::OrderView;
use crate::settings::{Mode, PaymentProvider};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/orders", web::get().to(list))
        .route("/orders/{id}", web::get().to(show))
        // A pay or cancel address reloaded or shared: the order's page (or the confirmation).
        .route("/orders/{id}/pay", web::get().to(back_to_order))
        .route("/orders/{id}/pay", web::post().to(pay))
        .route("/orders/{id}/cancel", web::get().to(confirm_cancel))
        .route("/orders/{id}/cancel", web::post().to(cancel))
        .route("/orders/{id}/receipt", web::get().to(receipt));
}

/// A malformed id names no order.
fn order_id(raw: &str) -> Result<OrderId, PageError> {
    OrderId::parse(raw).ok_or(PageError::NotFound)
}

/// Where an order stands, as its buyer is told.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Standing {
    Payable,
    Processing,
    Paid,
    /// Its window passed unpaid.
    Expired,
    /// The buyer cancelled it.
    Cancelled,
}

impl Standing {
    /// Where `order` stands. `why_cancelled` says why a cancelled order was cancelled; without
    /// it (the audit trail off or pruned), a cancelled order whose window is over reads as
    /// expired.
    fn of(order: &Order, why_cancelled: Option<Self>) -> Self {
        let window_passed = order.expires_at_ms <= now_ms();
        match order.status {
            OrderStatus::Created if window_passed => Self::Expired,
            OrderStatus::Created => Self::Payable,
            OrderStatus::AwaitingPayment => Self::Processing,
            OrderStatus::Complete => Self::Paid,
            OrderStatus::Cancelled => {
                why_cancelled.unwrap_or(if window_passed { Self::Expired } else { Self::Cancelled })
            }
        }
    }

    /// Why an order was cancelled, from its `timeline` (`None`: it does not say).
    fn why_cancelled(timeline: &[(i64, Step)]) -> Option<Self> {
        timeline.iter().rev().find_map(|(_, step)| match step {
            Step::Cancelled => Some(Self::Cancelled),
            Step::Expired => Some(Self::Expired),
            _ => None,
        })
    }

    /// Plain words, and the badge's class.
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Self::Payable => ("Awaiting payment", "awaiting"),
            Self::Processing => ("Payment in progress", "awaiting"),
            Self::Paid => ("Paid", "complete"),
            Self::Expired => ("Expired", "cancelled"),
            Self::Cancelled => ("Cancelled", "cancelled"),
        }
    }
}

/// `m:ss left` as rendered (the script keeps it current).
fn time_left(expires_at_ms: i64) -> String {
    let left = ((expires_at_ms - now_ms()).max(0) + 999) / 1000;
    format!("{}:{:02} left", left / 60, left % 60)
}

async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let ctx = Ctx::of(&req);
    let user = ctx.signed_in("/orders")?;
    let orders = state.app.orders_of_with_expiry(user.id).await?;
    let body = html! {
        h1 { "My orders" }
        @if orders.is_empty() {
            p.notice { "No orders yet. " a href="/" { "Find a ticket" } }
        } @else {
            // Newest first: the order just placed is the one looked for.
            ul.cards id="orders" {
                @for (order, expired) in orders.iter().rev() {
                    @let view = OrderView::of(order);
                    @let why = expired.map(|expired| if expired { Standing::Expired } else { Standing::Cancelled });
                    @let standing = Standing::of(order, why);
                    @let (words, class) = standing.words();
                    li.card {
                        h2 { a href={ "/orders/" (view.id) } { (view.ticket.title) } }
                        p { span.price { (view.ticket.price) } " " span class={ "badge " (class) } { (words) } }
                        @if standing == Standing::Payable {
                            p { time.countdown datetime=(view.expires_at) data-expires-at=(view.expires_at) { (time_left(view.expires_at_ms)) } }
                        }
                    }
                }
            }
        }
    };
    Ok(ctx.render(StatusCode::OK, "My orders", body))
}

/// An order's page; `problems` are those of a payment or cancellation that was refused.
async fn order_page(state: &AppState, ctx: &Ctx, id: OrderId, problems: &Problems) -> Result<HttpResponse, PageError> {
    let user = ctx.signed_in(&format!("/orders/{id}"))?;
    let since = state.app.live().position();
    let order = buyers_order(state, user, id).await?;
    let view = OrderView::of(&order);
    // The page is still worth showing without its history (a shard briefly unreachable).
    let timeline = state.app.order_timeline(&order).await.map_err(|e| {
        tracing::warn!(error = %e, "an order's timeline could not be read");
    });
    let standing = Standing::of(&order, Standing::why_cancelled(timeline.as_deref().unwrap_or_default()));
    // A decline is news only while the order can still be paid: its address, reloaded or
    // bookmarked after paying, says nothing of it.
    let without_decline;
    let problems = if standing == Standing::Payable {
        problems
    } else {
        without_decline = problems.without(DECLINED);
        &without_decline
    };
    let (words, class) = standing.words();
    let settings = &state.settings;
    let stripe = settings.payments.provider == PaymentProvider::Stripe;
    let body: Markup = html! {
        h1 { "Order for " (view.ticket.title) }
        (general_problems(problems))
        dl.facts {
            dt { "Ticket" } dd { a href={ "/tickets/" (view.ticket.id) } { (view.ticket.title) } }
            dt { "Price" } dd.price { (view.ticket.price) }
            dt { "Status" } dd id="order-status" data-live-order-ticket=[(standing == Standing::Payable || standing == Standing::Processing).then_some(view.ticket.id)] data-live-since=(since)
                data-live-url={ "/orders/" (view.id) } {
                span class={ "badge " (class) } { (words) }
            }
        }
        @if standing == Standing::Payable {
            // When the time runs out on an open page, the script says so in these words (and
            // marks the order expired); the server decides either way.
            p id="pay-within" {
                span.around { "Pay within " }
                time.countdown id="time-left" datetime=(view.expires_at) data-expires-at=(view.expires_at)
                    data-expired-text="Time is up: this order has expired." { (time_left(view.expires_at_ms)) }
                span.around { " or the ticket is released." }
            }
            @if stripe {
                form method="post" action={ "/orders/" (view.id) "/pay" } id="pay-form" {
                    (ctx.csrf_field())
                    button type="submit" id="pay" data-disable-on-expiry { "Pay " (view.ticket.price) " with Stripe" }
                }
            } @else {
                form.stack method="post" action={ "/orders/" (view.id) "/pay" } id="pay-form" novalidate {
                    (ctx.csrf_field())
                    (field(problems, "token", "Card token", "text", "tok_visa", FieldAttrs { required: true, autocomplete: Some("off"), ..FieldAttrs::default() }))
                    @if settings.app.mode == Mode::Dev {
                        p.muted id="test-tokens" { "Test mode: " code { "tok_visa" } " pays, " code { "tok_chargeDeclined" } " is declined." }
                    }
                    button type="submit" id="pay" data-disable-on-expiry { "Pay " (view.ticket.price) }
                }
            }
            div.actions { a.button.secondary href={ "/orders/" (view.id) "/cancel" } id="cancel" data-disable-on-expiry { "Cancel order" } }
        } @else if standing == Standing::Paid {
            p.notice id="paid" { "Paid. The ticket is yours. " a href={ "/orders/" (view.id) "/receipt" } id="receipt-link" { "See your receipt" } }
        } @else if standing == Standing::Processing {
            p.notice { "Your payment is being processed. Reload this page in a moment." }
        } @else if standing == Standing::Expired {
            p.notice id="expired" { "This order expired before it was paid, and the ticket was released. "
                a href={ "/tickets/" (view.ticket.id) } { "See the ticket" } }
        } @else {
            p.notice id="cancelled" { "You cancelled this order. " a href={ "/tickets/" (view.ticket.id) } { "See the ticket" } }
        }
        (timeline_section(timeline.as_deref()))
        p { a href="/orders" { "All my orders" } }
    };
    Ok(ctx.render(problems.status(), &format!("Order for {}", view.ticket.title), body))
}

/// A paid order's receipt, for its buyer only (anyone else: not found). Printable: the print
/// stylesheet leaves the navigation out.
async fn receipt(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let (ctx, order) = buyers_page(&state, &req, &id, "/receipt").await?;
    if order.status != OrderStatus::Complete {
        return Err(PageError::NotFound);
    }
    let view = OrderView::of(&order);
    let paid_at = state.app.paid_at(&order).await;
    let body = html! {
        h1 { "Receipt" }
        dl.facts.receipt id="receipt" {
            dt { "Order number" } dd { code { (view.id) } }
            dt { "Ticket" } dd { (view.ticket.title) }
            dt { "Price" } dd.price { (view.ticket.price) }
            dt { "Paid at" } dd {
                @match paid_at {
                    Some(at) => time datetime=(iso_utc(at)) { (readable_utc(at)) },
                    None => "Not kept (the order's history has been pruned)",
                }
            }
            dt { "Payment reference" } dd { code { (order.stripe_id.as_deref().unwrap_or("–")) } }
            dt { "Buyer" } dd { (ctx.user.as_ref().map(|u| u.claims.email.as_str()).unwrap_or_default()) }
        }
        p.no-print { "Print this page, or save it as a PDF, from your browser's menu. " a href={ "/orders/" (view.id) } { "Back to the order" } }
    };
    Ok(ctx.render(StatusCode::OK, "Receipt", body))
}

/// What a page of one of the signed-in buyer's orders starts with (`path` after the order's
/// address, to come back to after signing in): who asks, and their order.
async fn buyers_page(state: &AppState, req: &HttpRequest, raw_id: &str, path: &str) -> Result<(Ctx, Order), PageError> {
    let id = order_id(raw_id)?;
    let ctx = Ctx::of(req);
    let user = ctx.signed_in(&format!("/orders/{id}{path}"))?;
    let order = buyers_order(state, user, id).await?;
    Ok((ctx, order))
}

/// The order, if `user` bought it: anyone else is told it does not exist.
async fn buyers_order(state: &AppState, user: &AuthUser, id: OrderId) -> Result<Order, PageError> {
    match state.app.order(user.id, id).await {
        Err(crate::app::AppError::Domain(crate::domain::DomainError::NotAuthorized)) => Err(PageError::NotFound),
        other => Ok(other?),
    }
}

/// What happened to the order, oldest first, with times (UTC).
fn timeline_section(timeline: Result<&[(i64, Step)], &()>) -> Markup {
    html! {
        h2 { "History" }
        @match timeline {
            Ok(steps) if !steps.is_empty() => ol.timeline id="timeline" {
                @for (at_ms, step) in steps {
                    li data-step=(step_key(step)) {
                        time datetime=(iso_utc(*at_ms)) { (readable_utc(*at_ms)) } " " (step_words(step))
                    }
                }
            },
            Ok(_) => p.muted { "No history is kept for this order." },
            Err(()) => p.muted { "The history of this order cannot be shown right now." },
        }
    }
}

fn step_key(step: &Step) -> &'static str {
    match step {
        Step::Reserved => "reserved",
        Step::PaymentStarted => "payment-started",
        Step::PaymentDeclined(_) => "payment-declined",
        Step::Paid => "paid",
        Step::Cancelled => "cancelled",
        Step::Expired => "expired",
    }
}

fn step_words(step: &Step) -> String {
    match step {
        Step::Reserved => "Reserved the ticket".into(),
        Step::PaymentStarted => "Payment started".into(),
        Step::PaymentDeclined(reason) => format!("Payment declined: {reason}"),
        Step::Paid => "Paid".into(),
        Step::Cancelled => "You cancelled the order".into(),
        Step::Expired => "Expired unpaid; the ticket was released".into(),
    }
}

fn readable_utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[derive(serde::Deserialize)]
struct ShowQuery {
    /// Why the last payment was refused, after its redirect here.
    refused: Option<String>,
}

const DECLINED: &str = "Your card was declined";

/// A refused payment, told on the order's page after the redirect, in plain words.
fn refusal(code: &str) -> Option<&'static str> {
    match code {
        "declined" => Some(DECLINED),
        "expired" => Some("This order has expired, so it can no longer be paid."),
        "cancelled" => Some("This order was cancelled, so it can no longer be paid."),
        "paid" => Some("This order is already paid."),
        _ => None,
    }
}

async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<ShowQuery>,
) -> Result<HttpResponse, PageError> {
    let problems = match q.refused.as_deref().and_then(refusal) {
        Some(words) => Problems::one(StatusCode::OK, words),
        None => Problems::none(),
    };
    order_page(&state, &Ctx::of(&req), order_id(&id)?, &problems).await
}

async fn back_to_order(id: web::Path<String>) -> Result<HttpResponse, PageError> {
    Ok(see_other(&format!("/orders/{}", order_id(&id)?)))
}

async fn pay(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let id = order_id(&id)?;
    let (form, ctx, user) = posted_by_user(&req, &body, &format!("/orders/{id}"))?;
    if state.settings.payments.provider == PaymentProvider::Stripe {
        return checkout(&state, &ctx, &req, &user, id).await;
    }
    let token = form.get("token").map(str::trim).unwrap_or_default();
    if token.is_empty() {
        let problems = Problems {
            status: Some(StatusCode::BAD_REQUEST),
            list: vec![super::problem::Problem { field: Some("token"), message: "Invalid value".into() }],
        };
        return order_page(&state, &ctx, id, &problems).await;
    }
    match state.app.pay(user.id, id, token.to_string(), None).await {
        Ok(_) => Ok(see_other(&format!("/orders/{id}"))),
        Err(e) => {
            // Answered with a redirect, like a success: the address can be reloaded and shared.
            let declined = matches!(e, AppError::Domain(DomainError::CardDeclined));
            let problems = problems(e)?;
            match refused_code(&state, &user, id, declined).await {
                Some(code) => Ok(see_other(&format!("/orders/{id}?refused={code}"))),
                None => order_page(&state, &ctx, id, &problems).await,
            }
        }
    }
}

/// Why a payment was refused, as the order page's `refused` code: a declined card, or an order
/// no longer payable (said plainly rather than in the API's words). `None`: another refusal,
/// shown with the form.
async fn refused_code(state: &AppState, user: &AuthUser, id: OrderId, declined: bool) -> Option<&'static str> {
    if declined {
        return Some("declined");
    }
    let order = state.app.order(user.id, id).await.ok()?;
    match Standing::of(&order, None) {
        Standing::Expired => Some("expired"),
        Standing::Cancelled => Some("cancelled"),
        Standing::Paid => Some("paid"),
        Standing::Payable | Standing::Processing => None,
    }
}

/// With Stripe: a Checkout Session for the order, and off to it.
async fn checkout(
    state: &AppState,
    ctx: &Ctx,
    req: &HttpRequest,
    user: &AuthUser,
    id: OrderId,
) -> Result<HttpResponse, PageError> {
    let back = {
        let info = req.connection_info();
        format!("{}://{}/orders/{id}", info.scheme(), info.host())
    };
    match state.app.checkout(user.id, id, format!("{back}?paid=1"), back.clone()).await {
        Ok(session) => Ok(see_other(&session.url)),
        Err(e) => order_page(state, ctx, id, &problems(e)?).await,
    }
}

/// Cancelling asks first: this page, whose form confirms (it works without JavaScript).
async fn confirm_cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let (ctx, order) = buyers_page(&state, &req, &id, "/cancel").await?;
    // Paid, being paid, cancelled or expired: nothing to ask; the order's page says where it
    // stands.
    if Standing::of(&order, None) != Standing::Payable {
        return Ok(see_other(&format!("/orders/{}", order.id)));
    }
    Ok(cancel_page(&ctx, &OrderView::of(&order)))
}

fn cancel_page(ctx: &Ctx, order: &OrderView) -> HttpResponse {
    Confirmation {
        title: "Cancel an order",
        question: html! { "Cancel your order for " (order.ticket.title) "?" },
        consequence: "The ticket will be released for others to buy.",
        action: format!("/orders/{}/cancel", order.id),
        confirm: ("confirm-cancel", "Cancel order"),
        keep: (format!("/orders/{}", order.id), "Keep my order"),
    }
    .render(ctx)
}

async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let id = order_id(&id)?;
    let (form, ctx, user) = posted_by_user(&req, &body, &format!("/orders/{id}"))?;
    if !form.confirmed() {
        return Ok(cancel_page(&ctx, &OrderView::of(&buyers_order(&state, &user, id).await?)));
    }
    match state.app.cancel_order(user.id, id).await {
        Ok(_) => Ok(see_other(&format!("/orders/{id}"))),
        Err(e) => order_page(&state, &ctx, id, &problems(e)?).await,
    }
}
