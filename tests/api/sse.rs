//! A reader of `GET /api/tickets/stream` for tests (API and cluster): its events one by one.

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// One Server-Sent Event.
#[derive(Debug)]
pub struct Sse {
    pub id: String,
    pub event: String,
    pub data: Value,
}

/// A stream being read, frame by frame.
pub struct Stream {
    body: reqwest::Response,
    buf: String,
    /// Comment lines seen (heartbeats).
    pub comments: usize,
    /// The last id received, the `Last-Event-ID` a browser would reconnect with.
    pub last_id: String,
}

impl Stream {
    pub async fn open(base: &str, last_event_id: Option<&str>) -> Self {
        Self::open_at(base, "/api/tickets/stream", last_event_id).await
    }

    /// The stream at `path` (with its query).
    pub async fn open_at(base: &str, path: &str, last_event_id: Option<&str>) -> Self {
        let mut req = reqwest::Client::new().get(format!("{base}{path}"));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Self { body: res, buf: String::new(), comments: 0, last_id: String::new() }
    }

    /// The next event (comments and the retry hint skipped), within `within`.
    pub async fn next_within(&mut self, within: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in frame.lines() {
                    if line.starts_with(':') {
                        self.comments += 1;
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        id = v.into();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v.into();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = v.into();
                    }
                }
                // As a browser does: an id, even on a frame with no event, is the one it
                // reconnects with.
                if !id.is_empty() {
                    self.last_id = id.clone();
                }
                if !event.is_empty() {
                    return Some(Sse { id, event, data: serde_json::from_str(&data).unwrap() });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.chunk()).await.ok()?.ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    pub async fn next(&mut self) -> Sse {
        self.next_within(Duration::from_secs(5)).await.expect("an event within 5 s")
    }
}
