//! The ticket actor: the only writer of one ticket, and so the single point that grants a
//! reservation. Its mailbox order is the ticket's version order.

use super::durable::{done, Durable, DurableCell};
use super::{Activatable, ActorError, RegistryLink};
use crate::domain::{now_ms, DomainError, OrderId, Ticket, TicketDraft, TicketId, UserId};
use crate::storage::{keys, DeadlineEntry, Store};
use actix::prelude::*;
use std::time::Duration;

/// What every ticket actor is given.
#[derive(Clone)]
pub struct TicketDeps {
    pub store: Store,
    /// Idle time after which the actor passivates.
    pub idle: Duration,
    /// When set, [`InjectPanic`] panics the actor (tests of supervision only).
    pub fault_injection: bool,
}

pub struct TicketActor {
    cell: DurableCell<Ticket>,
    link: RegistryLink<TicketActor>,
    deps: TicketDeps,
}

impl Activatable for TicketActor {
    type Id = TicketId;
    type Deps = TicketDeps;
    const KIND: &'static str = "ticket";

    fn shard(id: &TicketId) -> u32 {
        id.shard(1 << 16)
    }

    fn activate(id: TicketId, deps: TicketDeps, link: RegistryLink<Self>) -> Self {
        let cell = DurableCell::new(keys::ticket(&id), deps.store.clone(), &link);
        Self { cell, link, deps }
    }
}

impl Actor for TicketActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        super::durable::start(self, ctx, self.deps.idle);
    }
}

/// On a panic the supervisor restarts the actor in place (same mailbox, same address); the
/// state is reloaded from disk.
impl Supervised for TicketActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        super::durable::restart(self);
    }
}

impl Durable for TicketActor {
    type State = Ticket;

    fn cell(&mut self) -> &mut DurableCell<Ticket> {
        &mut self.cell
    }

    fn version_of(t: &Ticket) -> u64 {
        t.version
    }

    fn link(&self) -> &RegistryLink<Self> {
        &self.link
    }
}

fn existing(ticket: &mut Option<Ticket>) -> Result<&mut Ticket, DomainError> {
    ticket.as_mut().ok_or(DomainError::NotFound)
}

/// Reads the ticket as this actor holds it (`None`: no such ticket).
#[derive(Message)]
#[rtype(result = "Result<Option<Ticket>, ActorError>")]
pub struct GetTicket;

impl Handler<GetTicket> for TicketActor {
    type Result = Result<Option<Ticket>, ActorError>;

    fn handle(&mut self, _: GetTicket, _: &mut Context<Self>) -> Self::Result {
        self.cell.stats.message_started();
        self.cell.current().map(|t| t.cloned())
    }
}

/// Creates the ticket under this actor's (fresh) id.
#[derive(Message)]
#[rtype(result = "Result<Ticket, ActorError>")]
pub struct CreateTicket {
    pub seller: UserId,
    pub draft: TicketDraft,
}

impl Handler<CreateTicket> for TicketActor {
    type Result = AtomicResponse<Self, Result<Ticket, ActorError>>;

    fn handle(&mut self, msg: CreateTicket, _ctx: &mut Context<Self>) -> Self::Result {
        self.cell.stats.message_started();
        let id = self.link.id;
        AtomicResponse::new(self.change(move |ticket, changes| {
            if ticket.is_some() {
                return Err(DomainError::Rule("Ticket already exists"));
            }
            let (created, event) = Ticket::create(id, msg.seller, msg.draft, now_ms());
            changes.event(event);
            *ticket = Some(created.clone());
            Ok(created)
        }))
    }
}

/// The owner edits title and price.
#[derive(Message)]
#[rtype(result = "Result<Ticket, ActorError>")]
pub struct UpdateTicket {
    pub caller: UserId,
    pub draft: TicketDraft,
}

impl Handler<UpdateTicket> for TicketActor {
    type Result = AtomicResponse<Self, Result<Ticket, ActorError>>;

    fn handle(&mut self, msg: UpdateTicket, _ctx: &mut Context<Self>) -> Self::Result {
        self.cell.stats.message_started();
        AtomicResponse::new(self.change(move |ticket, changes| {
            let ticket = existing(ticket)?;
            changes.event(ticket.update(msg.caller, msg.draft, now_ms())?);
            Ok(ticket.clone())
        }))
    }
}

/// Grants the ticket to an order. In the same write it records a durable deadline for the
/// order, so that the hold is released when the window passes even if the order itself was
/// never written (see `crate::orders`).
#[derive(Message)]
#[rtype(result = "Result<Ticket, ActorError>")]
pub struct ReserveTicket {
    pub order: OrderId,
    pub buyer: UserId,
    pub expires_at_ms: i64,
}

impl Handler<ReserveTicket> for TicketActor {
    type Result = AtomicResponse<Self, Result<Ticket, ActorError>>;

    fn handle(&mut self, msg: ReserveTicket, _ctx: &mut Context<Self>) -> Self::Result {
        self.cell.stats.message_started();
        AtomicResponse::new(self.change(move |ticket, changes| {
            let ticket = existing(ticket)?;
            changes.event(ticket.reserve(msg.order, msg.buyer, now_ms())?);
            changes.put(keys::deadline(msg.expires_at_ms, &msg.order), &DeadlineEntry { ticket_id: ticket.id });
            Ok(ticket.clone())
        }))
    }
}

/// Frees the ticket if `order` holds it (idempotent). Replies the ticket as it now is.
#[derive(Message)]
#[rtype(result = "Result<Option<Ticket>, ActorError>")]
pub struct ReleaseTicket {
    pub order: OrderId,
}

impl Handler<ReleaseTicket> for TicketActor {
    type Result = AtomicResponse<Self, Result<Option<Ticket>, ActorError>>;

    fn handle(&mut self, msg: ReleaseTicket, _ctx: &mut Context<Self>) -> Self::Result {
        self.cell.stats.message_started();
        AtomicResponse::new(self.change(move |ticket, changes| {
            if let Some(t) = ticket.as_mut() {
                if let Some(event) = t.release(msg.order, now_ms()) {
                    changes.event(event);
                }
            }
            Ok(ticket.clone())
        }))
    }
}

/// Test-only: panics inside the actor's rule, to exercise supervision. Refused unless the node
/// was started with `testing.fault_injection = true`.
#[derive(Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct InjectPanic;

impl Handler<InjectPanic> for TicketActor {
    type Result = AtomicResponse<Self, Result<(), ActorError>>;

    fn handle(&mut self, _: InjectPanic, _ctx: &mut Context<Self>) -> Self::Result {
        self.cell.stats.message_started();
        if !self.deps.fault_injection {
            return AtomicResponse::new(done(Err(ActorError::Domain(DomainError::NotFound))));
        }
        AtomicResponse::new(
            self.change(|_, _| -> Result<(), DomainError> { panic!("injected panic (testing.fault_injection)") }),
        )
    }
}

/// Asks the actor to passivate now (admin action). `true` if it stopped.
#[derive(Message)]
#[rtype(result = "Result<bool, ActorError>")]
pub struct Passivate;

impl Handler<Passivate> for TicketActor {
    type Result = Result<bool, ActorError>;

    fn handle(&mut self, _: Passivate, ctx: &mut Context<Self>) -> Self::Result {
        self.cell.stats.message_started();
        Ok(super::durable::passivate_now(self, ctx))
    }
}
