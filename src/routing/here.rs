//! [`Here`]: what this node runs for a command whose slot it serves, whether the command came
//! from this node's own use cases or from another node. Built before the transport, which is
//! given it (through `inbound`) at construction.

use super::shard_map::{Shard, ShardMap};
use crate::actors::order::OrderActor;
use crate::actors::ticket::TicketActor;
use crate::actors::Registry;
use crate::app::accounts::Accounts;
use crate::app::error::AppError;
use crate::app::throttle::SignInThrottle;
use crate::deadline::Deadline;
use crate::domain::{Order, Ticket, TicketDraft, UserId};
use crate::storage::{envelope, keys, Store};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Entities per snapshot page.
const SNAPSHOT_PAGE: usize = 500;

pub struct Here {
    pub tickets: Registry<TicketActor>,
    pub orders: Registry<OrderActor>,
    pub accounts: Accounts,
    /// Failed sign-ins, per address and per account (`app::throttle`).
    pub throttle: Arc<SignInThrottle>,
    pub store: Store,
    pub map: ShardMap,
}

/// A page of a shard's entities; `next` is the cursor for the following page, if any.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotPage {
    pub tickets: Vec<Ticket>,
    pub orders: Vec<Order>,
    pub next: Option<Vec<u8>>,
}

impl Here {
    /// A ticket created with an `Idempotency-Key` (its digest `key`), on the key's node.
    pub(super) async fn create_keyed(
        &self,
        seller: UserId,
        draft: TicketDraft,
        key: [u8; 32],
        deadline: Deadline,
    ) -> Result<Ticket, AppError> {
        crate::app::idempotency::create_keyed_here(&self.store, &self.tickets, seller, draft, key, deadline).await
    }

    /// A page of the tickets (or `orders`) of a shard this node serves, after `after`.
    pub(super) fn snapshot_page(
        &self,
        shard: u32,
        orders: bool,
        after: Option<Vec<u8>>,
    ) -> Result<SnapshotPage, AppError> {
        if shard >= self.map.shard_count() {
            return Err(AppError::Unavailable);
        }
        let slots = self.map.slots(Shard(shard));
        let kind = if orders { keys::ORDER } else { keys::TICKET };
        let rows = self.store.scan_kind_in_slots(kind, slots, after.as_deref(), SNAPSHOT_PAGE)?;
        let next = if rows.len() == SNAPSHOT_PAGE { rows.last().map(|(k, _)| k.clone()) } else { None };
        let mut page = SnapshotPage { next, ..SnapshotPage::default() };
        for (key, value) in rows {
            if orders {
                page.orders.push(envelope::decode(&key, &value)?);
            } else {
                page.tickets.push(envelope::decode(&key, &value)?);
            }
        }
        Ok(page)
    }
}
