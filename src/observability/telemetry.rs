//! Distributed tracing with OpenTelemetry (`[telemetry]`; off by default). With an OTLP
//! endpoint set, the `tracing` spans of every request (the edge's `request`, the owner's
//! `forwarded request`, an `actor` step, a `storage commit`) become OpenTelemetry spans,
//! exported over OTLP/HTTP in batches by a background thread. A request that crosses nodes is
//! one trace: its W3C `traceparent` goes with the forwarded request (an AMQP header) and the
//! owner's spans continue it.
//!
//! Export never blocks a request: a finished span is queued for the exporter thread, and past
//! `max_queue` spans waiting (a collector slow or down) new ones are dropped and counted
//! ([`DROPPED`]).

use crate::settings::TelemetrySettings;
use crate::storage::TraceContext;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter, SpanProcessor,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header (and AMQP header) carrying a trace's context.
pub const TRACEPARENT: &str = "traceparent";

/// Spans the collector took, spans whose export failed (the collector down, slow or
/// refusing), and spans dropped because the exporter's queue was full: process-wide, like
/// the subscriber that feeds them; `/metrics` reports them.
pub static EXPORTED: AtomicU64 = AtomicU64::new(0);
pub static FAILED: AtomicU64 = AtomicU64::new(0);
pub static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Whether spans are exported (set once, when the pipeline starts): with export off, a
/// request does no trace bookkeeping at all.
static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The installed pipeline: shut down at exit so that queued spans go out.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// The pipeline for `settings`, and its tracer for the `tracing` layer (`None` when
    /// export is off).
    pub fn start(
        settings: &TelemetrySettings,
        node: &str,
    ) -> Result<Option<(Self, opentelemetry_sdk::trace::SdkTracer)>, String> {
        if settings.otlp_endpoint.is_empty() {
            return Ok(None);
        }
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(settings.otlp_endpoint.clone())
            .with_timeout(Duration::from_secs_f64(settings.export_timeout_seconds))
            .build()
            .map_err(|e| format!("the OTLP exporter cannot be built: {e}"))?;
        let queued = Arc::new(AtomicUsize::new(0));
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(settings.max_queue)
            .with_max_export_batch_size(settings.max_queue.min(512))
            .with_scheduled_delay(Duration::from_millis(500))
            .build();
        let counted = CountedExporter { inner: exporter, queued: Arc::clone(&queued) };
        let processor = Bounded { inner: BatchSpanProcessor::new(counted, batch), queued, max: settings.max_queue };
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(settings.service_name.clone())
            .with_attribute(opentelemetry::KeyValue::new("service.instance.id", node.to_string()))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sample_ratio))))
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("ticketing");
        ENABLED.store(true, Ordering::Relaxed);
        crate::storage::trace_flushes(context_of);
        Ok(Some((Self { provider }, tracer)))
    }

    /// Exports what is queued, for at most 5 s (a batch still hanging then is lost), and stops.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            tracing::warn!(error = %e, "telemetry did not shut down cleanly");
        }
    }
}

/// Counts spans in and out of the batch processor: past `max` queued, a span is dropped here,
/// counted, instead of inside the processor, which does not say.
#[derive(Debug)]
struct Bounded {
    inner: BatchSpanProcessor,
    queued: Arc<AtomicUsize>,
    max: usize,
}

