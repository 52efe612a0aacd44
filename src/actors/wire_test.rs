//! Unit tests of `wire`.

use super::*;
use crate::actors::order::Pay;
use crate::actors::ticket::{GetTicket, Release, UpdateTicket};
use crate::actors::EntityError;
use crate::domain::{OrderId, Price, Slot, TicketDraft, UserId};

#[test]
fn commands_survive_the_wire() {
    let draft = TicketDraft { title: "gig".into(), price: Price::from_cents(1250) };
    let command = UpdateTicket { caller: UserId::new_in(Slot(3)), draft };
    assert_eq!(round_trip(&command).unwrap(), command);
    let pay = Pay { caller: UserId::new_in(Slot(1)), token: "tok_visa".into(), again: false };
    assert_eq!(round_trip(&pay).unwrap(), pay);
    let release = Release { order: OrderId::new_in(Slot(9)) };
    assert_eq!(round_trip(&release).unwrap(), release);
}

#[test]
fn an_unknown_version_is_refused_not_guessed() {
    let mut bytes = encode(&GetTicket).unwrap();
    bytes[0] = WIRE_VERSION + 1;
    assert!(matches!(decode::<GetTicket>(&bytes), Err(WireError::UnknownVersion(_))));
    assert!(decode::<GetTicket>(&[]).is_err());
    assert!(decode::<EntityError>(&[WIRE_VERSION, 250, 250]).is_err());
}
