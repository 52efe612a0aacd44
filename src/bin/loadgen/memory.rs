//! Memory under sustained load: the marketplace loop for `--memory-seconds`, the node's RSS
//! sampled ten times, then again once every actor has idled out, against a fresh process on
//! the same data. Bounded live actors (`actors.max_live`, settled orders passivated early)
//! keep the first flat; what the process keeps after idling is the second.

use super::report::Report;
use super::scenarios::{check_orders, create_tickets, metric, reserve_and_cancel, run_tag, signup_one};
use super::servers::Server;
use super::Config;
use std::sync::Arc;
use std::time::Duration;

/// Idleness after which the node passivates an actor in this scenario (instead of 300 s), so
/// "after idling" comes within the run.
const IDLE_SECONDS: u64 = 10;
const SAMPLES: u64 = 10;

pub fn memory(
    config: &Config,
    binary: &std::path::Path,
    env: &[(&str, String)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let mut env = env.to_vec();
    env.push(("TICKETING_ACTORS__IDLE_SECONDS", IDLE_SECONDS.to_string()));
    let node = Server::ticketing(binary, data.path(), &env)?;
    let tag = run_tag();
    let seller = signup_one(node.addr, &format!("seller-{tag}@bench.test"))?;
    let buyer = Arc::new(signup_one(node.addr, &format!("buyer-{tag}@bench.test"))?);
    let tickets: Arc<[String]> = create_tickets(node.addr, config.connections, &seller, config.tickets)?.into();
    let chunk = Config { seconds: (config.memory_seconds / SAMPLES).max(1), ..config.clone() };
    let mut samples = Vec::new();
    let mut steps = 0;
    let mut notes = Vec::new();
    for _ in 0..SAMPLES {
        let run = reserve_and_cancel(&chunk, node.addr, &tickets, &buyer)?;
        steps += run.rec.count(201);
        notes.extend(run.rec.notes);
        samples.push(node.rss_bytes() >> 20);
    }
    let live =
        |kind: &str| metric(node.addr, &format!("ticketing_actors_live{{kind=\"{kind}\"}}")).map(|v| v.unwrap_or(0.0));
    let (tickets_live, orders_live) = (live("ticket")?, live("order")?);
    let first = samples.first().copied().unwrap_or(0).max(1);
    let most = samples.iter().copied().max().unwrap_or(0);
    report.fact(format!(
        "memory: {steps} reserve + cancel steps over {} s; RSS every {} s: {} MiB; highest ÷ first {:.2} (target ≤ 1.20); live actors at the end: {tickets_live} tickets, {orders_live} orders",
        chunk.seconds * SAMPLES,
        chunk.seconds,
        samples.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        most as f64 / first as f64,
    ));
    // Every actor idles out (settled orders sooner), then the process's RSS.
    let mut idling = Vec::new();
    for _ in 0..(IDLE_SECONDS + 5) / 3 {
        std::thread::sleep(Duration::from_secs(3));
        idling.push(node.rss_bytes() >> 20);
    }
    let idled = node.rss_bytes() >> 20;
    let after = (live("ticket")?, live("order")?);
    let timers = metric(node.addr, "ticketing_timers_pending")?.unwrap_or(0.0);
    node.stop();
    let fresh = Server::ticketing(binary, data.path(), &env)?;
    std::thread::sleep(Duration::from_secs(1));
    let fresh_rss = fresh.rss_bytes() >> 20;
    // Read back through the fresh process (after the figures: every read activates an actor).
    check_orders(fresh.addr, config.connections, &buyer, &notes, report)?;
    fresh.stop();
    report.fact(format!(
        "memory: idling, every 3 s: {} MiB; after {IDLE_SECONDS} s idle ({} ticket, {} order actors live, {timers} deadlines armed): {idled} MiB; a fresh process on the same data: {fresh_rss} MiB; {} MiB more (target ≤ 50)",
        idling.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        after.0,
        after.1,
        idled as i64 - fresh_rss as i64,
    ));
    Ok(())
}
