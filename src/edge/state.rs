//! What every handler and middleware is given: the settings, the application layer, and the
//! count of requests being served (the node's in-flight bound, `super::observe`).

use crate::app::App;
use crate::settings::Settings;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Everything a handler may use, shared by all workers.
pub struct AppState {
    pub settings: Settings,
    pub app: Arc<App>,
    /// Requests being served now (bounded by `http.max_in_flight`).
    pub in_flight: AtomicUsize,
}

impl AppState {
    pub fn new(settings: Settings, app: Arc<App>) -> Self {
        Self { settings, app, in_flight: AtomicUsize::new(0) }
    }

    /// Admits one more request if the node is under its bound; the guard lets it go.
    pub fn admit(&self) -> Option<InFlight<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(&self.in_flight);
        (before < self.settings.http.max_in_flight).then_some(guard)
    }
}

/// One admitted request, counted until dropped.
pub struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
