//! One sample per variant of every pinned type, built from fixed values (no clock, no random
//! ids): the same sample encodes to the same bytes on every machine and in every run.
//!
//! Where a type is nested in another one (a `Rule` inside a `DomainError` inside an
//! `EntityError` inside a reply), it is pinned as its own type too: bincode writes a nested
//! value exactly as it writes it alone, so every variant of it is pinned once, and the outer
//! samples pin where it sits.

use crate::fixtures::{pinned, Pinned};
use ticketing::actors::order::{Cancel, ConfirmPayment, Expire, GetOrder, Paid, PassivateOrder, Pay};
use ticketing::actors::ticket::{
    CreateTicket, GetTicket, InjectPanic, PassivateTicket, Release, Reserve, UpdateTicket, Withdraw,
};
use ticketing::actors::EntityError;
use ticketing::app::account_requests::AccountRequest;
use ticketing::app::idempotency::{Claim, KeyOutcome, StoredResponse};
use ticketing::app::AppError;
use ticketing::domain::Slot;
use ticketing::domain::{
    CancelReason, DomainError, Entity, Event, Field, Order, OrderId, OrderStatus, Payment, PaymentId, Price, Rule,
    Ticket, TicketDraft, TicketId, TicketSnapshot, UserId,
};
use ticketing::routing::command::{
    Account, ClaimKey, Command, ContactOf, CopyPageOf, CreateKeyed, HistoryOf, SettleKey, SnapshotOf, To,
};

/// 2023-11-14T22:13:20Z: every timestamp of the samples is this one or a fixed offset from it.
const AT_MS: i64 = 1_700_000_000_000;
/// The slot of the sample ticket, and so of its order and payment.
const SLOT: u16 = 42;

/// The bytes of a UUID v7 made at [`AT_MS`], numbered `n`, in `slot` (its last two bytes).
fn id(n: u8, slot: u16) -> [u8; 16] {
    let ms = (AT_MS as u64).to_be_bytes();
    let [s0, s1] = slot.to_be_bytes();
    [ms[2], ms[3], ms[4], ms[5], ms[6], ms[7], 0x70, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, n, s0, s1]
}

fn seller() -> UserId {
    UserId::from_bytes(id(1, 7))
}

fn buyer() -> UserId {
    UserId::from_bytes(id(2, 9))
}

fn ticket_id() -> TicketId {
    TicketId::from_bytes(id(3, SLOT))
}

fn order_id() -> OrderId {
    OrderId::from_bytes(id(4, SLOT))
}

fn payment_id() -> PaymentId {
    PaymentId::from_bytes(id(5, SLOT))
}

fn draft() -> TicketDraft {
    TicketDraft { title: "Concert".into(), price: Price::from_cents(1250) }
}

/// The ticket for sale (`held: false`) or held by the sample order.
fn ticket(held: bool) -> Ticket {
    Ticket {
        id: ticket_id(),
        title: "Concert".into(),
        price: Price::from_cents(1250),
        user_id: seller(),
        version: 3,
        order_id: held.then(order_id),
        updated_at_ms: AT_MS,
    }
}

fn order(status: OrderStatus) -> Order {
    let paid = status == OrderStatus::Complete;
    Order {
        id: order_id(),
        user_id: buyer(),
        status,
        expires_at_ms: AT_MS + 15 * 60 * 1000,
        version: 2,
        ticket: TicketSnapshot { id: ticket_id(), title: "Concert".into(), price: Price::from_cents(1250), version: 4 },
        created_at_ms: AT_MS,
        ticket_released: status == OrderStatus::Cancelled,
        payment_attempt: 1,
        payment_token: Some("tok_visa".into()),
        stripe_id: paid.then(|| "ch_sample".into()),
    }
}

fn payment() -> Payment {
    Payment {
        id: payment_id(),
        order_id: order_id(),
        stripe_id: "ch_sample".into(),
        amount_cents: 1250,
        created_at_ms: AT_MS + 60_000,
        refund_id: Some("re_sample".into()),
    }
}

/// The reply to [`Pay`] as it crosses the wire (the `result` of its `Served`): the one entity
/// reply whose types (`Payment`) no other sample holds. The other replies are a `Ticket`, an
/// `Order`, a `bool` or `()`, pinned inside the events and the commands.
type PayReply = Result<Paid, EntityError>;

pub fn pay_reply() -> Pinned<PayReply> {
    pinned!(PayReply {
        Ok => Ok(Paid { payment: payment(), order: order(OrderStatus::Complete) }),
        Err => Err(EntityError::Domain(DomainError::CardDeclined)),
    })
}

