//! Which node owns which shard: a pure function of the configuration, never of who is alive.
//!
//! A shard is a range of slots (`shard = slot * shards / SLOTS`), so routing an entity is
//! reading the slot in its id. Shard → node is rendezvous hashing over the configured members:
//! every node computes the same map from the same list, and changing the list moves only the
//! shards the change must move. The map has an epoch, carried by every forwarded request, so
//! nodes configured with different maps refuse each other's requests instead of serving a
//! shard twice.

pub use crate::cluster::Shard;
use crate::domain::{shard_of_slot, slots_of_shard, Slot};
use crate::settings::ClusterSettings;
use sha2::{Digest, Sha256};

#[derive(Clone, Debug)]
pub struct ShardMap {
    members: Vec<String>,
    shards: u32,
    epoch: u32,
    me: String,
    /// Owner of each shard, by index.
    owners: Vec<String>,
    /// The shards this node owns (worked out once: a new ticket's slot is picked from them).
    mine: Vec<Shard>,
    /// The shards this node follows (the next `replicas` members in their ranking).
    followed: Vec<Shard>,
}

impl ShardMap {
    pub fn new(settings: &ClusterSettings) -> Self {
        Self::of(&settings.node_id, &settings.members, settings.shards, settings.epoch)
            .with_replicas(settings.effective_replicas())
    }

    /// The same map where each shard is also copied to the next `replicas` members of its
    /// ranking.
    pub fn with_replicas(mut self, replicas: u32) -> Self {
        let me = self.me.clone();
        self.followed = (0..self.shards)
            .map(Shard)
            .filter(|s| ranking(&self.members, s.0).iter().skip(1).take(replicas as usize).any(|m| *m == me))
            .collect();
        self
    }

    /// The shards this node follows (copies of shards other members own).
    pub fn followed(&self) -> &[Shard] {
        &self.followed
    }

    /// The map as node `me` sees it: `members` own the `shards` (none listed: `me` alone).
    pub fn of(me: &str, members: &[impl AsRef<str>], shards: u32, epoch: u32) -> Self {
        let members: Vec<String> = if members.is_empty() {
            vec![me.to_string()]
        } else {
            members.iter().map(|m| m.as_ref().to_string()).collect()
        };
        let owners: Vec<String> = (0..shards).map(|s| rendezvous(&members, s).to_string()).collect();
        let mine = (0..shards).map(Shard).filter(|s| owners[s.0 as usize] == me).collect();
        Self { members, shards, epoch, me: me.to_string(), owners, mine, followed: Vec::new() }
    }

    /// The nodes that own shards.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    pub fn shard_count(&self) -> u32 {
        self.shards
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn shard_of(&self, slot: Slot) -> Shard {
        Shard(shard_of_slot(slot, self.shards))
    }

    pub fn owner(&self, shard: Shard) -> &str {
        &self.owners[shard.0 as usize]
    }

    pub fn is_mine(&self, shard: Shard) -> bool {
        self.owner(shard) == self.me
    }

    /// The shards this node owns, in order.
    pub fn mine(&self) -> &[Shard] {
        &self.mine
    }

    /// The slots of `shard`.
    pub fn slots(&self, shard: Shard) -> std::ops::Range<u32> {
        slots_of_shard(shard.0, self.shards)
    }
}

/// The member with the highest hash of (member, shard): stable for a given member list.
fn rendezvous(members: &[String], shard: u32) -> &str {
    ranking(members, shard).first().copied().unwrap_or("")
}

/// The members by their hash of (member, shard), highest first: the owner, then the followers.
fn ranking(members: &[String], shard: u32) -> Vec<&str> {
    let score = |m: &str| {
        let digest = Sha256::digest(format!("{m}\0{shard}").as_bytes());
        u64::from_be_bytes([digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7]])
    };
    let mut ranked: Vec<&str> = members.iter().map(String::as_str).collect();
    ranked.sort_by_key(|m| std::cmp::Reverse(score(m)));
    ranked
}

#[cfg(test)]
#[path = "shard_map_test.rs"]
mod tests;
