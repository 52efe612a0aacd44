//! Forgotten passwords in the browser: ask for a link (`/auth/forgot`), and set a new password
//! with it (`/auth/reset?token=`). The same use cases, rules and words as the API.

use super::forms::Form;
use super::layout::{field, general_problems, see_other, Ctx, FieldAttrs};
use super::problem::{problems, PageError, Problems};
use crate::edge::caller::client_address;
use crate::edge::fields::{email_field, reset_fields};
use crate::edge::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde::Deserialize;

/// What a reset request is answered, whether or not the address has an account.
const ASKED: &str =
    "If an account has this address, a link to reset its password is on its way. It works once, for 30 minutes.";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/forgot", web::get().to(forgot_page))
        .route("/auth/forgot", web::post().to(forgot))
        .route("/auth/reset", web::get().to(reset_page))
        .route("/auth/reset", web::post().to(reset));
}

fn forgot_form(ctx: &Ctx, email: &str, problems: &Problems) -> HttpResponse {
    let body = html! {
        h1 { "Forgot your password?" }
        form.stack method="post" action="/auth/forgot" novalidate {
            (ctx.csrf_field())
            (general_problems(problems))
            (field(problems, "email", "Your account's email", "email", email, FieldAttrs { required: true, autocomplete: Some("email"), ..FieldAttrs::default() }))
            button type="submit" id="submit" { "Mail me a reset link" }
        }
        p { a href="/auth/signin" { "Back to sign in" } }
    };
    ctx.render(problems.status(), "Forgot your password?", body)
}

async fn forgot_page(req: HttpRequest) -> HttpResponse {
    forgot_form(&Ctx::of(&req), "", &Problems::none())
}

async fn forgot(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let form = Form::read(&req, &body)?;
    let ctx = Ctx::of(&req);
    let asked = match email_field(form.get("email")) {
        Ok(email) => state.app.request_password_reset(&email, &client_address(&req)).await.map_err(Into::into),
        Err(e) => Err(e),
    };
    if let Err(e) = asked {
        return Ok(forgot_form(&ctx, form.get("email").unwrap_or_default(), &problems(e)?));
    }
    let body = html! {
        h1 { "Check your mail" }
        p.notice role="status" id="asked" { (ASKED) }
        p { a href="/auth/signin" { "Back to sign in" } }
    };
    Ok(ctx.render(StatusCode::OK, "Check your mail", body))
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn reset_form(ctx: &Ctx, token: &str, problems: &Problems) -> HttpResponse {
    let body = html! {
        h1 { "Choose a new password" }
        form.stack method="post" action="/auth/reset" novalidate {
            (ctx.csrf_field())
            input type="hidden" name="token" value=(token);
            (general_problems(problems))
            (field(problems, "password", "New password", "password", "", FieldAttrs { required: true, autocomplete: Some("new-password"), hint: Some("4 to 20 characters. Other browsers signed in to your account stay signed in only until their current sign-in runs out: they cannot renew it.".into()), ..FieldAttrs::default() }))
            button type="submit" id="submit" { "Set the new password" }
        }
        p { a href="/auth/forgot" { "Ask for a new link" } }
    };
    ctx.render(problems.status(), "Choose a new password", body)
}

async fn reset_page(req: HttpRequest, q: web::Query<TokenQuery>) -> HttpResponse {
    reset_form(&Ctx::of(&req), q.token.as_deref().unwrap_or_default(), &Problems::none())
}

async fn reset(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let form = Form::read(&req, &body)?;
    let result = match reset_fields(form.get("token"), form.get("password")) {
        Ok((token, password)) => state.app.reset_password(token, password).await.map_err(Into::into),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(see_other("/auth/signin?reset=1")),
        Err(e) => Ok(reset_form(&Ctx::of(&req), form.get("token").unwrap_or_default(), &problems(e)?.hidden("token"))),
    }
}
