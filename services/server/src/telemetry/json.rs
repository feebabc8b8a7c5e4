//! Trace context in JSON log lines: `trace_id` and `span_id` of the span a line was written in, first in the object,
//! so that a log collector can link the line to its trace.

use std::sync::OnceLock;

use opentelemetry::trace::TraceContextExt;
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The process's subscriber, which holds each span's OpenTelemetry context. A formatter cannot ask for the current
/// dispatcher while it handles an event (it is the one handling it), so it keeps this one.
static DISPATCH: OnceLock<WeakDispatch> = OnceLock::new();

pub(super) fn remember(dispatch: &Dispatch) {
    let _ = DISPATCH.set(dispatch.downgrade());
}

/// Wraps a JSON event format, prefixing each object with the trace and span ids of the current span, when it belongs
/// to a trace.
#[derive(Debug)]
pub(super) struct WithTraceIds<F>(pub(super) F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let Some(ids) = current_ids() else { return self.0.format_event(ctx, writer, event) };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"trace_id\":\"{}\",\"span_id\":\"{}\",{rest}", ids.0, ids.1),
            None => writer.write_str(&line),
        }
    }
}

/// The trace and span ids of the innermost span this thread is in, if it is part of a trace.
fn current_ids() -> Option<(String, String)> {
    let dispatch = DISPATCH.get()?.upgrade()?;
    let current = dispatch.current_span();
    let context = tracing_opentelemetry::get_otel_context(current.id()?, &dispatch)?;
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid().then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}
