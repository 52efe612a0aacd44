//! Unit tests of `ticket`.

use super::*;
use serde_json::json;

fn draft(title: &str, cents: u64) -> TicketDraft {
    TicketDraft { title: title.into(), price: Price::from_cents(cents) }
}

fn ticket() -> (Ticket, UserId) {
    let seller = UserId::new();
    (Ticket::create(TicketId::new(), seller, draft("concert", 2000), 0).0, seller)
}

#[test]
fn validation_reports_every_failed_field_in_order() {
    let err = TicketDraft::parse(Some(&json!("  ")), Some(&json!(-10)), DraftFor::Create).unwrap_err();
    assert_eq!(
        err,
        DomainError::Validation(vec![
            FieldError { field: "title", message: "Title is required" },
            FieldError { field: "price", message: "Price must be greater than 0" },
        ])
    );
    let err = TicketDraft::parse(Some(&json!("ok")), None, DraftFor::Update).unwrap_err();
    assert_eq!(
        err,
        DomainError::Validation(vec![FieldError {
            field: "price",
            message: "Price must be provided and must be greater than 0"
        }])
    );
}

#[test]
fn titles_are_trimmed_and_must_be_text() {
    let d = TicketDraft::parse(Some(&json!("  gig ")), Some(&json!(5)), DraftFor::Create).unwrap();
    assert_eq!(d.title, "gig");
    assert!(TicketDraft::parse(Some(&json!(5)), Some(&json!(5)), DraftFor::Create).is_err());
}

#[test]
fn a_new_ticket_is_at_version_zero_and_emits_created() {
    let (t, _) = ticket();
    assert_eq!(t.version, 0);
    assert_eq!(Event::ticket_created(&t).subject, "ticket:created");
}

#[test]
fn every_update_bumps_the_version_by_one() {
    let (mut t, seller) = ticket();
    for v in 1..=3 {
        t.update(seller, draft("x", 100 * v), 0).unwrap();
        assert_eq!(t.version, v);
    }
}

#[test]
fn only_the_owner_may_update() {
    let (mut t, _) = ticket();
    assert_eq!(t.update(UserId::new(), draft("x", 1), 0), Err(DomainError::NotAuthorized));
    assert_eq!(t.version, 0);
}

#[test]
fn a_reserved_ticket_cannot_be_edited_even_by_its_owner() {
    let (mut t, seller) = ticket();
    t.reserve(OrderId::new(), UserId::new(), 0).unwrap();
    assert_eq!(t.update(seller, draft("x", 1), 0), Err(DomainError::Rule("Cannot edit a reserved ticket")));
}

#[test]
fn a_ticket_is_reserved_once_and_released_only_by_its_order() {
    let (mut t, seller) = ticket();
    let (first, second) = (OrderId::new(), OrderId::new());
    t.reserve(first, UserId::new(), 0).unwrap();
    assert_eq!(t.reserve(second, UserId::new(), 0), Err(DomainError::Rule("Ticket is already reserved")));
    assert!(t.release(second, 0).is_none());
    assert_eq!(t.order_id, Some(first));
    assert!(t.release(first, 0).is_some());
    assert_eq!(t.order_id, None);
    assert_eq!(t.version, 2);
    assert_eq!(t.reserve(OrderId::new(), seller, 0), Err(DomainError::Rule("Cannot buy your own ticket")));
}
