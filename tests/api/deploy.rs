//! `deploy/`: the Prometheus alert rules pass `promtool check` and their own unit tests (a
//! firing and a quiet case per alert), the Prometheus configuration is valid, every query of
//! the Grafana dashboard parses, and every metric name they use is one a live node exports.
//! `promtool` comes with Debian's `prometheus` package (`scripts/test` installs it).

use crate::helpers::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(path)
}

/// Runs `promtool` with `args`; panics with its output unless it succeeds.
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("promtool cannot run ({e}): install Debian's prometheus package"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// The dashboard's queries, with Grafana's `$__rate_interval` given a value Prometheus parses.
fn dashboard_queries() -> Vec<String> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(deploy("grafana/ticketing.json")).unwrap()).unwrap();
    let mut queries = Vec::new();
    for panel in json["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push(target["expr"].as_str().unwrap().replace("$__rate_interval", "5m"));
        }
    }
    queries
}

/// Every `ticketing_*` name in the rules and the dashboard.
fn metric_names_used() -> std::collections::BTreeSet<String> {
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let text = format!("{rules}\n{}", dashboard_queries().join("\n"));
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("ticketing_") {
        let name: String =
            rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    names
}

#[test]
fn the_alert_rules_and_the_prometheus_configuration_are_valid() {
    let rules = deploy("prometheus/alerts.yml");
    let checked = promtool(&["check", "rules", rules.to_str().unwrap()]);
    assert!(checked.contains("SUCCESS: 7 rules found"), "{checked}");
    promtool(&["check", "config", deploy("prometheus/prometheus.yml").to_str().unwrap()]);
}

#[test]
fn every_alert_fires_in_its_case_and_stays_quiet_when_healthy() {
    let tests = std::fs::read_to_string(deploy("prometheus/alerts_test.yml")).unwrap();
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    for alert in rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")) {
        assert!(tests.contains(&format!("alertname: {alert}\n")), "no case for {alert} in alerts_test.yml");
    }
    let tested = promtool(&["test", "rules", deploy("prometheus/alerts_test.yml").to_str().unwrap()]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn every_dashboard_query_parses() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 20, "the dashboard has its panels: {queries:?}");
    // promtool parses PromQL when it checks rules: each query becomes a recording rule.
    let mut file = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, query) in queries.iter().enumerate() {
        file.push_str(&format!("      - record: dashboard:query_{i}\n        expr: {}\n", serde_json::json!(query)));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard_rules.yml");
    std::fs::write(&path, file).unwrap();
    let checked = promtool(&["check", "rules", path.to_str().unwrap()]);
    assert!(checked.contains(&format!("SUCCESS: {} rules found", queries.len())), "{checked}");
}

/// Only a clustered node exports these (checked on a replicated cluster in the cluster tests).
const CLUSTERED_ONLY: [&str; 2] = ["ticketing_cluster_shards", "ticketing_cluster_follower_lag_entries"];

#[actix_web::test]
async fn every_metric_the_rules_and_the_dashboard_use_is_exported_by_a_node() {
    let app = spawn_app().await;
    // One request of each kind, so the per-route series exist.
    app.get("/api/tickets").send().await.unwrap();
    let exported = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    let names = metric_names_used();
    assert!(names.contains("ticketing_orders_paid_total") && names.contains("ticketing_ready"), "{names:?}");
    let missing: Vec<_> = names
        .iter()
        .filter(|n| !CLUSTERED_ONLY.contains(&n.as_str()))
        .filter(|n| !exported.lines().any(|l| l.starts_with(&format!("{n} ")) || l.starts_with(&format!("{n}{{"))))
        .collect();
    assert!(missing.is_empty(), "used in deploy/ but not exported: {missing:?}");
}
