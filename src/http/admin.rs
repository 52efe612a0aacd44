//! `/admin/*`: what operators see inside the running actor system, behind the admin bearer
//! token, as JSON over the admin use cases (`crate::app::admin`).

use crate::app::admin::{ActorKind, ClusterView, EntityState, LiveActor};
use crate::domain::{iso_utc, Entity, OrderId, TicketId};
use crate::edge::ApiError;
use crate::edge::AppState;
use actix_web::dev::Payload;
use actix_web::{http::header, web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The cookie the admin page's login form sets (HttpOnly, scoped to `/admin`).
pub const ADMIN_COOKIE: &str = "admin_token";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/actors", web::get().to(list))
        .route("/admin/actors/{kind}/{id}", web::get().to(show))
        .route("/admin/actors/{kind}/{id}/passivate", web::post().to(passivate))
        .route("/admin/cluster", web::get().to(cluster))
        .route("/admin/tickets/{id}/history", web::get().to(ticket_history))
        .route("/admin/orders/{id}/history", web::get().to(order_history));
}

/// An admin caller: `Authorization: Bearer <admin token>` (or the admin page's cookie).
pub struct AdminToken;

/// Compares digests so that neither the content nor the length of the token leaks through
/// timing.
pub fn token_matches(presented: &str, configured: &str) -> bool {
    let (a, b) = (Sha256::digest(presented.as_bytes()), Sha256::digest(configured.as_bytes()));
    !configured.is_empty() && bool::from(subtle::ConstantTimeEq::ct_eq(&a[..], &b[..]))
}

pub fn is_admin(req: &HttpRequest) -> bool {
    let Some(state) = req.app_data::<web::Data<AppState>>() else { return false };
    let configured = state.settings.admin.token.expose();
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let presented = bearer.map(str::to_string).or_else(|| req.cookie(ADMIN_COOKIE).map(|c| c.value().to_string()));
    presented.is_some_and(|p| token_matches(&p, configured))
}

impl FromRequest for AdminToken {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(if is_admin(req) { Ok(AdminToken) } else { Err(ApiError::NotAuthorized) })
    }
}

/// One live actor as JSON.
pub fn actor_json(node: &str, kind: ActorKind, actor: &LiveActor) -> Value {
    let s = &actor.stats;
    json!({
        "kind": kind.as_str(),
        "id": actor.id,
        "node": node,
        "mailboxDepth": s.mailbox_depth(),
        "messagesHandled": s.handled(),
        "lastMessageAt": iso_utc(s.last_message_ms()),
        "activatedAt": iso_utc(s.activated_at_ms),
        "stateVersion": s.version(),
        "timerDeadline": s.deadline_ms().map(iso_utc),
        "restarts": s.restarts(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    kind: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/admin/actors", tag = "admin", security(("admin" = [])),
    params(("kind" = Option<String>, Query, pattern = "^(ticket|order)$", description = "`ticket` or `order` (both when left out)"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000),
           ("cursor" = Option<String>, Query, pattern = "^(ticket|order):.+$", description = "`nextCursor` of the previous page")),
    responses((status = 200, description = "Live actors", body = serde_json::Value)))]
pub(super) async fn list(
    state: web::Data<AppState>,
    _: AdminToken,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let kinds = match query.kind.as_deref() {
        None => vec![ActorKind::Ticket, ActorKind::Order],
        Some(k) => {
            vec![ActorKind::parse(k).ok_or_else(|| ApiError::bad_parameter("kind", "kind must be ticket or order"))?]
        }
    };
    let limit = page_limit(query.limit.as_deref())?;
    let after = match query.cursor.as_deref() {
        None => None,
        Some(c) => {
            let (kind, id) = c
                .split_once(':')
                .filter(|(_, id)| !id.is_empty())
                .ok_or_else(|| ApiError::bad_parameter("cursor", "Invalid cursor"))?;
            Some((
                ActorKind::parse(kind).ok_or_else(|| ApiError::bad_parameter("cursor", "Invalid cursor"))?,
                id.to_string(),
            ))
        }
    };
    let node = state.app.node_id();
    let (page, more) = state.app.live_actors(&kinds, after, limit as usize);
    let next = if more { page.last().map(|(k, a)| format!("{}:{}", k.as_str(), a.id)) } else { None };
    let actors: Vec<Value> = page.iter().map(|(k, a)| actor_json(node, *k, a)).collect();
    Ok(HttpResponse::Ok().json(json!({ "actors": actors, "nextCursor": next })))
}

/// A page size: 100 unless asked, at most 1000.
fn page_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    match raw {
        None => Ok(100),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::bad_parameter("limit", "limit must be between 1 and 1000")),
    }
}

/// One actor and its state. The state is read from storage even for a live actor (its state
/// as of its last applied write; see `app::admin`), so reading it never queues behind (or
/// re-activates) the actor. `source` says whether an actor is live for it.
#[utoipa::path(get, path = "/admin/actors/{kind}/{id}", tag = "admin", security(("admin" = [])),
    params(("kind" = String, Path, description = "`ticket` or `order`"), ("id" = String, Path, format = "uuid")),
    responses((status = 200, description = "One actor and its state", body = serde_json::Value)))]
