use super::*;

#[test]
fn a_disk_with_room_holds_the_headroom_file_and_takes_writes() {
    let dir = tempfile::tempdir().unwrap();
    let space = Space::open(dir.path(), 1 << 20).unwrap();
    assert!(!space.is_full());
    let headroom = std::fs::metadata(dir.path().join(HEADROOM_FILE)).unwrap();
    assert_eq!(headroom.len(), 1 << 20);
    assert!(!space.probe(), "still room on the next look");
}

#[test]
fn a_reserve_larger_than_the_disk_refuses_writes_and_holds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let space = Space::open(dir.path(), u64::MAX / 4).unwrap();
    assert!(space.is_full());
    assert!(!dir.path().join(HEADROOM_FILE).exists());
}

#[test]
fn a_headroom_file_of_another_size_is_made_again_at_the_configured_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(HEADROOM_FILE), b"old").unwrap();
    let space = Space::open(dir.path(), 64 << 10).unwrap();
    assert!(!space.is_full());
    assert_eq!(std::fs::metadata(dir.path().join(HEADROOM_FILE)).unwrap().len(), 64 << 10);
}

#[test]
fn no_reserve_means_no_watch_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(HEADROOM_FILE), b"stale").unwrap();
    let space = Space::open(dir.path(), 0).unwrap();
    assert!(!space.probe());
    assert!(!dir.path().join(HEADROOM_FILE).exists(), "a stale headroom file is given back");
}

#[test]
fn a_store_opened_by_a_tool_leaves_the_nodes_headroom_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(HEADROOM_FILE), b"the node's").unwrap();
    let space = Space::unwatched(dir.path());
    assert!(!space.probe());
    assert!(dir.path().join(HEADROOM_FILE).exists());
}
