//! The published contract: `/api/openapi.json` is generated from the routes and names every
//! one of them with its answers; `/api/docs` shows it. (`scripts/contract` runs schemathesis
//! against a live node with this document.)

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

#[actix_web::test]
async fn the_openapi_document_names_every_route_with_its_answers() {
    let app = spawn_app().await;
    let (status, doc) = app.get_json("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let expected = [
        ("post", "/api/users/signup", "201"),
        ("post", "/api/users/signin", "200"),
        ("post", "/api/users/signout", "200"),
        ("get", "/api/users/currentuser", "200"),
        ("post", "/api/users/refresh", "200"),
        ("post", "/api/users/password-reset", "202"),
        ("post", "/api/users/password-reset/confirm", "204"),
        ("post", "/api/tickets", "201"),
        ("get", "/api/tickets", "200"),
        ("get", "/api/tickets/stream", "200"),
        ("get", "/api/tickets/{id}", "200"),
        ("put", "/api/tickets/{id}", "200"),
        ("delete", "/api/tickets/{id}", "204"),
        ("post", "/api/orders", "201"),
        ("get", "/api/orders", "200"),
        ("get", "/api/orders/{id}", "200"),
        ("delete", "/api/orders/{id}", "204"),
        ("post", "/api/payments", "201"),
        ("post", "/api/payments/webhook", "200"),
        ("get", "/healthz", "200"),
        ("get", "/readyz", "200"),
        ("get", "/metrics", "200"),
        ("get", "/admin/actors", "200"),
        ("get", "/admin/actors/{kind}/{id}", "200"),
        ("post", "/admin/actors/{kind}/{id}/passivate", "200"),
        ("get", "/admin/cluster", "200"),
        ("get", "/admin/tickets/{id}/history", "200"),
        ("get", "/admin/orders/{id}/history", "200"),
    ];
    let mut ids = std::collections::HashSet::new();
    for (method, path, ok) in expected {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.contains_key(ok), "{method} {path} documents {ok}");
        assert!(responses.contains_key("500"), "{method} {path} documents 500");
        assert!(ids.insert(operation["operationId"].as_str().unwrap().to_string()), "unique operation ids");
    }
    let documented: usize =
        doc["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().len()).sum();
    assert_eq!(documented, expected.len(), "nothing else is documented");
    let error = &doc["paths"]["/api/tickets"]["post"]["responses"]["400"]["content"]["application/json"]["schema"];
    assert_eq!(error["$ref"], "#/components/schemas/ErrorBody");
    assert!(doc["paths"]["/api/users/signin"]["post"]["responses"]["429"].is_object());
    assert!(doc["paths"]["/api/tickets/{id}"]["put"]["responses"]["507"].is_object(), "writes document 507");
    assert!(doc["paths"]["/api/tickets/{id}"]["get"]["responses"].get("507").is_none(), "reads do not");
    let ticket = &doc["components"]["schemas"]["TicketView"];
    let required: Vec<&str> = ticket["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(required, ["id", "title", "price", "userId", "version"]);
}

#[actix_web::test]
async fn the_docs_page_shows_every_operation() {
    let app = spawn_app().await;
    let res = app.get("/api/docs").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    for operation in
        ["POST /api/tickets", "DELETE /api/tickets/{id}", "POST /api/payments/webhook", "GET /admin/cluster"]
    {
        assert!(page.contains(&format!("<code>{operation}</code>")), "{operation} on the page");
    }
    assert!(page.contains("href=\"/api/openapi.json\""));
    let _: Value = app.get("/api/openapi.json").send().await.unwrap().json().await.unwrap();
}
