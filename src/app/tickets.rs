//! Use cases of selling: create and edit a ticket, show one, list those for sale, a seller's
//! tickets. The rules live in `domain::ticket`; the ticket actor applies them.

use super::projection::Listing;
use super::{App, AppError};
use crate::actors::ticket::TicketCommand;
use crate::domain::{Event, Ticket, TicketDraft, TicketId, UserId};

impl App {
    pub async fn create_ticket(&self, seller: UserId, draft: TicketDraft) -> Result<Ticket, AppError> {
        // A new ticket goes to a slot this node owns, so the create needs no hop.
        let id = TicketId::new_in(self.entities.new_ticket_slot());
        let ticket = self.entities.ticket(id).ask(TicketCommand::Create { seller, draft }).await?.into_ticket()?;
        self.learn(id.slot(), Event::TicketCreated(ticket.clone()));
        Ok(ticket)
    }

    pub async fn update_ticket(&self, caller: UserId, id: TicketId, draft: TicketDraft) -> Result<Ticket, AppError> {
        let ticket = self.entities.ticket(id).ask(TicketCommand::Update { caller, draft }).await?.into_ticket()?;
        self.learn(id.slot(), Event::TicketUpdated(ticket.clone()));
        Ok(ticket)
    }

    pub async fn ticket(&self, id: TicketId) -> Result<Ticket, AppError> {
        Ok(self.entities.ticket(id).ask(TicketCommand::Get).await?.into_ticket()?)
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
        self.entities.ticket(id).ask(TicketCommand::InjectPanic).await?;
        Ok(())
    }
}
