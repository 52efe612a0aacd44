//! The peer: PostgreSQL doing the marketplace's step, reserve + cancel, as two conditional
//! `UPDATE` transactions (each its own autocommit transaction, so each waits for its commit to
//! be flushed when `synchronous_commit` is on), over the same number of clients and threads as
//! the generator gives the node. Its client count is its best of 8, 16, 32 and 64. The server
//! is `BENCH_POSTGRES` (`scripts/bench` starts a private one when root); its settings are
//! printed, and the same invariant as the node's holds: no ticket with two live orders.

use super::load::{self, Recorder, Run};
use super::report::Report;
use super::Config;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

/// Client counts tried; the best by its own steps/s is the one measured.
const CLIENTS: [usize; 4] = [8, 16, 32, 64];

/// What each step's statements answered, as the node's HTTP statuses say it.
const RESERVED: u16 = 201;
const TAKEN: u16 = 409;
const CANCELLED: u16 = 204;
const FAILED: u16 = 500;

pub fn postgres(config: &Config, report: &mut Report) -> anyhow::Result<()> {
    let Ok(url) = std::env::var("BENCH_POSTGRES") else {
        report.fact("postgres: BENCH_POSTGRES not set (scripts/bench starts one when root): the peer was not measured");
        return Ok(());
    };
    let table = format!("bench_tickets_{}", std::process::id());
    let settings = super::scenarios::block_on(prepare(&url, &table, config.tickets))??;
    report.fact(format!("postgres: {settings}"));
    let trial = Duration::from_secs((config.seconds / 3).clamp(1, 4));
    let mut trials = Vec::new();
    for clients in CLIENTS {
        let run = steps(&url, &table, config.tickets, clients, trial)?;
        trials.push((clients, reserved_per_second(&run)));
    }
    let best = trials.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)).map_or(CLIENTS[0], |(c, _)| c);
    report.fact(format!(
        "postgres: steps/s by client count over {} s each: {}; measured with {best}",
        trial.as_secs(),
        trials.iter().map(|(c, r)| format!("{c} → {r:.0}")).collect::<Vec<_>>().join(", ")
    ));
    let run = steps(&url, &table, config.tickets, best, Duration::from_secs(config.seconds))?;
    let pg_steps = reserved_per_second(&run);
    report.row(
        format!(
            "postgres: reserve + cancel, two conditional UPDATEs ({} tickets, {best} clients; {pg_steps:.0} steps/s)",
            config.tickets
        ),
        run.rate(),
        &run.rec,
    );
    check(&url, &table, &run.rec, report)?;
    if let Some(ours) = report.marketplace_steps {
        report.fact(format!(
            "marketplace ÷ postgres: {:.2} ({ours:.0} vs {pg_steps:.0} reserve + cancel steps/s, both durable, same generator)",
            ours / pg_steps.max(1.0)
        ));
    }
    super::scenarios::block_on(async {
        let client = connect(&url).await?;
        client.batch_execute(&format!("DROP TABLE {table}")).await?;
        anyhow::Ok(())
    })??;
    Ok(())
}

fn reserved_per_second(run: &Run) -> f64 {
    run.rec.count(RESERVED) as f64 / run.elapsed.as_secs_f64()
}

/// Connects, with the connection's task on the current runtime.
async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("loadgen: postgres connection: {e}");
        }
    });
    Ok(client)
}

/// Creates the table of `tickets` free tickets; the server's settings that matter, as text.
async fn prepare(url: &str, table: &str, tickets: usize) -> anyhow::Result<String> {
    let client = connect(url).await?;
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} (id bigint PRIMARY KEY, title text NOT NULL, price integer NOT NULL,
                                   version integer NOT NULL DEFAULT 0, order_id bigint);
             INSERT INTO {table} (id, title, price) SELECT g, 'seat ' || g, 15 FROM generate_series(0, {}) g;",
            tickets.max(1) - 1
        ))
        .await?;
    // On its own: VACUUM cannot run inside the implicit transaction of a multi-statement batch.
    client.batch_execute(&format!("VACUUM ANALYZE {table}")).await?;
    let mut shown = Vec::new();
    for setting in
        ["server_version", "fsync", "synchronous_commit", "shared_buffers", "wal_sync_method", "max_connections"]
    {
        let value: String = client.query_one(&format!("SHOW {setting}"), &[]).await?.get(0);
        shown.push(format!("{setting} = {value}"));
    }
    anyhow::ensure!(
        shown.iter().any(|s| s == "fsync = on") && shown.iter().any(|s| s == "synchronous_commit = on"),
        "postgres must run durable for the comparison: {}",
        shown.join(", ")
    );
    Ok(shown.join(", "))
}

