//! The shard logs, as the store sees them. With replication on ([`Store::with_logs`]), every
//! write to a slot goes into its shard's log as well as to the disk: the writer thread turns
//! each group it commits into one [`Entry::Ops`] per shard touched, numbered without gaps
//! under the shard's current term, hands it to the [`Appender`] (which publishes it to the
//! shard's stream) and reports the group durable only once it is flushed **and** the log
//! confirmed it (`group_commit`).
//!
//! A write to a shard this node does not serve now (no term here) is refused before anything
//! is queued ([`StorageError::NotServed`]); a write whose entry the log did not confirm is
//! [`StorageError::Unreplicated`]: it may or may not be in the log, and the shard is fenced
//! until a new term re-establishes it (`crate::replication`).
//!
//! Where a copy stands in its log ([`Position`]) is stored in the shard's first slot, in the
//! same batch as the operations it counts, so a copy and its position never disagree.
//!
//! [`Store::with_logs`]: super::Store::with_logs
//! [`StorageError::NotServed`]: super::StorageError::NotServed
//! [`StorageError::Unreplicated`]: super::StorageError::Unreplicated

use super::envelope::{Kind, Record};
use super::{keys, StorageError};
use crate::domain::{shard_of_slot, slots_of_shard, Slot};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A batch's changes in order (`None`: remove the key): what the writer applies, and what a
/// log entry carries.
pub type Ops = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// The format of log entries this release writes (the first byte of every entry). The
/// operations inside carry their records' own envelope versions.
pub const LOG_FORMAT: u8 = 1;

/// Largest entry a decode may allocate (a group of writes to one shard).
const MAX_ENTRY_BYTES: usize = 64 << 20;

/// One entry of a shard's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// From here on, `node` holds the shard's lease, in `term`. An entry of an earlier term
    /// after this marker does not count: its writer had lost the lease.
    Term { term: u64, node: String, nonce: u64 },
    /// One writer cycle's operations on the shard (`None`: remove the key), the `seq`-th
    /// counted entry of the shard's log.
    Ops { term: u64, seq: u64, ops: Ops },
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_ENTRY_BYTES>()
}

impl Entry {
    pub fn encode(&self) -> Result<Vec<u8>, StorageError> {
        let mut out = vec![LOG_FORMAT];
        bincode::serde::encode_into_std_write(self, &mut out, config())
            .map_err(|e| StorageError::Encode(e.to_string()))?;
        Ok(out)
    }

    /// Decodes an entry; an entry of another format is an error naming it (a follower of an
    /// older release stops following rather than guess).
    pub fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let corrupt = |reason: String| StorageError::Corrupt { key: "log entry".into(), reason };
        match bytes.split_first() {
            Some((&LOG_FORMAT, payload)) => {
                let (entry, read) = bincode::serde::decode_from_slice(payload, config())
                    .map_err(|e| corrupt(format!("bad entry: {e}")))?;
                if read != payload.len() {
                    return Err(corrupt(format!("{} trailing bytes", payload.len() - read)));
                }
                Ok(entry)
            }
            Some((other, _)) => Err(corrupt(format!("log format {other}, this release reads {LOG_FORMAT}"))),
            None => Err(corrupt("empty entry".into())),
        }
    }
}

/// Where a copy of a shard stands in the shard's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The term of the last entry in this copy (or of the term this copy's node established).
    pub term: u64,
    /// The number of the last entry in this copy.
    pub seq: u64,
    /// The log offset reading resumes at (an entry already in this copy, or the marker of the
    /// term this copy's node established); `None`: from the log's start.
    pub resume_at: Option<u64>,
    /// The last counted entry's number at `resume_at`.
    pub chain_at_resume: u64,
}

impl Record for Position {
    const KIND: Kind = Kind::LogPosition;
}

/// Publishes log entries; given to the store by the layer that owns the logs.
pub trait Appender: Send + Sync {
    /// Appends `entry` to `shard`'s log, in call order per shard; the receiver says whether the
    /// log confirmed it (an error, or a dropped sender: it may or may not be in the log).
    fn append(&self, shard: u32, entry: Vec<u8>) -> oneshot::Receiver<Result<(), String>>;
    /// An entry of `shard` was not confirmed: the shard must stop at once (it is already fenced
    /// in the store) and be re-established in a new term.
    fn unconfirmed(&self, shard: u32, why: String);
}

/// The shards whose writes go to a log, and the term each is written in here.
pub struct ShardLogs {
    shards: u32,
    /// Shards this node writes now: their term and the position of the last entry.
    active: RwLock<HashMap<u32, Position>>,
    appender: Arc<dyn Appender>,
}

impl ShardLogs {
    pub fn new(shards: u32, appender: Arc<dyn Appender>) -> Self {
        Self { shards: shards.max(1), active: RwLock::new(HashMap::new()), appender }
    }

    /// The shard of `slot` (the same split as the shard map's).
    pub fn shard_of(&self, slot: Slot) -> u32 {
        shard_of_slot(slot, self.shards)
    }

    /// The slots of `shard`.
    pub fn slots(&self, shard: u32) -> std::ops::Range<u32> {
        slots_of_shard(shard, self.shards)
    }

    /// The key of `shard`'s [`Position`] (in its first slot).
    pub fn position_key(&self, shard: u32) -> Vec<u8> {
        keys::prefix(Slot(self.slots(shard).start as u16), keys::LOG_POSITION)
    }

    /// The term `shard` is written in here, if this node writes it now.
    pub fn term(&self, shard: u32) -> Option<u64> {
        self.active.read().get(&shard).map(|p| p.term)
    }

    /// Where this node's writing of `shard` stands (its term, its last entry's number).
    pub fn position(&self, shard: u32) -> Option<Position> {
        self.active.read().get(&shard).copied()
    }

    /// From now on this node writes `shard`, continuing from `position` (its term established).
    pub fn establish(&self, shard: u32, position: Position) {
        self.active.write().insert(shard, position);
    }

    /// This node no longer writes `shard`: writes queued for it fail, new ones are refused.
    pub fn fence(&self, shard: u32) {
        self.active.write().remove(&shard);
    }

    /// Fences `shard` if it is still written in `term` here; `false` if it was fenced already
    /// (or is in a later term).
    pub fn fence_term(&self, shard: u32, term: u64) -> bool {
        let mut active = self.active.write();
        if active.get(&shard).is_some_and(|p| p.term == term) {
            active.remove(&shard);
            return true;
        }
        false
    }

    /// The next entry's number of `shard` in `term`, and the position to store with it;
    /// `None` when `shard` is not written in `term` here (fenced, or a later term).
    pub(super) fn next(&self, shard: u32, term: u64) -> Option<Position> {
        let mut active = self.active.write();
        let position = active.get_mut(&shard).filter(|p| p.term == term)?;
        position.seq += 1;
        Some(*position)
    }

    /// The term a write to `key` is made in; refused when its shard is not written here.
    pub(super) fn term_for(&self, key: &[u8]) -> Result<(u32, u64), StorageError> {
        let shard = self.shard_of(keys::slot_of(key).unwrap_or(Slot(0)));
        self.term(shard).map(|term| (shard, term)).ok_or(StorageError::NotServed)
    }

    pub(super) fn appender(&self) -> &dyn Appender {
        self.appender.as_ref()
    }
}

#[cfg(test)]
#[path = "log_test.rs"]
mod tests;