/// Why a command failed: the `Err` of every entity reply.
pub fn entity_error() -> Pinned<EntityError> {
    pinned!(EntityError {
        Domain => EntityError::Domain(DomainError::Rule(Rule::TicketReserved)),
        Storage => EntityError::Storage("no space left on device".into()),
        Panicked => EntityError::Panicked,
        Unavailable => EntityError::Unavailable,
        Overloaded => EntityError::Overloaded,
        NoReply => EntityError::NoReply,
        Wire => EntityError::Wire("unknown wire version 2".into()),
        StorageFull => EntityError::StorageFull,
    })
}

pub fn domain_error() -> Pinned<DomainError> {
    pinned!(DomainError {
        Validation => DomainError::Validation(vec![Field::Title, Field::Price]),
        Rule => DomainError::Rule(Rule::AlreadyPaid),
        NotAuthorized => DomainError::NotAuthorized,
        NotFound => DomainError::NotFound,
        CardDeclined => DomainError::CardDeclined,
    })
}

pub fn rule() -> Pinned<Rule> {
    pinned!(Rule {
        TicketReserved => Rule::TicketReserved,
        CannotEditReserved => Rule::CannotEditReserved,
        CannotBuyOwnTicket => Rule::CannotBuyOwnTicket,
        TicketExists => Rule::TicketExists,
        CannotCancelCompleted => Rule::CannotCancelCompleted,
        PaymentInProgress => Rule::PaymentInProgress,
        CannotPayCancelled => Rule::CannotPayCancelled,
        AlreadyPaid => Rule::AlreadyPaid,
        OrderExpired => Rule::OrderExpired,
        InvalidPaymentToken => Rule::InvalidPaymentToken,
        CannotDeleteReserved => Rule::CannotDeleteReserved,
    })
}

pub fn field() -> Pinned<Field> {
    pinned!(Field {
        Title => Field::Title,
        Price => Field::Price,
    })
}

/// Inside every order: in replies, in events, in snapshot pages.
pub fn order_status() -> Pinned<OrderStatus> {
    pinned!(OrderStatus {
        Created => OrderStatus::Created,
        AwaitingPayment => OrderStatus::AwaitingPayment,
        Complete => OrderStatus::Complete,
        Cancelled => OrderStatus::Cancelled,
    })
}

/// Whose history a `History` command reads.
pub fn entity() -> Pinned<Entity> {
    pinned!(Entity {
        Ticket => Entity::Ticket(ticket_id()),
        Order => Entity::Order(order_id()),
    })
}

/// Why an order was cancelled, inside every kept `order:cancelled` (history pages, and the
/// history records on disk).
pub fn cancel_reason() -> Pinned<CancelReason> {
    pinned!(CancelReason {
        Buyer => CancelReason::Buyer,
        Expired => CancelReason::Expired,
    })
}

/// An event as other nodes receive it: the `x-event` header of its RabbitMQ message
/// (`cluster::events`).
pub fn event() -> Pinned<Event> {
    pinned!(Event {
        TicketCreated => Event::TicketCreated(ticket(false)),
        TicketUpdated => Event::TicketUpdated(ticket(true)),
        OrderCreated => Event::OrderCreated(order(OrderStatus::Created)),
        OrderUpdated => Event::OrderUpdated(order(OrderStatus::AwaitingPayment)),
        OrderCancelled => Event::OrderCancelled(order(OrderStatus::Cancelled)),
        ExpirationComplete => Event::ExpirationComplete(order(OrderStatus::Cancelled)),
        PaymentCreated => Event::PaymentCreated {
            order: order(OrderStatus::Complete),
            payment_id: payment_id(),
            stripe_id: "ch_sample".into(),
        },
        Recorded => Event::Recorded {
            subject: "ticket:created".into(),
            entity_id: "018bcfe5-6800-7000-8000-00000003002a".into(),
            payload: r#"{"id":"018bcfe5-6800-7000-8000-00000003002a","version":0}"#.into(),
        },
        TicketDeleted => Event::TicketDeleted(ticket(false)),
        PaymentDeclined => Event::PaymentDeclined {
            order: order(OrderStatus::Created),
            reason: "card declined".into(),
        },
        PasswordResetRequested => Event::PasswordResetRequested {
            user: buyer(),
            email: "a@example.com".into(),
            nonce: [5; 16],
            expires_at_ms: AT_MS,
        },
    })
}

/// The error of an application use case, in the replies to forwarded account requests,
/// keyed creates and snapshot pages.
pub fn app_error() -> Pinned<AppError> {
    pinned!(AppError {
        Domain => AppError::Domain(DomainError::NotFound),
        EmailInUse => AppError::EmailInUse,
        InvalidCredentials => AppError::InvalidCredentials,
        RefreshRejected => AppError::RefreshRejected,
        WebhookRefused => AppError::WebhookRefused("Webhook signature cannot be verified".into()),
        IdempotencyMismatch => AppError::IdempotencyMismatch,
        IdempotencyInProgress => AppError::IdempotencyInProgress,
        Unavailable => AppError::Unavailable,
        NoReply => AppError::NoReply,
        Internal => AppError::Internal("storage failure".into()),
        CheckoutNotSupported => AppError::CheckoutNotSupported,
        Throttled => AppError::Throttled { retry_after_s: 30 },
        StorageFull => AppError::StorageFull,
        ResetRejected => AppError::ResetRejected,
    })
}

