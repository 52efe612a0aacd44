//! Deletes expired idempotency records, webhook ids and kept events, once an hour.

use std::sync::Arc;

pub async fn run(app: Arc<super::App>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        app.router.here().throttle.prune();
        let history = async {
            let Some(keep) = app.settings.audit.retention() else { return Ok(0) };
            let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            app.store.prune_history(crate::domain::now_ms().saturating_sub(keep_ms)).await
        };
        match (super::idempotency::prune(&app.store).await, app.prune_seen_webhooks().await, history.await) {
            (Ok(keys), Ok(webhooks), Ok(events)) => {
                tracing::debug!(keys, webhooks, events, "housekeeping pruned expired records")
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => tracing::warn!(error = %e, "housekeeping failed"),
        }
    }
}
