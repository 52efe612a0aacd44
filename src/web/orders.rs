//! The buying pages: my orders, and an order's page with the time left, Pay and Cancel. With
//! the offline gateway the buyer types a test card token; with Stripe the server opens a
//! Checkout Session and sends the buyer there, and the signed webhook completes the order.

use super::forms::posted_by_user;
use super::layout::{field, general_problems, see_other, Ctx, FieldAttrs};
use super::problem::{problems, PageError, Problems};
use crate::domain::{iso_utc, now_ms, Order, OrderId, OrderStatus, Step};
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
        .route("/orders/{id}/pay", web::post().to(pay))
        .route("/orders/{id}/cancel", web::post().to(cancel));
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
    /// Where `order` stands. Its `timeline` says why a cancelled order was cancelled; without
    /// one (the order list, the audit trail off or pruned), a cancelled order whose window is
    /// over reads as expired.
    fn of(order: &Order, timeline: &[(i64, Step)]) -> Self {
        let window_passed = order.expires_at_ms <= now_ms();
        let why_cancelled = timeline.iter().rev().find_map(|(_, step)| match step {
            Step::Cancelled => Some(Self::Cancelled),
            Step::Expired => Some(Self::Expired),
            _ => None,
        });
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
    let orders = state.app.orders_of(user.id).await?;
    let body = html! {
        h1 { "My orders" }
        @if orders.is_empty() {
            p.notice { "No orders yet. " a href="/" { "Find a ticket" } }
        } @else {
            ul.cards id="orders" {
                @for order in &orders {
                    @let view = OrderView::of(order);
                    @let standing = Standing::of(order, &[]);
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
    let order = match state.app.order(user.id, id).await {
        Err(crate::app::AppError::Domain(crate::domain::DomainError::NotAuthorized)) => {
            return Err(PageError::NotFound)
        }
        other => other?,
    };
    let view = OrderView::of(&order);
    // The page is still worth showing without its history (a shard briefly unreachable).
    let timeline = state.app.order_timeline(&order).await.map_err(|e| {
        tracing::warn!(error = %e, "an order's timeline could not be read");
    });
    let standing = Standing::of(&order, timeline.as_deref().unwrap_or_default());
    let (words, class) = standing.words();
    let settings = &state.settings;
    let stripe = settings.payments.provider == PaymentProvider::Stripe;
    let body: Markup = html! {
        h1 { "Order for " (view.ticket.title) }
        (general_problems(problems))
        dl.facts {
            dt { "Ticket" } dd { a href={ "/tickets/" (view.ticket.id) } { (view.ticket.title) } }
            dt { "Price" } dd.price { (view.ticket.price) }
            dt { "Status" } dd id="order-status" { span class={ "badge " (class) } { (words) } }
        }
        @if standing == Standing::Payable {
            p { "Pay within " time.countdown id="time-left" datetime=(view.expires_at) data-expires-at=(view.expires_at) { (time_left(view.expires_at_ms)) } " or the ticket is released." }
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
            form method="post" action={ "/orders/" (view.id) "/cancel" } {
                (ctx.csrf_field())
                div.actions { button.secondary type="submit" id="cancel" { "Cancel order" } }
            }
        } @else if standing == Standing::Paid {
            p.notice id="paid" { "Paid. The ticket is yours." }
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

async fn show(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    order_page(&state, &Ctx::of(&req), order_id(&id)?, &Problems::none()).await
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
        Err(e) => order_page(&state, &ctx, id, &problems(e)?).await,
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

async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let id = order_id(&id)?;
    let (_, ctx, user) = posted_by_user(&req, &body, &format!("/orders/{id}"))?;
    match state.app.cancel_order(user.id, id).await {
        Ok(_) => Ok(see_other(&format!("/orders/{id}"))),
        Err(e) => order_page(&state, &ctx, id, &problems(e)?).await,
    }
}
