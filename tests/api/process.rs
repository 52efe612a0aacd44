//! The real `ticketing` binary as a child process, for crash, restart and signal tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Node {
    pub child: Child,
    pub address: String,
}

/// Starts `ticketing serve` on a random port over `data`, with extra `TICKETING_*` settings.
pub fn start_node(data: &Path, env: &[(&str, &str)]) -> Node {
    start_node_with(data, env, Stdio::inherit())
}

/// [`start_node`] with the node's stderr sent to `stderr`.
pub fn start_node_with(data: &Path, env: &[(&str, &str)], stderr: Stdio) -> Node {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ticketing"));
    cmd.arg("serve")
        .env("TICKETING_HTTP__ADDR", "127.0.0.1:0")
        .env("TICKETING_HTTP__WORKERS", "2")
        .env("TICKETING_ACTORS__THREADS", "2")
        .env("TICKETING_STORAGE__PATH", data)
        .env("TICKETING_LOG__LEVEL", "warn")
        .env("TICKETING_TESTING__WIRE_ROUNDTRIP", "true")
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    break addr.trim().to_string();
                }
            }
            _ => panic!("the node exited before listening"),
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Node { child, address }
}

impl Node {
    pub fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no chance to flush anything
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        panic!("the node did not exit within 10 s of SIGTERM");
    }
}

/// The resident memory of process `pid`, in KiB.
#[allow(dead_code)] // not every test binary that includes this file measures memory
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Sends `sig` to the child process `pid` this test started (SIGSTOP, SIGCONT...).
#[allow(dead_code)] // not every test binary that includes this file pauses a node
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a child process of this test.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// A bearer token for user `id` (`email`) signed with the nodes' default JWT secret: a signed-in
/// user without a sign-up.
#[allow(dead_code)] // not every test binary that includes this file mints users
pub fn bearer_token(id: &str, email: &str) -> String {
    let user = ticketing::domain::User {
        id: ticketing::domain::UserId::parse(id).expect("a user id"),
        email: ticketing::domain::Email::parse(email).expect("an email"),
        password_hash: String::new(),
        created_at_ms: 0,
    };
    ticketing::auth::JwtKeys::new(b"dev-only-insecure-jwt-secret").issue(&user, 3600)
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lists a ticket on a node as the holder of `cookie`; the created ticket's JSON.
#[allow(dead_code)] // the chaos binary includes this file too and does not list tickets this way
pub async fn create_ticket(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    title: &str,
    price: u32,
) -> serde_json::Value {
    let res = http
        .post(format!("{base}/api/tickets"))
        .header("Cookie", cookie)
        .json(&serde_json::json!({"title": title, "price": price}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    res.json().await.unwrap()
}

/// Posts `{email, password: "password"}` to `/api/users/{action}` (`signup` or `signin`) on a node.
pub async fn account(http: &reqwest::Client, base: &str, action: &str, email: &str) -> reqwest::Response {
    http.post(format!("{base}/api/users/{action}"))
        .json(&serde_json::json!({"email": email, "password": "password"}))
        .send()
        .await
        .unwrap()
}
