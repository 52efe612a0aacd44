//! Moving a shard between nodes, by hand and with the nodes stopped (sled locks a data dir,
//! so a running node's cannot be opened): `ticketing shard export` writes a shard's records to
//! a file (and with `--remove` deletes them from the old owner), `ticketing shard import` loads
//! it into the new owner's data dir. The nodes then start with the new member list under a new
//! epoch; the start-up placement check refuses a configuration that would still move data a
//! node holds. Exporting every shard is also the backup; importing is the restore.

use super::projection::ReadModel;
use crate::domain::{Event, Order, Ticket};
use crate::routing::shard_map::{Shard, ShardMap};
use crate::settings::Settings;
use crate::storage::shard_file::ShardHeader;
use crate::storage::{envelope, keys, Placement, Store};
use anyhow::{bail, Context};
use std::path::Path;

fn open(settings: &Settings) -> anyhow::Result<Store> {
    Store::open(&settings.storage.path, std::sync::Arc::new(|_| {})).with_context(|| {
        format!("cannot open {} (a running node holds its lock: stop it first)", settings.storage.path.display())
    })
}

/// Writes shard `shard` of this data dir to `out`; with `remove`, deletes it here.
pub async fn export(settings: &Settings, shard: u32, out: &Path, remove: bool) -> anyhow::Result<String> {
    let map = ShardMap::new(&settings.cluster);
    if shard >= map.shard_count() {
        bail!("shard {shard} does not exist: the cluster has {} shards", map.shard_count());
    }
    let store = open(settings)?;
    if let Some(placement) = store.placement()? {
        if placement.cluster != settings.cluster.name {
            bail!("this data dir belongs to cluster {:?}, not {:?}", placement.cluster, settings.cluster.name);
        }
    }
    let slots = map.slots(Shard(shard));
    let header = ShardHeader {
        cluster: settings.cluster.name.clone(),
        shard_count: map.shard_count(),
        shard,
        first_slot: slots.start,
        end_slot: slots.end,
        exported_at_ms: crate::domain::now_ms(),
    };
    let file = std::fs::File::create_new(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let count = store.export_shard(&header, &mut writer)?;
    writer.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let mut summary =
        format!("exported shard {shard} (slots {}..{}): {count} records to {}", slots.start, slots.end, out.display());
    if remove {
        let removed = store.remove_slots(slots.start, slots.end)?;
        store.record_shard(shard, false)?;
        summary.push_str(&format!("; removed {removed} records from this data dir"));
    }
    store.close().await;
    Ok(summary)
}

/// Loads a shard file into this data dir, which must hold nothing of that shard.
pub async fn import(settings: &Settings, input: &Path) -> anyhow::Result<String> {
    let file = std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let (header, records) = Store::read_shard_file(std::io::BufReader::new(file))?;
    if header.cluster != settings.cluster.name || header.shard_count != settings.cluster.shards {
        bail!(
            "the file holds shard {} of cluster {:?} with {} shards; this node is in {:?} with {}",
            header.shard,
            header.cluster,
            header.shard_count,
            settings.cluster.name,
            settings.cluster.shards
        );
    }
    let slots = ShardMap::new(&settings.cluster).slots(Shard(header.shard));
    if (header.first_slot, header.end_slot) != (slots.start, slots.end) {
        bail!(
            "the file's slots {}..{} are not those of shard {} here",
            header.first_slot,
            header.end_slot,
            header.shard
        );
    }
    let store = open(settings)?;
    if store.holds_data_in(header.first_slot..header.end_slot)? {
        bail!("this data dir already holds data of shard {}: import refused", header.shard);
    }
    store.import_records(&records)?;
    match store.placement()? {
        Some(_) => store.record_shard(header.shard, true)?,
        None => store.set_placement(&Placement {
            cluster: header.cluster.clone(),
            epoch: settings.cluster.epoch,
            shard_count: header.shard_count,
            shards: vec![header.shard],
            left: Vec::new(),
        })?,
    }
    // The node's lists learn the imported entities now (rows carry versions: what the node
    // already knew from the shard's events is not overwritten by anything older).
    let model = ReadModel::open(&store)?;
    for (key, value) in &records {
        let event = match keys::kind_of(key) {
            Some(keys::TICKET) => Event::TicketUpdated(envelope::decode::<Ticket>(key, value)?),
            Some(keys::ORDER) => Event::OrderUpdated(envelope::decode::<Order>(key, value)?),
            _ => continue,
        };
        model.apply(&event)?;
    }
    store.close().await;
    Ok(format!("imported shard {} of {:?}: {} records", header.shard, header.cluster, records.len()))
}
