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
