use super::*;

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
fn new_tickets_go_to_slots_this_node_owns_and_a_gateway_uses_any() {
    let m = map("node-2", &["node-1", "node-2", "node-3"], 64);
    for _ in 0..1000 {
        assert!(m.is_mine(m.shard_of(m.new_local_slot())));
    }
    let gateway = map("gw", &["node-1", "node-2"], 64);
    assert!(gateway.mine().is_empty());
    let shards: std::collections::BTreeSet<_> = (0..200).map(|_| gateway.shard_of(gateway.new_local_slot())).collect();
    assert!(shards.len() > 10);
}
