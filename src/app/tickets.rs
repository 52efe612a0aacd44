//! Use cases of selling: create and edit a ticket, show one, list those for sale, a seller's
//! tickets. The rules live in `domain::ticket`; the ticket actor applies them.

use super::idempotency::CreatedFor;
use super::projection::Listing;
use super::{App, AppError};
use crate::actors::ticket::{TicketCommand, TicketReply};
use crate::actors::EntityError;
use crate::cluster::messages::{Reply, Request};
use crate::cluster::Place;
use crate::domain::{DomainError, Event, Rule, Ticket, TicketDraft, TicketId, UserId};
use crate::storage::{keys, Store};

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
            return self.create_ticket_keyed(seller, draft, key).await;
        }
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

    /// The owner withdraws a listing that no order holds: it leaves every list.
    pub async fn withdraw_ticket(&self, caller: UserId, id: TicketId) -> Result<(), AppError> {
        match self.entities.ticket(id).ask(TicketCommand::Withdraw { caller }).await? {
            TicketReply::Withdrawn(last) => {
                self.learn(id.slot(), Event::TicketDeleted(last));
                Ok(())
            }
            _ => Err(EntityError::UnexpectedReply("withdraw".into()).into()),
        }
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

impl App {
    /// A keyed create lives in the slot of the key's digest. Its owner records which ticket the
    /// key makes before making it (compare-and-swap), and creates that ticket only if it does
    /// not exist yet: one effect however often, and through whichever node, it is retried.
    async fn create_ticket_keyed(&self, seller: UserId, draft: TicketDraft, key: [u8; 32]) -> Result<Ticket, AppError> {
        let slot = keys::slot_of_digest(&key);
        match self.entities.place(slot) {
            Place::Local => {}
            Place::Fenced => return Err(AppError::Unavailable),
            place @ Place::Remote(_) => {
                let request = Request::CreateTicket { seller, draft, key };
                let timeout = std::time::Duration::from_millis(self.settings.actors.ask_timeout_ms);
                let ticket = match self.forward(place, request, timeout).await? {
                    Reply::Ticket(result) => result?,
                    other => return Err(AppError::Internal(format!("unexpected reply {other:?}"))),
                };
                self.learn(slot, Event::TicketCreated(ticket.clone()));
                return Ok(ticket);
            }
        }
        let record = keys::created_for_key(&key);
        let id = match self.store.get::<CreatedFor>(&record)? {
            Some(CreatedFor(id)) => id,
            None => {
                let fresh = TicketId::new_in(slot);
                let encoded = Store::encode(&CreatedFor(fresh))?;
                if self.store.compare_and_swap(&record, None, Some(&encoded))? {
                    fresh
                } else {
                    self.store.get::<CreatedFor>(&record)?.map(|c| c.0).ok_or(AppError::Unavailable)?
                }
            }
        };
        match self.entities.ticket(id).ask(TicketCommand::Create { seller, draft }).await {
            Ok(reply) => Ok(reply.into_ticket()?),
            Err(EntityError::Domain(DomainError::Rule(Rule::TicketExists))) => {
                let ticket = self.entities.ticket(id).ask(TicketCommand::Get).await?.into_ticket()?;
                if ticket.user_id != seller {
                    return Err(DomainError::NotAuthorized.into());
                }
                Ok(ticket)
            }
            Err(e) => Err(e.into()),
        }
    }
}
