//! Chaos against the real binary, in a test binary of its own: cargo runs test binaries one
//! after another, so the "settled within one second of each restart" claim is measured on a
//! node that does not share the machine's two cores with a hundred other tests.

mod holds;
mod paused;
#[path = "../api/process.rs"]
mod process;

/// The `name=value` part of the `session` cookie a response sets.
pub fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("session=") && !v.starts_with("session=;"))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}
