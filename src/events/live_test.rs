//! Unit tests of `live`.

use super::*;
use crate::domain::{Price, Slot, TicketId, UserId};

fn ticket(title: &str) -> Ticket {
    Ticket {
        id: TicketId::new_in(Slot(1)),
        title: title.into(),
        price: Price::from_cents(1000),
        user_id: UserId::new_in(Slot(1)),
        version: 1,
        order_id: None,
        updated_at_ms: 0,
    }
}

fn text(frame: &Frame) -> String {
    String::from_utf8_lossy(frame).into_owned()
}

/// The id of a frame.
fn id(frame: &Frame) -> String {
    text(frame).lines().next().and_then(|l| l.strip_prefix("id: ")).unwrap().to_string()
}

#[test]
fn a_change_reaches_every_subscriber_as_one_sse_frame_with_the_ticket() {
    let live = Live::new(10);
    let (mut a, mut b) = (live.subscribe(Start::Now).unwrap(), live.subscribe(Start::Now).unwrap());
    live.tell(Change::Reserved, &ticket("gig"));
    for sub in [&mut a, &mut b] {
        let frame = text(&sub.frames.try_recv().unwrap());
        assert!(frame.contains("\nevent: reserved\ndata: {"), "{frame}");
        assert!(frame.contains(r#""title":"gig""#), "{frame}");
        assert!(frame.ends_with("\n\n"));
    }
}

#[test]
fn last_event_id_resumes_without_a_gap_and_an_unknown_one_resets() {
    let live = Live::new(10);
    let mut first = live.subscribe(Start::Now).unwrap();
    for n in 0..5 {
        live.tell(Change::Listed, &ticket(&format!("t{n}")));
    }
    let seen: Vec<Frame> = (0..5).map(|_| first.frames.try_recv().unwrap()).collect();
    // Resumed after the second: the last three, in order.
    let resumed = live.subscribe(Start::After(&id(&seen[1]))).unwrap();
    assert_eq!(resumed.missed.unwrap(), seen[2..].to_vec());
    // After the last: nothing missed.
    assert_eq!(live.subscribe(Start::After(&id(&seen[4]))).unwrap().missed.unwrap(), Vec::<Frame>::new());
    // Another node's (or an earlier start's) id, one from the future, garbage: reset.
    let (_, n) = id(&seen[4]).split_once('-').map(|(b, n)| (b.to_string(), n.to_string())).unwrap();
    for other in [format!("beef-{n}"), format!("{}-99", id(&seen[0]).split('-').next().unwrap()), "x".into()] {
        assert!(live.subscribe(Start::After(&other)).unwrap().missed.is_none(), "{other}");
    }
}

#[test]
fn an_id_older_than_what_is_kept_resets() {
    let live = Live::new(10);
    let mut sub = live.subscribe(Start::Now).unwrap();
    live.tell(Change::Listed, &ticket("first"));
    let first = id(&sub.frames.try_recv().unwrap());
    drop(sub);
    for _ in 0..KEPT {
        live.tell(Change::Updated, &ticket("later"));
    }
    assert!(live.subscribe(Start::After(&first)).unwrap().missed.is_none());
}

#[test]
fn a_subscriber_that_falls_a_queue_behind_is_closed_and_counted() {
    let live = Live::new(10);
    let mut slow = live.subscribe(Start::Now).unwrap();
    let mut fast = live.subscribe(Start::Now).unwrap();
    for n in 0..QUEUE + 1 {
        live.tell(Change::Listed, &ticket(&format!("t{n}")));
        let _ = fast.frames.try_recv();
    }
    assert_eq!(live.overflowed(), 1);
    // What was queued can still be read, then the stream ends.
    let mut got = 0;
    while slow.frames.try_recv().is_ok() {
        got += 1;
    }
    assert_eq!(got, QUEUE);
    assert!(matches!(slow.frames.try_recv(), Err(mpsc::error::TryRecvError::Disconnected)));
    live.tell(Change::Listed, &ticket("more"));
    assert!(fast.frames.try_recv().is_ok(), "the reader that kept up is still served");
}

#[test]
fn streams_are_bounded_and_a_closed_one_frees_its_place() {
    let live = Live::new(2);
    let a = live.subscribe(Start::Now).unwrap();
    let _b = live.subscribe(Start::Now).unwrap();
    assert!(live.subscribe(Start::Now).is_none());
    assert_eq!(live.streams(), 2);
    drop(a);
    assert!(live.subscribe(Start::Now).is_some());
}

#[test]
fn a_position_taken_before_a_change_resumes_with_that_change() {
    let live = Live::new(10);
    live.tell(Change::Listed, &ticket("before"));
    let position = live.position();
    live.tell(Change::Reserved, &ticket("after"));
    let mut sub = live.subscribe(Start::Page(&position)).unwrap();
    let missed = sub.missed.take().expect("resumable on this node");
    assert_eq!(missed.len(), 1, "only what came after the position");
    assert!(text(&missed[0]).contains("\nevent: reserved\n"));
    assert!(sub.frames.try_recv().is_err(), "nothing else queued");
    // Taken now, it names the last change: nothing missed.
    let mut now = live.subscribe(Start::Page(&live.position())).unwrap();
    assert_eq!(now.missed.take().map(|m| m.len()), Some(0));
    // Another node's or an earlier start's page: no reset (it would be read there again), the
    // stream starts with the next change.
    for other in ["0-1", "nonsense"] {
        let mut sub = live.subscribe(Start::Page(other)).unwrap();
        assert_eq!(sub.missed.take().map(|m| m.len()), Some(0), "{other}");
    }
    live.tell(Change::Sold, &ticket("next"));
    let mut sub = live.subscribe(Start::Page("0-1")).unwrap();
    assert_eq!(sub.missed.take().map(|m| m.len()), Some(0));
}

#[test]
fn a_page_is_brought_up_to_date_however_many_changes_came_and_never_told_to_reset() {
    let live = Live::new(10);
    let position = live.position();
    for _ in 0..QUEUE + 44 {
        live.tell(Change::Updated, &ticket("busy"));
    }
    let mut page = live.subscribe(Start::Page(&position)).unwrap();
    assert_eq!(page.missed.take().map(|m| m.len()), Some(QUEUE + 44), "a page: everything kept");
    // A reconnecting client that far behind reads its list again instead.
    assert!(live.subscribe(Start::After(&position)).unwrap().missed.is_none());
    // Either way each is told where it now stands.
    assert_eq!(text(&page.at), format!("id: {}\n\n", live.position()));
}
