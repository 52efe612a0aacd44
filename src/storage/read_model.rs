//! The read-model tree: a node's projections (lists of tickets for sale, a buyer's orders, a
//! seller's tickets), kept apart from entity data because they are derived, node-local and
//! rebuilt from entity records or events at will. Their writes are not flushed on their own:
//! they reach the disk with the next durable commit, and a crash only means the events behind
//! them are applied again (projections are idempotent).

use super::group_commit::WriteCounter;
use super::{envelope, Record, StorageError};

#[derive(Clone)]
pub struct ReadModelTree {
    tree: sled::Tree,
    meta: sled::Tree,
    written: WriteCounter,
}

/// Changes to the read model, applied in order, one key at a time.
///
/// Not a sled batch: `apply_batch` takes sled's global lock exclusively, so it waits for any
/// flush in progress and, while it waits, blocks every read of every thread (BENCHMARKS.md).
/// Single-key writes take that lock shared. A crash between two of them costs nothing: the
/// events behind them are still in the outbox and are applied again (projections are
/// idempotent); a list read meanwhile may see one event's keys half applied.
#[derive(Default)]
pub struct ReadModelBatch(Vec<(Vec<u8>, Option<Vec<u8>>)>);

impl ReadModelBatch {
    pub fn put<T: Record>(&mut self, key: Vec<u8>, value: &T) -> Result<(), StorageError> {
        self.0.push((key, Some(envelope::encode(value)?)));
        Ok(())
    }

    pub fn remove(&mut self, key: Vec<u8>) {
        self.0.push((key, None));
    }
}

impl ReadModelTree {
    pub(super) fn new(tree: sled::Tree, meta: sled::Tree, written: WriteCounter) -> Self {
        Self { tree, meta, written }
    }

    pub fn get<T: Record>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self.tree.get(key)? {
            Some(bytes) => envelope::decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Whether a row is stored under `key`.
    pub fn contains(&self, key: &[u8]) -> Result<bool, StorageError> {
        Ok(self.tree.contains_key(key)?)
    }

    pub fn apply(&self, batch: ReadModelBatch) -> Result<(), StorageError> {
        self.written.direct(&self.tree, &batch.0);
        for (key, value) in batch.0 {
            match value {
                Some(value) => self.tree.insert(key, value)?,
                None => self.tree.remove(key)?,
            };
        }
        Ok(())
    }

    /// Up to `limit` records under `prefix`, after `after` (a full key) if given.
    pub fn scan<T: Record>(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, T)>, StorageError> {
        let mut out = Vec::new();
        let from = match after {
            Some(after) => {
                let mut start = after.to_vec();
                start.push(0);
                start
            }
            None => prefix.to_vec(),
        };
        for item in self.tree.range(from..) {
            let (k, v) = item?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), envelope::decode(&k, &v)?));
        }
        Ok(out)
    }

    /// Every record under `prefix`, in key order, decoded one at a time.
    pub fn iter<T: Record>(&self, prefix: &[u8]) -> impl Iterator<Item = Result<T, StorageError>> {
        self.tree.scan_prefix(prefix).map(|item| {
            let (k, v) = item?;
            envelope::decode(&k, &v)
        })
    }

    /// Drops every projection (before a rebuild).
    pub fn clear(&self) -> Result<(), StorageError> {
        self.tree.clear()?;
        Ok(())
    }

    /// The version of the projections this tree holds (`None`: never built).
    pub fn version(&self) -> Result<Option<u32>, StorageError> {
        Ok(self.meta.get("read_model")?.and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok()).map(u32::from_be_bytes))
    }

    pub fn set_version(&self, version: u32) -> Result<(), StorageError> {
        self.meta.insert("read_model", &version.to_be_bytes())?;
        Ok(())
    }
}
