//! Unit tests of `wire`.

use super::*;
use crate::actors::order::OrderCommand;
use crate::actors::ticket::TicketCommand;
use crate::domain::{OrderId, Price, Slot, TicketDraft, UserId};

#[test]
fn commands_survive_the_wire() {
    let draft = TicketDraft { title: "gig".into(), price: Price::from_cents(1250) };
    let command = TicketCommand::Update { caller: UserId::new_in(Slot(3)), draft };
    assert_eq!(round_trip(&command).unwrap(), command);
    let pay = OrderCommand::Pay { caller: UserId::new_in(Slot(1)), token: "tok_visa".into() };
    assert_eq!(round_trip(&pay).unwrap(), pay);
    let release = TicketCommand::Release { order: OrderId::new_in(Slot(9)) };
    assert_eq!(round_trip(&release).unwrap(), release);
}

#[test]
fn an_unknown_version_is_refused_not_guessed() {
    let mut bytes = encode(&TicketCommand::Get).unwrap();
    bytes[0] = WIRE_VERSION + 1;
    assert!(matches!(decode::<TicketCommand>(&bytes), Err(WireError::UnknownVersion(_))));
    assert!(decode::<TicketCommand>(&[]).is_err());
    assert!(decode::<TicketCommand>(&[WIRE_VERSION, 250, 250]).is_err());
}
