"""CallSender (the integrations' hooks' model calls) against log_model_call.

A hook draws its call's id before its work and sends the call later with it:
what it sends must be what ``log_model_call`` sends for the same arguments,
byte for byte, on the fast path and on the reference path; sampling must
drop a call at the draw, once, and count it.
"""

from typing import Any, Dict, Optional

from hypothesis import given, settings
from hypothesis import strategies as st

from vdt_ai import VDTClient
from vdt_ai._call_sender import CallSender
from vdt_ai.testing import MemoryTransport

from .._examples import examples
from .test_pipeline_differential import (
    _compare,
    _examples,
    _model_call,
    _run,
)

# A hook's calls: log_model_call's examples cut to what a hook passes.
_HOOK_ARGUMENTS = frozenset(
    ("model_name", "input_data", "prediction", "latency_ms", "model_version", "tags")
)
_hook_call = _model_call.map(
    lambda call: {k: v for k, v in call.items() if k in _HOOK_ARGUMENTS}
)
_settings = st.sampled_from(
    [
        {},
        {"tags": {"team": "search"}},
        {"tags": {"token": "t"}},
        {"max_event_bytes": 1024},
    ]
)


def _via_sender(arguments: Dict[str, Any]) -> Any:
    def call(client: VDTClient) -> Optional[Any]:
        sender = CallSender(
            client,
            arguments["model_name"],
            arguments.get("model_version"),
            arguments.get("tags"),
        )
        drawn = sender.draw()
        assert drawn is not None  # no sampling here
        return sender.send(
            drawn,
            arguments.get("input_data"),
            arguments.get("prediction"),
            arguments.get("latency_ms"),
        )

    return call


@settings(max_examples=examples(600), deadline=None)
@given(arguments=_hook_call, client_settings=_settings)
def test_a_sender_sends_what_log_model_call_sends(
    arguments: Dict[str, Any], client_settings: Dict[str, Any]
) -> None:
    def via_log(client: VDTClient) -> Optional[Any]:
        return client.log_model_call(**arguments)

    counts = _examples.copy()  # that module's own tally of its examples
    try:
        for fast in (True, False):
            _compare(
                _run(fast, _via_sender(arguments), **client_settings),
                _run(fast, via_log, **client_settings),
            )
    finally:
        _examples.clear()
        _examples.update(counts)


def test_sampling_drops_calls_at_the_draw_once_and_counts_them() -> None:
    memory = MemoryTransport()
    client = VDTClient(transport=memory, sample_rate=0.25, handle_sigterm=False)
    sender = CallSender(client, "m", None, {"framework": "torch"})
    kept = 0
    for _ in range(4000):
        drawn = sender.draw()
        if drawn is not None:
            kept += 1
            assert sender.send(drawn, {"x": 1}, 1, 2.0) is not None  # never twice
    stats = client.stats()
    assert stats.sampled_out + kept == 4000
    assert len(memory.records) == kept
    assert 850 <= kept <= 1150  # 1,000 expected; about 6 standard deviations
    client.close()


def test_a_disabled_client_draws_nothing() -> None:
    client = VDTClient(transport=MemoryTransport(), enabled=False)
    sender = CallSender(client, "m", None, None)
    assert sender.draw() is None
    assert client.stats().sampled_out == 0
    client.close()


def test_a_profiled_model_draws_every_call_and_samples_when_sent() -> None:
    memory = MemoryTransport()
    client = VDTClient(transport=memory, sample_rate=0.01, handle_sigterm=False)
    client.profile_model("m", interval_s=3600)
    sender = CallSender(client, "m", None, None)
    for i in range(2000):
        drawn = sender.draw()
        assert drawn is not None
        sender.send(drawn, {"x": i}, i % 3, 1.0)
    profiled = client._profilers["m"].emit()
    assert profiled is not None and profiled.row_count == 2000
    assert client.stats().sampled_out + len(memory.records) >= 2000
    assert len(memory.records) < 100
    client.close()


def test_an_unsampled_draw_is_sampled_once_when_sent() -> None:
    # draw(sample=False): the hook does its work for every call (log_rows'
    # rows); the call itself is sampled when sent, and counted once.
    memory = MemoryTransport()
    client = VDTClient(transport=memory, sample_rate=0.25, handle_sigterm=False)
    sender = CallSender(client, "m", None, {"framework": "torch"})
    for _ in range(4000):
        drawn = sender.draw(sample=False)
        assert drawn is not None
        sender.send(drawn, {"x": 1}, 1, 2.0)
    stats = client.stats()
    assert stats.sampled_out + stats.accepted == 4000
    assert len(memory.records) == stats.accepted
    assert 850 <= stats.accepted <= 1150  # 1,000 expected
    client.close()
