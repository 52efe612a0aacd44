//! `/api/users/*`: signup, signin, signout, currentuser, refresh.

use super::error::{ApiError, FieldError};
use super::extract::{JsonObject, MaybeUser};
use super::AppState;
use crate::app::Session;
use crate::auth::SessionCookie;
use crate::domain::{Email, Password};
use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/users/signup", web::post().to(signup))
        .route("/api/users/signin", web::post().to(signin))
        .route("/api/users/signout", web::post().to(signout))
        .route("/api/users/currentuser", web::get().to(current_user))
        .route("/api/users/refresh", web::post().to(refresh));
}

fn cookie<'a>(state: &AppState, name: &'a str, value: String, path: &'a str, max_age_s: u64) -> Cookie<'a> {
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .secure(state.settings.auth.secure_cookies)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(max_age_s as i64))
        .finish()
}

/// The refresh cookie is only sent to the routes that use it.
const REFRESH_PATH: &str = "/api/users";

fn signed_in(state: &AppState, status: actix_web::http::StatusCode, session: Session) -> HttpResponse {
    let auth = &state.settings.auth;
    HttpResponse::build(status)
        .cookie(cookie(
            state,
            SessionCookie::NAME,
            SessionCookie::encode(&session.access_token),
            "/",
            auth.access_token_seconds,
        ))
        .cookie(cookie(
            state,
            SessionCookie::REFRESH_NAME,
            session.refresh_token,
            REFRESH_PATH,
            auth.refresh_token_seconds,
        ))
        .json(json!({ "id": session.user.id, "email": session.user.email.as_str() }))
}

async fn signup(state: web::Data<AppState>, body: JsonObject) -> Result<HttpResponse, ApiError> {
    let email = body.str("email").and_then(Email::parse);
    let password = body.str("password").and_then(Password::parse);
    let mut errors = Vec::new();
    if email.is_none() {
        errors.push(FieldError { field: "email", message: "Email must be valid" });
    }
    if password.is_none() {
        errors.push(FieldError { field: "password", message: "Password must be between 4 and 20 characters" });
    }
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::Validation(errors));
    };
    let session = state.app.sign_up(email, password).await?;
    Ok(signed_in(&state, actix_web::http::StatusCode::CREATED, session))
}

async fn signin(state: web::Data<AppState>, body: JsonObject) -> Result<HttpResponse, ApiError> {
    let email = body.str("email").and_then(Email::parse);
    let password = body.str("password").filter(|p| !p.trim().is_empty());
    let mut errors = Vec::new();
    if email.is_none() {
        errors.push(FieldError { field: "email", message: "Email must be valid" });
    }
    if password.is_none() {
        errors.push(FieldError { field: "password", message: "You must supply a password" });
    }
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::Validation(errors));
    };
    let session = state.app.sign_in(&email, password).await?;
    Ok(signed_in(&state, actix_web::http::StatusCode::OK, session))
}

async fn signout(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if let Some(refresh) = req.cookie(SessionCookie::REFRESH_NAME) {
        state.app.sign_out(refresh.value()).await?;
    }
    let mut session = cookie(&state, SessionCookie::NAME, String::new(), "/", 0);
    session.make_removal();
    let mut refresh = cookie(&state, SessionCookie::REFRESH_NAME, String::new(), REFRESH_PATH, 0);
    refresh.make_removal();
    Ok(HttpResponse::Ok().cookie(session).cookie(refresh).json(json!({})))
}

async fn current_user(user: MaybeUser) -> HttpResponse {
    let current = user.0.map(|u| json!({ "id": u.claims.id, "email": u.claims.email, "iat": u.claims.iat }));
    HttpResponse::Ok().json(json!({ "currentUser": current }))
}

async fn refresh(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let token = req.cookie(SessionCookie::REFRESH_NAME).ok_or(ApiError::NotAuthorized)?;
    let session = state.app.refresh(token.value()).await?;
    Ok(signed_in(&state, actix_web::http::StatusCode::OK, session))
}
