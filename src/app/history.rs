//! The audit trail's use cases: an entity's history for operators, and an order's timeline
//! for its buyer. The history is read where the entity's shard is served (it lives there).

use super::{App, AppError};
use crate::domain::{DomainError, Entity, HistoryEntry, Order, Step};
use crate::routing::command::HistoryOf;
use crate::storage::HistoryPage;

/// Most entries one order's timeline shows (an order has a handful; a buyer retrying a
/// declined card many times sees the first this many).
const TIMELINE_ENTRIES: u32 = 200;

impl App {
    /// A page of `entity`'s kept events after `after`. Not found when it has none at all (an
    /// id never written, or all its events pruned).
    pub async fn history(&self, entity: Entity, after: u64, limit: u32) -> Result<HistoryPage, AppError> {
        let page = self.router.ask(HistoryOf { entity, after, limit }).await?;
        if after == 0 && page.entries.is_empty() {
            return Err(DomainError::NotFound.into());
        }
        Ok(page)
    }

    /// What happened to an order its buyer has already been shown (`App::order` checked the
    /// caller), oldest first, with times. Empty with the audit trail off.
    pub async fn order_timeline(&self, order: &Order) -> Result<Vec<(i64, Step)>, AppError> {
        let entries = self.order_history(order).await?;
        Ok(entries.iter().filter_map(|e| Some((e.at_ms, Step::of(e)?))).collect())
    }

    /// When a paid order was paid (a receipt's "paid at"), from its history: `None` if that
    /// was not kept (pruned, the trail off) or cannot be read now.
    pub async fn paid_at(&self, order: &Order) -> Option<i64> {
        Step::paid_at(&self.order_history(order).await.ok()?)
    }

    async fn order_history(&self, order: &Order) -> Result<Vec<HistoryEntry>, AppError> {
        let page = self.router.ask(HistoryOf { entity: Entity::Order(order.id), after: 0, limit: TIMELINE_ENTRIES });
        Ok(page.await?.entries)
    }
}
