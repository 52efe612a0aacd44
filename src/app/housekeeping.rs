//! Deletes expired idempotency records and webhook ids, once an hour.

use std::sync::Arc;

pub async fn run(app: Arc<super::App>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        app.router.here().throttle.prune();
        match (super::idempotency::prune(&app.store).await, app.prune_seen_webhooks().await) {
            (Ok(keys), Ok(webhooks)) => tracing::debug!(keys, webhooks, "housekeeping pruned expired records"),
            (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "housekeeping failed"),
        }
    }
}
