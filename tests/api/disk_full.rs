//! A full disk is a state the node reports and leaves. The real binary serves from a small
//! tmpfs that this test mounts (it runs as root, and fails rather than skips when it cannot),
//! and a filler file fills the disk while the node serves:
//!
//! * writes are answered 507 at once, in the JSON error shape, and reading back shows they did
//!   not happen; reads by id and lists answer 200; `/readyz` is 503 and says `full`;
//! * deleting the filler brings writes back within seconds, without a restart;
//! * SIGTERM while full exits within the drain timeout;
//! * a restart on the still-full disk starts, serves every acknowledged write (actors
//!   activated on a full disk), and takes writes again once the filler is gone.

use crate::helpers::{eventually, session_cookie};
use crate::process::{start_node, Node};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The disk: small enough to fill in a moment, large enough for twice the reserve and the data.
const DISK_SIZE: &str = "size=24m";
const RESERVE_MB: &str = "4";
/// The node's drain timeout (`http.shutdown_timeout_seconds`).
const DRAIN: Duration = Duration::from_secs(5);
/// How long the node may take to notice a full disk, or room again.
const NOTICE: Duration = Duration::from_secs(5);

/// A tmpfs mounted on a fresh temp dir; unmounted when dropped, even when the test fails.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", DISK_SIZE, "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount(8) runs");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs (this test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Writes the filler until the disk refuses another byte.
    fn fill(&self) {
        let mut file = std::fs::File::create(self.filler()).expect("filler file");
        for chunk in [1 << 20, 64 << 10, 4 << 10, 512] {
            let bytes = vec![0xA5_u8; chunk];
            loop {
                match file.write(&bytes) {
                    Ok(n) if n == bytes.len() => {}
                    Ok(_) => break,
                    Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                    Err(e) => panic!("filler write failed: {e}"),
                }
            }
        }
        let _ = file.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).expect("filler removed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let dir = self.dir.path().to_path_buf();
        let unmounted = Command::new("umount").arg(&dir).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a node that did not exit): detach it now, freed once let go.
            let _ = Command::new("umount").arg("-l").arg(&dir).status();
        }
    }
}

fn start(data: &Path) -> Node {
    start_node(
        data,
        &[("TICKETING_STORAGE__RESERVE_MB", RESERVE_MB), ("TICKETING_HTTP__SHUTDOWN_TIMEOUT_SECONDS", "5")],
    )
}

