//! Session renewal: a request whose access cookie (`session`) is expired or missing but that
//! carries a valid `refresh` cookie is served as its user and gets a new `session` cookie; the
//! refresh token is not rotated by it. Sign-out and a spent (rotated) token end renewal.
//! Access tokens live 2 s here, so these tests wait for real expiry (JWTs count whole seconds).

use crate::helpers::*;
use reqwest::header::HeaderMap;
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const LIFETIME_S: u64 = 2;

async fn short_lived_app() -> TestApp {
    spawn_app_with(|s| s.auth.access_token_seconds = LIFETIME_S).await
}

/// Every full `Set-Cookie` header for `name` in a response.
fn set_cookie_headers(res: &Response, name: &str) -> Vec<String> {
    cookie_headers(res.headers(), name)
}

/// Every full `Set-Cookie` header for `name`.
fn cookie_headers(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
        .collect()
}

/// The attributes of a `Set-Cookie` header, trimmed, without the `name=value` pair.
fn attributes(header: &str) -> Vec<String> {
    header.split(';').skip(1).map(|a| a.trim().to_string()).collect()
}

fn has_attr(header: &str, attr: &str) -> bool {
    attributes(header).iter().any(|a| a.eq_ignore_ascii_case(attr))
}

/// A fresh user's `session` and `refresh` cookies (`name=value`) and id, from sign-up.
async fn signed_up(app: &TestApp) -> (String, String, String) {
    let email = format!("renew-{}@test.com", uuid::Uuid::new_v4().simple());
    let res = app.signup_as(&email, "password").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let session = session_cookie(&res).expect("a session cookie");
    let refresh = set_cookie(&res, "refresh").expect("a refresh cookie");
    let body: Value = res.json().await.unwrap();
    (session, refresh, body["id"].as_str().unwrap().to_string())
}

/// Waits until the access token in `session` (`session=...`) no longer verifies.
async fn until_expired(app: &TestApp, session: &str) {
    let token = ticketing::auth::SessionCookie::decode(session.trim_start_matches("session=")).unwrap();
    assert!(app.state.app.accounts().verify(&token).is_some(), "valid at first");
    eventually(Duration::from_secs(5), "the access token expires", || {
        let expired = app.state.app.accounts().verify(&token).is_none();
        async move { expired }
    })
    .await;
}

/// The non-empty `session=...` pair a response's headers set, if any.
fn new_session(headers: &HeaderMap) -> Option<String> {
    cookie_headers(headers, "session")
        .first()
        .map(|h| h.split(';').next().unwrap_or_default().to_string())
        .filter(|c| c != "session=")
}

/// `currentUser` for a `Cookie` header (asserting 200), with the response's headers.
async fn current_user_with(app: &TestApp, cookie: &str) -> (Value, HeaderMap) {
    let res = app.get("/api/users/currentuser").header("Cookie", cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let headers = res.headers().clone();
    let body: Value = res.json().await.unwrap();
    (body["currentUser"].clone(), headers)
}

/// `GET path` with a browser-like client; asserts 200; the JSON body and the response headers.
async fn get_ok(client: &Client, app: &TestApp, path: &str) -> (Value, HeaderMap) {
    let res = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "GET {path}");
    let headers = res.headers().clone();
    (res.json().await.unwrap(), headers)
}

