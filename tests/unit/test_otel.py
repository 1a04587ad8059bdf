"""trace_id/span_id from the current OpenTelemetry span (opentelemetry-api)."""

import subprocess
import sys
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from vdt_ai import DataQuality, ModelCall, VDTClient, decode
from vdt_ai.testing import MemoryTransport

TRACER = TracerProvider().get_tracer("tests")


def _client(**settings: Any) -> "tuple[VDTClient, MemoryTransport]":
    transport = MemoryTransport()
    return VDTClient(transport=transport, handle_sigterm=False, **settings), transport


def _ids(span: Any) -> "tuple[str, str]":
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@pytest.mark.parametrize("fast", [True, False])
def test_calls_in_a_span_carry_its_ids(fast: bool) -> None:
    client, transport = _client()
    client._pipeline.fast = fast
    with TRACER.start_as_current_span("predict") as span:
        client.log_model_call("m", {"x": 1}, 0.5, 1.0)  # the fast path's call
        client.log_model_call("m", {"x": 1}, prediction_label="a")
        client.log_model_calls([{"input_data": {"x": 2}}], model_name="m")
        client.log_predictions([{"x": 3}], model_name="m")
        client.log_data_quality("d", 10)
        # Given ids win (either one given: neither is filled).
        client.log_model_call("m", {}, trace_id="t" * 32, span_id="s" * 16)
        client.log_model_call("m", {}, trace_id="t" * 32)
        # So in a bulk call, row by row: a row's own id is never paired with
        # the span's other id.
        client.log_model_calls(
            [
                {"input_data": {}, "trace_id": "u" * 32},
                {"input_data": {}, "span_id": "v" * 16},
                {"input_data": {}},
            ],
            model_name="m",
        )
    trace_id, span_id = _ids(span)
    events = [decode(r.value) for r in transport.records]
    assert [(e.trace_id, e.span_id) for e in events[:5]] == [(trace_id, span_id)] * 5
    assert isinstance(events[4], DataQuality)
    assert (events[5].trace_id, events[5].span_id) == ("t" * 32, "s" * 16)
    assert (events[6].trace_id, events[6].span_id) == ("t" * 32, None)
    assert [(e.trace_id, e.span_id) for e in events[7:10]] == [
        ("u" * 32, None),
        (None, "v" * 16),
        (trace_id, span_id),
    ]
    # Outside a span (and in an invalid one), no ids.
    client.log_model_call("m", {"x": 1}, 0.5, 1.0)
    with trace.use_span(trace.INVALID_SPAN):
        client.log_model_call("m", {"x": 1})
    tail = transport.events[-2:]
    assert all(e.trace_id is None and e.span_id is None for e in tail)


def test_a_propagated_context_counts_without_a_provider() -> None:
    # An incoming request's context (no SDK, API only): its ids are used.
    context = trace.SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
    )
    client, transport = _client()
    with trace.use_span(trace.NonRecordingSpan(context)):
        client.log_model_call("m", {"x": 1}, 0.5, 1.0)
    (event,) = transport.events
    assert isinstance(event, ModelCall)
    assert event.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert event.span_id == "00f067aa0ba902b7"


def test_a_failing_lookup_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Any:
        raise RuntimeError("broken tracer")

    monkeypatch.setattr(trace, "get_current_span", broken)
    client, transport = _client()
    client.log_model_call("m", {"x": 1}, 0.5, 1.0)
    assert transport.events[0].trace_id is None


def test_without_opentelemetry_nothing_is_imported_or_filled() -> None:
    # A program that never imports OpenTelemetry: the SDK does not either
    # (opentelemetry-api is installed here), and events carry no ids.
    code = (
        "import sys\n"
        "from vdt_ai import VDTClient\n"
        "from vdt_ai.testing import MemoryTransport\n"
        "t = MemoryTransport()\n"
        "c = VDTClient(transport=t, handle_sigterm=False)\n"
        "c.log_model_call('m', {'x': 1}, 0.5, 1.0)\n"
        "c.log_predictions([{'x': 1}], model_name='m')\n"
        "assert t.events[0].trace_id is None and t.events[1].span_id is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_each_span_gives_its_own_ids() -> None:
    client, transport = _client()
    with TRACER.start_as_current_span("outer") as outer:
        client.log_model_call("m", {"x": 1}, 0.5, 1.0)
        with TRACER.start_as_current_span("inner") as inner:
            client.log_model_call("m", {"x": 1}, 0.5, 1.0)
        client.log_model_call("m", {"x": 1}, 0.5, 1.0)
    got = [(e.trace_id, e.span_id) for e in transport.events]
    assert got == [_ids(outer), _ids(inner), _ids(outer)]
    assert _ids(outer)[0] == _ids(inner)[0] and _ids(outer)[1] != _ids(inner)[1]
