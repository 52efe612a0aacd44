//! Unit tests of `price`.

use super::*;

#[test]
fn decimal_texts_parse_to_cents() {
    assert_eq!(Price::parse("20").unwrap().cents(), 2000);
    assert_eq!(Price::parse("12.35").unwrap().cents(), 1235);
    assert_eq!(Price::parse(" 12.5 ").unwrap().cents(), 1250);
    assert_eq!(Price::parse("1000000").unwrap().cents(), MAX_PRICE_CENTS);
}

#[test]
fn invalid_prices_are_rejected() {
    for bad in ["0", "-10", "12.345", "abc", "", "1000000.01", "1e3", "5.", ".5", "1 000"] {
        assert!(Price::parse(bad).is_none(), "{bad} should be invalid");
    }
}

#[test]
fn whole_prices_have_whole_units() {
    assert_eq!(Price::from_cents(2000).whole_units(), Some(20));
    assert_eq!(Price::from_cents(1250).whole_units(), None);
    assert_eq!(Price::from_cents(1250).units(), 12.5);
}

#[test]
fn prices_read_with_their_thousands_grouped() {
    for (cents, text) in [(5, "0.05"), (99_900, "999.00"), (100_000, "1,000.00"), (123_456_789, "1,234,567.89")] {
        assert_eq!(Price::from_cents(cents).grouped(), text);
    }
}
