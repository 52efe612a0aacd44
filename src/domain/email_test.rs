//! Unit tests of `email`.

use super::Email;

#[test]
fn valid_addresses_parse_lower_cased() {
    assert_eq!(Email::parse(" Test@Test.com ").unwrap().as_str(), "test@test.com");
    assert!(Email::parse("a.b+c@sub.example.org").is_some());
}

#[test]
fn invalid_addresses_are_rejected() {
    for bad in ["", "test", "test@", "@test.com", "a@b", "a b@c.com", "a@b..com", "a@-b.com"] {
        assert!(Email::parse(bad).is_none(), "{bad} should be invalid");
    }
}
