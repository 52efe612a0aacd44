use super::*;
use crate::actors::ticket::GetTicket;

#[test]
fn a_message_dropped_unrun_gives_back_its_place_in_the_mailbox_count() {
    let stats = Arc::new(ActorStats::new(1));
    let first = Deliver::new(GetTicket, &stats);
    let second = Deliver::new(GetTicket, &stats);
    assert_eq!(stats.mailbox_depth(), 2);
    // actix drops a queued message unrun when its asker gave up (an ask timeout).
    drop(first);
    assert_eq!(stats.mailbox_depth(), 1, "a lost ask no longer counts against the mailbox bound");
    drop(second);
    assert_eq!(stats.mailbox_depth(), 0, "nor against passivation");
}
