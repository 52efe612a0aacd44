//! Hostile and malformed input: each gets a 4xx in the API's error format, changes nothing,
//! and leaves the server up.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn ticket_count(app: &TestApp) -> usize {
    app.get("/api/tickets").send().await.unwrap().json::<Vec<Value>>().await.unwrap().len()
}

#[actix_web::test]
async fn malformed_bodies_get_400_json_errors_and_change_nothing() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("truncated JSON", b"{\"title\": \"x\", ".to_vec()),
        ("an array", b"[{\"title\": \"x\", \"price\": 5}]".to_vec()),
        ("a string", b"\"hello\"".to_vec()),
        ("null", b"null".to_vec()),
        ("wrong types", br#"{"title": 5, "price": {"amount": 3}}"#.to_vec()),
        ("boolean price", br#"{"title": "x", "price": true}"#.to_vec()),
        ("random bytes", (0..512u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()),
        ("empty body", Vec::new()),
    ];
    for (what, body) in bodies {
        let res = app
            .post("/api/tickets")
            .header("Cookie", &me.cookie)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{what}");
        assert!(!error_messages(res).await[0].is_empty(), "{what}");
    }
    assert_eq!(ticket_count(&app).await, 0);
}

#[actix_web::test]
async fn a_wrong_content_type_is_a_400() {
    let app = spawn_app().await;
    let res =
        app.post("/api/users/signup").header("Content-Type", "text/plain").body("email=a@b.com").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_messages(res).await, ["Content-Type must be application/json"]);
}

#[actix_web::test]
async fn a_one_mebibyte_body_gets_413() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let big = json!({"title": "x".repeat(1 << 20), "price": 5}).to_string();
    let res = app
        .post("/api/tickets")
        .header("Cookie", &me.cookie)
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_messages(res).await, ["Request body is too large"]);
    assert_eq!(ticket_count(&app).await, 0);
}

#[actix_web::test]
async fn unknown_routes_and_methods_answer_in_the_error_format() {
    let app = spawn_app().await;
    let res = app.get("/api/nothing-here").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_messages(res).await, ["Not Found"]);
    let res = app.delete("/api/tickets").send().await.unwrap();
    assert!(res.status().is_client_error());
    assert!(!error_messages(res).await.is_empty());
}

#[actix_web::test]
async fn forged_and_expired_tokens_are_treated_as_signed_out() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let now = chrono::Utc::now().timestamp();
    let forged_claims = json!({"id": me.id, "email": me.email, "iat": now, "exp": now + 600});
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &forged_claims,
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-server-secret"),
    )
    .unwrap();
    let secret = app.state.settings.auth.jwt_secret.expose().as_bytes().to_vec();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"id": me.id, "email": me.email, "iat": now - 100, "exp": now - 10}),
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap();
    let unsigned =
        format!("{}.{}.", base64_url(r#"{"alg":"none","typ":"JWT"}"#), base64_url(&forged_claims.to_string()));
    for token in [forged.as_str(), expired.as_str(), unsigned.as_str(), "garbage", ""] {
        let cookie = format!("session={}", ticketing::auth::SessionCookie::encode(token));
        let res = app
            .post("/api/tickets")
            .header("Cookie", &cookie)
            .json(&json!({"title": "x", "price": 5}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "token {token:?}");
        let res =
            app.post("/api/tickets").bearer_auth(token).json(&json!({"title": "x", "price": 5})).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "bearer {token:?}");
        let body: Value =
            app.get("/api/users/currentuser").header("Cookie", &cookie).send().await.unwrap().json().await.unwrap();
        assert_eq!(body["currentUser"], Value::Null);
    }
    let res = app.get("/api/users/currentuser").header("Cookie", "session=%%%not-base64").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(ticket_count(&app).await, 0);
    // Still serving.
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), StatusCode::OK);
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[actix_web::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), StatusCode::OK);
    let res = app.get("/readyz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

/// Posts `size` bytes of JSON-ish text to `path` on a raw connection with
/// `Transfer-Encoding: chunked` (no `Content-Length`), in 64 KiB chunks written by a thread of
/// its own, while the answer is read; returns the answer as text (empty if none came).
fn post_chunked(address: &str, path: &str, headers: &str, size: usize) -> String {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let mut stream = std::net::TcpStream::connect(address.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n{headers}\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b' '; 64 * 1024];
        let mut sent = 0;
        // The server may answer and close before the whole body is sent: a failed write ends it.
        while sent < size {
            let n = chunk.len().min(size - sent);
            let frame = [format!("{n:x}\r\n").as_bytes(), &chunk[..n], b"\r\n"].concat();
            if writer.write_all(&frame).is_err() {
                return;
            }
            sent += n;
        }
        let _ = writer.write_all(b"0\r\n\r\n");
    });
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(20) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok());
            if length.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
    }
    drop(stream);
    let _ = sender.join();
    String::from_utf8_lossy(&answer).into_owned()
}

#[actix_web::test]
async fn a_ten_megabyte_chunked_body_gets_413_with_and_without_an_idempotency_key() {
    let app = spawn_app().await;
    let me = app.signin().await;
    for extra in ["", "Idempotency-Key: big-chunked\r\n"] {
        let (address, headers) = (app.address.clone(), format!("Cookie: {}\r\n{extra}", me.cookie));
        let answer = tokio::task::spawn_blocking(move || post_chunked(&address, "/api/tickets", &headers, 10 << 20))
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{extra:?}: {answer}");
        assert!(answer.contains(r#"{"errors":[{"message":"Request body is too large"}]}"#), "{extra:?}: {answer}");
    }
    assert_eq!(ticket_count(&app).await, 0);
}
