//! Unit tests of `reset`.

use super::*;
use crate::domain::Slot;

#[test]
fn a_token_names_its_user_and_changes_with_every_input() {
    let user = UserId::new_in(Slot(7));
    let t = token(b"a secret of enough length", user, &[1; 16], 1_000);
    assert_eq!(t.len(), 96);
    assert_eq!(user_of(&t), Some(user));
    for other in [
        token(b"another secret of length", user, &[1; 16], 1_000),
        token(b"a secret of enough length", UserId::new_in(Slot(7)), &[1; 16], 1_000),
        token(b"a secret of enough length", user, &[2; 16], 1_000),
        token(b"a secret of enough length", user, &[1; 16], 1_001),
    ] {
        assert_ne!(other, t);
    }
    assert_eq!(token(b"a secret of enough length", user, &[1; 16], 1_000), t, "derived, not random");
    assert_ne!(digest(&t), digest(&other_case(&t)));
    for bad in ["", "zz", &t[..95], &format!("{}g", &t[..95])] {
        assert_eq!(user_of(bad), None, "{bad}");
    }
}

fn other_case(t: &str) -> String {
    t.to_uppercase()
}
