//! Unit tests of `telemetry`: whose sampling decision a trace keeps.

use super::*;

fn context(trace: &str, sampled: bool) -> SpanContext {
    let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
    let trace_id = opentelemetry::trace::TraceId::from_hex(trace).unwrap();
    let span_id = opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").unwrap();
    SpanContext::new(trace_id, span_id, flags, true, Default::default())
}

#[test]
fn this_nodes_sampling_decision_follows_the_ratio_on_the_trace_ids_low_bits() {
    let low = context("4bf92f3577b34da60000000000000001", true);
    let high = context("4bf92f3577b34da6ffffffffffffffff", true);
    assert!(sampled_here(&low, 0.5) && !sampled_here(&high, 0.5));
    assert!(!sampled_here(&low, 0.0), "ratio 0: never, whatever the caller asked");
    assert!(sampled_here(&high, 1.0), "ratio 1: always");
}

#[test]
fn a_malformed_traceparent_continues_nothing() {
    let span = tracing::Span::none();
    // No subscriber, no layer: nothing to continue, and nothing panics on bad input.
    for header in ["", "00-zz-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"] {
        continue_trace(&span, Some(header), Trust::Untrusted, 1.0);
        assert_eq!(ids_of(&span), None);
    }
    assert_eq!(traceparent_of(&span), None);
}
