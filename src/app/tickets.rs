//! Use cases of selling: create and edit a ticket, show one, list those for sale, a seller's
//! tickets. The rules live in `domain::ticket`; the ticket actor applies them.

use super::projection::{Listing, ListingState};
use super::search::Query;
use super::{App, AppError};
use crate::actors::ticket::{CreateTicket, GetTicket, InjectPanic, UpdateTicket, Withdraw};
use crate::domain::{Ticket, TicketDraft, TicketId, UserId};
use crate::routing::command::{CreateKeyed, To};

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
        Ok(self.router.ask(To::new(id, CreateTicket { seller, draft })).await?)
    }

    pub async fn update_ticket(&self, caller: UserId, id: TicketId, draft: TicketDraft) -> Result<Ticket, AppError> {
        Ok(self.router.ask(To::new(id, UpdateTicket { caller, draft })).await?)
    }

    /// The owner withdraws a listing that no order holds: it leaves every list.
    pub async fn withdraw_ticket(&self, caller: UserId, id: TicketId) -> Result<(), AppError> {
        self.router.ask(To::new(id, Withdraw { caller })).await?;
        Ok(())
    }

    pub async fn ticket(&self, id: TicketId) -> Result<Ticket, AppError> {
        Ok(self.router.ask(To::new(id, GetTicket)).await?)
    }

    /// Tickets for sale (not reserved or sold), oldest first, a page after `after`; `true`
    /// when more follow. Sees every change acknowledged before the call.
    pub async fn list_tickets_for_sale(
        &self,
        after: Option<TicketId>,
        limit: usize,
    ) -> Result<(Vec<Ticket>, bool), AppError> {
        Ok(self.fresh_read_model().await.for_sale_after(after, limit)?)
    }

    /// Tickets for sale matching `query`, in its order (the search index), and whether more
    /// follow. Sees every change acknowledged before the call.
    pub async fn search_tickets(&self, query: &Query) -> Result<(Vec<Ticket>, bool), AppError> {
        let model = self.fresh_read_model().await;
        let (ids, more) = model.index().search(query);
        let mut tickets = Vec::with_capacity(ids.len());
        for id in ids {
            // Gone since (reserved a moment ago): not shown.
            if let Some(ticket) = model.for_sale(id)? {
                tickets.push(ticket);
            }
        }
        Ok((tickets, more))
    }

    /// Where a ticket stands (for sale, reserved, sold, withdrawn), from the read model.
    pub async fn listing_state(&self, id: TicketId) -> Result<Option<ListingState>, AppError> {
        Ok(self.fresh_read_model().await.listing(id)?.map(|l| l.state))
    }

    /// A seller's tickets, with which are for sale, reserved or sold.
    pub async fn tickets_of_seller(&self, seller: UserId) -> Result<Vec<Listing>, AppError> {
        Ok(self.fresh_read_model().await.tickets_of(&seller)?)
    }

    /// Test-only: makes the ticket's actor panic inside a rule (supervision tests).
    pub async fn inject_panic(&self, id: TicketId) -> Result<(), AppError> {
        Ok(self.router.ask(To::new(id, InjectPanic)).await?)
    }
}
