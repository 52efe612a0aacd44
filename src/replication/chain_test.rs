//! Unit tests of `chain`: which entries count.

use super::*;
use crate::storage::log::Entry;

fn marker(term: u64, nonce: u64) -> Vec<u8> {
    Entry::Term { term, node: "n".into(), nonce }.encode().unwrap()
}

fn ops(term: u64, seq: u64) -> Vec<u8> {
    Entry::Ops { term, seq, ops: vec![(format!("k{seq}").into_bytes(), Some(vec![1]))] }.encode().unwrap()
}

/// Reads `log` from the start into a fresh copy: the numbers applied, or where it diverged.
fn applied(chain: &mut Chain, log: &[Vec<u8>]) -> Result<Vec<u64>, usize> {
    let mut out = Vec::new();
    for (offset, bytes) in log.iter().enumerate() {
        match chain.read(offset as u64, bytes, None).unwrap() {
            Step::Apply(Entry::Ops { seq, .. }, _) => out.push(seq),
            Step::Diverged => return Err(offset),
            _ => {}
        }
    }
    Ok(out)
}

#[test]
fn entries_of_an_owner_that_lost_its_lease_never_count() {
    // Term 1 writes 1, 2; term 2 begins; a late entry 3 of term 1 arrives after the marker.
    let log = vec![marker(1, 1), ops(1, 1), ops(1, 2), marker(2, 2), ops(1, 3), ops(2, 3), ops(2, 4)];
    let mut chain = Chain::resume(Position::default());
    assert_eq!(applied(&mut chain, &log), Ok(vec![1, 2, 3, 4]));
    assert_eq!((chain.term, chain.counted), (2, 4));
}

#[test]
fn a_gap_ends_the_term_until_the_next_marker_and_duplicates_are_skipped() {
    let log = vec![marker(1, 1), ops(1, 1), ops(1, 1), ops(1, 3), ops(1, 4), marker(2, 2), ops(2, 2)];
    let mut chain = Chain::resume(Position::default());
    assert_eq!(applied(&mut chain, &log), Ok(vec![1, 2]), "3 and 4 of term 1 came after a gap");
}

#[test]
fn a_marker_that_does_not_raise_the_term_starts_nothing() {
    let log = vec![marker(2, 1), ops(2, 1), marker(1, 9), ops(1, 2), ops(2, 2)];
    let mut chain = Chain::resume(Position::default());
    assert_eq!(applied(&mut chain, &log), Ok(vec![1, 2]));
    let mut again = Chain::resume(Position::default());
    let steps: Vec<Step> = log.iter().enumerate().map(|(o, b)| again.read(o as u64, b, Some(9)).unwrap()).collect();
    assert_eq!(steps[2], Step::Term { term: 1, mine: true, counts: false }, "its author learns it must retry higher");
}

#[test]
fn a_copy_holding_entries_that_never_reached_the_log_diverges_at_the_next_term() {
    // This node owned term 1 and wrote 1..=3 locally; only 1 and 2 reached the log.
    let copy = Position { term: 1, seq: 3, resume_at: Some(0), chain_at_resume: 0 };
    let log = vec![marker(1, 1), ops(1, 1), ops(1, 2), marker(2, 2), ops(2, 3)];
    let mut chain = Chain::resume(copy);
    assert_eq!(applied(&mut chain, &log), Err(3), "diverges at the marker of term 2");
    // Had all three reached the log, the copy goes on from there.
    let log = vec![marker(1, 1), ops(1, 1), ops(1, 2), ops(1, 3), marker(2, 2), ops(2, 4)];
    let mut chain = Chain::resume(copy);
    assert_eq!(applied(&mut chain, &log), Ok(vec![1, 2, 3, 4]), "1..=3 applied again, harmlessly");
}

#[test]
fn a_copy_from_a_snapshot_applies_again_what_it_may_hold_and_diverges_if_that_never_counted() {
    // A snapshot taken while entries 3..=5 were written: everything up to 2 counted, the pages
    // may hold up to 5. Read from an offset before entry 3.
    let snapshot = Position { term: 1, seq: 5, resume_at: Some(1), chain_at_resume: 2 };
    let log = [marker(1, 1), ops(1, 2), ops(1, 3), ops(1, 4), ops(1, 5), ops(1, 6)];
    let mut chain = Chain::resume(snapshot);
    let got: Vec<(u64, u64)> = log
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(o, b)| match chain.read(o as u64, b, None).unwrap() {
            Step::Apply(Entry::Ops { seq, .. }, position) => Some((seq, position.seq)),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![(3, 5), (4, 5), (5, 5), (6, 6)], "applied again, the copy still holding up to 5");
    // Entry 5 never reached the log: the next term finds the copy holding more than counted.
    let log = [marker(1, 1), ops(1, 2), ops(1, 3), ops(1, 4), marker(2, 2), ops(2, 5)];
    let mut chain = Chain::resume(snapshot);
    assert_eq!(applied(&mut chain, &log[1..]), Err(3));
}

#[test]
fn a_follower_resuming_at_its_last_entry_applies_only_what_follows() {
    let log = [marker(1, 1), ops(1, 1), ops(1, 2), ops(1, 3)];
    let copy = Position { term: 1, seq: 2, resume_at: Some(2), chain_at_resume: 2 };
    let mut chain = Chain::resume(copy);
    let mut out = Vec::new();
    for (offset, bytes) in log.iter().enumerate().skip(2) {
        if let Step::Apply(Entry::Ops { seq, .. }, position) = chain.read(offset as u64, bytes, None).unwrap() {
            assert_eq!(position.resume_at, Some(offset as u64));
            out.push(seq);
        }
    }
    assert_eq!(out, vec![3]);
}
