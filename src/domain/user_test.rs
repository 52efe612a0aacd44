//! Unit tests of `user`.

use super::Password;

#[test]
fn passwords_are_trimmed_and_between_4_and_20_characters() {
    assert!(Password::parse("abc").is_none());
    assert!(Password::parse("  abc  ").is_none());
    assert_eq!(Password::parse(" abcd ").unwrap().expose(), "abcd");
    assert!(Password::parse(&"x".repeat(20)).is_some());
    assert!(Password::parse(&"x".repeat(21)).is_none());
}