/// A command as it crosses to the node that runs it (`routing::command`).
pub fn command() -> Pinned<Command> {
    pinned!(Command {
        GetTicket => Command::GetTicket(To::new(ticket_id(), GetTicket)),
        CreateTicket => Command::CreateTicket(To::new(ticket_id(), CreateTicket { seller: seller(), draft: draft() })),
        UpdateTicket => Command::UpdateTicket(To::new(ticket_id(), UpdateTicket { caller: seller(), draft: draft() })),
        Reserve => Command::Reserve(To::new(
            ticket_id(),
            Reserve { buyer: buyer(), window_ms: 15 * 60 * 1000, order: Some(order_id()) },
        )),
        Release => Command::Release(To::new(ticket_id(), Release { order: order_id() })),
        Withdraw => Command::Withdraw(To::new(ticket_id(), Withdraw { caller: seller() })),
        PassivateTicket => Command::PassivateTicket(To::new(ticket_id(), PassivateTicket)),
        InjectPanic => Command::InjectPanic(To::new(ticket_id(), InjectPanic)),
        GetOrder => Command::GetOrder(To::new(order_id(), GetOrder)),
        Cancel => Command::Cancel(To::new(order_id(), Cancel { caller: buyer() })),
        Expire => Command::Expire(To::new(order_id(), Expire)),
        Pay => Command::Pay(To::new(order_id(), Pay { caller: buyer(), token: "tok_visa".into(), again: true })),
        ConfirmPayment => Command::ConfirmPayment(To::new(order_id(), ConfirmPayment { charge_id: "ch_sample".into() })),
        PassivateOrder => Command::PassivateOrder(To::new(order_id(), PassivateOrder)),
        Account => Command::Account(Account(AccountRequest::Refresh { token: "00ff.aa".into() })),
        CreateKeyed => Command::CreateKeyed(CreateKeyed { seller: seller(), draft: draft(), key: [7; 32] }),
        Snapshot => Command::Snapshot(SnapshotOf { shard: 3, first_slot: Slot(192), orders: true, after: Some(vec![0, 192, b't']) }),
        ClaimKey => Command::ClaimKey(ClaimKey { digest: [7; 32], request_hash: [9; 32] }),
        SettleKey => Command::SettleKey(SettleKey { digest: [7; 32], request_hash: [9; 32], run: AT_MS, outcome: KeyOutcome::Uncertain }),
        CopyPage => Command::CopyPage(CopyPageOf { shard: 3, first_slot: Slot(192), after: Some(vec![0, 192, b'L']) }),
        History => Command::History(HistoryOf { entity: Entity::Order(order_id()), after: 41, limit: 50 }),
        Contact => Command::Contact(ContactOf { user: buyer() }),
    })
}

pub fn account_request() -> Pinned<AccountRequest> {
    pinned!(AccountRequest {
        SignUp => AccountRequest::SignUp { email: "a@example.com".into(), password: "password".into() },
        SignIn => AccountRequest::SignIn { email: "a@example.com".into(), password: "password".into(), client: "10.0.0.1".into() },
        Refresh => AccountRequest::Refresh { token: "00ff.aa".into() },
        SignOut => AccountRequest::SignOut { token: "00ff.aa".into() },
        Renew => AccountRequest::Renew { token: "00ff.aa".into() },
        RequestReset => AccountRequest::RequestReset { email: "a@example.com".into(), client: "10.0.0.1".into() },
        ResetPassword => AccountRequest::ResetPassword { token: "0a".repeat(48), password: "password".into() },
    })
}

/// The reply to a claim of an `Idempotency-Key`.
pub fn claim() -> Pinned<Claim> {
    pinned!(Claim {
        Claimed => Claim::Claimed { first_claimed_ms: AT_MS, again: true, run: AT_MS + 1 },
        Replay => Claim::Replay(StoredResponse { status: 201, headers: vec![("content-type".into(), "application/json".into())], body: b"{}".to_vec() }),
    })
}

pub fn key_outcome() -> Pinned<KeyOutcome> {
    pinned!(KeyOutcome {
        Done => KeyOutcome::Done(StoredResponse { status: 204, headers: vec![], body: vec![] }),
        Uncertain => KeyOutcome::Uncertain,
        Release => KeyOutcome::Release,
    })
}