/// Sends SIGTERM; how long the node took to exit (it must, within the drain timeout).
fn terminate(node: &mut Node) -> Duration {
    let started = Instant::now();
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(node.child.id() as libc::pid_t, libc::SIGTERM) };
    loop {
        if let Some(status) = node.child.try_wait().expect("wait") {
            assert!(status.success(), "the node exits cleanly on SIGTERM: {status}");
            return started.elapsed();
        }
        assert!(started.elapsed() <= DRAIN, "the node did not exit within the drain timeout ({DRAIN:?}) of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A seller and a buyer on one node.
struct Shop {
    http: Client,
    base: String,
    seller: String,
    buyer: String,
}

impl Shop {
    async fn open(node: &Node) -> Self {
        let http = Client::builder().no_proxy().timeout(Duration::from_secs(15)).build().unwrap();
        let mut shop = Self { http, base: node.address.clone(), seller: String::new(), buyer: String::new() };
        shop.seller = shop.sign_up("seller@disk.test").await.expect("seller signed up");
        shop.buyer = shop.sign_up("buyer@disk.test").await.expect("buyer signed up");
        shop
    }

    /// Points at a restarted node (the session cookies stay valid).
    fn on(&mut self, node: &Node) {
        self.base = node.address.clone();
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn sign_up(&self, email: &str) -> Result<String, Response> {
        let res = self.post(None, "/api/users/signup", json!({"email": email, "password": "password"})).await;
        match res.status() {
            StatusCode::CREATED => Ok(session_cookie(&res).expect("session cookie")),
            _ => Err(res),
        }
    }

    async fn post(&self, who: Option<&str>, path: &str, body: Value) -> Response {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(cookie) = who {
            req = req.header("Cookie", cookie);
        }
        req.send().await.expect("request sent")
    }

    async fn create_ticket(&self, title: &str, price: u32) -> Response {
        self.post(Some(&self.seller), "/api/tickets", json!({"title": title, "price": price})).await
    }

    async fn ticket_ok(&self, title: &str, price: u32) -> Value {
        let res = self.create_ticket(title, price).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    async fn update(&self, id: &str, title: &str, price: u32) -> Response {
        let req = self.http.put(self.url(&format!("/api/tickets/{id}"))).header("Cookie", &self.seller);
        req.json(&json!({"title": title, "price": price})).send().await.unwrap()
    }

    async fn order(&self, ticket: &str) -> Response {
        self.post(Some(&self.buyer), "/api/orders", json!({"ticketId": ticket})).await
    }

    async fn order_ok(&self, ticket: &str) -> Value {
        let res = self.order(ticket).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    async fn cancel(&self, order: &str) -> Response {
        let req = self.http.delete(self.url(&format!("/api/orders/{order}"))).header("Cookie", &self.buyer);
        req.send().await.unwrap()
    }

    async fn get(&self, who: Option<&str>, path: &str) -> (StatusCode, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(cookie) = who {
            req = req.header("Cookie", cookie);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn ticket(&self, id: &str) -> Value {
        let (status, body) = self.get(None, &format!("/api/tickets/{id}")).await;
        assert_eq!(status, StatusCode::OK, "ticket {id} is read: {body}");
        body
    }

    async fn order_of_buyer(&self, id: &str) -> Value {
        let (status, body) = self.get(Some(&self.buyer), &format!("/api/orders/{id}")).await;
        assert_eq!(status, StatusCode::OK, "order {id} is read: {body}");
        body
    }

    async fn for_sale(&self) -> Vec<Value> {
        let (status, body) = self.get(None, "/api/tickets").await;
        assert_eq!(status, StatusCode::OK, "the list is served: {body}");
        body.as_array().expect("a list").clone()
    }

    async fn buyers_orders(&self) -> Vec<Value> {
        let (status, body) = self.get(Some(&self.buyer), "/api/orders").await;
        assert_eq!(status, StatusCode::OK, "the buyer's orders are served: {body}");
        body.as_array().expect("a list").clone()
    }

    async fn readyz(&self) -> (StatusCode, Value) {
        self.get(None, "/readyz").await
    }

    async fn wait_until_full(&self) {
        eventually(NOTICE, "/readyz reports the full disk", || async {
            let (status, body) = self.readyz().await;
            status == StatusCode::SERVICE_UNAVAILABLE && body["storage"] == "full"
        })
        .await;
    }

    /// Creates tickets until one is accepted; every refusal on the way must be a 507.
    async fn write_once_room_is_back(&self, title: &str) -> (Value, Duration) {
        let started = Instant::now();
        loop {
            let res = self.create_ticket(title, 5).await;
            match res.status() {
                StatusCode::CREATED => return (res.json().await.unwrap(), started.elapsed()),
                StatusCode::INSUFFICIENT_STORAGE => {}
                other => panic!("a write while the disk empties answers {other}"),
            }
            assert!(started.elapsed() < NOTICE, "writes are not taken again within {NOTICE:?} of freeing space");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A refusal for the full disk: 507 at once, `Retry-After`, the JSON error body.
async fn assert_refused(res: Response, what: &str) {
    assert_eq!(res.status(), StatusCode::INSUFFICIENT_STORAGE, "{what} is refused for the full disk");
    assert!(res.headers().contains_key("retry-after"), "{what}: Retry-After");
    let body: Value = res.json().await.expect("a JSON error body");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("storage is full"), "{what}: the body says why: {body}");
}

/// What was acknowledged, as it must read back.
struct Acknowledged {
    /// (ticket id, title, the order holding it).
    tickets: Vec<(String, String, Option<String>)>,
    /// (order id, status).
    orders: Vec<(String, &'static str)>,
}

impl Acknowledged {
    async fn read_back(&self, shop: &Shop) {
        for (id, title, held_by) in &self.tickets {
            let ticket = shop.ticket(id).await;
            assert_eq!(ticket["title"], title.as_str(), "ticket {id}");
            assert_eq!(ticket["orderId"].as_str(), held_by.as_deref(), "ticket {id}'s hold");
        }
        for (id, status) in &self.orders {
            assert_eq!(shop.order_of_buyer(id).await["status"], *status, "order {id}");
        }
        let listed: Vec<Value> = shop.buyers_orders().await.into_iter().map(|o| o["id"].clone()).collect();
        for (id, _) in &self.orders {
            assert!(listed.contains(&json!(id)), "order {id} in the buyer's list");
        }
    }
}

#[actix_web::test]
async fn a_full_disk_refuses_writes_truthfully_serves_reads_and_is_left_without_a_restart() {
    let disk = Tmpfs::mount();
    let data = disk.path().join("data");
    let mut node = start(&data);
    let mut shop = Shop::open(&node).await;

    // Acknowledged before the disk fills: four tickets, one held by an order, one whose order
    // was cancelled.
    let mut tickets = Vec::new();
    for (title, price) in [("held", 10), ("released", 11), ("edited later", 12), ("untouched", 13)] {
        tickets.push(shop.ticket_ok(title, price).await["id"].as_str().unwrap().to_string());
    }
    let held = shop.order_ok(&tickets[0]).await["id"].as_str().unwrap().to_string();
    let cancelled = shop.order_ok(&tickets[1]).await["id"].as_str().unwrap().to_string();
    assert_eq!(shop.cancel(&cancelled).await.status(), StatusCode::NO_CONTENT);
    let (status, body) = shop.readyz().await;
    assert_eq!((status, &body["storage"]), (StatusCode::OK, &json!("ok")));
    let version_before = shop.ticket(&tickets[2]).await["version"].clone();

    disk.fill();
    let filled = Instant::now();
    shop.wait_until_full().await;
    eprintln!("full disk reported {:?} after the fill", filled.elapsed());
    let (_, ready) = shop.readyz().await;
    assert!(ready["errors"][0]["message"].as_str().unwrap().contains("Storage is full"), "{ready}");
    let (health, _) = shop.get(None, "/healthz").await;
    assert_eq!(health, StatusCode::OK, "liveness is not readiness");

    // Every kind of write is refused at once, and did not happen.
    let asked = Instant::now();
    assert_refused(shop.create_ticket("refused", 1).await, "a new ticket").await;
    assert!(asked.elapsed() < Duration::from_secs(1), "refused at once, not after a timeout");
    assert_refused(shop.update(&tickets[2], "renamed", 99).await, "an edit").await;
    assert_refused(shop.order(&tickets[2]).await, "an order").await;
    assert_refused(shop.cancel(&held).await, "a cancellation").await;
    assert_refused(shop.sign_up("late@disk.test").await.expect_err("no sign-up"), "a sign-up").await;
    let edited = shop.ticket(&tickets[2]).await;
    assert_eq!((&edited["title"], &edited["version"]), (&json!("edited later"), &version_before));
    assert!(edited["orderId"].is_null(), "the refused order holds nothing");
    assert_eq!(shop.order_of_buyer(&held).await["status"], "created", "the refused cancel changed nothing");
    assert_eq!(shop.buyers_orders().await.len(), 2, "no order was placed");
    let titles: Vec<Value> = shop.for_sale().await.into_iter().map(|t| t["title"].clone()).collect();
    assert!(!titles.contains(&json!("refused")), "the refused ticket is not listed: {titles:?}");
    let signin = shop.post(None, "/api/users/signin", json!({"email": "late@disk.test", "password": "password"})).await;
    assert_eq!(signin.status(), StatusCode::BAD_REQUEST, "the refused sign-up made no account");

    // Reads go on: by id and lists.
    let mut acknowledged = Acknowledged {
        tickets: vec![
            (tickets[0].clone(), "held".into(), Some(held.clone())),
            (tickets[1].clone(), "released".into(), None),
            (tickets[2].clone(), "edited later".into(), None),
            (tickets[3].clone(), "untouched".into(), None),
        ],
        orders: vec![(held.clone(), "created"), (cancelled.clone(), "cancelled")],
    };
    acknowledged.read_back(&shop).await;
    assert_eq!(titles.len(), 3, "the three tickets for sale are listed: {titles:?}");

    // Room again: writes come back by themselves.
    disk.free();
    let (after, took) = shop.write_once_room_is_back("after").await;
    eprintln!("writes taken again {took:?} after the filler was deleted");
    let (status, _) = shop.readyz().await;
    assert_eq!(status, StatusCode::OK);
    let third = shop.order_ok(&tickets[2]).await["id"].as_str().unwrap().to_string();
    acknowledged.tickets[2].2 = Some(third.clone());
    acknowledged.tickets.push((after["id"].as_str().unwrap().to_string(), "after".into(), None));
    acknowledged.orders.push((third, "created"));

    // Full again, with writes racing the fill: those the node took before it noticed are
    // flushed into its headroom (acknowledged, so they must read back), the others are refused;
    // either way the answer is the truth, and the store does not fail.
    disk.fill();
    let titles: Vec<String> = (0..8).map(|i| format!("race {i}")).collect();
    let racing = futures::future::join_all(titles.iter().map(|title| shop.create_ticket(title, 3))).await;
    let mut raced = Vec::new();
    for (i, res) in racing.into_iter().enumerate() {
        match res.status() {
            StatusCode::CREATED => {
                let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
                acknowledged.tickets.push((id, format!("race {i}"), None));
                raced.push((format!("race {i}"), 1));
            }
            StatusCode::INSUFFICIENT_STORAGE => raced.push((format!("race {i}"), 0)),
            other => panic!("a write racing the fill answers {other}"),
        }
    }
    eprintln!(
        "writes racing the fill: {} taken, {} refused",
        raced.iter().filter(|r| r.1 == 1).count(),
        raced.iter().filter(|r| r.1 == 0).count()
    );
    shop.wait_until_full().await;

    // SIGTERM while full: the node exits within its drain timeout.
    let took = terminate(&mut node);
    eprintln!("SIGTERM while full: exited in {took:?}");

    // A restart on the still-full disk: it starts, says full, and reads every acknowledged
    // write (each actor activated on the full disk).
    let mut node = start(&data);
    shop.on(&node);
    shop.wait_until_full().await;
    acknowledged.read_back(&shop).await;
    assert_refused(shop.create_ticket("refused after restart", 1).await, "a new ticket after a restart").await;

    disk.free();
    let (last, took) = shop.write_once_room_is_back("after restart").await;
    eprintln!("writes taken again {took:?} after the filler was deleted (restarted node)");
    acknowledged.tickets.push((last["id"].as_str().unwrap().to_string(), "after restart".into(), None));
    acknowledged.read_back(&shop).await;
    let titles: Vec<Value> = shop.for_sale().await.into_iter().map(|t| t["title"].clone()).collect();
    let mut expected = vec![("after".to_string(), 1), ("after restart".into(), 1), ("refused".into(), 0)];
    expected.push(("refused after restart".into(), 0));
    expected.extend(raced);
    for (title, count) in expected {
        assert_eq!(titles.iter().filter(|t| **t == json!(title)).count(), count, "{title}: {titles:?}");
    }
    terminate(&mut node);
}

/// With the watch turned off (`storage.reserve_mb = 0`) sled itself meets the full disk, and
/// cannot recover in-process (it keeps its first I/O error). The node must still say so,
/// serve what was flushed before, refuse writes at once and stop promptly; a restart once
/// space is freed serves every acknowledged write and takes writes again.
#[actix_web::test]
async fn a_disk_filled_under_an_unwatched_store_fails_writes_not_reads_and_still_stops() {
    let disk = Tmpfs::mount();
    let data = disk.path().join("data");
    let unwatched = [("TICKETING_STORAGE__RESERVE_MB", "0"), ("TICKETING_HTTP__SHUTDOWN_TIMEOUT_SECONDS", "5")];
    let mut node = start_node(&data, &unwatched);
    let mut shop = Shop::open(&node).await;
    let first = shop.ticket_ok("flushed before", 10).await["id"].as_str().unwrap().to_string();
    let mut acknowledged =
        Acknowledged { tickets: vec![(first.clone(), "flushed before".into(), None)], orders: vec![] };

    disk.fill();
    // Writes go on until sled needs a page the disk no longer has; each one answered 201 is
    // acknowledged, the first failure is answered 500 (its outcome is not known).
    let mut failed = false;
    for i in 0..2_000 {
        let title = format!("filling {i}");
        let res = shop.create_ticket(&title, 1).await;
        match res.status() {
            StatusCode::CREATED => {
                let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
                acknowledged.tickets.push((id, title, None));
            }
            StatusCode::INTERNAL_SERVER_ERROR => {
                failed = true;
                break;
            }
            other => panic!("a write on a disk filling under sled answers {other}"),
        }
    }
    assert!(failed, "sled met the full disk");
    eprintln!("sled failed after {} acknowledged writes on the full disk", acknowledged.tickets.len() - 1);
    let (status, ready) = shop.readyz().await;
    assert_eq!((status, &ready["storage"]), (StatusCode::SERVICE_UNAVAILABLE, &json!("failed")), "{ready}");
    let asked = Instant::now();
    let res = shop.create_ticket("after the failure", 1).await;
    assert!(res.status().is_server_error() && asked.elapsed() < Duration::from_secs(1), "refused at once");
    let ticket = shop.ticket(&first).await;
    assert_eq!(ticket["title"], "flushed before", "what was flushed before is still read");

    let took = terminate(&mut node);
    eprintln!("SIGTERM after sled failed: exited in {took:?}");

    disk.free();
    let mut node = start_node(&data, &unwatched);
    shop.on(&node);
    acknowledged.read_back(&shop).await;
    shop.ticket_ok("after the restart", 2).await;
    terminate(&mut node);
}
