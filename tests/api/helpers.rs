//! `spawn_app()`: the real `Application` on a random port with its own temp data dir, plus the
//! small client helpers the tests share.

use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tempfile::TempDir;
use ticketing::edge::AppState;
use ticketing::events::PublishedEvent as Event;
use ticketing::storage::keys;
use ticketing::{Application, Settings};

pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub state: actix_web::web::Data<AppState>,
    /// The node's data dir.
    pub data: TempDir,
}

/// The `Accept` of a browser's navigation (Chromium's).
pub const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

/// A client that sends what a browser sends on every request: `Accept` with HTML first, and
/// the cookies it was given back.
pub fn browser_client() -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::ACCEPT, reqwest::header::HeaderValue::from_static(BROWSER_ACCEPT));
    Client::builder().no_proxy().cookie_store(true).default_headers(headers).build().unwrap()
}

/// A signed-in user: the `Cookie` header value and the user's id.
#[derive(Clone, Debug)]
pub struct Session {
    pub cookie: String,
    pub id: String,
    pub email: String,
}

pub fn test_settings(data: &std::path::Path) -> Settings {
    let mut s = Settings::load_with_env(None, Vec::<(String, String)>::new()).expect("default settings");
    s.http.addr = "127.0.0.1:0".parse().unwrap();
    s.http.workers = 2;
    s.actors.threads = 2;
    s.storage.path = data.to_path_buf();
    // A small headroom file per test data dir (the default reserve is 64 MiB).
    s.storage.reserve_mb = 4;
    s.testing.fault_injection = true;
    // Every command and reply to an entity crosses the wire encoding, as between nodes.
    s.testing.wire_roundtrip = true;
    s.log.level = "warn".into();
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    let data = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(data.path());
    customise(&mut settings);
    let app = Application::build(settings).await.expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    actix_web::rt::spawn(app.run_until_stopped());
    let client = Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap();
    TestApp { address, client, state, data }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }
    /// A `GET` as a browser sends it (asking for HTML first).
    pub fn browse(&self, path: &str) -> RequestBuilder {
        self.get(path).header("Accept", BROWSER_ACCEPT)
    }
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.url(path))
    }
    pub fn put(&self, path: &str) -> RequestBuilder {
        self.client.put(self.url(path))
    }
    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.client.delete(self.url(path))
    }

    pub async fn signup_as(&self, email: &str, password: &str) -> Response {
        self.post("/api/users/signup").json(&json!({"email": email, "password": password})).send().await.unwrap()
    }

    pub async fn signin_as(&self, email: &str, password: &str) -> Response {
        self.post("/api/users/signin").json(&json!({"email": email, "password": password})).send().await.unwrap()
    }

    /// Signs up a fresh user and returns its session (the seeds' `global.signin()`).
    pub async fn signin(&self) -> Session {
        let email = format!("user-{}@test.com", uuid::Uuid::new_v4().simple());
        let res = self.signup_as(&email, "password").await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let cookie = session_cookie(&res).expect("signup sets the session cookie");
        let body: Value = res.json().await.unwrap();
        Session { cookie, id: body["id"].as_str().unwrap().to_string(), email }
    }

    pub async fn create_ticket(&self, who: &Session, title: &str, price: Value) -> Value {
        let res = self
            .post("/api/tickets")
            .header("Cookie", &who.cookie)
            .json(&json!({"title": title, "price": price}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    /// Every published event, in publication order, once the outbox has drained.
    pub async fn published(&self) -> Vec<Event> {
        let store = self.state.app.store().clone();
        eventually(Duration::from_secs(10), "the outbox drains", || {
            let store = store.clone();
            async move {
                let mut empty = true;
                let swept = store.sweep(keys::OUTBOX, |_, _| {
                    empty = false;
                    Ok(false)
                });
                swept.is_ok() && empty
            }
        })
        .await;
        self.state.app.events().recent()
    }

    /// The published events about one entity.
    pub async fn events_of(&self, entity_id: &str) -> Vec<Event> {
        self.published().await.into_iter().filter(|e| e.entity_id == entity_id).collect()
    }

    /// The published events with this subject about one entity.
    pub async fn subjects_of(&self, entity_id: &str) -> Vec<String> {
        self.events_of(entity_id).await.into_iter().map(|e| e.subject).collect()
    }

    /// Places an order for `ticket` as `buyer`; returns the response.
    pub async fn order(&self, buyer: &Session, ticket_id: &str) -> Response {
        self.post("/api/orders")
            .header("Cookie", &buyer.cookie)
            .json(&json!({"ticketId": ticket_id}))
            .send()
            .await
            .unwrap()
    }

    /// Pays for `order` with the test card that is accepted; must succeed.
    pub async fn pay_ok(&self, buyer: &Session, order: &str) {
        let res = self
            .post("/api/payments")
            .header("Cookie", &buyer.cookie)
            .json(&json!({"token": "tok_visa", "orderId": order}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }

    /// Places an order that must succeed; returns its JSON.
    pub async fn order_ok(&self, buyer: &Session, ticket_id: &str) -> Value {
        let res = self.order(buyer, ticket_id).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    pub async fn get_json(&self, path: &str, who: Option<&Session>) -> (StatusCode, Value) {
        let mut req = self.get(path);
        if let Some(who) = who {
            req = req.header("Cookie", &who.cookie);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

/// The `name=value` part of the `session` cookie a response sets.
pub fn session_cookie(res: &Response) -> Option<String> {
    set_cookie(res, "session").filter(|c| c != "session=")
}

/// The `name=value` pair of the named `Set-Cookie` header.
pub fn set_cookie(res: &Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

pub use crate::wait::eventually;

/// Asserts the API's error format and returns the messages.
pub async fn error_messages(res: Response) -> Vec<String> {
    let body: Value = res.json().await.expect("error bodies are JSON");
    let errors = body["errors"].as_array().expect("errors array");
    assert!(!errors.is_empty());
    errors.iter().map(|e| e["message"].as_str().expect("message").to_string()).collect()
}

/// A `charge.succeeded` webhook for `order` with `charge`, signed with `secret` now, as the
/// provider would send it.
pub async fn charge_webhook_signed(app: &TestApp, event: &str, order: &str, charge: &str, secret: &str) -> Response {
    let body = serde_json::json!({"id": event, "type": "charge.succeeded",
        "data": {"object": {"id": charge, "object": "charge", "metadata": {"orderId": order}}}})
    .to_string();
    let signature = ticketing::payments::webhook::sign(body.as_bytes(), secret, chrono::Utc::now().timestamp());
    app.post("/api/payments/webhook")
        .header("Stripe-Signature", signature)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}
