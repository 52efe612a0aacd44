//! An SMTP server for tests (the "sink"): it takes every message and keeps it, on a random
//! port. Enough of RFC 5321 for lettre: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT. It refuses
//! for good (550) every recipient whose address contains `reject`.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One message as the sink took it.
#[derive(Clone, Debug)]
pub struct Received {
    pub to: Vec<String>,
    /// Headers and body, as sent (dot-stuffing undone).
    pub data: String,
}

impl Received {
    /// A header's value (the first of that name).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    pub fn body(&self) -> String {
        self.data.split_once("\r\n\r\n").map(|(_, b)| b.replace("=\r\n", "").replace("=3D", "=")).unwrap_or_default()
    }
}

pub struct Sink {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// While set, every session is refused at once (421, as a server shutting down says).
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Sink {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// On `port` (0: any free one).
    pub async fn start_on(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&received);
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let refusing = Arc::clone(&down);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                if refusing.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = stream.write_all(b"421 sink down\r\n").await;
                    continue;
                }
                let kept = Arc::clone(&kept);
                tokio::spawn(async move {
                    let _ = session(stream, kept).await;
                });
            }
        });
        Self { port, received, down }
    }

    /// Down (every session refused for now) or up again.
    #[allow(dead_code)]
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages to `address` so far.
    pub fn to(&self, address: &str) -> Vec<Received> {
        self.received.lock().unwrap().iter().filter(|m| m.to.iter().any(|t| t == address)).cloned().collect()
    }
}

async fn session(stream: tokio::net::TcpStream, kept: Arc<Mutex<Vec<Received>>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if command.starts_with("HELO") || command.starts_with("MAIL") || command == "NOOP" {
            b"250 OK\r\n"
        } else if command == "RSET" {
            to.clear();
            b"250 OK\r\n"
        } else if command.starts_with("RCPT") && command.contains("REJECT") {
            // An address this server refuses for good.
            b"550 no such mailbox\r\n"
        } else if command.starts_with("RCPT") {
            let address = line.trim_end().split_once(':').map(|(_, a)| a.trim().trim_matches(['<', '>']).to_string());
            to.extend(address);
            b"250 OK\r\n"
        } else if command == "DATA" {
            write.write_all(b"354 go on\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
            }
            kept.lock().unwrap().push(Received { to: std::mem::take(&mut to), data });
            b"250 OK: kept\r\n"
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not here\r\n"
        };
        write.write_all(reply).await?;
    }
}
