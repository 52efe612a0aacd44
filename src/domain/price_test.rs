//! Unit tests of `price`.

use super::*;
use serde_json::json;

#[test]
fn numbers_and_numeric_strings_parse_to_cents() {
    assert_eq!(Price::parse_json(&json!(20)).unwrap().cents(), 2000);
    assert_eq!(Price::parse_json(&json!(12.35)).unwrap().cents(), 1235);
    assert_eq!(Price::parse_json(&json!("12.5")).unwrap().cents(), 1250);
    assert_eq!(Price::parse_json(&json!(1_000_000)).unwrap().cents(), MAX_PRICE_CENTS);
}

#[test]
fn invalid_prices_are_rejected() {
    for bad in [
        json!(0),
        json!(-10),
        json!(12.345),
        json!("abc"),
        json!(null),
        json!(true),
        json!([1]),
        json!(1_000_000.01),
        json!("1e3"),
        json!("5."),
    ] {
        assert!(Price::parse_json(&bad).is_none(), "{bad} should be invalid");
    }
}

#[test]
fn prices_serialise_in_currency_units() {
    assert_eq!(Price::from_cents(2000).to_json().to_string(), "20");
    assert_eq!(Price::from_cents(1250).to_json().to_string(), "12.5");
}
