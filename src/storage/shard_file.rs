//! A shard's data as one file: the export that moves a shard to another node, and the backup.
//!
//! ```text
//! "TKSHARD1" [u32 header length][bincode header]
//! ([u32 key length][key][u32 value length][value])*   every key of the shard's slots, in order
//! [u32 0xFFFF_FFFF][u64 record count][32-byte SHA-256 of everything before it]
//! ```
//!
//! Keys and values are copied as they are on disk (versioned envelopes included), so a file
//! imports into any release that reads that layout. An import checks the count and the digest
//! before it writes anything.

use super::{keys, StorageError, Store};
use crate::domain::Slot;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

const MAGIC: &[u8; 8] = b"TKSHARD1";

/// Records as they are on disk: (key, value).
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;
const END: u32 = u32::MAX;

/// What the file holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardHeader {
    pub cluster: String,
    pub shard_count: u32,
    pub shard: u32,
    /// The slots of the shard (`first..end`).
    pub first_slot: u32,
    pub end_slot: u32,
    pub exported_at_ms: i64,
}

fn corrupt(reason: impl Into<String>) -> StorageError {
    StorageError::Corrupt { key: "shard file".into(), reason: reason.into() }
}

fn io(e: std::io::Error) -> StorageError {
    StorageError::Failed(e.to_string())
}

/// Writes through a running digest.
struct Digesting<W: Write> {
    out: W,
    digest: Sha256,
}

impl<W: Write> Digesting<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.digest.update(bytes);
        self.out.write_all(bytes).map_err(io)
    }
    fn put_chunk(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let len = u32::try_from(bytes.len()).map_err(|_| corrupt("record over 4 GiB"))?;
        self.put(&len.to_be_bytes())?;
        self.put(bytes)
    }
}

struct Verifying<R: Read> {
    input: R,
    digest: Sha256,
}

impl<R: Read> Verifying<R> {
    fn take(&mut self, n: usize) -> Result<Vec<u8>, StorageError> {
        // No record is this large: a damaged length must not allocate gigabytes.
        if n > 64 << 20 {
            return Err(corrupt("a record length over 64 MiB: the file is damaged"));
        }
        let mut buf = vec![0; n];
        self.input.read_exact(&mut buf).map_err(|e| corrupt(format!("truncated: {e}")))?;
        self.digest.update(&buf);
        Ok(buf)
    }
    fn take_u32(&mut self) -> Result<u32, StorageError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

impl Store {
    /// Writes every record of `header`'s slots to `out`; the number of records.
    pub fn export_shard(&self, header: &ShardHeader, out: impl Write) -> Result<u64, StorageError> {
        let mut w = Digesting { out, digest: Sha256::new() };
        w.put(MAGIC)?;
        let encoded = bincode::serde::encode_to_vec(header, bincode::config::standard())
            .map_err(|e| StorageError::Encode(e.to_string()))?;
        w.put_chunk(&encoded)?;
        let mut count = 0u64;
        for item in self.data.range(keys::prefix(Slot(header.first_slot as u16), 0)..) {
            let (key, value) = item?;
            if keys::slot_of(&key).is_none_or(|s| u32::from(s.0) >= header.end_slot) {
                break;
            }
            w.put_chunk(&key)?;
            w.put_chunk(&value)?;
            count += 1;
        }
        w.put(&END.to_be_bytes())?;
        w.put(&count.to_be_bytes())?;
        let digest = w.digest.clone().finalize();
        w.out.write_all(&digest).map_err(io)?;
        w.out.flush().map_err(io)?;
        Ok(count)
    }

