//! Use cases of selling: create and edit a ticket, show one, list those for sale, a seller's
//! tickets. The rules live in `domain::ticket`; the ticket actor applies them.

use super::projection::Listing;
use super::{App, AppError};
use crate::actors::ticket::{TicketCommand, TicketReply};
use crate::domain::{Ticket, TicketDraft, TicketId, UserId};
use crate::routing::command::{CreateKeyed, ToTicket};

impl App {
    /// Lists a ticket. With an `Idempotency-Key` (its digest, `key`), a retry through any node
    /// returns the ticket the first attempt made, even if that attempt's reply was lost.
    pub async fn create_ticket(
        &self,
        seller: UserId,
        draft: TicketDraft,
        key: Option<[u8; 32]>,
    ) -> Result<Ticket, AppError> {
        if let Some(key) = key {
            // It lives in the slot of the key's digest, on the node that also keeps which
            // ticket the key made (`idempotency::create_keyed_here`).
            return self.router.ask(CreateKeyed { seller, draft, key }).await;
        }
        // A new ticket goes to a slot this node owns, so the create needs no hop.
        let id = TicketId::new_in(self.router.new_ticket_slot());
        Ok(self.ticket_command(id, TicketCommand::Create { seller, draft }).await?.into_ticket()?)
    }

    pub async fn update_ticket(&self, caller: UserId, id: TicketId, draft: TicketDraft) -> Result<Ticket, AppError> {
        Ok(self.ticket_command(id, TicketCommand::Update { caller, draft }).await?.into_ticket()?)
    }

    /// The owner withdraws a listing that no order holds: it leaves every list.
    pub async fn withdraw_ticket(&self, caller: UserId, id: TicketId) -> Result<(), AppError> {
        self.ticket_command(id, TicketCommand::Withdraw { caller }).await?.into_withdrawn()?;
        Ok(())
    }

    pub async fn ticket(&self, id: TicketId) -> Result<Ticket, AppError> {
        Ok(self.ticket_command(id, TicketCommand::Get).await?.into_ticket()?)
    }

    /// Tickets for sale (not reserved or sold), oldest first, a page after `after`; `true`
    /// when more follow. Sees every change acknowledged before the call.
    pub async fn list_tickets_for_sale(
        &self,
        after: Option<TicketId>,
        limit: usize,
    ) -> Result<(Vec<Ticket>, bool), AppError> {
        Ok(self.fresh_read_model().await.for_sale(after, limit)?)
    }

    /// A seller's tickets, with which are for sale, reserved or sold.
    pub async fn tickets_of_seller(&self, seller: UserId) -> Result<Vec<Listing>, AppError> {
        Ok(self.fresh_read_model().await.tickets_of(&seller)?)
    }

    /// Test-only: makes the ticket's actor panic inside a rule (supervision tests).
    pub async fn inject_panic(&self, id: TicketId) -> Result<(), AppError> {
        self.ticket_command(id, TicketCommand::InjectPanic).await?;
        Ok(())
    }

    /// Runs `command` on ticket `id`, wherever it lives.
    pub(super) async fn ticket_command(&self, id: TicketId, command: TicketCommand) -> Result<TicketReply, AppError> {
        Ok(self.router.ask(ToTicket { id, command }).await?)
    }
}