impl SpanProcessor for Bounded {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// The exporter, counting what it was given (whether the collector took it or not).
#[derive(Debug)]
struct CountedExporter<E> {
    inner: E,
    queued: Arc<AtomicUsize>,
}

impl<E: SpanExporter> SpanExporter for CountedExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let count = batch.len();
        let result = self.inner.export(batch).await;
        self.queued.fetch_sub(count, Ordering::AcqRel);
        match &result {
            Ok(()) => EXPORTED.fetch_add(count as u64, Ordering::Relaxed),
            Err(e) => {
                // Said once a minute at most: a collector down for an hour is one line a minute.
                let now = crate::domain::now_ms() as u64;
                let last = LAST_FAILURE_LOGGED_MS.load(Ordering::Relaxed);
                if now.saturating_sub(last) >= 60_000
                    && LAST_FAILURE_LOGGED_MS.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
                {
                    tracing::warn!(error = %e, spans = count, "spans could not be exported");
                }
                FAILED.fetch_add(count as u64, Ordering::Relaxed)
            }
        };
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// When the last export failure was logged (ms since the epoch).
static LAST_FAILURE_LOGGED_MS: AtomicU64 = AtomicU64::new(0);

/// Where a request's trace context came from: a caller whose sampling decision is honoured
/// (another node, a trusted proxy: which must set or overwrite `traceparent`, not pass a
/// client's through) or anyone else, whose `sampled` flag is replaced by this node's own
/// draw at `sample_ratio` (so no client can have its requests exported).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trust {
    Trusted,
    Untrusted { sample_ratio: f64 },
}

/// The remote context in `traceparent`, if any, as the parent of `span`; and the span's
/// trace and span ids recorded in its `trace_id` and `span_id` fields (for log lines), new
/// trace or not.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>, trust: Trust) {
    parent_from(span, traceparent, trust);
    if let Some((trace_id, span_id)) = ids_of(span) {
        span.record("trace_id", trace_id).record("span_id", span_id);
    }
}

fn parent_from(span: &tracing::Span, traceparent: Option<&str>, trust: Trust) {
    let Some(traceparent) = traceparent else { return };
    let carrier = One(TRACEPARENT, traceparent);
    let cx = TraceContextPropagator::new().extract(&carrier);
    let remote = cx.span().span_context().clone();
    if !remote.is_valid() {
        return;
    }
    let cx = match trust {
        Trust::Trusted => cx,
        Trust::Untrusted { sample_ratio } => {
            let sampled = sampled_here(sample_ratio);
            let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
            let ours = SpanContext::new(remote.trace_id(), remote.span_id(), flags, true, remote.trace_state().clone());
            Context::new().with_remote_span_context(ours)
        }
    };
    let _ = span.set_parent(cx);
}

/// This node's sampling decision for a client's trace: a draw, not the trace id's bits (which
/// the client chose).
fn sampled_here(ratio: f64) -> bool {
    ratio >= 1.0 || rand::random::<f64>() < ratio
}

/// The `traceparent` of `span`, to send along with work it hands to another node (`None`
/// without telemetry; an unsampled trace's says so in its flags).
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// The trace context of `span`, to store with what it wrote (`None` without telemetry).
pub fn context_of(span: &tracing::Span) -> Option<TraceContext> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| TraceContext {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        sampled: sc.is_sampled(),
    })
}

/// Makes `span` a child of the stored `trace` (this system wrote it: its sampling decision is
/// kept).
pub fn continue_stored(span: &tracing::Span, trace: &TraceContext) {
    let _ = span.set_parent(Context::new().with_remote_span_context(span_context(trace)));
}

/// Links `span` to the span of the stored `trace` (a span it waited for but is not a child of:
/// the one flush that made many requests' writes durable).
pub fn link(span: &tracing::Span, trace: &TraceContext) {
    span.add_link(span_context(trace));
}

fn span_context(trace: &TraceContext) -> SpanContext {
    let flags = if trace.sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
    SpanContext::new(
        TraceId::from_bytes(trace.trace_id),
        SpanId::from_bytes(trace.span_id),
        flags,
        true,
        Default::default(),
    )
}

/// The trace and span ids of `span`, for log lines (`None` without telemetry).
fn ids_of(span: &tracing::Span) -> Option<(String, String)> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

/// A carrier of one header.
struct One<'a>(&'a str, &'a str);

impl Extractor for One<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key.eq_ignore_ascii_case(self.0)).then_some(self.1)
    }

    fn keys(&self) -> Vec<&str> {
        vec![self.0]
    }
}

#[cfg(test)]
#[path = "telemetry_test.rs"]
mod tests;
