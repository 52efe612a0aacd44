//! Unit tests of `webhook`.

use super::*;

const SECRET: &str = "whsec_test_secret";
const BODY: &[u8] = br#"{"id":"evt_1","type":"charge.succeeded","data":{"object":{"id":"ch_1"}}}"#;
const NOW: i64 = 1_700_000_000;

fn check(header: &str, body: &[u8]) -> Result<(), SignatureError> {
    verify(header, body, SECRET, NOW, DEFAULT_TOLERANCE_SECS)
}

#[test]
fn a_header_from_sign_verifies() {
    let header = sign(BODY, SECRET, NOW);
    assert!(header.starts_with(&format!("t={NOW},v1=")));
    assert_eq!(check(&header, BODY), Ok(()));
}

#[test]
fn the_signature_matches_stripes_documented_scheme() {
    // Independent of `sign`: HMAC-SHA256 of "<t>.<body>" keyed with the secret.
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{NOW}.").as_bytes());
    mac.update(BODY);
    let header = format!("t={NOW},v1={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(check(&header, BODY), Ok(()));
}

#[test]
fn a_tampered_body_is_a_mismatch() {
    let header = sign(BODY, SECRET, NOW);
    let tampered = String::from_utf8_lossy(BODY).replace("ch_1", "ch_2");
    assert_eq!(check(&header, tampered.as_bytes()), Err(SignatureError::Mismatch));
}

#[test]
fn a_signature_made_with_another_secret_is_a_mismatch() {
    let header = sign(BODY, "whsec_other", NOW);
    assert_eq!(check(&header, BODY), Err(SignatureError::Mismatch));
}

#[test]
fn a_changed_timestamp_breaks_the_signature() {
    let header = sign(BODY, SECRET, NOW).replacen(&format!("t={NOW}"), &format!("t={}", NOW + 1), 1);
    assert_eq!(check(&header, BODY), Err(SignatureError::Mismatch));
}

#[test]
fn a_timestamp_older_than_the_tolerance_is_stale() {
    let header = sign(BODY, SECRET, NOW - DEFAULT_TOLERANCE_SECS - 1);
    assert!(matches!(check(&header, BODY), Err(SignatureError::Stale { .. })));
    let header = sign(BODY, SECRET, NOW - DEFAULT_TOLERANCE_SECS);
    assert_eq!(check(&header, BODY), Ok(()), "exactly at the tolerance is still fine");
}

#[test]
fn a_timestamp_too_far_in_the_future_is_stale_too() {
    let header = sign(BODY, SECRET, NOW + DEFAULT_TOLERANCE_SECS + 1);
    assert!(matches!(check(&header, BODY), Err(SignatureError::Stale { .. })));
    let header = sign(BODY, SECRET, NOW + 60);
    assert_eq!(check(&header, BODY), Ok(()));
}

#[test]
fn a_forged_stale_header_is_reported_as_a_mismatch_not_as_stale() {
    let header = sign(BODY, "whsec_other", NOW - 10_000);
    assert_eq!(check(&header, BODY), Err(SignatureError::Mismatch));
}

#[test]
fn an_empty_header_is_missing() {
    assert_eq!(check("", BODY), Err(SignatureError::Missing));
    assert_eq!(check("   ", BODY), Err(SignatureError::Missing));
}

#[test]
fn malformed_headers_are_refused() {
    let good = sign(BODY, SECRET, NOW);
    let v1 = good.split_once(",v1=").unwrap().1;
    for header in [
        "garbage".to_string(),
        format!("v1={v1}"),
        format!("t=,v1={v1}"),
        format!("t=soon,v1={v1}"),
        format!("t={NOW}"),
        format!("t={NOW},v0={v1}"),
        format!("t={NOW},v1=not-hex"),
        format!("t={NOW},t={NOW},v1={v1}"),
        format!("t={NOW},v1={v1},junk"),
    ] {
        assert!(matches!(check(&header, BODY), Err(SignatureError::Malformed(_))), "{header:?} was not malformed");
    }
}

#[test]
fn any_matching_v1_entry_is_enough_and_v0_entries_are_ignored() {
    let good = sign(BODY, SECRET, NOW);
    let good_v1 = good.split_once(",v1=").unwrap().1;
    let other_v1 = sign(BODY, "whsec_old", NOW).split_once(",v1=").unwrap().1.to_string();
    let header = format!("t={NOW},v1={other_v1},v0={other_v1},v1={good_v1}");
    assert_eq!(check(&header, BODY), Ok(()));
    let header = format!("t={NOW}, v1={good_v1}, v1={other_v1}");
    assert_eq!(check(&header, BODY), Ok(()), "spaces after commas are tolerated");
    let header = format!("t={NOW},v1={other_v1},v1={other_v1}");
    assert_eq!(check(&header, BODY), Err(SignatureError::Mismatch));
}

#[test]
fn a_short_v1_entry_cannot_match() {
    let header = format!("t={NOW},v1=abcd");
    assert_eq!(check(&header, BODY), Err(SignatureError::Mismatch));
}
