//! The session cookies, shared by the JSON API and the pages: `session` (the short-lived access
//! token, in the seeds' encoding) and `refresh` (the long-lived refresh token), both on path
//! `/`, HttpOnly, `SameSite=Lax`, `Secure` when configured.
//!
//! # Renewal
//!
//! Browsers, the seeds' own client included, never call `/api/users/refresh`, and a buyer's
//! payment window outlives the access token. So [`renew`] (a middleware on every route) gives a
//! request that arrives with a refresh cookie but no valid access token a fresh access token:
//! the request is served as that user and its response carries the new `session` cookie. The
//! refresh token is not rotated (an explicit `/api/users/refresh` still rotates), so ten
//! concurrent requests carrying one expired access cookie all succeed. Sign-out revokes the
//! refresh token, and nothing renews after it.

use super::caller::{resolve_caller, AuthUser, Caller};
use super::AppState;
use crate::app::{AppError, Session};
use crate::auth::SessionCookie;
use crate::domain::UserId;
use actix_web::body::MessageBody;
use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

/// Where the refresh cookie was sent before renewal existed; sign-out clears it there too.
const OLD_REFRESH_PATH: &str = "/api/users";

fn cookie(state: &AppState, name: &'static str, value: String, path: &'static str, max_age_s: u64) -> Cookie<'static> {
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .secure(state.settings.auth.secure_cookies)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(i64::try_from(max_age_s).unwrap_or(i64::MAX)))
        .finish()
}

/// The access cookie for a token.
pub fn access_cookie(state: &AppState, access_token: &str) -> Cookie<'static> {
    let lifetime = state.settings.auth.access_token_seconds;
    cookie(state, SessionCookie::NAME, SessionCookie::encode(access_token), "/", lifetime)
}

fn removal(state: &AppState, name: &'static str, path: &'static str) -> Cookie<'static> {
    let mut c = cookie(state, name, String::new(), path, 0);
    c.make_removal();
    c
}

/// The cookies of a new session (sign-up, sign-in, explicit refresh), and the removal of a
/// refresh cookie on the old path (browsers would send that one first on `/api/users/*`).
pub fn session_cookies(state: &AppState, session: &Session) -> [Cookie<'static>; 3] {
    let lifetime = state.settings.auth.refresh_token_seconds;
    let refresh = cookie(state, SessionCookie::REFRESH_NAME, session.refresh_token.clone(), "/", lifetime);
    [
        access_cookie(state, &session.access_token),
        refresh,
        removal(state, SessionCookie::REFRESH_NAME, OLD_REFRESH_PATH),
    ]
}

/// Cookies that remove the session (sign-out), including a refresh cookie of the old path.
pub fn cleared_cookies(state: &AppState) -> [Cookie<'static>; 3] {
    [
        removal(state, SessionCookie::NAME, "/"),
        removal(state, SessionCookie::REFRESH_NAME, "/"),
        removal(state, SessionCookie::REFRESH_NAME, OLD_REFRESH_PATH),
    ]
}

/// Every refresh token the request carries (a browser may hold one per path): sign-out
/// revokes them all.
pub fn refresh_tokens(req: &actix_web::HttpRequest) -> Vec<String> {
    let Ok(cookies) = req.cookies() else { return Vec::new() };
    cookies.iter().filter(|c| c.name() == SessionCookie::REFRESH_NAME).map(|c| c.value().to_string()).collect()
}

/// Routes that handle the refresh cookie themselves (renewing there would race their own
/// cookies), and those that never need a user.
fn renews(path: &str) -> bool {
    !(matches!(path, "/healthz" | "/readyz" | "/metrics")
        || path.starts_with("/auth/")
        || (path.starts_with("/api/users/") && path != "/api/users/currentuser")
        || path.starts_with("/admin")
        || path.starts_with("/static/"))
}

/// The renewal middleware (module doc). Without a refresh cookie it costs one cookie lookup.
/// With two (one left on the old path), the browser sends the current one last.
pub async fn renew(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // The common case, no refresh cookie, costs one lookup in the (cached) parsed cookies.
    if req.cookie(SessionCookie::REFRESH_NAME).is_none() {
        return next.call(req).await;
    }
    let Some(refresh) = refresh_tokens(req.request()).pop() else {
        return next.call(req).await;
    };
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let (Some(state), true) = (state, renews(req.path())) else {
        return next.call(req).await;
    };
    let caller = resolve_caller(req.request());
    if caller.is_some() {
        req.extensions_mut().insert(Caller(caller));
        return next.call(req).await;
    }
    let (renewed, dead) = match state.app.renew_session(&refresh).await {
        Ok(Some(session)) => (renewed_user(&state, &session).map(|user| (user, session.access_token)), false),
        // Spent by an explicit refresh, maybe one running now: its new cookie is on its way.
        Ok(None) => (None, false),
        // Revoked, expired or unknown: the browser can forget it.
        Err(AppError::RefreshRejected) => (None, true),
        Err(e) => {
            // The user's node is unreachable, say: served as signed out, renewed next time.
            tracing::warn!(error = %e, "session renewal failed");
            (None, false)
        }
    };
    req.extensions_mut().insert(Caller(renewed.as_ref().map(|(user, _)| user.clone())));
    let mut res = next.call(req).await?;
    // A response that sets a session of its own (none of the routes renewed here do, today)
    // keeps it.
    let sets_session = res.response().cookies().any(|c| c.name() == SessionCookie::NAME);
    if !sets_session {
        let response = res.response_mut();
        match renewed {
            Some((_, access_token)) => drop(response.add_cookie(&access_cookie(&state, &access_token))),
            None if dead => drop(response.add_cookie(&removal(&state, SessionCookie::REFRESH_NAME, "/"))),
            None => {}
        }
    }
    Ok(res)
}

fn renewed_user(state: &AppState, session: &Session) -> Option<AuthUser> {
    let claims = state.app.accounts().verify(&session.access_token)?;
    let id = UserId::parse(&claims.id)?;
    Some(AuthUser { id, claims })
}
