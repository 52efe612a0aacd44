//! Where bytes hit the disk. One sled database, records in versioned envelopes
//! ([`envelope`]), keys built from typed ids ([`keys`]), and group-committed flushes
//! ([`group_commit`]): a write acknowledged by the API has been flushed.

pub mod envelope;
mod group_commit;
pub mod keys;
mod records;

pub use envelope::{Kind, Record};
pub use group_commit::FlushObserver;
pub use records::{DeadlineEntry, EmailOwner, Marker, StoredEvent, WebhookSeen};

use crate::domain::Event;
use group_commit::GroupCommit;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O: {0}")]
    Io(#[from] sled::Error),
    #[error("record {key} cannot be decoded: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("record cannot be encoded: {0}")]
    Encode(String),
    #[error("storage transaction aborted: {0}")]
    Conflict(String),
}

/// A decoded record, or the decode error with the raw bytes (see [`Store::scan_lenient`]).
pub type Lenient<T> = Result<T, (StorageError, Vec<u8>)>;
/// A key with its leniently decoded record.
pub type LenientEntry<T> = (Vec<u8>, Lenient<T>);

/// A set of changes written atomically (one sled batch) and flushed together.
#[derive(Default)]
pub struct WriteBatch {
    batch: sled::Batch,
    pub(crate) events: usize,
}

impl WriteBatch {
    pub fn put<T: Record>(&mut self, key: Vec<u8>, value: &T) -> Result<(), StorageError> {
        self.batch.insert(key, envelope::encode(value)?);
        Ok(())
    }

    /// Inserts an already-encoded record.
    pub fn put_raw(&mut self, key: Vec<u8>, encoded: Vec<u8>) {
        self.batch.insert(key, encoded);
    }

    pub fn remove(&mut self, key: Vec<u8>) {
        self.batch.remove(key);
    }
}

/// The node's store: cheap to clone, shared by every actor.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    commit: Arc<GroupCommit>,
    /// Notified after a commit that wrote outbox events (wakes the publisher).
    outbox_written: Arc<tokio::sync::Notify>,
}

impl Store {
    pub fn open(path: &Path, observe_flush: FlushObserver) -> Result<Self, StorageError> {
        let db = sled::Config::new().path(path).mode(sled::Mode::HighThroughput).open()?;
        let commit = GroupCommit::start(db.clone(), observe_flush);
        Ok(Self { db, commit, outbox_written: Arc::new(tokio::sync::Notify::new()) })
    }

    pub fn get<T: Record>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self.db.get(key)? {
            Some(bytes) => envelope::decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The encoded bytes at `key` (for compare-and-swap callers).
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    /// Atomically replaces `expected` with `new` at `key` (in memory; commit or sync to make it
    /// durable). `Ok(false)` if someone else changed it first.
    pub fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StorageError> {
        Ok(self.db.compare_and_swap(key, expected, new)?.is_ok())
    }

    pub fn contains(&self, key: &[u8]) -> Result<bool, StorageError> {
        Ok(self.db.contains_key(key)?)
    }

    /// Appends `event` to the durable outbox as part of `batch`.
    pub fn push_event(&self, batch: &mut WriteBatch, event: &Event) -> Result<(), StorageError> {
        let seq = self.db.generate_id()?;
        batch.put(keys::outbox(seq), &StoredEvent { seq, event: event.clone() })?;
        batch.events += 1;
        Ok(())
    }

    /// Applies `batch` atomically and returns once it is on disk.
    pub async fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let events = batch.events;
        self.db.apply_batch(batch.batch)?;
        self.commit.durable().await;
        if events > 0 {
            self.outbox_written.notify_one();
        }
        Ok(())
    }

    /// Resolves after the next commit that wrote outbox events.
    pub async fn outbox_written(&self) {
        self.outbox_written.notified().await;
    }

    /// Waits until everything applied so far is on disk.
    pub async fn sync(&self) {
        self.commit.durable().await;
    }

    /// Inserts `value` at `key` only if the key is absent, atomically with `batch`'s other
    /// writes; `Ok(false)` when the key was taken. Used where uniqueness is the rule (emails).
    pub async fn insert_unique<T: Record>(
        &self,
        key: Vec<u8>,
        value: &T,
        also: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<bool, StorageError> {
        let encoded = envelope::encode(value)?;
        let result = self.db.transaction(|tx| {
            if tx.get(&key)?.is_some() {
                return Ok(false);
            }
            tx.insert(key.as_slice(), encoded.as_slice())?;
            for (k, v) in &also {
                tx.insert(k.as_slice(), v.as_slice())?;
            }
            Ok(true)
        });
        let inserted = result.map_err(|e: sled::transaction::TransactionError<()>| match e {
            sled::transaction::TransactionError::Storage(e) => StorageError::Io(e),
            sled::transaction::TransactionError::Abort(()) => StorageError::Conflict("aborted".into()),
        })?;
        if inserted {
            self.commit.durable().await;
        }
        Ok(inserted)
    }

    /// Encodes a record for [`Store::insert_unique`]'s extra writes.
    pub fn encode<T: Record>(value: &T) -> Result<Vec<u8>, StorageError> {
        envelope::encode(value)
    }

    /// Up to `limit` records under `prefix`, starting after `after` (a full key) if given.
    pub fn scan<T: Record>(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, T)>, StorageError> {
        let mut out = Vec::new();
        let iter = match after {
            Some(after) => {
                let mut start = after.to_vec();
                start.push(0);
                self.db.range(start..)
            }
            None => self.db.range(prefix.to_vec()..),
        };
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), envelope::decode(&k, &v)?));
        }
        Ok(out)
    }

    /// The durable deadline of `order`, found by scanning the deadline index (a rare path: the
    /// caller did not know the deadline's time).
    pub fn deadline_of(
        &self,
        order: &crate::domain::OrderId,
    ) -> Result<Option<(Vec<u8>, DeadlineEntry)>, StorageError> {
        for item in self.db.scan_prefix([keys::DEADLINE]) {
            let (key, value) = item?;
            if keys::parse_deadline(&key).is_some_and(|(_, o)| &o == order) {
                return Ok(Some((key.to_vec(), envelope::decode(&key, &value)?)));
            }
        }
        Ok(None)
    }

    /// Like [`Store::scan`] from the start of `prefix`, but a record that does not decode is
    /// returned as an error with its raw bytes instead of ending the scan.
    pub fn scan_lenient<T: Record>(&self, prefix: &[u8], limit: usize) -> Result<Vec<LenientEntry<T>>, StorageError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(prefix).take(limit) {
            let (k, v) = item?;
            let decoded = envelope::decode(&k, &v).map_err(|e| (e, v.to_vec()));
            out.push((k.to_vec(), decoded));
        }
        Ok(out)
    }

    /// The keys under `prefix` (for indexes whose values are empty markers).
    pub fn scan_keys(&self, prefix: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, StorageError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(prefix).keys().take(limit) {
            out.push(item?.to_vec());
        }
        Ok(out)
    }

    /// Flushes and stops the flush thread (ordered shutdown).
    pub async fn close(&self) {
        self.commit.durable().await;
        self.commit.stop().await;
    }
}
