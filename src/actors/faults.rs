//! Test-only crash points: the process aborts when it reaches the named step, so crash-window
//! tests can stop a real node at an exact instant (`testing.crash_at`).

use std::sync::Arc;

#[derive(Clone, Default)]
pub struct Faults(Arc<str>);

impl Faults {
    pub fn new(crash_at: &str) -> Self {
        Self(Arc::from(crash_at))
    }

    /// Whether the node is set to abort at `point`.
    pub fn armed(&self, point: &str) -> bool {
        !self.0.is_empty() && &*self.0 == point
    }

    pub fn crash_point(&self, point: &str) {
        if !self.0.is_empty() && &*self.0 == point {
            eprintln!("fault injection: aborting at {point}");
            std::process::abort();
        }
    }
}
