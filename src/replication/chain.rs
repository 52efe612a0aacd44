//! Which entries of a shard's log count, read in log order: the rules every copy applies.
//!
//! * A **term marker** counts when its term is above every earlier one: from there on only
//!   entries of that term count (an entry of an earlier term comes from an owner that had
//!   lost its lease, and never counts, whether or not it was confirmed).
//! * An **entry** counts when it is of the current term and numbered one past the last that
//!   counted. A gap ends the term's counting (its author fenced itself when an entry was not
//!   confirmed): nothing more of that term counts, and the next marker starts again.
//! * A counted entry the copy may already hold is **applied again** all the same: operations
//!   set or remove whole keys, so applying the log in order from any earlier point ends in the
//!   same state. That is what lets a copy start from a snapshot taken while the owner kept
//!   writing (`super::snapshot`).
//! * A copy **diverged** when it holds entries that did not count: a new term begins while
//!   the copy holds more entries than counted, written in an earlier term (by this node, as an
//!   owner whose last entries never reached the log, or in a snapshot taken from one). It is
//!   then rebuilt.

use crate::storage::log::{Entry, Position};
use crate::storage::StorageError;

/// What to do with one entry read from the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Apply these operations; the copy's position is then `Position`.
    Apply(crate::storage::log::Entry, Position),
    /// Nothing to apply (counted already, of an ended term, or a marker).
    Skip,
    /// A term marker: `mine` when its nonce is the one this node appended; `counts` when its
    /// term is above every earlier one (a marker that does not count starts nothing).
    Term { term: u64, mine: bool, counts: bool },
    /// The copy holds entries that never counted: rebuild it from the log's start.
    Diverged,
}

/// A reader of one shard's log, positioned where a copy stands.
#[derive(Clone, Debug)]
pub struct Chain {
    /// The copy: its last entry's term and number.
    pub copy: Position,
    /// The current term (the last marker that counted).
    pub term: u64,
    /// The last counted entry's number.
    pub counted: u64,
    /// The current term's counting ended at a gap.
    broken: bool,
}

impl Chain {
    /// A reader resuming where `copy` stands (a copy with nothing: from the log's start).
    pub fn resume(copy: Position) -> Self {
        Self { copy, term: copy.term, counted: copy.chain_at_resume, broken: false }
    }

    /// Reads the entry at `offset`; `nonce` is the marker this node is waiting for, if any.
    pub fn read(&mut self, offset: u64, bytes: &[u8], nonce: Option<u64>) -> Result<Step, StorageError> {
        Ok(match Entry::decode(bytes)? {
            Entry::Term { term, nonce: n, .. } => {
                let mine = Some(n) == nonce;
                if term <= self.term {
                    return Ok(Step::Term { term, mine, counts: false });
                }
                if self.copy.seq > self.counted && self.copy.term < term {
                    return Ok(Step::Diverged);
                }
                self.term = term;
                self.broken = false;
                Step::Term { term, mine, counts: true }
            }
            Entry::Ops { term, seq, ops } => {
                if term != self.term || self.broken || seq <= self.counted {
                    return Ok(Step::Skip);
                }
                if seq != self.counted + 1 {
                    self.broken = true;
                    return Ok(Step::Skip);
                }
                self.counted = seq;
                // The copy may hold later writes already (its node wrote them as the owner, or
                // a snapshot had them): it still holds them, whatever this entry sets.
                let holds = if term == self.copy.term { self.copy.seq.max(seq) } else { seq };
                self.copy = Position { term, seq: holds, resume_at: Some(offset), chain_at_resume: seq };
                Step::Apply(Entry::Ops { term, seq, ops }, self.copy)
            }
        })
    }
}

#[cfg(test)]
#[path = "chain_test.rs"]
mod tests;