/// Reserve a random ticket (`order_id` set where none is), cancel it (cleared where it is this
/// order); notes name every acknowledged reserve (`A ticket order`) and cancel (`C order`).
fn steps(url: &str, table: &str, tickets: usize, clients: usize, time: Duration) -> anyhow::Result<Run> {
    let url = Arc::new(url.to_string());
    let reserve = format!("UPDATE {table} SET order_id = $2, version = version + 1 WHERE id = $1 AND order_id IS NULL");
    let cancel = format!("UPDATE {table} SET order_id = NULL, version = version + 1 WHERE id = $1 AND order_id = $2");
    let (reserve, cancel) = (Arc::new(reserve), Arc::new(cancel));
    let run_tag = super::scenarios::run_tag() as i64 & 0xffff_ffff;
    load::run_clients(
        2,
        clients,
        move || {
            let url = Arc::clone(&url);
            async move { connect(&url).await }
        },
        move |c, client| {
            let (reserve, cancel) = (Arc::clone(&reserve), Arc::clone(&cancel));
            async move {
                let mut rec = Recorder::default();
                let (Ok(reserve), Ok(cancel)) = (client.prepare(&reserve).await, client.prepare(&cancel).await) else {
                    rec.errors += 1;
                    return rec;
                };
                let mut rng = StdRng::seed_from_u64(c as u64 ^ run_tag as u64);
                let end = Instant::now() + time;
                let mut n = 0i64;
                while Instant::now() < end {
                    let ticket = rng.gen_range(0..tickets.max(1)) as i64;
                    n += 1;
                    // Unique across clients and runs on the same table.
                    let order = (run_tag << 31) ^ ((c as i64) << 24) ^ n;
                    let reserved = timed_update(&client, &mut rec, &reserve, ticket, order, RESERVED).await;
                    if reserved != RESERVED {
                        continue;
                    }
                    rec.notes.push(format!("A {ticket} {order}"));
                    let cancelled = timed_update(&client, &mut rec, &cancel, ticket, order, CANCELLED).await;
                    if cancelled == CANCELLED {
                        rec.notes.push(format!("C {order}"));
                    }
                }
                rec
            }
        },
    )
}

/// Runs one conditional update of `ticket` for `order`, recording its latency and outcome:
/// `done` when it changed the row, [`TAKEN`] when its condition did not hold.
async fn timed_update(
    client: &tokio_postgres::Client,
    rec: &mut Recorder,
    statement: &tokio_postgres::Statement,
    ticket: i64,
    order: i64,
    done: u16,
) -> u16 {
    let started = Instant::now();
    let status = match client.execute(statement, &[&ticket, &order]).await {
        Ok(1) => done,
        Ok(_) => TAKEN,
        Err(_) => FAILED,
    };
    rec.record(started, status);
    status
}

/// The table agrees with what was acknowledged: every ticket holding an order holds one that
/// was reserved and not cancelled, and no ticket had two reserves live at once.
fn check(url: &str, table: &str, rec: &Recorder, report: &mut Report) -> anyhow::Result<()> {
    let mut placed: HashMap<i64, i64> = HashMap::new();
    let mut live_per_ticket: HashMap<i64, u32> = HashMap::new();
    for note in &rec.notes {
        let parts: Vec<&str> = note.split(' ').collect();
        if let ["A", ticket, order] = parts.as_slice() {
            let (ticket, order) = (ticket.parse::<i64>()?, order.parse::<i64>()?);
            placed.insert(order, ticket);
            *live_per_ticket.entry(ticket).or_default() += 1;
        }
    }
    for note in &rec.notes {
        if let Some(order) = note.strip_prefix("C ") {
            let order: i64 = order.parse()?;
            if let Some(ticket) = placed.remove(&order) {
                *live_per_ticket.entry(ticket).or_default() -= 1;
            }
        }
    }
    let held: Vec<(i64, i64)> = super::scenarios::block_on(async {
        let client = connect(url).await?;
        let rows = client.query(&format!("SELECT id, order_id FROM {table} WHERE order_id IS NOT NULL"), &[]).await?;
        anyhow::Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    })??;
    for (ticket, order) in &held {
        report.check(placed.get(order) == Some(ticket), || {
            format!("postgres: ticket {ticket} holds order {order}, which was not a live acknowledged reserve of it")
        });
    }
    for (ticket, live) in live_per_ticket {
        report.check(live <= 1, || format!("postgres: ticket {ticket} has {live} live acknowledged reserves"));
    }
    report.check(held.len() == placed.len(), || {
        format!("postgres: {} tickets hold an order, {} reserves were left live", held.len(), placed.len())
    });
    Ok(())
}
