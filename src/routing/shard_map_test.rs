use super::*;
use crate::domain::SLOTS;

fn map(me: &str, members: &[&str], shards: u32) -> ShardMap {
    ShardMap::of(me, members, shards, 1)
}

#[test]
fn every_slot_falls_in_the_shard_whose_range_holds_it() {
    for shards in [1, 3, 64, 100, 4096] {
        let m = map("a", &[], shards);
        for slot in 0..SLOTS {
            let shard = m.shard_of(Slot(slot as u16));
            assert!(m.slots(shard).contains(&slot), "slot {slot} of {shards} shards");
        }
    }
}

#[test]
fn every_node_computes_the_same_owners_and_each_shard_has_exactly_one() {
    let members = ["node-1", "node-2", "node-3"];
    let maps: Vec<ShardMap> = members.iter().map(|me| map(me, &members, 64)).collect();
    let mut owned = 0;
    for s in 0..64 {
        let owners: Vec<&str> = maps.iter().map(|m| m.owner(Shard(s))).collect();
        assert!(owners.iter().all(|o| *o == owners[0]));
        owned += maps.iter().filter(|m| m.is_mine(Shard(s))).count();
    }
    assert_eq!(owned, 64);
    for m in &maps {
        assert!(m.mine().len() >= 10, "{} owns only {} of 64 shards", m.me(), m.mine().len());
    }
}

#[test]
fn adding_a_member_moves_only_shards_to_the_new_member() {
    let before = map("x", &["a", "b", "c"], 64);
    let after = map("x", &["a", "b", "c", "d"], 64);
    for s in (0..64).map(Shard) {
        if before.owner(s) != after.owner(s) {
            assert_eq!(after.owner(s), "d");
        }
    }
}

#[test]
fn each_shard_is_followed_by_the_next_members_of_its_ranking_never_by_its_owner() {
    let members = ["node-1", "node-2", "node-3"];
    let maps: Vec<ShardMap> = members.iter().map(|me| map(me, &members, 64).with_replicas(1)).collect();
    for shard in (0..64).map(Shard) {
        let followers: Vec<&str> = maps.iter().filter(|m| m.followed().contains(&shard)).map(|m| m.me()).collect();
        assert_eq!(followers.len(), 1, "shard {shard} has one follower");
        assert_ne!(followers[0], maps[0].owner(shard), "never its owner");
    }
    let none = map("node-1", &members, 64).with_replicas(0);
    assert!(none.followed().is_empty());
    let gateway = map("gw", &members, 64).with_replicas(2);
    assert!(gateway.followed().is_empty(), "a gateway keeps no copies");
    let all = map("node-1", &members, 64).with_replicas(2);
    assert_eq!(all.followed().len() + all.mine().len(), 64, "with 2 replicas of 3 members every node has every shard");
}
