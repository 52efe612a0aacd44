//! Unit tests of `settings`.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_load() {
    let s = Settings::load_with_env(None, env(&[])).unwrap();
    assert_eq!(s.http.addr.port(), 3000);
    assert_eq!(s.payments.provider, PaymentProvider::Offline);
    assert_eq!(s.orders.expiration_seconds, 900.0);
}

#[test]
fn environment_variables_override_defaults() {
    let s = Settings::load_with_env(
        None,
        env(&[("TICKETING_HTTP__ADDR", "127.0.0.1:4000"), ("TICKETING_ORDERS__EXPIRATION_SECONDS", "2")]),
    )
    .unwrap();
    assert_eq!(s.http.addr.port(), 4000);
    assert_eq!(s.orders.expiration_seconds, 2.0);
}

#[test]
fn list_settings_are_comma_separated_in_the_environment() {
    let s = Settings::load_with_env(
        None,
        env(&[("TICKETING_HTTP__TRUSTED_PROXIES", "10.0.0.1,::1"), ("TICKETING_CLUSTER__MEMBERS", "a,b")]),
    )
    .unwrap();
    assert_eq!(s.http.trusted_proxies, ["10.0.0.1".parse::<std::net::IpAddr>().unwrap(), "::1".parse().unwrap()]);
    assert_eq!(s.cluster.members, ["a", "b"]);
}

#[test]
fn telemetry_is_off_by_default_and_its_bounds_are_checked() {
    let s = Settings::load_with_env(None, env(&[])).unwrap();
    assert!(s.telemetry.otlp_endpoint.is_empty(), "no export unless a collector is named");
    for (key, value) in [
        ("TICKETING_TELEMETRY__SAMPLE_RATIO", "1.5"),
        ("TICKETING_TELEMETRY__MAX_QUEUE", "0"),
        ("TICKETING_TELEMETRY__EXPORT_TIMEOUT_SECONDS", "0"),
    ] {
        let err = Settings::load_with_env(None, env(&[(key, value)])).unwrap_err();
        assert!(err.to_string().contains("telemetry"), "{key}: {err}");
    }
}

#[test]
fn a_config_file_overrides_defaults_and_env_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.toml");
    std::fs::write(&file, "[http]\naddr = \"127.0.0.1:5000\"\n[cluster]\nnode_id = \"n7\"\n").unwrap();
    let s = Settings::load_with_env(Some(&file), env(&[("TICKETING_CLUSTER__NODE_ID", "n8")])).unwrap();
    assert_eq!(s.http.addr.port(), 5000);
    assert_eq!(s.cluster.node_id, "n8");
}

#[test]
fn invalid_settings_are_refused_with_the_setting_named() {
    let err = Settings::load_with_env(None, env(&[("TICKETING_HTTP__ADDR", "nowhere")])).unwrap_err();
    assert!(err.to_string().contains("addr"), "{err}");
    let err = Settings::load_with_env(None, env(&[("TICKETING_HTTP__NO_SUCH_KEY", "1")])).unwrap_err();
    assert!(err.to_string().contains("no_such_key"), "{err}");
    let err = Settings::load_with_env(None, env(&[("TICKETING_APP__MODE", "production")])).unwrap_err();
    assert!(err.to_string().contains("auth.jwt_secret"), "{err}");
    let err = Settings::load_with_env(None, env(&[("TICKETING_PAYMENTS__PROVIDER", "paypal")])).unwrap_err();
    assert!(err.to_string().contains("provider"), "{err}");
}

#[test]
fn secrets_are_not_printed() {
    let s = Settings::load_with_env(None, env(&[])).unwrap();
    assert!(!format!("{s:?}").contains("dev-only-insecure"));
}

#[test]
fn the_broker_is_one_url_or_the_urls_of_its_nodes() {
    let one = Settings::load_with_env(None, env(&[("TICKETING_CLUSTER__AMQP_URL", "amqp://a:5672/%2f")])).unwrap();
    assert_eq!(one.cluster.broker_urls(), ["amqp://a:5672/%2f"]);
    let three = Settings::load_with_env(
        None,
        env(&[("TICKETING_CLUSTER__AMQP_URL", "amqp://a:5672/%2f, amqp://b:5672/%2f,amqp://c:5672/%2f,")]),
    )
    .unwrap();
    assert_eq!(three.cluster.broker_urls(), ["amqp://a:5672/%2f", "amqp://b:5672/%2f", "amqp://c:5672/%2f"]);
    let none = Settings::load_with_env(None, env(&[])).unwrap();
    assert!(none.cluster.broker_urls().is_empty(), "no broker: a single node");
}

#[test]
fn actor_limits_that_would_break_the_node_are_refused() {
    for (key, value) in [
        ("TICKETING_ACTORS__MAX_LIVE", "0"),
        ("TICKETING_ACTORS__SETTLED_IDLE_SECONDS", "inf"),
        ("TICKETING_ACTORS__SETTLED_IDLE_SECONDS", "0.0001"),
        ("TICKETING_ACTORS__IDLE_SECONDS", "inf"),
    ] {
        let err = Settings::load_with_env(None, env(&[(key, value)])).unwrap_err();
        let setting = key.trim_start_matches("TICKETING_ACTORS__").to_lowercase();
        assert!(err.to_string().contains(&setting), "{key}={value}: {err}");
    }
    let s = Settings::load_with_env(None, env(&[])).unwrap();
    assert_eq!((s.actors.max_live, s.actors.settled_idle_seconds), (100_000, 5.0));
}
