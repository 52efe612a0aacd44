//! Who is asking, for the API and the pages alike. Auth is a type: a handler that takes
//! [`AuthUser`] cannot run for a signed-out caller; [`MaybeUser`] serves both. The caller is
//! found once per request (bearer token, then the session cookie, or the session the renewal
//! middleware in `super::session` resolved), and [`client_address`] says from where, for the
//! sign-in throttles.

use super::error::ApiError;
use super::AppState;
use crate::auth::{Claims, SessionCookie};
use crate::domain::UserId;
use actix_web::dev::Payload;
use actix_web::{http::header, web, FromRequest, HttpMessage, HttpRequest};
use std::future::ready;

/// The signed-in caller.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub id: UserId,
    pub claims: Claims,
}

/// The caller if signed in.
pub struct MaybeUser(pub Option<AuthUser>);

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers().get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// The caller as the session middleware resolved it (a renewed session included), so that
/// the token is verified once per request.
#[derive(Clone)]
pub struct Caller(pub Option<AuthUser>);

/// The signed-in caller of `req`, if any: as the session middleware found it
/// (`super::session::renew`), else from the bearer token or the session cookie.
pub fn current_user(req: &HttpRequest) -> Option<AuthUser> {
    if let Some(Caller(caller)) = req.extensions().get::<Caller>() {
        return caller.clone();
    }
    resolve_caller(req)
}

/// The caller named by the request's own credentials (bearer token first, then the session
/// cookie), if they are valid and unexpired.
pub fn resolve_caller(req: &HttpRequest) -> Option<AuthUser> {
    let state = req.app_data::<web::Data<AppState>>()?;
    // A bearer token that is not a valid access token (the admin token, say) does not hide
    // the session cookie.
    let from_bearer = bearer(req).and_then(|t| state.app.accounts().verify(t));
    let claims = match from_bearer {
        Some(claims) => claims,
        None => state.app.accounts().verify(&SessionCookie::decode(req.cookie(SessionCookie::NAME)?.value())?)?,
    };
    let id = UserId::parse(&claims.id)?;
    Some(AuthUser { id, claims })
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(current_user(req).ok_or(ApiError::NotAuthorized))
    }
}

impl FromRequest for MaybeUser {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(MaybeUser(current_user(req))))
    }
}

fn trusted_proxies(req: &HttpRequest) -> &[std::net::IpAddr] {
    req.app_data::<web::Data<AppState>>().map(|s| s.settings.http.trusted_proxies.as_slice()).unwrap_or(&[])
}

/// Whether the request came straight from one of `http.trusted_proxies`.
pub fn from_trusted_proxy(req: &HttpRequest) -> bool {
    let Some(peer) = req.peer_addr().map(|a| a.ip().to_canonical()) else { return false };
    trusted_proxies(req).iter().any(|t| t.to_canonical() == peer)
}

/// The client's address, for throttling: the peer's, or, when the peer is a trusted proxy,
/// the nearest `X-Forwarded-For` hop (from the right) that is not one of the trusted proxies;
/// a hop that is not an address stops the walk and is the client's name itself (the entries
/// left of it are the client's to write). IPv6 clients are counted by their /64, which is
/// what one subscriber gets.
pub fn client_address(req: &HttpRequest) -> String {
    let is_trusted = |ip: std::net::IpAddr| trusted_proxies(req).iter().any(|t| t.to_canonical() == ip);
    let Some(peer) = req.peer_addr().map(|a| a.ip().to_canonical()) else { return "unknown".into() };
    if !is_trusted(peer) {
        return address_key(peer);
    }
    let forwarded =
        req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    for hop in forwarded.rsplit(',').map(str::trim).filter(|h| !h.is_empty()) {
        match hop_address(hop) {
            Some(ip) if is_trusted(ip) => continue,
            Some(ip) => return address_key(ip),
            None => return hop.chars().take(64).collect(),
        }
    }
    address_key(peer)
}

/// An `X-Forwarded-For` hop as an address: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:5678`.
fn hop_address(hop: &str) -> Option<std::net::IpAddr> {
    if let Ok(ip) = hop.parse::<std::net::IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip().to_canonical())
}

fn address_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}
