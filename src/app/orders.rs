//! Use cases of buying: place an order (one command to the ticket, which writes the hold and
//! the order in one batch: see `actors::ticket`), cancel it, show it, a buyer's orders.

use super::keyed::ClaimedKey;
use super::{App, AppError};
use crate::actors::order::{Cancel, GetOrder};
use crate::actors::ticket::Reserve;
use crate::domain::{Order, OrderId, OrderStatus, TicketId, UserId};
use crate::routing::command::To;

impl App {
    /// Reserves `ticket` for `buyer` for the order window. With an `Idempotency-Key` the
    /// order's id derives from the key, so a retry (through any node, after any outcome) finds
    /// the order its first attempt made instead of reserving again.
    pub async fn place_order(
        &self,
        buyer: UserId,
        ticket: TicketId,
        key: Option<&ClaimedKey>,
    ) -> Result<Order, AppError> {
        let window_ms = (self.settings.orders.expiration_seconds * 1000.0) as i64;
        let order = key.map(|k| k.order_id_in(ticket.slot()));
        let order = self.router.ask(To::new(ticket, Reserve { buyer, window_ms, order })).await?;
        // Its actor arms its own expiry timer (the owner's wheel holds the deadline anyway).
        self.router.wake_order(order.id);
        Ok(order)
    }

    /// The buyer cancels; the ticket is released before this returns.
    pub async fn cancel_order(&self, caller: UserId, id: OrderId) -> Result<Order, AppError> {
        Ok(self.router.ask(To::new(id, Cancel { caller })).await?)
    }

    /// Any order, for an operator (the admin's receipt): no buyer check.
    pub async fn order_for_admin(&self, id: OrderId) -> Result<Order, AppError> {
        Ok(self.router.ask(To::new(id, GetOrder)).await?)
    }

    /// One order, for its buyer only.
    pub async fn order(&self, caller: UserId, id: OrderId) -> Result<Order, AppError> {
        let order = self.order_for_admin(id).await?;
        order.check_owner(caller)?;
        Ok(order)
    }

    /// The buyer's orders, oldest first. Sees every change acknowledged before the call.
    pub async fn orders_of(&self, buyer: UserId) -> Result<Vec<Order>, AppError> {
        Ok(self.fresh_read_model().await.orders_of(&buyer)?)
    }

    /// The buyer's orders, oldest first, each cancelled one with whether its window ran out
    /// (`Some(true)`) or the buyer cancelled it (`Some(false)`), where this node knows.
    pub async fn orders_of_with_expiry(&self, buyer: UserId) -> Result<Vec<(Order, Option<bool>)>, AppError> {
        let model = self.fresh_read_model().await;
        let orders = model.orders_of(&buyer)?;
        let mut out = Vec::with_capacity(orders.len());
        for order in orders {
            let expired = if order.status == OrderStatus::Cancelled { model.expired(order.id)? } else { None };
            out.push((order, expired));
        }
        Ok(out)
    }
}
