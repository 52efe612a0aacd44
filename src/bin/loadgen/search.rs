//! Finding a ticket among a million (issue 21): `GET /api/tickets?q=&sort=&page=` over one
//! connection, for words matching 0.1%, 10% and 50% of the tickets, every order, pages 1 and
//! 50; the index's memory (built here, in this process, over the same listings) and the node's
//! restart to ready with it.

use super::http1::{request, Conn};
use super::load::Recorder;
use super::report::Report;
use super::scenarios::block_on;
use super::servers::Server;
use super::Config;
use std::time::{Duration, Instant};
use ticketing::domain::Price;

/// Ticket `n`'s title and price: `rare` in 0.1% of the titles, `tenth` in 10%, `half` in 50%,
/// a city of twenty and a seat number; prices spread from 1.00 to 1,000.99.
fn listing(n: usize) -> (String, Price) {
    const CITIES: [&str; 20] = [
        "paris",
        "lyon",
        "berlin",
        "madrid",
        "rome",
        "vienna",
        "prague",
        "oslo",
        "dublin",
        "lisbon",
        "athens",
        "warsaw",
        "zurich",
        "milan",
        "munich",
        "brussels",
        "amsterdam",
        "london",
        "porto",
        "sevilla",
    ];
    let mut title = format!("{} concert seat {}", CITIES[n % CITIES.len()], n % 500);
    for (every, word) in [(1000, "rare"), (10, "tenth"), (2, "half")] {
        if n % every == 0 {
            title.push(' ');
            title.push_str(word);
        }
    }
    (title, Price::from_cents(100 + (n as u64 * 7919) % 100_000))
}

pub(super) fn search(
    config: &Config,
    binary: &std::path::Path,
    env: &[(&str, String)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let n = config.search_tickets;
    // The index's memory, measured: this process's RSS before and after building it.
    let before = super::servers::rss_of("self");
    let started = Instant::now();
    let index = ticketing::app::search::TicketIndex::build((0..n).map(|i| {
        let (title, price) = listing(i);
        let ticket = ticketing::domain::Ticket {
            id: ticketing::domain::TicketId::new_in(ticketing::domain::Slot((i % 4096) as u16)),
            title,
            price,
            user_id: ticketing::domain::UserId::new_in(ticketing::domain::Slot(0)),
            version: 0,
            order_id: None,
            updated_at_ms: 0,
        };
        (ticket, true)
    }));
    let built_in = started.elapsed();
    let measured = super::servers::rss_of("self").saturating_sub(before);
    report.fact(format!(
        "search: index of {n} tickets: {} MiB measured (RSS), {} MiB estimated by the node's gauge; built in {} ms",
        measured >> 20,
        index.heap_bytes() >> 20,
        built_in.as_millis()
    ));
    if !config.smoke {
        report.check(measured <= 80 << 20, || format!("search: the index takes {} MiB (> 80)", measured >> 20));
    }
    drop(index);

    let data = tempfile::tempdir()?;
    let started = Instant::now();
    block_on(ticketing::app::seed::seed_with(data.path(), n, 0, 0, listing))??;
    report.fact(format!("search: seeded {n} tickets in {:.1} s", started.elapsed().as_secs_f64()));
    let node = Server::ticketing(binary, data.path(), env)?;
    node.stop();
    // Restarted: the read model is on disk, the index is rebuilt before the node is ready.
    let node = Server::ticketing(binary, data.path(), env)?;
    report.fact(format!(
        "search: restart to ready with {n} tickets, the index rebuilt: {} ms",
        node.ready_after.as_millis()
    ));
    report.check(node.ready_after <= Duration::from_secs(5), || {
        format!("search: restart to ready took {} ms (> 5 s)", node.ready_after.as_millis())
    });
    let repeats = if config.smoke { 3 } else { 40 };
    block_on(async {
        let mut conn = Conn::connect(node.addr).await?;
        // The first request after the start reads cold pages of the store: told apart.
        let started = Instant::now();
        let first = conn.send(&request("GET", "/api/tickets?q=concert&limit=20", None, None)).await?;
        report.fact(format!(
            "search: the first search after the restart ({}) took {:.1} ms",
            first.status,
            started.elapsed().as_secs_f64() * 1000.0
        ));
        for (word, share) in [("rare", "0.1%"), ("tenth", "10%"), ("half", "50%")] {
            for sort in ["newest", "price", "-price"] {
                for page in [1, 50] {
                    let path = format!("/api/tickets?q={word}&sort={sort}&page={page}&limit=20");
                    let mut rec = Recorder::default();
                    let mut got = 0;
                    for _ in 0..repeats {
                        let started = Instant::now();
                        let res = conn.send(&request("GET", &path, None, None)).await?;
                        rec.record(started, res.status);
                        got = serde_json::from_slice::<serde_json::Value>(&res.body)?.as_array().map_or(0, Vec::len);
                    }
                    rec.latencies_us.sort_unstable();
                    let name = format!("search: `q={word}` ({share}) `sort={sort}` page {page}, one connection");
                    report.row(&name, 0.0, &rec);
                    report.check(rec.count(200) == repeats, || format!("{name}: {}", rec.statuses_text()));
                    // Every page is full but the rare word's 50th (1,000 matches, 20 a page).
                    let full = !(word == "rare" && page == 50) || n >= 1_000_000;
                    report.check(!full || got == 20, || format!("{name}: {got} tickets on the page"));
                    if !config.smoke {
                        report.check(rec.percentile_ms(99.0) <= 20.0, || {
                            format!("{name}: p99 {:.1} ms (> 20)", rec.percentile_ms(99.0))
                        });
                    }
                }
            }
        }
        Ok::<_, anyhow::Error>(())
    })??;
    report.fact(format!("search: node RSS with the index: {} MiB", node.rss_bytes() >> 20));
    node.stop();
    Ok(())
}
