//! Sign up, sign in and sign out in the browser: the account use cases with the API's rules
//! and words, and the same session cookies.

use super::forms::{local_path, Form};
use super::layout::{field, general_problems, see_other, Ctx, FieldAttrs};
use super::problem::{problems, PageError, Problems};
use crate::app::Session;
use crate::edge::caller::client_address;
use crate::edge::fields::{sign_in_fields, sign_up_fields};
use crate::edge::session::{cleared_cookies, refresh_tokens, session_cookies};
use crate::edge::{ApiError, AppState};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/signup", web::get().to(signup_page))
        .route("/auth/signup", web::post().to(signup))
        .route("/auth/signin", web::get().to(signin_page))
        .route("/auth/signin", web::post().to(signin))
        .route("/auth/signout", web::get().to(signout_page))
        .route("/auth/signout", web::post().to(signout));
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
    /// Set after a password reset: said above the form.
    reset: Option<String>,
}

/// Which of the two account forms.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    SignUp,
    SignIn,
}

impl Kind {
    fn title(self) -> &'static str {
        match self {
            Self::SignUp => "Sign up",
            Self::SignIn => "Sign in",
        }
    }
    fn action(self) -> &'static str {
        match self {
            Self::SignUp => "/auth/signup",
            Self::SignIn => "/auth/signin",
        }
    }
}

fn account_form(ctx: &Ctx, kind: Kind, email: &str, next: &str, problems: &Problems) -> HttpResponse {
    account_form_saying(ctx, kind, email, next, problems, None)
}

fn account_form_saying(
    ctx: &Ctx,
    kind: Kind,
    email: &str,
    next: &str,
    problems: &Problems,
    notice: Option<&str>,
) -> HttpResponse {
    let (other, other_text) = match kind {
        Kind::SignUp => ("/auth/signin", "Already have an account? Sign in"),
        Kind::SignIn => ("/auth/signup", "New here? Sign up"),
    };
    let password_hint = (kind == Kind::SignUp).then_some("new-password").or(Some("current-password"));
    let body: Markup = html! {
        h1 { (kind.title()) }
        @if let Some(notice) = notice { p.notice role="status" id="notice" { (notice) } }
        form.stack method="post" action=(kind.action()) novalidate {
            (ctx.csrf_field())
            input type="hidden" name="next" value=(next);
            (general_problems(problems))
            (field(problems, "email", "Email", "email", email, FieldAttrs { required: true, autocomplete: Some("email"), ..FieldAttrs::default() }))
            (field(problems, "password", "Password", "password", "", FieldAttrs { required: true, autocomplete: password_hint, ..FieldAttrs::default() }))
            @if kind == Kind::SignUp { p.muted { "4 to 20 characters." } }
            button type="submit" id="submit" { (kind.title()) }
        }
        p { a href=(other) { (other_text) } }
        @if kind == Kind::SignIn { p { a href="/auth/forgot" id="forgot" { "Forgot your password?" } } }
    };
    ctx.render(problems.status(), kind.title(), body)
}

async fn signup_page(req: HttpRequest, q: web::Query<Next>) -> HttpResponse {
    let next = local_path(q.next.as_deref());
    account_form(&Ctx::of(&req), Kind::SignUp, "", &next, &Problems::none())
}

async fn signin_page(req: HttpRequest, q: web::Query<Next>) -> HttpResponse {
    let next = local_path(q.next.as_deref());
    let notice = q.reset.is_some().then_some("Your password is changed. Sign in with it.");
    account_form_saying(&Ctx::of(&req), Kind::SignIn, "", &next, &Problems::none(), notice)
}

async fn signup(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let form = Form::read(&req, &body)?;
    let result = match sign_up_fields(form.get("email"), form.get("password")) {
        Ok((email, password)) => state.app.sign_up(email, password).await.map_err(Into::into),
        Err(e) => Err(e),
    };
    finish(&state, &req, &form, Kind::SignUp, result)
}

async fn signin(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let form = Form::read(&req, &body)?;
    let result = match sign_in_fields(form.get("email"), form.get("password")) {
        Ok((email, password)) => state.app.sign_in(&email, password, &client_address(&req)).await.map_err(Into::into),
        Err(e) => Err(e),
    };
    finish(&state, &req, &form, Kind::SignIn, result)
}

/// Signed in: the cookies and off to where the person was going; refused: the form again.
fn finish(
    state: &AppState,
    req: &HttpRequest,
    form: &Form,
    kind: Kind,
    result: Result<Session, ApiError>,
) -> Result<HttpResponse, PageError> {
    let next = local_path(form.get("next"));
    match result {
        Ok(session) => {
            let mut response = see_other(&next);
            for cookie in session_cookies(state, &session) {
                let _ = response.add_cookie(&cookie);
            }
            Ok(response)
        }
        Err(e) => {
            let problems = problems(e)?;
            Ok(account_form(&Ctx::of(req), kind, form.get("email").unwrap_or_default(), &next, &problems))
        }
    }
}

/// Visiting the sign-out address asks first: a link elsewhere must not sign anyone out.
async fn signout_page(req: HttpRequest) -> HttpResponse {
    let ctx = Ctx::of(&req);
    let body = html! {
        h1 { "Sign out" }
        form.stack method="post" action="/auth/signout" {
            (ctx.csrf_field())
            p { "Sign out of ticketing on this browser?" }
            button type="submit" { "Sign out" }
        }
    };
    ctx.render(StatusCode::OK, "Sign out", body)
}

async fn signout(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, PageError> {
    Form::read(&req, &body)?;
    for refresh in refresh_tokens(&req) {
        state.app.sign_out(&refresh).await?;
    }
    let mut response = see_other("/");
    for cookie in cleared_cookies(&state) {
        let _ = response.add_cookie(&cookie);
    }
    Ok(response)
}
