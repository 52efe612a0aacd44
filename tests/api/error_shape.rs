//! An error is answered in the shape the client asks for: every `/api` path, and any client
//! that prefers JSON or names no `text/html`, gets the API's error body; a browser outside
//! `/api` gets an error page. Whoever made the error: the 404 of an unknown path, a page's own
//! 404, a wrong method, a body over the limit, the overload shedding.

use crate::helpers::*;
use reqwest::{Response, StatusCode};

fn content_type(res: &Response) -> String {
    res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// Asserts an HTML error page with this `h1`.
async fn assert_page(res: Response, status: StatusCode, h1: &str) {
    assert_eq!(res.status(), status);
    assert!(content_type(&res).starts_with("text/html"), "{}", content_type(&res));
    let page = res.text().await.unwrap();
    assert!(page.contains(&format!("<h1>{h1}</h1>")) && !page.contains("\"errors\""), "{page}");
}

/// Asserts the API's error body with these messages.
async fn assert_json(res: Response, status: StatusCode, messages: &[&str]) {
    assert_eq!(res.status(), status);
    assert!(content_type(&res).starts_with("application/json"), "{}", content_type(&res));
    assert_eq!(error_messages(res).await, messages);
}

#[actix_web::test]
async fn a_path_outside_the_api_answers_a_browser_with_the_html_page() {
    let app = spawn_app().await;
    assert_page(app.browse("/no/such/page").send().await.unwrap(), StatusCode::NOT_FOUND, "Page not found").await;
    let res = app.get("/no/such/page").header("Accept", "text/html").send().await.unwrap();
    assert_page(res, StatusCode::NOT_FOUND, "Page not found").await;
}

#[actix_web::test]
async fn the_same_path_answers_a_client_that_asks_for_json_with_the_json_error_body() {
    let app = spawn_app().await;
    for accept in ["application/json", "application/json, text/html", "text/html;q=0.5, application/json", "*/*"] {
        let res = app.get("/no/such/page").header("Accept", accept).send().await.unwrap();
        assert_json(res, StatusCode::NOT_FOUND, &["Not Found"]).await;
    }
    let res = app.get("/no/such/page").send().await.unwrap();
    assert_json(res, StatusCode::NOT_FOUND, &["Not Found"]).await;
    // A page's own error page too: a program gets JSON from it.
    let res = app.get("/tickets/not-a-ticket").header("Accept", "application/json").send().await.unwrap();
    assert_json(res, StatusCode::NOT_FOUND, &["Not Found"]).await;
}

#[actix_web::test]
async fn an_api_path_answers_json_even_to_a_browser() {
    let app = spawn_app().await;
    let res = app.browse("/api/no/such/thing").send().await.unwrap();
    assert_json(res, StatusCode::NOT_FOUND, &["Not Found"]).await;
    let res = app.get("/api/tickets/not-a-ticket").header("Accept", "text/html").send().await.unwrap();
    assert_json(res, StatusCode::NOT_FOUND, &["Not Found"]).await;
    // A method no route takes is an unknown route.
    let res = app.client.patch(app.url("/api/tickets")).header("Accept", BROWSER_ACCEPT).send().await.unwrap();
    assert_json(res, StatusCode::NOT_FOUND, &["Not Found"]).await;
    let res = app.post("/api/tickets").header("Accept", "text/html").json(&serde_json::json!({})).send().await.unwrap();
    assert_json(res, StatusCode::UNAUTHORIZED, &["Not authorized"]).await;
}

#[actix_web::test]
async fn a_wrong_method_and_an_oversized_form_follow_the_accept_header() {
    let app = spawn_app().await;
    let purchase = "/tickets/00000000-0000-7000-8000-000000000000/purchase";
    // A method no route takes is an unknown route.
    let res = app.client.delete(app.url(purchase)).header("Accept", BROWSER_ACCEPT).send().await.unwrap();
    assert_page(res, StatusCode::NOT_FOUND, "Page not found").await;
    let res = app.client.delete(app.url(purchase)).header("Accept", "application/json").send().await.unwrap();
    assert_json(res, StatusCode::NOT_FOUND, &["Not Found"]).await;
    let big = format!("title={}", "x".repeat(70 * 1024));
    for (accept, html) in [(BROWSER_ACCEPT, true), ("application/json", false)] {
        let res = app
            .post("/tickets/new")
            .header("Accept", accept)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        if html {
            assert_page(res, StatusCode::PAYLOAD_TOO_LARGE, "Too much text").await;
        } else {
            assert_json(res, StatusCode::PAYLOAD_TOO_LARGE, &["Request body is too large"]).await;
        }
    }
}

#[actix_web::test]
async fn overload_is_a_page_for_a_browser_and_json_for_a_program_both_with_retry_after() {
    let app = spawn_app_with(|s| s.http.max_in_flight = 0).await;
    let res = app.browse("/tickets/mine").send().await.unwrap();
    assert_eq!(res.headers()["retry-after"], "1");
    assert_page(res, StatusCode::SERVICE_UNAVAILABLE, "Busy right now").await;
    let res = app.get("/tickets/mine").header("Accept", "application/json").send().await.unwrap();
    assert_eq!(res.headers()["retry-after"], "1");
    assert_json(res, StatusCode::SERVICE_UNAVAILABLE, &["Service temporarily unavailable, retry shortly"]).await;
    let res = app.browse("/api/tickets").send().await.unwrap();
    assert_eq!(res.headers()["retry-after"], "1");
    assert_json(res, StatusCode::SERVICE_UNAVAILABLE, &["Service temporarily unavailable, retry shortly"]).await;
}

/// What the business metrics leave out as "our fault" is exactly what the API answers with a
/// 5xx (the mapping lives in the edge; `AppError::is_server_fault` must agree with it).
#[test]
fn an_app_error_is_a_server_fault_exactly_when_it_is_answered_with_a_5xx() {
    use actix_web::ResponseError;
    use ticketing::app::AppError;
    use ticketing::domain::{DomainError, Rule};
    use ticketing::edge::error::ApiError;
    let every = [
        AppError::Domain(DomainError::Validation(vec![])),
        AppError::Domain(DomainError::Rule(Rule::TicketReserved)),
        AppError::Domain(DomainError::NotAuthorized),
        AppError::Domain(DomainError::NotFound),
        AppError::Domain(DomainError::CardDeclined),
        AppError::EmailInUse,
        AppError::InvalidCredentials,
        AppError::RefreshRejected,
        AppError::WebhookRefused("bad".into()),
        AppError::IdempotencyMismatch,
        AppError::IdempotencyInProgress,
        AppError::Unavailable,
        AppError::NoReply,
        AppError::Internal("bug".into()),
        AppError::CheckoutNotSupported,
        AppError::Throttled { retry_after_s: 1 },
        AppError::StorageFull,
        AppError::ResetRejected,
    ];
    for e in every {
        // A new variant fails to compile here until it is added to the list above.
        match &e {
            AppError::Domain(_)
            | AppError::EmailInUse
            | AppError::InvalidCredentials
            | AppError::RefreshRejected
            | AppError::WebhookRefused(_)
            | AppError::IdempotencyMismatch
            | AppError::IdempotencyInProgress
            | AppError::Unavailable
            | AppError::NoReply
            | AppError::Internal(_)
            | AppError::CheckoutNotSupported
            | AppError::Throttled { .. }
            | AppError::StorageFull
            | AppError::ResetRejected => {}
        }
        let fault = e.is_server_fault();
        let status = ApiError::from(e).status_code();
        assert_eq!(fault, status.is_server_error(), "is_server_fault() = {fault} but answered {status}");
    }
}
