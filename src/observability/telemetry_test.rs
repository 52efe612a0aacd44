//! Unit tests of `telemetry`: how a client's trace is sampled, and bad headers.

use super::*;

#[test]
fn a_clients_trace_is_sampled_by_a_draw_at_the_ratio() {
    assert!((0..1000).all(|_| !sampled_here(0.0)), "ratio 0: never, whatever the caller asked");
    assert!((0..1000).all(|_| sampled_here(1.0)), "ratio 1: always");
    let sampled = (0..10_000).filter(|_| sampled_here(0.25)).count();
    assert!((2_000..3_000).contains(&sampled), "{sampled} of 10,000 at 0.25");
}

#[test]
fn a_malformed_traceparent_continues_nothing() {
    let span = tracing::Span::none();
    // No subscriber, no layer: nothing to continue, and nothing panics on bad input.
    for header in ["", "00-zz-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"] {
        continue_trace(&span, Some(header), Trust::Untrusted { sample_ratio: 1.0 });
        assert_eq!(ids_of(&span), None);
    }
    assert_eq!(traceparent_of(&span), None);
}
