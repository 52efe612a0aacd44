use super::*;

#[test]
fn a_key_is_refused_once_its_failures_exceed_the_burst_and_others_are_not() {
    let throttle = Throttle::new(3, Duration::from_secs(60));
    let key = "10.0.0.1".to_string();
    for _ in 0..3 {
        assert_eq!(throttle.refused_for(&key), None);
        throttle.failed(&key);
    }
    assert_eq!(throttle.refused_for(&key), None, "the burst itself is allowed");
    throttle.failed(&key);
    let wait = throttle.refused_for(&key).expect("refused past the burst");
    assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60), "{wait:?}");
    assert_eq!(throttle.refused_for(&"10.0.0.2".to_string()), None, "another key is not");
}

#[test]
fn a_refused_key_is_let_through_again_once_its_bucket_refills() {
    let throttle = Throttle::new(1, Duration::from_millis(50));
    let key = ("a@test.com".to_string(), "10.0.0.1".to_string());
    throttle.failed(&key);
    throttle.failed(&key);
    assert!(throttle.refused_for(&key).is_some());
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(throttle.refused_for(&key), None);
}

#[test]
fn pruning_forgets_keys_back_to_a_fresh_state_and_keeps_blocked_ones() {
    let throttle = Throttle::new(1, Duration::from_millis(50));
    let stale = "10.0.0.1".to_string();
    throttle.failed(&stale);
    throttle.failed(&stale);
    assert_eq!(throttle.blocked.len(), 1);
    std::thread::sleep(Duration::from_millis(120));
    let fresh = Throttle::new(1, Duration::from_secs(60));
    fresh.failed(&stale);
    fresh.failed(&stale);
    throttle.prune();
    fresh.prune();
    assert!(throttle.blocked.is_empty(), "an expired block is forgotten");
    assert_eq!(throttle.failures.len(), 0, "a refilled bucket is forgotten");
    assert_eq!(fresh.blocked.len(), 1, "a block still running is kept");
    assert_eq!(fresh.failures.len(), 1);
}