pub(super) async fn show(
    state: web::Data<AppState>,
    _: AdminToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (kind, id) = path.into_inner();
    let kind = ActorKind::parse(&kind).ok_or(ApiError::NotFound)?;
    let detail = state.app.actor_detail(kind, &id)?;
    let node = state.app.node_id();
    let record = match &detail.state {
        Some(EntityState::Ticket(t)) => to_json(t),
        Some(EntityState::Order(o)) => to_json(o),
        None => Value::Null,
    };
    Ok(HttpResponse::Ok().json(json!({
        "kind": kind.as_str(),
        "id": id,
        "node": node,
        "source": if detail.live.is_some() { "actor" } else { "storage" },
        "live": detail.live.as_ref().map(|a| actor_json(node, kind, a)),
        "pendingDeadline": detail.pending_deadline_ms.map(iso_utc),
        "state": record,
    })))
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[utoipa::path(post, path = "/admin/actors/{kind}/{id}/passivate", tag = "admin", security(("admin" = [])),
    params(("kind" = String, Path), ("id" = String, Path, format = "uuid")),
    responses((status = 200, description = "Whether the actor stopped", body = serde_json::Value)))]
pub(super) async fn passivate(
    state: web::Data<AppState>,
    _: AdminToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (kind, id) = path.into_inner();
    let kind = ActorKind::parse(&kind).ok_or(ApiError::NotFound)?;
    let passivated = state.app.passivate(kind, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "passivated": passivated })))
}

/// This node, the members, shard ownership (from the configured map: never from who is
/// alive) and the broker link. A single node owns every shard and has no link.
pub fn cluster_json(view: &ClusterView) -> Value {
    let mut owned: std::collections::BTreeMap<&str, u32> = view.members.iter().map(|m| (m.as_str(), 0)).collect();
    for owner in &view.owners {
        *owned.entry(owner.as_str()).or_default() += 1;
    }
    json!({
        "node": view.node,
        "cluster": view.cluster,
        "mode": if view.clustered { "cluster" } else { "single-node" },
        "epoch": view.epoch,
        "members": view.members.iter().map(|m| json!({ "id": m, "self": *m == view.node })).collect::<Vec<_>>(),
        "link": view.link_up.map(|up| if up { "up" } else { "down" }),
        "serving": view.serving,
        "held": view.held,
        "following": view.copies.iter().filter(|c| !c.serving).collect::<Vec<_>>(),
        "copies": view.copies,
        "shards": {
            "count": view.owners.len(),
            "owners": owned,
            "assignments": view.owners.iter().enumerate()
                .map(|(s, owner)| json!({ "shard": s, "owner": owner })).collect::<Vec<_>>(),
        },
    })
}

#[utoipa::path(get, path = "/admin/cluster", tag = "admin", security(("admin" = [])),
    responses((status = 200, description = "Members, shard ownership, the broker link", body = serde_json::Value)))]
pub(super) async fn cluster(state: web::Data<AppState>, _: AdminToken) -> HttpResponse {
    HttpResponse::Ok().json(cluster_json(&state.app.cluster()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/admin/tickets/{id}/history", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, format = "uuid"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000),
           ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,19}$", description = "`nextCursor` of the previous page")),
    responses((status = 200, description = "The ticket's events, oldest first", body = serde_json::Value)))]
pub(super) async fn ticket_history(
    state: web::Data<AppState>,
    _: AdminToken,
    id: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let entity = TicketId::parse(&id).map(Entity::Ticket).ok_or(ApiError::NotFound)?;
    history(&state, entity, &id, &query).await
}

#[utoipa::path(get, path = "/admin/orders/{id}/history", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, format = "uuid"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000),
           ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,19}$", description = "`nextCursor` of the previous page")),
    responses((status = 200, description = "The order's events, oldest first; a cancellation says why", body = serde_json::Value)))]
pub(super) async fn order_history(
    state: web::Data<AppState>,
    _: AdminToken,
    id: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let entity = OrderId::parse(&id).map(Entity::Order).ok_or(ApiError::NotFound)?;
    history(&state, entity, &id, &query).await
}

/// One entity's kept events, a page at a time; the cursor is the last event number seen.
async fn history(state: &AppState, entity: Entity, id: &str, query: &HistoryQuery) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(query.limit.as_deref())?;
    let after = match query.cursor.as_deref() {
        None => 0,
        Some(raw) => Some(raw)
            .filter(|raw| (1..=19).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|raw| raw.parse::<u64>().ok())
            .ok_or_else(|| ApiError::bad_parameter("cursor", "Invalid cursor"))?,
    };
    let page = state.app.history(entity, after, limit).await?;
    let next = if page.more { page.entries.last().map(|e| e.seq.to_string()) } else { None };
    Ok(HttpResponse::Ok().json(json!({
        "kind": entity.kind_str(),
        "id": id,
        "entries": page.entries.iter().map(crate::json::history_entry).collect::<Vec<_>>(),
        "nextCursor": next,
    })))
}
