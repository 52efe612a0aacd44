//! What the node writes to stderr when nobody is watching it at a terminal.

use crate::process::start_node_with;
use std::process::Stdio;

/// Under systemd, a container runtime or `nohup`, stderr is a file: its lines carry no
/// colour codes (the text format is the default one).
#[test]
fn log_lines_written_to_a_file_carry_no_escape_codes() {
    let data = tempfile::tempdir().unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let stderr = Stdio::from(log.reopen().unwrap());
    // An empty NO_COLOR counts as unset: only the file decides.
    let env = [("TICKETING_LOG__LEVEL", "info"), ("NO_COLOR", "")];
    let mut node = start_node_with(data.path(), &env, stderr);
    node.terminate();
    let written = std::fs::read_to_string(log.path()).unwrap();
    assert!(written.lines().count() >= 2, "the node logged its start and stop at info: {written:?}");
    assert!(written.contains("INFO"), "text lines with their level: {written:?}");
    assert!(!written.contains('\u{1b}'), "no escape codes in a file: {written:?}");
}

/// With telemetry on, a request's JSON log lines name its trace and span: the caller's trace
/// id from its `traceparent`. (The collector here is a closed port: nothing is exported, and
/// the request does not wait for it.)
#[test]
fn json_log_lines_of_a_traced_request_carry_its_trace_and_span_ids() {
    let data = tempfile::tempdir().unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let stderr = Stdio::from(log.reopen().unwrap());
    let env = [
        ("TICKETING_LOG__LEVEL", "debug"),
        ("TICKETING_LOG__FORMAT", "json"),
        ("TICKETING_TELEMETRY__OTLP_ENDPOINT", "http://127.0.0.1:9/v1/traces"),
    ];
    let mut node = start_node_with(data.path(), &env, stderr);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traced = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("traceparent: 00-{trace_id}-00f067aa0ba902b7-01"))
        .arg(format!("{}/api/tickets", node.address))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&traced.stdout), "200");
    node.terminate();
    let written = std::fs::read_to_string(log.path()).unwrap();
    let line = written.lines().find(|l| l.contains("request completed")).expect("the request's line");
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["span"]["trace_id"], trace_id, "{line}");
    let span_id = line["span"]["span_id"].as_str().unwrap_or_default();
    assert!(span_id.len() == 16 && span_id != "00f067aa0ba902b7", "its own span: {line}");
}
