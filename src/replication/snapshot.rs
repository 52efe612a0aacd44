//! Snapshots: how a copy that is behind what its log still holds (the broker dropped the
//! entries it needs past `cluster.log_retention_*`: a new member, a lost disk, a node down for
//! long) starts again from its owner's data.
//!
//! The follower notes where the log now begins, then asks the owner for its copy of the shard,
//! page by page (about 1 MiB each, through the transport like any request). The owner reads its
//! pages while it keeps writing, so a page may hold writes made after the snapshot began; what
//! makes that safe is the log: the owner says which entries were confirmed before the first
//! page was read (every one up to `confirmed`) and the last entry it had written when each
//! page was read (`holds`). The follower loads the pages, then reads the log from where it
//! began and applies every entry after `confirmed` again (operations set or remove whole keys,
//! so applying them in order over a newer state ends in the same state). If any entry up to
//! `holds` never counts, the copy diverges at the next term and is rebuilt (`super::chain`).

use crate::storage::log::Position;
use crate::storage::shard_file::Records;
use crate::storage::Store;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

/// About how much of a shard one page carries.
pub const PAGE_BYTES: usize = 1 << 20;

/// One page of an owner's copy of a shard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyPage {
    /// The owner's term: every page of one snapshot comes from one term.
    pub term: u64,
    /// Every entry up to this number was confirmed by the log before the page was read.
    pub confirmed: u64,
    /// The owner's last entry when the page was read: the page may hold writes up to it.
    pub holds: u64,
    /// Records as they are on disk.
    pub records: Records,
    /// The key to ask the next page after; `None`: the last page.
    pub next: Option<Vec<u8>>,
}

/// Where a follower asks for pages: the shard's owner, wherever it is (given by the router).
pub trait CopySource {
    fn page(&self, shard: u32, after: Option<Vec<u8>>) -> LocalBoxFuture<'static, Result<CopyPage, String>>;
}

/// The owner's side: the page of its copy of `shard` after the key `after`.
pub async fn page(store: &Store, shard: u32, after: Option<Vec<u8>>) -> Result<CopyPage, String> {
    let logs = store.logs().ok_or("the shard logs are off here")?;
    let begun = logs.position(shard).ok_or("the shard is not written here now")?;
    // Everything numbered so far is flushed and confirmed, or the term ended (an entry the log
    // did not confirm fences it).
    store.sync().await;
    if logs.term(shard) != Some(begun.term) {
        return Err("the shard's term ended".into());
    }
    let (records, next) = store
        .records_page(logs.slots(shard), after.as_deref(), PAGE_BYTES, &logs.position_key(shard))
        .map_err(|e| e.to_string())?;
    // A write applied before it is numbered (a claim, a sign-up) may be in the page: once the
    // writer has taken everything queued by now, `holds` counts it too.
    store.sync().await;
    let holds = logs.position(shard).filter(|p| p.term == begun.term).ok_or("the shard's term ended")?.seq;
    Ok(CopyPage { term: begun.term, confirmed: begun.seq, holds, records, next })
}

/// The follower's side: replaces this node's copy of `shard` by its owner's, then records
/// the position to read the log from: `from`, an offset the log held before the first page
/// was asked for. A copy left half-loaded (a crash, a failed page) has no position: the next
/// attempt starts over.
pub async fn load(store: &Store, source: &dyn CopySource, shard: u32, from: u64) -> Result<(Position, usize), String> {
    let slots = store.logs().ok_or("the shard logs are off here")?.slots(shard);
    store.wipe_slots(slots).await.map_err(|e| e.to_string())?;
    let mut page = source.page(shard, None).await?;
    let (term, confirmed) = (page.term, page.confirmed);
    let (mut holds, mut records) = (confirmed, 0);
    loop {
        if page.term != term {
            return Err("the shard's owner changed while its snapshot was read".into());
        }
        holds = holds.max(page.holds);
        records += page.records.len();
        let ops = page.records.into_iter().map(|(k, v)| (k, Some(v))).collect();
        store.apply_followed(shard, ops, &Position::default()).map_err(|e| e.to_string())?;
        let Some(after) = page.next else { break };
        page = source.page(shard, Some(after)).await?;
    }
    let position = Position { term, seq: holds, resume_at: Some(from), chain_at_resume: confirmed };
    store.apply_followed(shard, Vec::new(), &position).map_err(|e| e.to_string())?;
    store.sync().await;
    Ok((position, records))
}