#[actix_web::test]
async fn a_client_that_only_keeps_cookies_stays_signed_in_across_three_access_lifetimes() {
    let app = short_lived_app().await;
    let seller = app.signin().await;
    let ticket = app.create_ticket(&seller, "long show", json!(20)).await;
    let browser = Client::builder().cookie_store(true).no_proxy().timeout(Duration::from_secs(30)).build().unwrap();
    let email = format!("browser-{}@test.com", uuid::Uuid::new_v4().simple());
    let res = browser
        .post(app.url("/api/users/signup"))
        .json(&json!({"email": email, "password": "password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let res = browser.post(app.url("/api/orders")).json(&json!({"ticketId": ticket["id"]})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let order: Value = res.json().await.unwrap();

    let check_orders = |orders: &Value| {
        assert_eq!(orders, &json!([order.clone()]), "the user's own orders");
    };
    let check_user = |current: &Value| {
        assert_eq!((current["id"].as_str(), current["email"].as_str()), (Some(id.as_str()), Some(email.as_str())));
    };

    // While the access cookie is valid, nothing is renewed.
    let (orders, res) = get_ok(&browser, &app, "/api/orders").await;
    check_orders(&orders);
    assert!(cookie_headers(&res, "session").is_empty() && cookie_headers(&res, "refresh").is_empty());
    let (body, res) = get_ok(&browser, &app, "/api/users/currentuser").await;
    check_user(&body["currentUser"]);
    assert!(cookie_headers(&res, "session").is_empty() && cookie_headers(&res, "refresh").is_empty());

    for round in 0..3 {
        // Past the access cookie's Max-Age (2 s): the client sends only the refresh cookie.
        tokio::time::sleep(Duration::from_millis(2400)).await;
        let orders_first = round != 1;
        let first = if orders_first { "/api/orders" } else { "/api/users/currentuser" };
        let second = if orders_first { "/api/users/currentuser" } else { "/api/orders" };

        let (body, res) = get_ok(&browser, &app, first).await;
        let renewed = cookie_headers(&res, "session");
        assert_eq!(renewed.len(), 1, "round {round}: {first} renews the access cookie: {renewed:?}");
        assert!(new_session(&res).is_some(), "round {round}: a non-empty access cookie: {renewed:?}");
        assert!(has_attr(&renewed[0], "Path=/") && has_attr(&renewed[0], "HttpOnly"), "{renewed:?}");
        assert!(has_attr(&renewed[0], &format!("Max-Age={LIFETIME_S}")), "{renewed:?}");
        assert!(cookie_headers(&res, "refresh").is_empty(), "round {round}: the refresh token is not rotated");
        if orders_first {
            check_orders(&body);
        } else {
            check_user(&body["currentUser"]);
        }

        // The renewed cookie is valid: the next request needs no renewal.
        let (body, res) = get_ok(&browser, &app, second).await;
        assert!(cookie_headers(&res, "session").is_empty(), "round {round}: {second} renews nothing");
        assert!(cookie_headers(&res, "refresh").is_empty());
        if orders_first {
            check_user(&body["currentUser"]);
        } else {
            check_orders(&body);
        }
    }
}

#[actix_web::test]
async fn ten_concurrent_requests_with_one_expired_access_cookie_all_succeed_as_the_user() {
    let app = short_lived_app().await;
    let (session, refresh, id) = signed_up(&app).await;
    until_expired(&app, &session).await;
    let cookie = format!("{session}; {refresh}");
    let requests = (0..10).map(|i| {
        let path = if i % 2 == 0 { "/api/users/currentuser" } else { "/api/orders" };
        let req = app.get(path).header("Cookie", &cookie).send();
        async move { (path, req.await.unwrap()) }
    });
    for (path, res) in futures::future::join_all(requests).await {
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let renewed = session_cookie(&res).unwrap_or_else(|| panic!("{path} sets a new access cookie"));
        assert_ne!(renewed, session);
        assert!(set_cookie_headers(&res, "refresh").is_empty(), "{path}: the refresh token is not rotated");
        let body: Value = res.json().await.unwrap();
        if path == "/api/orders" {
            assert_eq!(body, json!([]));
        } else {
            assert_eq!(body["currentUser"]["id"], id.as_str());
        }
        // The new access cookie works on its own.
        let (current, _) = current_user_with(&app, &renewed).await;
        assert_eq!(current["id"], id.as_str());
    }
    // No renewal tripped reuse detection: the refresh token is still good for an explicit refresh.
    let res = app.post("/api/users/refresh").header("Cookie", &refresh).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(set_cookie(&res, "refresh").is_some_and(|r| r != refresh), "the explicit refresh rotates");
}

#[actix_web::test]
async fn a_refresh_cookie_alone_renews_on_a_signed_in_only_write() {
    let app = short_lived_app().await;
    let (_, refresh, id) = signed_up(&app).await;
    let res = app
        .post("/api/tickets")
        .header("Cookie", &refresh)
        .json(&json!({"title": "renewed", "price": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(session_cookie(&res).is_some(), "a new access cookie");
    assert!(set_cookie_headers(&res, "refresh").is_empty());
    let ticket: Value = res.json().await.unwrap();
    assert_eq!(ticket["userId"], id.as_str());
}

#[actix_web::test]
async fn a_valid_access_cookie_gets_no_new_cookie() {
    let app = spawn_app().await;
    let (session, refresh, id) = signed_up(&app).await;
    let cookie = format!("{session}; {refresh}");
    for path in ["/api/users/currentuser", "/api/orders", "/api/tickets"] {
        let res = app.get(path).header("Cookie", &cookie).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(res.headers().get_all("set-cookie").iter().count(), 0, "{path} sets no cookie");
    }
    let (current, _) = current_user_with(&app, &cookie).await;
    assert_eq!(current["id"], id.as_str());
}

#[actix_web::test]
async fn after_sign_out_the_old_cookies_no_longer_renew() {
    let app = short_lived_app().await;
    let (session, refresh, _) = signed_up(&app).await;
    let cookie = format!("{session}; {refresh}");
    let res = app.post("/api/users/signout").header("Cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // The refresh cookie alone renews nothing, at once...
    let (current, res) = current_user_with(&app, &refresh).await;
    assert_eq!(current, Value::Null);
    assert!(new_session(&res).is_none(), "no access cookie for a revoked refresh token");
    let cleared = res
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("refresh=;") && has_attr(c, "Path=/") && has_attr(c, "Max-Age=0"));
    assert!(cleared, "the browser is told to forget a revoked refresh token: {res:?}");
    // ...nor with the old access cookie once it has expired.
    until_expired(&app, &session).await;
    let (current, res) = current_user_with(&app, &cookie).await;
    assert_eq!(current, Value::Null);
    assert!(new_session(&res).is_none());
    let res = app.get("/api/orders").header("Cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(session_cookie(&res).is_none());
    assert_eq!(error_messages(res).await, ["Not authorized"]);
}

#[actix_web::test]
async fn a_spent_refresh_token_does_not_renew() {
    let app = short_lived_app().await;
    let (_, spent, id) = signed_up(&app).await;
    let res = app.post("/api/users/refresh").header("Cookie", &spent).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let rotated = set_cookie(&res, "refresh").expect("a rotated refresh cookie");
    assert_ne!(rotated, spent);

    // The rotated token renews...
    let (current, res) = current_user_with(&app, &rotated).await;
    assert_eq!(current["id"], id.as_str());
    assert!(new_session(&res).is_some());
    // ...the spent one does not.
    let (current, res) = current_user_with(&app, &spent).await;
    assert_eq!(current, Value::Null);
    assert!(new_session(&res).is_none());
    let res = app.get("/api/orders").header("Cookie", &spent).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(session_cookie(&res).is_none());
}

#[actix_web::test]
async fn the_refresh_cookie_is_on_path_root_http_only_and_same_site_lax() {
    let app = spawn_app().await;
    let res = app.signup_as("cookie-attrs@test.com", "password").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let all = set_cookie_headers(&res, "refresh");
    // Besides the new cookie: the removal of one left on the old path by an earlier release.
    let removals: Vec<&String> = all.iter().filter(|c| has_attr(c, "Max-Age=0")).collect();
    assert_eq!(removals.len(), 1, "{all:?}");
    assert!(has_attr(removals[0], "Path=/api/users"), "{all:?}");
    let refresh: Vec<String> = all.iter().filter(|c| !has_attr(c, "Max-Age=0")).cloned().collect();
    assert_eq!(refresh.len(), 1, "{refresh:?}");
    let attrs = attributes(&refresh[0]);
    let paths: Vec<&String> = attrs.iter().filter(|a| a.to_ascii_lowercase().starts_with("path=")).collect();
    assert_eq!(paths, ["Path=/"], "{refresh:?}");
    assert!(has_attr(&refresh[0], "HttpOnly"), "{refresh:?}");
    assert!(has_attr(&refresh[0], "SameSite=Lax"), "{refresh:?}");
    let max_age = format!("Max-Age={}", app.state.settings.auth.refresh_token_seconds);
    assert!(has_attr(&refresh[0], &max_age), "{refresh:?}");
    let session = set_cookie_headers(&res, "session");
    assert_eq!(session.len(), 1, "{session:?}");
    assert!(has_attr(&session[0], "Path=/") && has_attr(&session[0], "HttpOnly"), "{session:?}");
    assert!(has_attr(&session[0], "SameSite=Lax"), "{session:?}");
}

#[actix_web::test]
async fn sign_out_clears_the_refresh_cookie_on_root_and_on_the_old_api_users_path() {
    let app = spawn_app().await;
    let (session, refresh, _) = signed_up(&app).await;
    let res = app.post("/api/users/signout").header("Cookie", format!("{session}; {refresh}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cleared = |h: &String| {
        h.split(';').next().is_some_and(|pair| pair.ends_with('=')) && (has_attr(h, "Max-Age=0") || h.contains("1970"))
    };
    let path_of = |h: &String| attributes(h).into_iter().find(|a| a.to_ascii_lowercase().starts_with("path="));

    let refreshes = set_cookie_headers(&res, "refresh");
    let mut paths: Vec<Option<String>> = refreshes.iter().map(path_of).collect();
    paths.sort();
    assert_eq!(paths, [Some("Path=/".to_string()), Some("Path=/api/users".to_string())], "{refreshes:?}");
    assert!(refreshes.iter().all(cleared), "{refreshes:?}");
    let sessions = set_cookie_headers(&res, "session");
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(cleared(&sessions[0]) && path_of(&sessions[0]).as_deref() == Some("Path=/"), "{sessions:?}");
}

#[actix_web::test]
async fn renewal_is_skipped_on_user_routes_other_than_currentuser() {
    let app = short_lived_app().await;
    let (_, refresh, _) = signed_up(&app).await;
    // Sign-in answers with its own cookies only: one session, one refresh.
    let email = format!("other-{}@test.com", uuid::Uuid::new_v4().simple());
    app.signup_as(&email, "password").await;
    let res = app
        .post("/api/users/signin")
        .header("Cookie", &refresh)
        .json(&json!({"email": email, "password": "password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(set_cookie_headers(&res, "session").len(), 1, "no renewal cookie beside sign-in's own");
    let refresh_set = set_cookie_headers(&res, "refresh");
    assert_eq!(refresh_set.iter().filter(|c| !has_attr(c, "Max-Age=0")).count(), 1, "{refresh_set:?}");
    // A route under /api/users that does not exist is not served as a renewed user either.
    let res = app.get("/api/users/nope").header("Cookie", &refresh).send().await.unwrap();
    assert!(session_cookie(&res).is_none());
}
