//! The scenarios of issue 8, each with the invariant it must leave intact, and the helpers
//! the other scenarios (memory, postgres) share.

use super::http1::{request, Conn, Response};
use super::load::{self, Recorder};
use super::report::Report;
use super::servers::{self, Server};
use super::Config;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) fn block_on<F: Future>(f: F) -> anyhow::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(f))
}

fn until(seconds: u64) -> Instant {
    Instant::now() + Duration::from_secs(seconds)
}

/// A unique suffix, so a run never collides with an earlier one's accounts.
pub(super) fn run_tag() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

async fn signup(conn: &mut Conn, email: &str) -> anyhow::Result<String> {
    let body = format!(r#"{{"email":"{email}","password":"bench-password"}}"#);
    let res = conn.send(&request("POST", "/api/users/signup", None, Some(&body))).await?;
    anyhow::ensure!(res.status == 201, "sign-up answered {}", res.status);
    res.session.ok_or_else(|| anyhow::anyhow!("sign-up set no session cookie"))
}

pub(super) fn signup_one(addr: SocketAddr, email: &str) -> anyhow::Result<String> {
    block_on(async { signup(&mut Conn::connect(addr).await?, email).await })?
}

/// Creates `n` tickets for `seller` over the given connections; their ids.
pub(super) fn create_tickets(
    addr: SocketAddr,
    connections: usize,
    seller: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let seller = Arc::new(seller.to_string());
    let rec = load::for_each(addr, connections, (0..n).collect(), move |items, c, k, mut conn| {
        let seller = Arc::clone(&seller);
        async move {
            let mut rec = Recorder::default();
            for i in items.iter().skip(c).step_by(k) {
                let body = format!(r#"{{"title":"seat {i}","price":15}}"#);
                match conn.send(&request("POST", "/api/tickets", Some(&seller), Some(&body))).await {
                    Ok(r) if r.status == 201 => rec.notes.extend(r.id()),
                    Ok(r) => *rec.statuses.entry(r.status).or_default() += 1,
                    Err(_) => rec.errors += 1,
                }
            }
            rec
        }
    })?;
    anyhow::ensure!(rec.notes.len() == n, "created {} of {n} tickets ({})", rec.notes.len(), rec.statuses_text());
    Ok(rec.notes)
}

/// Sends one request, recording its latency and status (or an I/O error).
async fn timed(conn: &mut Conn, rec: &mut Recorder, req: &[u8]) -> Option<Response> {
    let started = Instant::now();
    match conn.send(req).await {
        Ok(res) => {
            rec.record(started, res.status);
            Some(res)
        }
        Err(_) => {
            rec.errors += 1;
            None
        }
    }
}

/// `/healthz` of the node and of the hello server, measured by this generator, and by `wrk`
/// when it is installed (the generator must not be the bottleneck).
pub(super) fn ceilings(config: &Config, node: &Server, report: &mut Report) -> anyhow::Result<()> {
    let hello = Server::hello(&servers::sibling("bench-hello")?)?;
    let healthz = |addr: SocketAddr| {
        let seconds = config.seconds;
        load::run(addr, 2, config.connections, move |_, mut conn| async move {
            let mut rec = Recorder::default();
            let req = request("GET", "/healthz", None, None);
            let end = until(seconds);
            while Instant::now() < end {
                timed(&mut conn, &mut rec, &req).await;
            }
            rec
        })
    };
    let node_run = healthz(node.addr)?;
    let hello_run = healthz(hello.addr)?;
    report.ceiling = Some(node_run.rate());
    report.hello = Some(hello_run.rate());
    report.row("`GET /healthz` (node; the ceiling)", node_run.rate(), &node_run.rec);
    report.row("`GET /healthz` (reference hello server)", hello_run.rate(), &hello_run.rec);
    let seconds = config.seconds.max(2);
    match servers::wrk(&format!("http://{}/healthz", node.addr), config.connections, seconds) {
        Some(wrk) => report.fact(format!(
            "wrk -t2 -c{} on the node's /healthz: {wrk:.0} req/s; this generator reached {:.2} of it",
            config.connections,
            node_run.rate() / wrk
        )),
        None => report.fact("wrk not installed: generator-vs-wrk check skipped"),
    }
    hello.stop();
    Ok(())
}

/// Reserve a random ticket, cancel the order; repeat. Every 201 must stay readable and no
/// ticket may end with two live orders.
pub(super) fn marketplace(config: &Config, node: &Server, report: &mut Report) -> anyhow::Result<Vec<String>> {
    let addr = node.addr;
    let tag = run_tag();
    let seller = signup_one(addr, &format!("seller-{tag}@bench.test"))?;
    let buyer = Arc::new(signup_one(addr, &format!("buyer-{tag}@bench.test"))?);
    let setup = Instant::now();
    let tickets: Arc<[String]> = create_tickets(addr, config.connections, &seller, config.tickets)?.into();
    report.fact(format!(
        "setup: {} tickets created over HTTP in {:.1} s ({:.0}/s)",
        tickets.len(),
        setup.elapsed().as_secs_f64(),
        tickets.len() as f64 / setup.elapsed().as_secs_f64()
    ));
    let disk = flushes(addr)?;
    let (written, disk_bytes) = (samples(addr, "ticketing_storage_written_total{")?, node.io_write_bytes());
    let cpu = node.cpu_seconds();
    let run = reserve_and_cancel(config, addr, &tickets, &buyer)?;
    let cpu = node.cpu_seconds() - cpu;
    disk_fact(report, "marketplace", disk, flushes(addr)?, &run);
    let reserved = run.rec.count(201);
    written_fact(
        report,
        &written,
        &samples(addr, "ticketing_storage_written_total{")?,
        node.io_write_bytes() - disk_bytes,
        reserved,
    );
    report.fact(format!(
        "marketplace: the node's CPU per reserve + cancel: {:.3} ms ({:.2} cores busy)",
        cpu * 1000.0 / reserved.max(1) as f64,
        cpu / run.elapsed.as_secs_f64()
    ));
    report.marketplace_steps = Some(reserved as f64 / run.elapsed.as_secs_f64());
    report.row(
        format!(
            "marketplace: reserve + cancel ({} tickets; {:.0} steps/s)",
            tickets.len(),
            reserved as f64 / run.elapsed.as_secs_f64()
        ),
        run.rate(),
        &run.rec,
    );
    if run.rec.count(503) > 0 {
        report.fact(format!(
            "marketplace: {} 503s, {} with Retry-After",
            run.rec.count(503),
            run.rec.retry_after_on_503
        ));
    }
    check_orders(addr, config.connections, &buyer, &run.rec.notes, report)?;
    Ok(tickets.to_vec())
}

/// The marketplace loop through `addr`: reserve a random ticket, cancel the order; notes name
/// every acknowledged order (`A ticket order`) and cancel (`C order`) for [`check_orders`].
pub(super) fn reserve_and_cancel(
    config: &Config,
    addr: SocketAddr,
    tickets: &Arc<[String]>,
    buyer: &Arc<String>,
) -> anyhow::Result<load::Run> {
    let seconds = config.seconds;
    let (ids, who) = (Arc::clone(tickets), Arc::clone(buyer));
    load::run(addr, 2, config.connections, move |c, mut conn| {
        let (ids, buyer) = (Arc::clone(&ids), Arc::clone(&who));
        async move {
            let mut rec = Recorder::default();
            let mut rng = StdRng::seed_from_u64(c as u64);
            let end = until(seconds);
            while Instant::now() < end {
                let ticket = &ids[rng.gen_range(0..ids.len())];
                let body = format!(r#"{{"ticketId":"{ticket}"}}"#);
                let Some(res) =
                    timed(&mut conn, &mut rec, &request("POST", "/api/orders", Some(&buyer), Some(&body))).await
                else {
                    continue;
                };
                if res.status == 503 && res.retry_after {
                    rec.retry_after_on_503 += 1;
                }
                let Some(order) = res.id().filter(|_| res.status == 201) else { continue };
                rec.notes.push(format!("A {ticket} {order}"));
                let cancel = request("DELETE", &format!("/api/orders/{order}"), Some(&buyer), None);
                if let Some(res) = timed(&mut conn, &mut rec, &cancel).await {
                    if res.status == 204 {
                        rec.notes.push(format!("C {order}"));
                    }
                }
            }
            rec
        }
    })
}

/// Two nodes over RabbitMQ: `a` owns every shard, `b` owns none and forwards. The same
/// reserve + cancel loop runs against each, so the ratio is the cost of the hop.
pub(super) fn cluster(
    config: &Config,
    binary: &std::path::Path,
    env: &[(&str, String)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let tag = run_tag();
    let name = format!("bench{}", tag % 1_000_000_000);
    let amqp = std::env::var("BENCH_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let node = |id: &str| {
        let mut env: Vec<(&str, String)> = env.to_vec();
        env.extend([
            ("TICKETING_CLUSTER__AMQP_URL", amqp.clone()),
            ("TICKETING_CLUSTER__NAME", name.clone()),
            ("TICKETING_CLUSTER__NODE_ID", id.to_string()),
            ("TICKETING_CLUSTER__MEMBERS", "a".to_string()),
        ]);
        env
    };
    let (data_a, data_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let owner = Server::ticketing(binary, data_a.path(), &node("a"))?;
    let gateway = Server::ticketing(binary, data_b.path(), &node("b"))?;
    let seller = signup_one(owner.addr, &format!("seller-{tag}@bench.test"))?;
    let buyer = Arc::new(signup_one(owner.addr, &format!("buyer-{tag}@bench.test"))?);
    let tickets: Arc<[String]> = create_tickets(owner.addr, config.connections, &seller, config.tickets)?.into();
    let ceiling = load::run(gateway.addr, 2, config.connections, {
        let seconds = config.seconds;
        move |_, mut conn| async move {
            let mut rec = Recorder::default();
            let end = until(seconds);
            while Instant::now() < end {
                timed(&mut conn, &mut rec, &request("GET", "/healthz", None, None)).await;
            }
            rec
        }
    })?;
    report.row("cluster: gateway node `/healthz` (its ceiling)", ceiling.rate(), &ceiling.rec);
    let local = reserve_and_cancel(config, owner.addr, &tickets, &buyer)?;
    report.row("cluster: reserve + cancel on the owning node", local.rate(), &local.rec);
    check_orders(owner.addr, config.connections, &buyer, &local.rec.notes, report)?;
    let forwarded = reserve_and_cancel(config, gateway.addr, &tickets, &buyer)?;
    report.row(
        "cluster: reserve + cancel through a node that owns nothing (forwarded)",
        forwarded.rate(),
        &forwarded.rec,
    );
    check_orders(gateway.addr, config.connections, &buyer, &forwarded.rec.notes, report)?;
    report.fact(format!(
        "cluster: forwarded reserve + cancel at {:.2} of the local rate ({:.0} vs {:.0} req/s); p50 {:.2} vs {:.2} ms, p99 {:.2} vs {:.2} ms",
        forwarded.rate() / local.rate().max(1.0),
        forwarded.rate(),
        local.rate(),
        forwarded.rec.percentile_ms(50.0),
        local.rec.percentile_ms(50.0),
        forwarded.rec.percentile_ms(99.0),
        local.rec.percentile_ms(99.0),
    ));
    gateway.stop();
    owner.stop();
    let names = ticketing::cluster::Names::new(&name);
    block_on(ticketing::cluster::events::delete_cluster(&amqp, &names, &["a", "b"], 64, &[]))?;
    Ok(())
}

/// Two members on a three-node broker (`scripts/brokers`, or `BENCH_BROKERS`), each owning half
/// the shards and following the other half, with the shards' logs off (`replicas = 0`) and on
/// (`replicas = 1`): the marketplace loop against one member on tickets of its own shards, so
/// the difference is what appending every write to its shard's log (and the other member
/// following it) costs. CPU-seconds per step for each process.
pub(super) fn replicated(
    config: &Config,
    binary: &std::path::Path,
    env: &[(&str, String)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let brokers = std::env::var("BENCH_BROKERS").unwrap_or_else(|_| {
        (1..=3).map(|i| format!("amqp://guest:guest@127.0.0.1:568{i}/%2f")).collect::<Vec<_>>().join(",")
    });
    let mut rates = Vec::new();
    for replicas in [0u32, 1] {
        let tag = run_tag();
        let name = format!("bench{}", tag % 1_000_000_000);
        let node = |id: &str| {
            let mut env: Vec<(&str, String)> = env.to_vec();
            env.extend([
                ("TICKETING_CLUSTER__AMQP_URL", brokers.clone()),
                ("TICKETING_CLUSTER__NAME", name.clone()),
                ("TICKETING_CLUSTER__NODE_ID", id.to_string()),
                ("TICKETING_CLUSTER__MEMBERS", "a,b".to_string()),
                ("TICKETING_CLUSTER__REPLICAS", replicas.to_string()),
            ]);
            env
        };
        let (data_a, data_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let a = Server::ticketing(binary, data_a.path(), &node("a"))?;
        let b = Server::ticketing(binary, data_b.path(), &node("b"))?;
        let seller = signup_one(a.addr, &format!("seller-{tag}@bench.test"))?;
        let buyer = Arc::new(signup_one(a.addr, &format!("buyer-{tag}@bench.test"))?);
        let tickets: Arc<[String]> = create_tickets(a.addr, config.connections, &seller, config.tickets)?.into();
        let cpu = (a.cpu_seconds(), b.cpu_seconds());
        let appended = |unit: &str| {
            metric(a.addr, &format!("ticketing_cluster_log_appended_total{{unit=\"{unit}\"}} "))
                .map(|v| v.unwrap_or(0.0))
        };
        let logged = (appended("entries")?, appended("bytes")?);
        let run = reserve_and_cancel(config, a.addr, &tickets, &buyer)?;
        let used = (a.cpu_seconds() - cpu.0, b.cpu_seconds() - cpu.1);
        let logged = (appended("entries")? - logged.0, appended("bytes")? - logged.1);
        report.row(format!("replicated: reserve + cancel on a member, replicas = {replicas}"), run.rate(), &run.rec);
        check_orders(a.addr, config.connections, &buyer, &run.rec.notes, report)?;
        let steps = run.rec.notes.iter().filter(|n| n.starts_with("A ")).count().max(1) as f64;
        report.fact(format!(
            "replicas = {replicas}: CPU per reserve + cancel: member a {:.3} ms, member b {:.3} ms; log entries per step {:.2} ({:.0} bytes)",
            used.0 * 1000.0 / steps,
            used.1 * 1000.0 / steps,
            logged.0 / steps,
            logged.1 / steps
        ));
        rates.push(run.rate());
        b.stop();
        a.stop();
        let names = ticketing::cluster::Names::new(&name);
        let first = brokers.split(',').next().unwrap_or_default().to_string();
        block_on(ticketing::cluster::events::delete_cluster(&first, &names, &["a", "b"], 64, &[]))?;
    }
    if let [off, on] = rates[..] {
        report.fact(format!(
            "replicated: with every write logged and followed, a member's local reserve + cancel runs at {:.2} of its rate without logs ({on:.0} vs {off:.0} req/s)",
            on / off.max(1.0)
        ));
    }
    Ok(())
}

/// Every acknowledged order is readable; every acknowledged cancel reads `cancelled`; no
/// ticket has two live orders.
pub(super) fn check_orders(
    addr: SocketAddr,
    connections: usize,
    buyer: &Arc<String>,
    notes: &[String],
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut placed: Vec<(String, String)> = Vec::new();
    let mut cancelled = std::collections::HashSet::new();
    for n in notes {
        let parts: Vec<&str> = n.split(' ').collect();
        match parts.as_slice() {
            ["A", ticket, order] => placed.push((ticket.to_string(), order.to_string())),
            ["C", order] => {
                cancelled.insert(order.to_string());
            }
            _ => {}
        }
    }
    let buyer = Arc::clone(buyer);
    let seen = load::for_each(addr, connections, placed.clone(), move |items, c, k, mut conn| {
        let buyer = Arc::clone(&buyer);
        async move {
            let mut rec = Recorder::default();
            for (ticket, order) in items.iter().skip(c).step_by(k) {
                let res = conn.send(&request("GET", &format!("/api/orders/{order}"), Some(&buyer), None)).await;
                let status = match res {
                    Ok(r) if r.status == 200 => {
                        r.json().and_then(|j| j.get("status")?.as_str().map(str::to_string)).unwrap_or_default()
                    }
                    Ok(r) => format!("http-{}", r.status),
                    Err(_) => "io-error".into(),
                };
                rec.notes.push(format!("{ticket} {order} {status}"));
            }
            rec
        }
    })?;
    let mut live_per_ticket: HashMap<String, u32> = HashMap::new();
    let mut unreadable = 0;
    for n in &seen.notes {
        let mut parts = n.split(' ');
        let (Some(ticket), Some(order), Some(status)) = (parts.next(), parts.next(), parts.next()) else { continue };
        match status {
            "cancelled" => {}
            "created" | "awaiting:payment" | "complete" => {
                *live_per_ticket.entry(ticket.to_string()).or_default() += 1;
                report.check(!cancelled.contains(order), || {
                    format!("order {order}: cancel acknowledged, reads {status}")
                });
            }
            other => {
                unreadable += 1;
                report.violation(format!("acknowledged order {order} reads {other}"));
            }
        }
    }
    let doubles = live_per_ticket.values().filter(|n| **n > 1).count();
    report.check(doubles == 0, || format!("{doubles} tickets with two live orders"));
    report.fact(format!(
        "marketplace check: {} acknowledged orders read back ({unreadable} unreadable), {} cancels acknowledged, 0 tickets with two live orders expected, {doubles} found",
        placed.len(),
        cancelled.len()
    ));
    Ok(())
}

/// One ticket, every buyer signed in and connected, all press Purchase at once.
pub(super) fn flash_sale(config: &Config, addr: SocketAddr, report: &mut Report) -> anyhow::Result<()> {
    let tag = run_tag();
    let seller = signup_one(addr, &format!("flash-seller-{tag}@bench.test"))?;
    let ticket = create_tickets(addr, 1, &seller, 1)?.remove(0);
    let setup = Instant::now();
    let signed = load::for_each(
        addr,
        config.connections,
        (0..config.buyers).collect(),
        move |items, c, k, mut conn| async move {
            let mut rec = Recorder::default();
            for i in items.iter().skip(c).step_by(k) {
                match signup(&mut conn, &format!("flash-{tag}-{i}@bench.test")).await {
                    Ok(cookie) => rec.notes.push(cookie),
                    Err(_) => rec.errors += 1,
                }
            }
            rec
        },
    )?;
    anyhow::ensure!(signed.notes.len() == config.buyers, "only {} buyers signed up", signed.notes.len());
    report.fact(format!(
        "flash sale setup: {} buyers signed up in {:.1} s",
        config.buyers,
        setup.elapsed().as_secs_f64()
    ));
    let cookies: Arc<[String]> = signed.notes.into();
    let body = Arc::new(format!(r#"{{"ticketId":"{ticket}"}}"#));
    let disk = flushes(addr)?;
    let run = load::run(addr, 2, config.buyers, move |c, mut conn| {
        let (cookies, body) = (Arc::clone(&cookies), Arc::clone(&body));
        async move {
            let mut rec = Recorder::default();
            timed(&mut conn, &mut rec, &request("POST", "/api/orders", Some(&cookies[c]), Some(&body))).await;
            rec
        }
    })?;
    disk_fact(report, "flash sale", disk, flushes(addr)?, &run);
    report.row(
        format!(
            "flash sale: {} buyers, 1 ticket (whole burst {:.0} ms)",
            config.buyers,
            run.elapsed.as_secs_f64() * 1000.0
        ),
        run.rate(),
        &run.rec,
    );
    let (wins, refused) = (run.rec.count(201), run.rec.count(400));
    report.check(wins == 1, || format!("flash sale: {wins} buyers got the one ticket"));
    report.check(wins + refused == config.buyers as u64, || {
        format!("flash sale: answers other than 201/400: {}", run.rec.statuses_text())
    });
    Ok(())
}

/// The owner updates one ticket from every connection: durable writes per second on one actor.
pub(super) fn hot_entity(config: &Config, addr: SocketAddr, report: &mut Report) -> anyhow::Result<()> {
    let seller = Arc::new(signup_one(addr, &format!("hot-{}@bench.test", run_tag()))?);
    let ticket = Arc::new(create_tickets(addr, 1, &seller, 1)?.remove(0));
    let seconds = config.seconds;
    let disk = flushes(addr)?;
    let (who, id) = (Arc::clone(&seller), Arc::clone(&ticket));
    let run = load::run(addr, 2, config.connections, move |c, mut conn| {
        let (seller, ticket) = (Arc::clone(&who), Arc::clone(&id));
        async move {
            let mut rec = Recorder::default();
            let path = format!("/api/tickets/{ticket}");
            let end = until(seconds);
            let mut n = 0u64;
            while Instant::now() < end {
                n += 1;
                let body = format!(r#"{{"title":"hot seat","price":{}}}"#, 10 + (c as u64 * 7 + n) % 90);
                timed(&mut conn, &mut rec, &request("PUT", &path, Some(&seller), Some(&body))).await;
            }
            rec
        }
    })?;
    disk_fact(report, "hot entity", disk, flushes(addr)?, &run);
    let writes = run.rec.count(200);
    report.row("hot entity: `PUT` one ticket (durable writes/s)", writes as f64 / run.elapsed.as_secs_f64(), &run.rec);
    // Every acknowledged update is one version: the ticket must read exactly that many.
    let version = block_on(async {
        let mut conn = Conn::connect(addr).await?;
        let r = conn.send(&request("GET", &format!("/api/tickets/{ticket}"), None, None)).await?;
        Ok::<_, anyhow::Error>(r.json().and_then(|j| j.get("version")?.as_u64()))
    })??;
    report.check(version == Some(writes), || {
        format!("hot entity: {writes} updates acknowledged, ticket reads version {version:?}")
    });
    Ok(())
}

pub(super) fn browse(config: &Config, addr: SocketAddr, tickets: &[String], report: &mut Report) -> anyhow::Result<()> {
    anyhow::ensure!(!tickets.is_empty(), "browse needs the marketplace's tickets");
    let ids: Arc<[String]> = tickets.to_vec().into();
    for list in [false, true] {
        let (ids, seconds) = (Arc::clone(&ids), config.seconds);
        let run = load::run(addr, 2, config.connections, move |c, mut conn| {
            let ids = Arc::clone(&ids);
            async move {
                let mut rec = Recorder::default();
                let mut rng = StdRng::seed_from_u64(1000 + c as u64);
                let end = until(seconds);
                while Instant::now() < end {
                    let id = &ids[rng.gen_range(0..ids.len())];
                    let path =
                        if list { format!("/api/tickets?limit=20&cursor={id}") } else { format!("/api/tickets/{id}") };
                    timed(&mut conn, &mut rec, &request("GET", &path, None, None)).await;
                }
                rec
            }
        })?;
        let name = if list {
            "browse: `GET /api/tickets?limit=20` (random cursor)"
        } else {
            "browse: `GET /api/tickets/:id` (random)"
        };
        report.row(name, run.rate(), &run.rec);
        report.check(run.rec.count_2xx() == run.rec.requests(), || {
            format!("{name}: non-2xx answers: {}", run.rec.statuses_text())
        });
    }
    Ok(())
}

/// A million stored tickets and a hundred thousand pending deadlines: memory, cold
/// activation, and restart to ready.
pub(super) fn scale(
    config: &Config,
    binary: &std::path::Path,
    env: &[(&str, String)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let started = Instant::now();
    let hour = 3_600_000;
    let seeded = block_on(ticketing::app::seed::seed(data.path(), config.scale_tickets, config.scale_pending, hour))??;
    report.fact(format!(
        "scale: seeded {} tickets, {} held with pending deadlines, in {:.1} s",
        seeded.tickets.len(),
        config.scale_pending,
        started.elapsed().as_secs_f64()
    ));
    let node = Server::ticketing(binary, data.path(), env)?;
    report.fact(format!("scale: first start to ready (read model already built): {} ms", node.ready_after.as_millis()));
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = node.rss_bytes();
    report.fact(format!("scale: RSS with every actor passivated: {} MiB", idle_rss >> 20));
    let live: Vec<String> = seeded
        .tickets
        .iter()
        .skip(config.scale_pending)
        .chain(seeded.tickets.iter())
        .take(config.scale_live)
        .map(|t| t.to_string())
        .collect();
    let cold = load::for_each(node.addr, config.connections, live, |items, c, k, mut conn| async move {
        let mut rec = Recorder::default();
        for id in items.iter().skip(c).step_by(k) {
            timed(&mut conn, &mut rec, &request("GET", &format!("/api/tickets/{id}"), None, None)).await;
        }
        rec
    })?;
    let mut cold = cold;
    cold.latencies_us.sort_unstable();
    report.row(format!("scale: first `GET` of {} cold tickets (activation)", config.scale_live), 0.0, &cold);
    report.check(cold.count(200) == config.scale_live as u64, || {
        format!("scale: cold reads answered {}", cold.statuses_text())
    });
    let live_actors = metric(node.addr, "ticketing_actors_live{kind=\"ticket\"}")?;
    let live_rss = node.rss_bytes();
    report.fact(format!(
        "scale: RSS with {} live ticket actors: {} MiB; {:.0} bytes per live idle actor",
        live_actors.unwrap_or(0.0),
        live_rss >> 20,
        (live_rss.saturating_sub(idle_rss)) as f64 / config.scale_live as f64
    ));
    let timers = metric(node.addr, "ticketing_timers_pending")?;
    report.check(timers == Some(config.scale_pending as f64), || {
        format!("scale: {timers:?} deadlines armed, {} stored", config.scale_pending)
    });
    node.stop();
    let node = Server::ticketing(binary, data.path(), env)?;
    report.fact(format!(
        "scale: restart to ready with {} tickets and {} pending deadlines: {} ms",
        config.scale_tickets,
        config.scale_pending,
        node.ready_after.as_millis()
    ));
    let timers = metric(node.addr, "ticketing_timers_pending")?;
    report.check(timers == Some(config.scale_pending as f64), || {
        format!("scale: after restart {timers:?} deadlines armed")
    });
    node.stop();
    Ok(())
}

/// Flushes so far and their total seconds, from the node's metrics.
fn flushes(addr: SocketAddr) -> anyhow::Result<(f64, f64)> {
    let count = metric(addr, "ticketing_storage_flush_duration_seconds_count")?.unwrap_or(0.0);
    let sum = metric(addr, "ticketing_storage_flush_duration_seconds_sum")?.unwrap_or(0.0);
    Ok((count, sum))
}

/// Reports the disk side of a timed scenario: flushes per request and the mean flush time.
fn disk_fact(report: &mut Report, name: &str, before: (f64, f64), after: (f64, f64), run: &load::Run) {
    let (n, secs) = (after.0 - before.0, after.1 - before.1);
    if n > 0.0 {
        report.fact(format!(
            "{name}: {n:.0} flushes, {:.1} requests per flush, mean flush {:.2} ms, flushing {:.0}% of the time",
            run.rec.requests() as f64 / n,
            secs / n * 1000.0,
            secs * 100.0 / run.elapsed.as_secs_f64()
        ));
    }
}

/// One sample of the node's `/metrics`.
/// Every sample of the metrics whose line starts with `prefix`: its labels and value.
fn samples(addr: SocketAddr, prefix: &str) -> anyhow::Result<HashMap<String, f64>> {
    block_on(async {
        let mut conn = Conn::connect(addr).await?;
        let r = conn.send(&request("GET", "/metrics", None, None)).await?;
        let text = String::from_utf8_lossy(&r.body).to_string();
        Ok::<_, anyhow::Error>(
            text.lines()
                .filter_map(|l| l.strip_prefix(prefix)?.split_once("} "))
                .filter_map(|(labels, v)| Some((labels.to_string(), v.trim().parse().ok()?)))
                .collect(),
        )
    })?
}

/// Keys and bytes written per step, by tree, kind and op (the node's write counters), and the
/// bytes the process wrote to the disk per step (`/proc/<pid>/io`).
fn written_fact(
    report: &mut Report,
    before: &HashMap<String, f64>,
    after: &HashMap<String, f64>,
    disk: u64,
    steps: u64,
) {
    let steps = steps.max(1) as f64;
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    for (labels, value) in after {
        let Some(keys_labels) = labels.strip_suffix(",unit=\"keys\"") else { continue };
        let keys = value - before.get(labels).copied().unwrap_or(0.0);
        let bytes_labels = format!("{keys_labels},unit=\"bytes\"");
        let bytes =
            after.get(&bytes_labels).copied().unwrap_or(0.0) - before.get(&bytes_labels).copied().unwrap_or(0.0);
        if keys > 0.0 {
            rows.push((keys_labels.replace('"', ""), keys / steps, bytes / steps));
        }
    }
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    let (keys, bytes) = rows.iter().fold((0.0, 0.0), |(k, b), r| (k + r.1, b + r.2));
    report.fact(format!(
        "marketplace writes per reserve + cancel: {keys:.1} keys, {bytes:.0} B applied ({}); the process wrote {:.0} B to disk per step ({:.1}× what it applied)",
        rows.iter().map(|(l, k, b)| format!("{l}: {k:.2} keys {b:.0} B")).collect::<Vec<_>>().join("; "),
        disk as f64 / steps,
        disk as f64 / steps / bytes.max(1.0),
    ));
}

pub(super) fn metric(addr: SocketAddr, name: &str) -> anyhow::Result<Option<f64>> {
    block_on(async {
        let mut conn = Conn::connect(addr).await?;
        let r = conn.send(&request("GET", "/metrics", None, None)).await?;
        let text = String::from_utf8_lossy(&r.body).to_string();
        Ok::<_, anyhow::Error>(text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()))
    })?
}
