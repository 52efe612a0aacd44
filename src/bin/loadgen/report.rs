//! The figures of one benchmark run, as Markdown.

use super::load::Recorder;
use super::Config;

pub struct Row {
    pub scenario: String,
    /// Requests (or writes) per second.
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub statuses: String,
}

#[derive(Default)]
pub struct Report {
    /// `/healthz` of the node and of the hello server, with the same connections.
    pub ceiling: Option<f64>,
    pub hello: Option<f64>,
    /// The marketplace's reserve + cancel steps per second (for the peer's ratio).
    pub marketplace_steps: Option<f64>,
    pub rows: Vec<Row>,
    /// Free-form measured facts (memory, start-up, counts).
    pub facts: Vec<String>,
    pub violations: Vec<String>,
}

impl Report {
    pub fn row(&mut self, scenario: impl Into<String>, rate: f64, rec: &Recorder) {
        self.rows.push(Row {
            scenario: scenario.into(),
            rate,
            p50_ms: rec.percentile_ms(50.0),
            p99_ms: rec.percentile_ms(99.0),
            statuses: rec.statuses_text(),
        });
    }

    pub fn fact(&mut self, fact: impl Into<String>) {
        let fact = fact.into();
        eprintln!("loadgen: {fact}");
        self.facts.push(fact);
    }

    pub fn violation(&mut self, what: impl Into<String>) {
        let what = what.into();
        eprintln!("loadgen: INVARIANT VIOLATED: {what}");
        self.violations.push(what);
    }

    /// Checks `ok`, recording a violation described by `what` when it does not hold.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.violation(what());
        }
    }

    pub fn markdown(&self, config: &Config) -> String {
        let ratio =
            |rate: f64, of: Option<f64>| of.filter(|c| *c > 0.0).map_or("–".into(), |c| format!("{:.2}", rate / c));
        let mut s = String::new();
        s.push_str(&format!(
            "Run: {} connections over 2 client threads, {} s per timed scenario{}; {} cores.\n\n",
            config.connections,
            config.seconds,
            if config.smoke { " (smoke: small counts, figures not meaningful)" } else { "" },
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        ));
        s.push_str("| scenario | rate/s | ÷ node `/healthz` | ÷ hello server | p50 ms | p99 ms | statuses |\n");
        s.push_str("|---|---:|---:|---:|---:|---:|---|\n");
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {:.0} | {} | {} | {:.2} | {:.2} | {} |\n",
                r.scenario,
                r.rate,
                ratio(r.rate, self.ceiling),
                ratio(r.rate, self.hello),
                r.p50_ms,
                r.p99_ms,
                r.statuses
            ));
        }
        s.push('\n');
        for f in &self.facts {
            s.push_str(&format!("- {f}\n"));
        }
        if self.violations.is_empty() {
            s.push_str("- invariants: all held\n");
        } else {
            for v in &self.violations {
                s.push_str(&format!("- **INVARIANT VIOLATED**: {v}\n"));
            }
        }
        s
    }
}
