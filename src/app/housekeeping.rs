//! Deletes expired idempotency records, webhook ids and kept events, once an hour.

use std::sync::Arc;

pub async fn run(app: Arc<super::App>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        app.router.here().throttle.prune();
        // With the trail off, what an earlier configuration kept goes too: 0 keeps none.
        let cutoff_ms = match app.settings.audit.retention() {
            Some(keep) => crate::domain::now_ms().saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX)),
            None => i64::MAX,
        };
        let history = app.store.prune_history(cutoff_ms);
        match (super::idempotency::prune(&app.store).await, app.prune_seen_webhooks().await, history.await) {
            (Ok(keys), Ok(webhooks), Ok(events)) => {
                tracing::debug!(keys, webhooks, events, "housekeeping pruned expired records")
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => tracing::warn!(error = %e, "housekeeping failed"),
        }
    }
}
