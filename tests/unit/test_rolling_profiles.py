"""Rolling profiles of live traffic (client.profile_model): every call is
profiled before sampling; one DataProfile per model per window."""

import time
from typing import List

import pytest

from vdt_ai import ColumnKind, DataProfile, ModelCall, ValidationError, VDTClient
from vdt_ai.profiles import flatten_call
from vdt_ai.testing import MemoryTransport


def profiles_of(memory: MemoryTransport) -> List[DataProfile]:
    return [e for e in memory.events if isinstance(e, DataProfile)]


def test_profiles_count_every_call_while_raw_events_are_sampled() -> None:
    memory = MemoryTransport()
    client = VDTClient(transport=memory, sample_rate=0.01)
    client.profile_model("churn", interval_s=3600)
    n = 100_000  # the acceptance size
    for i in range(n):
        # A typed field takes the reference path (a pydantic model, about
        # 3x the fast path's cost): one call in 100 gives one.
        typed = i % 100 == 0
        client.log_model_call(
            "churn",
            {
                "tenure": i % 50,
                "plan": "gold" if i % 3 else "free",
                "geo": {"lat": 1.5},
            },
            None if typed else (i % 10) / 10,
            latency_ms=1.0,
            prediction_score=0.5 if typed else None,
        )
    client.log_model_call("other", {"x": 1})  # not profiled
    client.close()
    raw = [e for e in memory.events if isinstance(e, ModelCall)]
    assert 0.005 * n < len(raw) < 0.02 * n  # about 1%
    (prof,) = profiles_of(memory)
    assert prof.dataset_name == "churn" and prof.tags == {"vdt_profile": "model_calls"}
    assert prof.row_count == n  # exactly: profiled before sampling
    tenure = prof.columns["input.tenure"]
    assert (tenure.kind, tenure.count, tenure.min, tenure.max) == (
        ColumnKind.NUMBER,
        n,
        0.0,
        49.0,
    )
    assert prof.columns["input.plan"].kind is ColumnKind.STRING
    assert prof.columns["input.geo.lat"].count == n
    assert prof.columns["prediction"].count == n - n // 100
    score = prof.columns["prediction_score"]
    assert (score.count, score.null_count) == (n // 100, n - n // 100)
    assert prof.window_start is not None and prof.window_end is not None
    assert client.stats().sampled_out == n + 1 - len(raw)


def test_windows_are_sent_from_the_background() -> None:
    memory = MemoryTransport()
    client = VDTClient(transport=memory)
    profiler = client.profile_model("m", interval_s=0.1)
    assert client.profile_model("m") is profiler
    for i in range(10):
        client.log_model_call("m", {"x": i}, prediction="yes")
    deadline = time.monotonic() + 10
    while not profiles_of(memory) and time.monotonic() < deadline:
        time.sleep(0.02)
    (first,) = profiles_of(memory)
    assert first.row_count == 10 and first.columns["prediction"].count == 10
    # Nothing else logged: an empty window sends nothing.
    time.sleep(0.3)
    assert len(profiles_of(memory)) == 1
    client.log_model_calls([{"input_data": {"x": 1}}] * 5, model_name="m")
    client.close()
    second = profiles_of(memory)[1]
    assert second.row_count == 5
    assert second.window_start and first.window_end
    assert second.window_start >= first.window_end  # (empty windows unsent)


def test_invalid_calls_are_not_profiled_and_bad_input_never_raises() -> None:
    memory = MemoryTransport()
    client = VDTClient(transport=memory)
    client.profile_model("m", interval_s=3600)
    with pytest.raises(ValidationError):
        client.log_model_call("m", {"x": 1}, latency_ms=-1)
    client.log_model_call("m", {"x": 1})
    with pytest.raises(ValidationError, match="interval_s"):
        client.profile_model("n", interval_s=0)
    client.close()
    (prof,) = profiles_of(memory)
    assert prof.row_count == 1


def test_flatten_call() -> None:
    row = flatten_call(
        {"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": None, "f": True},
        {"label": "cat"},
        "cat",
        0.9,
    )
    assert row == {
        "input.a.b": 1,
        "input.d": "x",
        "input.f": True,
        "prediction.label": "cat",
        "prediction_label": "cat",
        "prediction_score": 0.9,
    }
    assert flatten_call(None, 0.5, None, None) == {"prediction": 0.5}
