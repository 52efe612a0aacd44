//! Unit tests of `ticket`.

use super::*;
use crate::domain::Slot;

fn draft(title: &str, cents: u64) -> TicketDraft {
    TicketDraft { title: title.into(), price: Price::from_cents(cents) }
}

fn ticket() -> (Ticket, UserId) {
    let seller = UserId::new_in(Slot(1));
    (Ticket::create(TicketId::new_in(Slot(1)), seller, draft("concert", 2000), 0).0, seller)
}

#[test]
fn validation_reports_every_invalid_field_in_order() {
    let err = TicketDraft::new(Some("  "), None).unwrap_err();
    assert_eq!(err, DomainError::Validation(vec![Field::Title, Field::Price]));
    let err = TicketDraft::new(Some("ok"), None).unwrap_err();
    assert_eq!(err, DomainError::Validation(vec![Field::Price]));
    let long = "x".repeat(MAX_TITLE_CHARS + 1);
    assert_eq!(TicketDraft::new(Some(&long), Price::parse("5")), Err(DomainError::Validation(vec![Field::Title])));
}

#[test]
fn a_title_of_control_characters_or_containing_one_is_refused() {
    for raw in
        ["\u{0}", "\u{1}\u{2}", " \u{0} ", "\u{7f}", "\u{9b}", "gig\u{0}", "two\nlines", "tab\there", "\u{1b}[31mred"]
    {
        let err = TicketDraft::new(Some(raw), Price::parse("5")).unwrap_err();
        assert_eq!(err, DomainError::Validation(vec![Field::Title]), "{raw:?}");
    }
    // Whitespace around a title, line breaks included, is trimmed, not refused.
    assert_eq!(TicketDraft::new(Some("\t gig \r\n"), Price::parse("5")).unwrap().title, "gig");
    assert_eq!(TicketDraft::new(Some("Café « Ünïcode » 🎫"), Price::parse("5")).unwrap().title, "Café « Ünïcode » 🎫");
}

#[test]
fn titles_are_trimmed() {
    let d = TicketDraft::new(Some("  gig "), Price::parse("5")).unwrap();
    assert_eq!(d.title, "gig");
    assert_eq!(d.price.cents(), 500);
}

#[test]
fn a_new_ticket_is_at_version_zero_and_emits_created() {
    let (t, _) = ticket();
    assert_eq!(t.version, 0);
    assert_eq!(Event::TicketCreated(t.clone()).subject(), "ticket:created");
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
    assert_eq!(t.update(UserId::new_in(Slot(1)), draft("x", 1), 0), Err(DomainError::NotAuthorized));
    assert_eq!(t.version, 0);
}

#[test]
fn a_reserved_ticket_cannot_be_edited_even_by_its_owner() {
    let (mut t, seller) = ticket();
    t.reserve(OrderId::new_in(Slot(1)), UserId::new_in(Slot(1)), 0).unwrap();
    assert_eq!(t.update(seller, draft("x", 1), 0), Err(Rule::CannotEditReserved.into()));
}

#[test]
fn a_ticket_is_reserved_once_and_released_only_by_its_order() {
    let (mut t, seller) = ticket();
    let (first, second) = (OrderId::new_in(Slot(1)), OrderId::new_in(Slot(1)));
    t.reserve(first, UserId::new_in(Slot(1)), 0).unwrap();
    assert_eq!(t.reserve(second, UserId::new_in(Slot(1)), 0), Err(Rule::TicketReserved.into()));
    assert!(t.release(second, 0).is_none());
    assert_eq!(t.order_id, Some(first));
    assert!(t.release(first, 0).is_some());
    assert_eq!(t.order_id, None);
    assert_eq!(t.version, 2);
    assert_eq!(t.reserve(OrderId::new_in(Slot(1)), seller, 0), Err(Rule::CannotBuyOwnTicket.into()));
}
