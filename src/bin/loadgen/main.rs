//! `loadgen`: the benchmark. Starts a `ticketing` node and the reference hello server on
//! random ports, drives them over HTTP/1.1 on 127.0.0.1 (bounded in time and count), checks
//! the invariants after every scenario, and writes the figures as Markdown.
//!
//! `scripts/bench` runs it with the release build; `scripts/bench --smoke` is the seconds-long
//! run in the test command, so the benchmark cannot rot. Targets are reported, never asserted;
//! a broken invariant fails the run.

mod http1;
mod load;
mod memory;
mod postgres;
mod report;
mod scenarios;
mod search;
mod servers;

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser, Clone)]
#[command(about = "Benchmarks a ticketing node over HTTP on 127.0.0.1")]
pub struct Config {
    /// A seconds-long run with small counts (CI): checks that everything still works.
    #[arg(long)]
    smoke: bool,
    /// Seconds per timed scenario.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Connections (wrk's -c), spread over two client threads.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Tickets for the marketplace and browse scenarios.
    #[arg(long, default_value_t = 10_000)]
    tickets: usize,
    /// Simultaneous buyers in the flash sale.
    #[arg(long, default_value_t = 1_000)]
    buyers: usize,
    /// Stored tickets, pending deadlines and live actors in the scale scenario.
    #[arg(long, default_value_t = 1_000_000)]
    scale_tickets: usize,
    #[arg(long, default_value_t = 100_000)]
    scale_pending: usize,
    #[arg(long, default_value_t = 100_000)]
    scale_live: usize,
    /// Listed tickets in the search scenario.
    #[arg(long, default_value_t = 1_000_000)]
    search_tickets: usize,
    /// Seconds of sustained marketplace load in the memory scenario (RSS sampled every tenth).
    #[arg(long, default_value_t = 120)]
    memory_seconds: u64,
    /// Scenarios to run (comma-separated): ceiling,marketplace,flash,hot,browse,postgres,memory,scale,
    /// search, cluster (cluster needs RabbitMQ: `BENCH_AMQP`, default the local broker; postgres needs
    /// `BENCH_POSTGRES`, a libpq connection string), replicated (the 3-node broker).
    #[arg(long, default_value = "ceiling,marketplace,flash,hot,browse,postgres,memory,scale,search,cluster")]
    only: String,
    /// Where the Markdown report goes (also printed).
    #[arg(long, default_value = "target/bench/latest.md")]
    out: PathBuf,
    /// Extra `KEY=VALUE` environment for the node (settings to compare), repeatable.
    #[arg(long = "node-env")]
    node_env: Vec<String>,
}

impl Config {
    fn effective(mut self) -> Self {
        if self.smoke {
            self.seconds = 1;
            self.tickets = self.tickets.min(300);
            self.buyers = self.buyers.min(50);
            self.scale_tickets = self.scale_tickets.min(20_000);
            self.scale_pending = self.scale_pending.min(2_000);
            self.scale_live = self.scale_live.min(2_000);
            self.search_tickets = self.search_tickets.min(20_000);
            self.memory_seconds = self.memory_seconds.min(4);
        }
        self
    }

    pub fn runs(&self, scenario: &str) -> bool {
        self.only.split(',').any(|s| s.trim() == scenario)
    }
}

fn main() -> std::process::ExitCode {
    let config = Config::parse().effective();
    match run_all(&config) {
        Ok(report) => {
            let text = report.markdown(&config);
            println!("{text}");
            if let Some(dir) = config.out.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Err(e) = std::fs::write(&config.out, &text) {
                eprintln!("loadgen: cannot write {}: {e}", config.out.display());
            }
            if report.violations.is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                eprintln!("loadgen: {} invariant violation(s)", report.violations.len());
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the chosen scenarios in order; the node scenarios share one node.
fn run_all(config: &Config) -> anyhow::Result<report::Report> {
    let mut report = report::Report::default();
    let binary = servers::sibling("ticketing")?;
    let env: Vec<(&str, String)> =
        config.node_env.iter().filter_map(|kv| kv.split_once('=').map(|(k, v)| (k, v.to_string()))).collect();
    let needs_node = ["ceiling", "marketplace", "flash", "hot", "browse"].iter().any(|s| config.runs(s));
    if needs_node {
        let data = tempfile::tempdir()?;
        let node = servers::Server::ticketing(&binary, data.path(), &env)?;
        if config.runs("ceiling") {
            scenarios::ceilings(config, &node, &mut report)?;
        }
        let mut tickets = Vec::new();
        if config.runs("marketplace") || config.runs("browse") {
            tickets = scenarios::marketplace(config, &node, &mut report)?;
        }
        if config.runs("flash") {
            scenarios::flash_sale(config, node.addr, &mut report)?;
        }
        if config.runs("hot") {
            scenarios::hot_entity(config, node.addr, &mut report)?;
        }
        if config.runs("browse") {
            scenarios::browse(config, node.addr, &tickets, &mut report)?;
        }
        report.fact(format!("node RSS after these scenarios: {} MiB", node.rss_bytes() >> 20));
        node.stop();
    }
    if config.runs("postgres") {
        postgres::postgres(config, &mut report)?;
    }
    if config.runs("memory") {
        memory::memory(config, &binary, &env, &mut report)?;
    }
    if config.runs("scale") {
        scenarios::scale(config, &binary, &env, &mut report)?;
    }
    if config.runs("search") {
        search::search(config, &binary, &env, &mut report)?;
    }
    if config.runs("cluster") {
        scenarios::cluster(config, &binary, &env, &mut report)?;
    }
    if config.runs("replicated") {
        scenarios::replicated(config, &binary, &env, &mut report)?;
    }
    Ok(report)
}
