//! `/api/users/*`: signup, signin, signout, currentuser, refresh, password reset.

use super::extract::JsonObject;
use crate::app::Session;
use crate::edge::caller::{client_address, MaybeUser};
use crate::edge::fields::{email_field, reset_fields, sign_in_fields, sign_up_fields};
use crate::edge::session::{cleared_cookies, refresh_tokens, session_cookies};
use crate::edge::{ApiError, AppState};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/users/signup", web::post().to(signup))
        .route("/api/users/signin", web::post().to(signin))
        .route("/api/users/signout", web::post().to(signout))
        .route("/api/users/currentuser", web::get().to(current_user))
        .route("/api/users/refresh", web::post().to(refresh))
        .route("/api/users/password-reset", web::post().to(request_password_reset))
        .route("/api/users/password-reset/confirm", web::post().to(reset_password));
}

fn signed_in(state: &AppState, status: actix_web::http::StatusCode, session: Session) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    for cookie in session_cookies(state, &session) {
        response.cookie(cookie);
    }
    response.json(json!({ "id": session.user.id, "email": session.user.email.as_str() }))
}

#[utoipa::path(post, path = "/api/users/signup", tag = "users", request_body = super::schemas::Credentials,
    responses((status = 201, description = "Signed up and signed in: `session` and `refresh` cookies set", body = super::schemas::UserView)))]
pub(super) async fn signup(state: web::Data<AppState>, body: JsonObject) -> Result<HttpResponse, ApiError> {
    let (email, password) = sign_up_fields(body.str("email"), body.str("password"))?;
    let session = state.app.sign_up(email, password).await?;
    Ok(signed_in(&state, actix_web::http::StatusCode::CREATED, session))
}

#[utoipa::path(post, path = "/api/users/signin", tag = "users", request_body = super::schemas::Credentials,
    responses((status = 200, description = "Signed in: `session` and `refresh` cookies set", body = super::schemas::UserView)))]
pub(super) async fn signin(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let (email, password) = sign_in_fields(body.str("email"), body.str("password"))?;
    let session = state.app.sign_in(&email, password, &client_address(&req)).await?;
    Ok(signed_in(&state, actix_web::http::StatusCode::OK, session))
}

#[utoipa::path(post, path = "/api/users/signout", tag = "users",
    responses((status = 200, description = "Signed out: the refresh token revoked, both cookies cleared", body = serde_json::Value)))]
pub(super) async fn signout(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    for refresh in refresh_tokens(&req) {
        state.app.sign_out(&refresh).await?;
    }
    let mut response = HttpResponse::Ok();
    for cookie in cleared_cookies(&state) {
        response.cookie(cookie);
    }
    Ok(response.json(json!({})))
}

#[utoipa::path(get, path = "/api/users/currentuser", tag = "users",
    responses((status = 200, description = "The signed-in user, or `null`", body = super::schemas::CurrentUser)))]
pub(super) async fn current_user(user: MaybeUser) -> HttpResponse {
    let current = user.0.map(|u| json!({ "id": u.claims.id, "email": u.claims.email, "iat": u.claims.iat }));
    HttpResponse::Ok().json(json!({ "currentUser": current }))
}

#[utoipa::path(post, path = "/api/users/refresh", tag = "users",
    responses((status = 200, description = "The refresh cookie traded for a new session (rotated)", body = super::schemas::UserView)))]
pub(super) async fn refresh(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    // With a cookie left on the old path too, the browser sends that one first: the last is
    // the current one.
    let token = refresh_tokens(&req).pop().ok_or(ApiError::NotAuthorized)?;
    let session = state.app.refresh(&token).await?;
    Ok(signed_in(&state, actix_web::http::StatusCode::OK, session))
}

/// What a reset request is answered, whether or not the address has an account.
pub const RESET_ASKED: &str = "If an account has this address, a link to reset its password is on its way.";

#[utoipa::path(post, path = "/api/users/password-reset", tag = "users", request_body = super::schemas::EmailBody,
    responses((status = 202, description = "The same answer whether or not the address has an account; if it has, a reset link (valid 30 minutes, single use) is mailed", body = super::schemas::MessageBody),
              (status = 429, description = "Too many requests from this address or for this account", body = super::schemas::ErrorBody)))]
pub(super) async fn request_password_reset(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let email = email_field(body.str("email"))?;
    state.app.request_password_reset(&email, &client_address(&req)).await?;
    Ok(HttpResponse::Accepted().json(json!({ "message": RESET_ASKED })))
}

#[utoipa::path(post, path = "/api/users/password-reset/confirm", tag = "users", request_body = super::schemas::ResetBody,
    responses((status = 204, description = "The password is changed; the link is spent and every session of the account ended")))]
pub(super) async fn reset_password(state: web::Data<AppState>, body: JsonObject) -> Result<HttpResponse, ApiError> {
    let (token, password) = reset_fields(body.str("token"), body.str("password"))?;
    state.app.reset_password(token, password).await?;
    Ok(HttpResponse::NoContent().finish())
}
