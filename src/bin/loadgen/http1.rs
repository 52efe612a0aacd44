//! A minimal HTTP/1.1 keep-alive client: one request at a time per connection, responses
//! framed by `Content-Length` (what the server always sends). Kept this small so that the load
//! generator costs far less per request than the server it measures (`httparse` does the
//! parsing, as in the server).

use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Conn {
    stream: TcpStream,
    addr: SocketAddr,
    buf: Vec<u8>,
}

/// What a test needs of a response.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// `name=value` of the `session` cookie, if the response set one.
    pub session: Option<String>,
    pub retry_after: bool,
}

impl Response {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The `id` field of a JSON object body.
    pub fn id(&self) -> Option<String> {
        Some(self.json()?.get("id")?.as_str()?.to_string())
    }
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// The bytes of one request.
pub fn request(method: &str, path: &str, cookie: Option<&str>, body: Option<&str>) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if let Some(cookie) = cookie {
        r.push_str("Cookie: ");
        r.push_str(cookie);
        r.push_str("\r\n");
    }
    match body {
        Some(body) => {
            r.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()));
            r.push_str(body);
        }
        None => r.push_str("\r\n"),
    }
    r.into_bytes()
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, addr, buf: Vec::with_capacity(4096) })
    }

    /// Sends one request and reads its response. On a closed connection (the server may
    /// close an idle one) it reconnects once and retries.
    pub async fn send(&mut self, req: &[u8]) -> io::Result<Response> {
        match self.exchange(req).await {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                ) =>
            {
                *self = Self::connect(self.addr).await?;
                self.exchange(req).await
            }
            other => other,
        }
    }

    async fn exchange(&mut self, req: &[u8]) -> io::Result<Response> {
        self.stream.write_all(req).await?;
        loop {
            if let Some((head_len, mut response, body_len)) = self.parse_head()? {
                while self.buf.len() < head_len + body_len {
                    self.fill().await?;
                }
                response.body = self.buf[head_len..head_len + body_len].to_vec();
                self.buf.drain(..head_len + body_len);
                return Ok(response);
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> io::Result<()> {
        let start = self.buf.len();
        self.buf.resize(start + 16 * 1024, 0);
        let n = self.stream.read(&mut self.buf[start..]).await;
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(start);
                return Err(e);
            }
        };
        self.buf.truncate(start + n);
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// `(head length, response without body, body length)` once the head is complete.
    fn parse_head(&self) -> io::Result<Option<(usize, Response, usize)>> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        let head_len = match parsed.parse(&self.buf).map_err(|e| invalid(e.to_string()))? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return Ok(None),
        };
        let status = parsed.code.ok_or_else(|| invalid("no status"))?;
        let mut body_len = 0;
        let mut session = None;
        let mut retry_after = false;
        for h in parsed.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                body_len = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| invalid("bad content-length"))?;
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(invalid("chunked responses are not supported"));
            } else if h.name.eq_ignore_ascii_case("set-cookie") && h.value.starts_with(b"session=") {
                let value = std::str::from_utf8(h.value).map_err(|_| invalid("bad cookie"))?;
                session = value.split(';').next().map(str::to_string);
            } else if h.name.eq_ignore_ascii_case("retry-after") {
                retry_after = true;
            }
        }
        Ok(Some((head_len, Response { status, body: Vec::new(), session, retry_after }, body_len)))
    }
}