    /// Up to about `max_bytes` of the records of `slots` after the key `after`, as they are on
    /// disk, leaving out `except` (a copy's own position); the key to continue after, if
    /// there is more. A page of a snapshot (`crate::replication::snapshot`).
    pub fn records_page(
        &self,
        slots: std::ops::Range<u32>,
        after: Option<&[u8]>,
        max_bytes: usize,
        except: &[u8],
    ) -> Result<(Records, Option<Vec<u8>>), StorageError> {
        let to = Slot(slots.end as u16).to_be_bytes().to_vec();
        let from = match after {
            Some(key) => std::ops::Bound::Excluded(key.to_vec()),
            None => std::ops::Bound::Included(Slot(slots.start as u16).to_be_bytes().to_vec()),
        };
        let (mut records, mut bytes) = (Vec::new(), 0);
        for item in self.data.range::<Vec<u8>, _>((from, std::ops::Bound::Excluded(to))) {
            let (key, value) = item?;
            if key.as_ref() == except {
                continue;
            }
            bytes += key.len() + value.len();
            records.push((key.to_vec(), value.to_vec()));
            if bytes >= max_bytes {
                let next = records.last().map(|(k, _)| k.clone());
                return Ok((records, next));
            }
        }
        Ok((records, None))
    }

    /// Reads and verifies a shard file completely, without writing anything.
    pub fn read_shard_file(input: impl Read) -> Result<(ShardHeader, Records), StorageError> {
        let mut r = Verifying { input, digest: Sha256::new() };
        if r.take(8)? != MAGIC {
            return Err(corrupt("not a ticketing shard file"));
        }
        let len = r.take_u32()? as usize;
        let (header, _): (ShardHeader, usize) =
            bincode::serde::decode_from_slice(&r.take(len)?, bincode::config::standard())
                .map_err(|e| corrupt(e.to_string()))?;
        let mut records = Vec::new();
        loop {
            let len = r.take_u32()?;
            if len == END {
                break;
            }
            let key = r.take(len as usize)?;
            let len = r.take_u32()?;
            let value = r.take(len as usize)?;
            let in_shard =
                keys::slot_of(&key).is_some_and(|s| (header.first_slot..header.end_slot).contains(&u32::from(s.0)));
            if !in_shard {
                return Err(corrupt("a record outside the shard's slots"));
            }
            records.push((key, value));
        }
        let count = u64::from_be_bytes(r.take(8)?.try_into().map_err(|_| corrupt("count"))?);
        let expected = r.digest.clone().finalize();
        let mut digest = [0u8; 32];
        r.input.read_exact(&mut digest).map_err(|e| corrupt(format!("truncated: {e}")))?;
        if count != records.len() as u64 || digest[..] != expected[..] {
            return Err(corrupt("the record count or digest does not match: the file is damaged"));
        }
        Ok((header, records))
    }

    /// Writes verified records into the data dir (which must hold nothing in their slots) and
    /// flushes.
    pub fn import_records(&self, records: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StorageError> {
        for chunk in records.chunks(10_000) {
            let mut batch = sled::Batch::default();
            for (k, v) in chunk {
                batch.insert(k.as_slice(), v.as_slice());
            }
            self.data.apply_batch(batch)?;
        }
        self.data.flush()?;
        Ok(())
    }

    /// Deletes every record of the slots `first..end` and flushes (after an export that moves
    /// the shard away).
    pub fn remove_slots(&self, first: u32, end: u32) -> Result<u64, StorageError> {
        let mut removed = 0;
        for item in self.data.range(keys::prefix(Slot(first as u16), 0)..).keys() {
            let key = item?;
            if keys::slot_of(&key).is_none_or(|s| u32::from(s.0) >= end) {
                break;
            }
            self.data.remove(key)?;
            removed += 1;
        }
        self.data.flush()?;
        Ok(removed)
    }

    /// The placement record with `shard` added (imported) or removed (exported away).
    pub fn record_shard(&self, shard: u32, held: bool) -> Result<(), StorageError> {
        if let Some(mut placement) = self.placement()? {
            placement.shards.retain(|s| *s != shard);
            placement.left.retain(|(s, _)| *s != shard);
            if held {
                placement.shards.push(shard);
                placement.shards.sort_unstable();
            } else {
                placement.left.push((shard, placement.epoch));
            }
            self.set_placement(&placement)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "shard_file_test.rs"]
mod tests;
