//! `GET /admin`: the same tables as the admin API, server-rendered HTML for a person, refreshed
//! every few seconds when asked (`?refresh=on`: a page that reloads by itself is one a person
//! must be able to stop, WCAG 2.2.1). A browser cannot send a bearer header on navigation, so
//! the page has a login form that stores the admin token in an HttpOnly, `/admin`-scoped cookie.

use super::admin::{actor_json, cluster_json, is_admin, token_matches, ADMIN_COOKIE};
use crate::app::admin::ActorKind;
use crate::app::AppError;
use crate::domain::{DomainError, Entity, HistoryEntry, OrderId, OrderStatus, Step, TicketId};
use crate::edge::AppState;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;
use std::fmt::Write;

/// Rows shown per kind on the page (the API pages through the rest).
const ROWS: usize = 200;
const REFRESH_SECONDS: u32 = 5;

fn escape(s: &str) -> String {
    s.chars().fold(String::with_capacity(s.len()), |mut out, c| {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
        out
    })
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => escape(s),
        other => escape(&other.to_string()),
    }
}

fn html(status: StatusCode, title: &str, body: &str, refresh: bool) -> HttpResponse {
    let meta =
        if refresh { format!("<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">") } else { String::new() };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{meta}<title>{title}</title><style>\
         body{{font:14px system-ui,sans-serif;margin:2rem;color:#222}}table{{border-collapse:collapse;margin:1rem 0}}\
         th,td{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}th{{background:#f3f3f3}}\
         code{{font-size:12px}}.muted{{color:#666}}</style></head><body><main>{body}</main></body></html>"
        ))
}

fn login_form(error: Option<&str>) -> String {
    let error = error.map(|e| format!("<p role=\"alert\" style=\"color:#b00\">{}</p>", escape(e))).unwrap_or_default();
    format!(
        "<h1>ticketing admin</h1>{error}<form method=\"post\" action=\"/admin/login\">\
         <label>Admin token <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"off\"></label> \
         <button type=\"submit\" id=\"login\">Sign in</button></form>"
    )
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(page))
        .route("/admin/login", web::post().to(login))
        .route("/admin/history", web::get().to(history_page));
}

pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if !is_admin(&req) {
        return html(StatusCode::UNAUTHORIZED, "ticketing admin: sign in", &login_form(None), false);
    }
    let node = state.app.node_id();
    let live = state.app.live_counts();
    let refreshing = req.query_string().split('&').any(|pair| pair == "refresh=on");
    let refresh = if refreshing {
        format!("refreshed every {REFRESH_SECONDS} s · <a href=\"/admin\" id=\"stop-refresh\">Stop refreshing</a>")
    } else {
        format!("<a href=\"/admin\">Refresh</a> · <a href=\"/admin?refresh=on\" id=\"auto-refresh\">Refresh every {REFRESH_SECONDS} s</a>")
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>ticketing admin</h1><p class=\"muted\">Node <b>{}</b> · {refresh}</p>\
         <table id=\"summary\"><tr><th>live tickets</th><th>live orders</th><th>timers pending</th></tr>\
         <tr><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        escape(node),
        live.tickets,
        live.orders,
        live.timers_pending,
    );
    for kind in [ActorKind::Ticket, ActorKind::Order] {
        let (page, more) = state.app.live_actors(&[kind], None, ROWS);
        let _ = write!(
            body,
            "<h2>{} actors</h2><table id=\"{}-actors\"><tr><th>id</th><th>version</th><th>mailbox</th><th>handled</th>\
             <th>last message</th><th>timer deadline</th><th>restarts</th></tr>",
            kind.as_str(),
            kind.as_str()
        );
        for (_, actor) in &page {
            let a = actor_json(node, kind, actor);
            let id = cell(&a["id"]);
            let _ = write!(
                body,
                "<tr><td><a href=\"/admin/history?id={id}\"><code>{id}</code></a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                cell(&a["stateVersion"]),
                cell(&a["mailboxDepth"]),
                cell(&a["messagesHandled"]),
                cell(&a["lastMessageAt"]),
                cell(&a["timerDeadline"]),
                cell(&a["restarts"])
            );
        }
        body.push_str("</table>");
        if more {
            let _ = write!(
                body,
                "<p class=\"muted\">first {ROWS} shown; see <code>/admin/actors?kind={}</code></p>",
                kind.as_str()
            );
        }
    }
    let cluster = cluster_json(&state.app.cluster());
    let _ = write!(
        body,
        "<h2>cluster</h2><table id=\"cluster\"><tr><th>node</th><th>link</th><th>shards served</th></tr>\
         <tr><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        escape(node),
        cell(&cluster["link"]),
        cluster["serving"].as_array().map_or(0, Vec::len)
    );
    body.push_str("<p><a href=\"/admin/history\" id=\"history-link\">History of a ticket or an order</a></p>");
    html(StatusCode::OK, "ticketing admin", &body, refreshing)
}

const HISTORY_FORM: &str = "<h2>history</h2><form method=\"get\" action=\"/admin/history\">\
    <label>Ticket or order id <input name=\"id\" id=\"history-id\" size=\"40\"></label> \
    <button type=\"submit\" id=\"show-history\">Show</button></form>";

#[derive(Deserialize)]
pub struct HistoryForm {
    id: Option<String>,
}

/// Rows of history shown (the API pages through the rest).
const HISTORY_ROWS: u32 = 500;

