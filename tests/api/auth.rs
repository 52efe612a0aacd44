//! The seeds' auth behaviours, plus the refresh-token and concurrency additions.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[actix_web::test]
async fn signup_with_valid_credentials_returns_201_and_sets_a_cookie() {
    let app = spawn_app().await;
    let res = app.signup_as("test@test.com", "password").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(session_cookie(&res).is_some());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["email"], "test@test.com");
    assert!(body["id"].is_string());
    assert!(body.get("password").is_none() && body.get("passwordHash").is_none());
}

#[actix_web::test]
async fn signup_with_an_invalid_email_returns_400() {
    let app = spawn_app().await;
    let res = app.signup_as("alskdflaskjfd", "password").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Email must be valid"]);
}

#[actix_web::test]
async fn signup_with_a_too_short_password_returns_400() {
    let app = spawn_app().await;
    let res = app.signup_as("test@test.com", "p").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Password must be between 4 and 20 characters"]);
}

#[actix_web::test]
async fn signup_with_missing_email_or_password_returns_400_for_each_field() {
    let app = spawn_app().await;
    let res = app.post("/api/users/signup").json(&json!({"email": "test@test.com"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = app.post("/api/users/signup").json(&json!({"password": "alskjdf"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = app.post("/api/users/signup").json(&json!({})).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    let fields: Vec<_> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].clone()).collect();
    assert_eq!(fields, [json!("email"), json!("password")], "all failures, in field order");
}

#[actix_web::test]
async fn signup_with_a_used_email_returns_400_email_in_use_case_insensitively() {
    let app = spawn_app().await;
    assert_eq!(app.signup_as("test@test.com", "password").await.status(), StatusCode::CREATED);
    let res = app.signup_as("test@test.com", "password").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Email in use"]);
    let res = app.signup_as("TEST@test.COM", "password").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn fifty_concurrent_signups_with_one_email_create_exactly_one_user() {
    let app = spawn_app().await;
    let attempts = (0..50).map(|_| app.signup_as("race@test.com", "password"));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts).await.iter().map(|r| r.status()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::BAD_REQUEST).count(), 49, "{statuses:?}");
}

#[actix_web::test]
async fn signin_with_an_unknown_email_returns_400() {
    let app = spawn_app().await;
    let res = app.signin_as("test@test.com", "password").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Invalid credentials"]);
}

#[actix_web::test]
async fn signin_with_a_wrong_password_returns_400() {
    let app = spawn_app().await;
    app.signup_as("test@test.com", "password").await;
    let res = app.signin_as("test@test.com", "wrongpass").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Invalid credentials"]);
}

#[actix_web::test]
async fn signin_without_a_password_says_one_must_be_supplied() {
    let app = spawn_app().await;
    let res = app.post("/api/users/signin").json(&json!({"email": "test@test.com"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["You must supply a password"]);
}

#[actix_web::test]
async fn signin_with_valid_credentials_returns_200_and_a_cookie() {
    let app = spawn_app().await;
    app.signup_as("test@test.com", "password").await;
    let res = app.signin_as("test@test.com", "password").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(session_cookie(&res).is_some());
}

#[actix_web::test]
async fn currentuser_returns_the_signed_in_user() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let res = app.get("/api/users/currentuser").header("Cookie", &me.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["currentUser"]["email"], me.email.as_str());
    assert_eq!(body["currentUser"]["id"], me.id.as_str());
    assert!(body["currentUser"]["iat"].is_number());
}

#[actix_web::test]
async fn currentuser_is_null_when_signed_out() {
    let app = spawn_app().await;
    let res = app.get("/api/users/currentuser").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"currentUser": null}));
}

#[actix_web::test]
async fn a_bearer_token_is_accepted_like_the_cookie() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let cookie_value = me.cookie.trim_start_matches("session=");
    let token = ticketing::auth::SessionCookie::decode(cookie_value).unwrap();
    let res = app.get("/api/users/currentuser").bearer_auth(token).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["currentUser"]["id"], me.id.as_str());
}

#[actix_web::test]
async fn signout_clears_the_cookie_and_currentuser_becomes_null() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let res = app.post("/api/users/signout").header("Cookie", &me.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cleared = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("session="))
        .expect("signout sets the session cookie")
        .to_string();
    assert!(cleared.starts_with("session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0") || cleared.contains("expires=Thu, 01 Jan 1970"), "{cleared}");
    // The browser drops the cookie, so the next call carries none.
    let body: Value = app.get("/api/users/currentuser").send().await.unwrap().json().await.unwrap();
    assert_eq!(body["currentUser"], Value::Null);
}

#[actix_web::test]
async fn a_refresh_token_rotates_and_a_replayed_one_is_refused() {
    let app = spawn_app().await;
    let res = app.signup_as("refresh@test.com", "password").await;
    let refresh = set_cookie(&res, "refresh").expect("a refresh cookie");
    let res = app.post("/api/users/refresh").header("Cookie", &refresh).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let rotated = set_cookie(&res, "refresh").expect("a new refresh cookie");
    assert_ne!(rotated, refresh);
    let fresh_session = session_cookie(&res).expect("a new access cookie");
    let body: Value =
        app.get("/api/users/currentuser").header("Cookie", &fresh_session).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["currentUser"]["email"], "refresh@test.com");
    // Replaying the spent token is refused, and revokes the family: the rotated one dies too.
    let replay = app.post("/api/users/refresh").header("Cookie", &refresh).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    let after = app.post("/api/users/refresh").header("Cookie", &rotated).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn concurrent_refreshes_with_one_token_rotate_it_once() {
    let app = spawn_app().await;
    let res = app.signup_as("twice@test.com", "password").await;
    let refresh = set_cookie(&res, "refresh").unwrap();
    let attempts = (0..10).map(|_| app.post("/api/users/refresh").header("Cookie", &refresh).send());
    let statuses: Vec<StatusCode> =
        futures::future::join_all(attempts).await.iter().map(|r| r.as_ref().unwrap().status()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
}

#[actix_web::test]
async fn signout_revokes_the_refresh_token() {
    let app = spawn_app().await;
    let res = app.signup_as("out@test.com", "password").await;
    let refresh = set_cookie(&res, "refresh").unwrap();
    let session = session_cookie(&res).unwrap();
    app.post("/api/users/signout").header("Cookie", format!("{session}; {refresh}")).send().await.unwrap();
    let res = app.post("/api/users/refresh").header("Cookie", &refresh).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_messages(res).await, ["Not authorized"]);
}
