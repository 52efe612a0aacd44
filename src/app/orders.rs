//! Use cases of buying: place an order (one command to the ticket, which writes the hold and
//! the order in one batch: see `actors::ticket`), cancel it, show it, a buyer's orders.

use super::keyed::ClaimedKey;
use super::{App, AppError};
use crate::actors::order::{OrderCommand, OrderReply};
use crate::actors::ticket::TicketCommand;
use crate::domain::{Order, OrderId, TicketId, UserId};
use crate::routing::command::ToOrder;

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
        let reply = self.ticket_command(ticket, TicketCommand::Reserve { buyer, window_ms, order }).await?;
        let order = reply.into_reserved()?;
        // Its actor arms its own expiry timer (the owner's wheel holds the deadline anyway).
        self.router.wake_order(order.id);
        Ok(order)
    }

    /// The buyer cancels; the ticket is released before this returns.
    pub async fn cancel_order(&self, caller: UserId, id: OrderId) -> Result<Order, AppError> {
        Ok(self.order_command(id, OrderCommand::Cancel { caller }).await?.into_order()?)
    }

    /// One order, for its buyer only.
    pub async fn order(&self, caller: UserId, id: OrderId) -> Result<Order, AppError> {
        let order = self.order_command(id, OrderCommand::Get).await?.into_order()?;
        order.check_owner(caller)?;
        Ok(order)
    }

    /// The buyer's orders, oldest first. Sees every change acknowledged before the call.
    pub async fn orders_of(&self, buyer: UserId) -> Result<Vec<Order>, AppError> {
        Ok(self.fresh_read_model().await.orders_of(&buyer)?)
    }

    /// Runs `command` on order `id`, wherever it lives.
    pub(super) async fn order_command(&self, id: OrderId, command: OrderCommand) -> Result<OrderReply, AppError> {
        Ok(self.router.ask(ToOrder { id, command }).await?)
    }
}