/// The form, and the kept events of the ticket or order `id`, oldest first (not refreshed: an
/// operator types into it).
pub async fn history_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if !is_admin(&req) {
        return html(StatusCode::UNAUTHORIZED, "ticketing admin: sign in", &login_form(None), false);
    }
    let form = web::Query::<HistoryForm>::from_query(req.query_string()).map(web::Query::into_inner);
    let Some(id) = form.ok().and_then(|f| f.id).map(|id| id.trim().to_string()).filter(|id| !id.is_empty()) else {
        let body = format!("<h1>history</h1><p><a href=\"/admin\">back</a></p>{HISTORY_FORM}");
        return html(StatusCode::OK, "ticketing admin: history", &body, false);
    };
    let id = id.as_str();
    let entities = [TicketId::parse(id).map(Entity::Ticket), OrderId::parse(id).map(Entity::Order)];
    let mut found = None;
    for entity in entities.into_iter().flatten() {
        match state.app.history(entity, 0, HISTORY_ROWS).await {
            Ok(page) => {
                found = Some((entity, page));
                break;
            }
            Err(AppError::Domain(DomainError::NotFound)) => continue,
            Err(e) => {
                let body =
                    format!("<h1>history of {}</h1><p role=\"alert\">{}</p>", escape(id), escape(&e.to_string()));
                return html(StatusCode::SERVICE_UNAVAILABLE, "ticketing admin: history", &body, false);
            }
        }
    }
    // A paid order's receipt, above its history, or in its place once that was pruned (or the
    // trail is off).
    let receipt = match &found {
        Some((Entity::Ticket(_), _)) => String::new(),
        Some((Entity::Order(order), page)) => receipt(&state, *order, &page.entries).await,
        None => match OrderId::parse(id) {
            Some(order) => receipt(&state, order, &[]).await,
            None => String::new(),
        },
    };
    let Some((entity, page)) = found else {
        let (status, heading) = match receipt.is_empty() {
            true => (StatusCode::NOT_FOUND, "No ticket or order with this id has a history."),
            false => (StatusCode::OK, "This order's history is no longer kept."),
        };
        let body = format!("<h1>history of {}</h1><p>{heading}</p>{receipt}{HISTORY_FORM}", escape(id));
        return html(status, "ticketing admin: history", &body, false);
    };
    let kind = entity.kind_str();
    let mut body = format!(
        "<h1>history of {kind} <code>{}</code></h1><p><a href=\"/admin\">back</a></p>{receipt}\
         <h2>events</h2><table id=\"history\">\
         <tr><th>#</th><th>at</th><th>event</th><th>reason</th><th>data</th></tr>",
        escape(id)
    );
    for entry in &page.entries {
        let e = crate::json::history_entry(entry);
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            cell(&e["seq"]),
            cell(&e["at"]),
            cell(&e["event"]),
            cell(&e["reason"]),
            cell(&e["data"])
        );
    }
    body.push_str("</table>");
    if page.more {
        let _ = write!(
            body,
            "<p class=\"muted\">first {HISTORY_ROWS} shown; see <code>/admin/{kind}s/{}/history</code></p>",
            escape(id)
        );
    }
    html(StatusCode::OK, "ticketing admin: history", &body, false)
}

/// A paid order's receipt, as its buyer's page shows it (an admin may see any), or nothing;
/// its time from `history`, the order's kept events this page read already.
async fn receipt(state: &AppState, id: OrderId, history: &[HistoryEntry]) -> String {
    let Ok(order) = state.app.order_for_admin(id).await else { return String::new() };
    if order.status != OrderStatus::Complete {
        return String::new();
    }
    let paid_at = Step::paid_at(history);
    // The buyer as their own receipt names them (their email), and their id.
    let email = state.app.contact(order.user_id).await.ok().flatten();
    let buyer = match email {
        Some(email) => format!("{} (<code>{}</code>)", escape(&email), order.user_id),
        None => format!("<code>{}</code>", order.user_id),
    };
    let rows = [
        ("Order number", format!("<code>{}</code>", order.id)),
        ("Ticket", escape(&order.ticket.title)),
        ("Price", crate::json::Amount(order.ticket.price).to_string()),
        ("Paid at", paid_at.map_or_else(|| "not kept".to_string(), crate::domain::iso_utc)),
        ("Payment reference", format!("<code>{}</code>", escape(order.stripe_id.as_deref().unwrap_or("–")))),
        ("Buyer", buyer),
    ];
    let mut html = String::from("<h2>receipt</h2><table id=\"receipt\">");
    for (name, value) in rows {
        let _ = write!(html, "<tr><th scope=\"row\">{name}</th><td>{value}</td></tr>");
    }
    html.push_str("</table>");
    html
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

pub async fn login(state: web::Data<AppState>, form: web::Form<LoginForm>) -> HttpResponse {
    if !token_matches(&form.token, state.settings.admin.token.expose()) {
        return html(StatusCode::UNAUTHORIZED, "ticketing admin: sign in", &login_form(Some("Wrong token")), false);
    }
    let cookie = Cookie::build(ADMIN_COOKIE, form.token.clone())
        .path("/admin")
        .http_only(true)
        .secure(state.settings.auth.secure_cookies)
        .same_site(SameSite::Strict)
        .finish();
    HttpResponse::SeeOther().insert_header(("Location", "/admin")).cookie(cookie).finish()
}
