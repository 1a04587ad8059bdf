"""trace_id and span_id from the current OpenTelemetry span, when there is one.

Nothing is imported: a span can be current only when the program (or a
library it uses) has imported ``opentelemetry.trace``, so the lookup first
asks ``sys.modules`` for it, a dictionary lookup. Without OpenTelemetry that
is the whole cost of a ``log_*`` call's check; with it, the current span's
context is read (``get_current_span()``, no allocation when none is set).
Ids are W3C trace-context hex: 32 digits for the trace, 16 for the span.
A failing OpenTelemetry lookup is ignored: the event goes without ids.
"""

import sys
from typing import Optional, Tuple

# The module that must be imported for a span to be current.
OTEL_TRACE = "opentelemetry.trace"
modules = sys.modules


# The last span context seen and its ids: calls in one span format them once
# (a SpanContext is immutable; one tuple, replaced whole, is thread-safe).
_last: Tuple[object, Optional[Tuple[str, str]]] = (None, None)


def current_span_ids() -> Optional[Tuple[str, str]]:
    """``(trace_id, span_id)`` of the current valid span, else ``None``."""
    global _last
    trace = modules.get(OTEL_TRACE)
    if trace is None:
        return None
    try:
        context = trace.get_current_span().get_span_context()
        last_context, ids = _last
        if context is last_context:
            return ids
        ids = None
        if context.is_valid:
            ids = "%032x" % context.trace_id, "%016x" % context.span_id
        _last = context, ids
        return ids
    except Exception:  # never hurt the host program for a trace id
        return None
