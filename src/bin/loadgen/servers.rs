//! The processes under test: a `ticketing` node on a fresh data dir and the reference
//! minimal actix-web server, each on a random port, stopped when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// From spawn to the first `/healthz` 200.
    pub ready_after: Duration,
}

/// The admin token the benchmark's nodes run with.
pub const ADMIN_TOKEN: &str = "bench-admin-token";

impl Server {
    /// Starts `binary serve` on `data` (env configuration, port 0) and waits until it answers.
    pub fn ticketing(binary: &Path, data: &Path, extra_env: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut cmd = Command::new(binary);
        cmd.arg("serve")
            .env("TICKETING_HTTP__ADDR", "127.0.0.1:0")
            .env("TICKETING_STORAGE__PATH", data)
            .env("TICKETING_ADMIN__TOKEN", ADMIN_TOKEN)
            .env("TICKETING_LOG__LEVEL", std::env::var("BENCH_LOG_LEVEL").unwrap_or_else(|_| "warn".into()));
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        Self::spawn(cmd)
    }

    /// Starts the reference hello server.
    pub fn hello(binary: &Path) -> anyhow::Result<Self> {
        Self::spawn(Command::new(binary))
    }

    fn spawn(mut cmd: Command) -> anyhow::Result<Self> {
        let started = Instant::now();
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let Some(line) = lines.next() else {
                let _ = child.kill();
                anyhow::bail!("{:?} exited before listening", cmd.get_program());
            };
            if let Some(rest) = line?.strip_prefix("listening on http://") {
                break rest.trim().parse::<SocketAddr>()?;
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let mut server = Self { child, addr, ready_after: Duration::ZERO };
        server.ready_after = server.wait_healthy(started)?;
        Ok(server)
    }

    fn wait_healthy(&self, started: Instant) -> anyhow::Result<Duration> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            loop {
                if let Ok(mut conn) = super::http1::Conn::connect(self.addr).await {
                    let req = super::http1::request("GET", "/healthz", None, None);
                    if matches!(conn.send(&req).await, Ok(r) if r.status == 200) {
                        return Ok(started.elapsed());
                    }
                }
                if started.elapsed() > Duration::from_secs(120) {
                    anyhow::bail!("server not healthy after 120 s");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    }

    /// Resident set size in bytes, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        rss_of(&self.child.id().to_string())
    }

    /// CPU time (user + system) the process has used so far.
    /// Bytes the process has caused to be written to the disk (`write_bytes` in `/proc/<pid>/io`).
    pub fn io_write_bytes(&self) -> u64 {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.child.id())).unwrap_or_default();
        io.lines().find_map(|l| l.strip_prefix("write_bytes:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }

    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (ticks(11) + ticks(12)) / 100.0
    }

    /// SIGTERM, then wait (the node flushes and exits).
    pub fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The sibling binaries of this one (`ticketing`, `bench-hello`), built by the same cargo run.
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name(name);
    anyhow::ensure!(path.exists(), "{} not found next to the load generator (cargo build --bins)", path.display());
    Ok(path)
}

/// `wrk -t2 -cN -dDs` on `url`, when wrk is installed: its requests/s.
pub fn wrk(url: &str, connections: usize, seconds: u64) -> Option<f64> {
    let out =
        Command::new("wrk").args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s"), url]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| l.strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok())
}

/// The resident set size in bytes of process `pid` (`self`: this one), from /proc.
pub fn rss_of(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
