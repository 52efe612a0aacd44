//! Use cases of buying: place an order (one command to the ticket, which writes the hold and
//! the order in one batch: see `actors::ticket`), cancel it, show it, a buyer's orders.

use super::{App, AppError};
use crate::actors::order::OrderCommand;
use crate::actors::ticket::{TicketCommand, TicketReply};
use crate::actors::EntityError;
use crate::domain::{Event, Order, OrderId, TicketId, UserId};

impl App {
    /// Reserves `ticket` for `buyer` for the order window.
    pub async fn place_order(&self, buyer: UserId, ticket: TicketId) -> Result<Order, AppError> {
        let window_ms = (self.settings.orders.expiration_seconds * 1000.0) as i64;
        match self.entities.ticket(ticket).ask(TicketCommand::Reserve { buyer, window_ms }).await? {
            TicketReply::Reserved(order) => {
                self.learn(ticket.slot(), Event::OrderCreated(order.clone()));
                // Wake the new order's actor, which arms its own expiry timer. Only when it is
                // here: the owning node's wheel holds the deadline anyway (across passivation
                // and restarts), so waking a remote one would cost a broker message for nothing.
                if self.entities.place(order.id.slot()) == crate::cluster::Place::Local {
                    if let Err(e) = self.entities.order(order.id).tell(OrderCommand::Get) {
                        tracing::warn!(order = %order.id, error = %e, "the new order's actor could not be woken");
                    }
                }
                Ok(order)
            }
            _ => Err(EntityError::UnexpectedReply("reserve".into()).into()),
        }
    }

    /// The buyer cancels; the ticket is released before this returns.
    pub async fn cancel_order(&self, caller: UserId, id: OrderId) -> Result<Order, AppError> {
        let order = self.entities.order(id).ask(OrderCommand::Cancel { caller }).await?.into_order()?;
        self.learn(id.slot(), Event::OrderCancelled(order.clone()));
        Ok(order)
    }

    /// One order, for its buyer only.
    pub async fn order(&self, caller: UserId, id: OrderId) -> Result<Order, AppError> {
        let order = self.entities.order(id).ask(OrderCommand::Get).await?.into_order()?;
        order.check_owner(caller)?;
        Ok(order)
    }

    /// The buyer's orders, oldest first. Sees every change acknowledged before the call.
    pub async fn orders_of(&self, buyer: UserId) -> Result<Vec<Order>, AppError> {
        Ok(self.fresh_read_model().await.orders_of(&buyer)?)
    }
}
