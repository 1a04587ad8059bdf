"""The input boundary (issue 10): bad input raises ValidationError and records
nothing; what is accepted reads back equal; nothing else escapes a log_* call."""

import dataclasses
import datetime as dt
import decimal
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vdt_ai import Event, EventIds, ModelCall, ValidationError, VDTClient
from vdt_ai._jsonlike import to_json_value
from vdt_ai.policy import is_sensitive_key
from vdt_ai.spool import iter_events
from vdt_ai.testing import MemoryTransport, find_event

from .._examples import examples
from ..conftest import API_KEY

UTC = dt.timezone.utc


@pytest.fixture
def sent() -> List[Event]:
    return []


@pytest.fixture
def boundary(memory: MemoryTransport, sent: List[Event]) -> Iterator[VDTClient]:
    def keep(event: Event) -> Event:  # the event exactly as it is encoded
        sent.append(event)
        return event

    client = VDTClient(api_key=API_KEY, transport=memory, before_send=keep)
    yield client
    client.close()


@dataclasses.dataclass
class Node:
    child: Any = None


class RaisingStr(str):
    def __str__(self) -> str:
        raise RuntimeError("boom")


class RaisingDump:
    def model_dump(self, **_: Any) -> Any:
        raise RuntimeError("dump failed")


class RaisingTz(dt.tzinfo):
    def utcoffset(self, _: Optional[dt.datetime]) -> dt.timedelta:
        raise RuntimeError("tz failed")

    def dst(self, _: Optional[dt.datetime]) -> None:
        return None

    def tzname(self, _: Optional[dt.datetime]) -> str:
        return "bad"


def _self_referencing() -> Node:
    node = Node()
    node.child = node
    return node


# Every input listed in the "Why" that must be refused.
BAD_INPUTS: Dict[str, Callable[[VDTClient], Any]] = {
    "tags as a list of pairs": lambda c: c.log_metric(
        "x", 1.0, tags=[("a", "b")]  # type: ignore[arg-type]
    ),
    "bulk item not a mapping": lambda c: c.log_model_calls([1]),  # type: ignore
    "bulk calls None": lambda c: c.log_model_calls(None),  # type: ignore[arg-type]
    "columns=5": lambda c: c.log_data_quality("d", 1, columns=5),  # type: ignore
    "timestamp overflows UTC": lambda c: c.log_metric(
        "x",
        1.0,
        timestamp=dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-1))),
    ),
    "step=2**63": lambda c: c.log_metric("x", 1.0, step=2**63),
    "record_count=2**64": lambda c: c.log_data_quality("d", 2**64),
    "input_data lone surrogate": lambda c: c.log_model_call("m", "\ud800"),
    "error_message lone surrogate": lambda c: c.log_model_call(
        "m", error_message="x\ud800"
    ),
    "self-referencing dataclass": lambda c: c.log_model_call("m", _self_referencing()),
    "model_dump raises": lambda c: c.log_model_call("m", RaisingDump()),
    "utcoffset raises": lambda c: c.log_metric(
        "x", 1.0, timestamp=dt.datetime(2024, 1, 1, tzinfo=RaisingTz())
    ),
    "input_data=10**5000": lambda c: c.log_model_call("m", input_data=10**5000),
    "model_name=b'm'": lambda c: c.log_model_call(b"m"),  # type: ignore[arg-type]
    "tag value bytes": lambda c: c.log_metric(
        "x", 1.0, tags={"a": b"b"}  # type: ignore[dict-item]
    ),
    "prompt_tokens=True": lambda c: c.log_model_call("m", prompt_tokens=True),
    "log_event of a copy with a bad value": lambda c: c.log_event(
        ModelCall(model_name="m").model_copy(update={"prompt_tokens": 2**70})
    ),
    "bulk item with a bad value": lambda c: c.log_model_calls(
        [{"model_name": "m"}, {"model_name": "m", "input_data": float("nan")}]
    ),
    "log_metrics not a mapping": lambda c: c.log_metrics([("a", 1.0)]),  # type: ignore
    "job metrics surrogate key": lambda c: c.log_job_run(
        "j", "started", metrics={"\udc00": 1}
    ),
    "column max out of range": lambda c: c.log_data_quality(
        "d", 1, columns=[{"name": "c", "max": -(2**63) - 1}]
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_a_validation_error_and_records_nothing(
    name: str, boundary: VDTClient, memory: MemoryTransport
) -> None:
    with pytest.raises(ValidationError) as info:
        BAD_INPUTS[name](boundary)
    assert info.value.errors and all(field for field, _ in info.value.errors)
    assert len(memory.records) == 0
    assert boundary.stats().accepted == 0


def test_errors_name_the_field_path(boundary: VDTClient) -> None:
    with pytest.raises(ValidationError) as info:
        boundary.log_model_calls([{"model_name": "m"}, {"model_name": "m", "step": 1}])
    assert info.value.errors[0][0] == "calls.1.step"
    with pytest.raises(ValidationError) as info:
        boundary.log_model_call("m", {"a": [1, {"b": "\ud800"}]})
    field, reason = info.value.errors[0]
    assert field == "input_data" and "['a'][1]['b']" in reason
    with pytest.raises(ValidationError) as info:
        boundary.log_model_call("m", RaisingDump())
    assert "dump failed" not in str(info.value)  # the object's text is not echoed


def test_a_str_key_whose_str_raises_is_a_validation_error(
    boundary: VDTClient, memory: MemoryTransport
) -> None:
    with pytest.raises(ValidationError) as info:
        boundary.log_model_call("m", {RaisingStr("k"): 1})
    assert "input_data" in str(info.value)
    assert memory.events == []


def test_a_str_subclass_key_is_kept_as_the_text_it_holds(
    boundary: VDTClient, memory: MemoryTransport
) -> None:
    class Shouting(str):
        def __str__(self) -> str:
            return self.upper()

    event_id = boundary.log_model_call("m", {Shouting("k"): 1})
    event = find_event(memory.events, event_id)
    assert isinstance(event, ModelCall) and event.input_data == {"k": 1}


def test_a_dict_changed_during_the_call_is_read_once(
    boundary: VDTClient, memory: MemoryTransport
) -> None:
    class Grows:
        def __init__(self, parent: Dict[str, Any]) -> None:
            self.parent = parent

        def model_dump(self, **_: Any) -> Any:
            self.parent["late"] = 1  # would break iteration over the parent
            return {"x": 1}

    data: Dict[str, Any] = {"a": 0}
    data["g"] = Grows(data)
    event_id = boundary.log_model_call("m", data)
    event = find_event(memory.events, event_id)
    assert isinstance(event, ModelCall)
    assert event.input_data == {"a": 0, "g": {"x": 1}}


def test_a_dict_mutated_by_another_thread_never_escapes_as_another_error(
    boundary: VDTClient,
) -> None:
    data: Dict[str, Any] = {str(i): i for i in range(500)}
    data["obj"] = decimal.Decimal("1.5")  # forces the converting (copying) path
    stop = threading.Event()

    def churn() -> None:
        i = 0
        while not stop.is_set():
            data[f"n{i % 50}"] = i
            data.pop(f"n{(i + 25) % 50}", None)
            i += 1

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(200):
            try:
                assert boundary.log_model_call("m", data) is not None
            except ValidationError:
                pass
    finally:
        stop.set()
        worker.join()


@pytest.mark.parametrize(
    "edit",
    [
        lambda e: e.model_copy(update={"input_data": "\ud800"}),
        lambda e: e.model_copy(update={"model_name": None}),
        lambda e: e.model_copy(update={"prompt_tokens": 2**70}),
        lambda e: e.model_copy(update={"input_data": {"x": "y" * 2_000_000}}),
        lambda e: Event(),
        lambda e: "not an event",
    ],
    ids=["surrogate", "no-name", "int64", "too-large", "base-event", "str"],
)
def test_a_bad_before_send_copy_is_dropped_and_counted(
    edit: Callable[[Event], Any], memory: MemoryTransport
) -> None:
    client = VDTClient(api_key=API_KEY, transport=memory, before_send=edit)
    assert client.log_model_call("m", {"a": 1}) is None  # never raises
    assert client.stats().failed == 1 and len(memory.records) == 0
    client.close()


def test_a_valid_before_send_copy_is_sent(memory: MemoryTransport) -> None:
    client = VDTClient(
        api_key=API_KEY,
        transport=memory,
        before_send=lambda e: e.model_copy(update={"input_data": {"x": 1}}),
    )
    event_id = client.log_model_call("m", {"a": 1})
    event = find_event(memory.events, event_id)
    assert isinstance(event, ModelCall) and event.input_data == {"x": 1}
    client.close()


@pytest.mark.filterwarnings("ignore::vdt_ai.OfflineModeWarning")
def test_what_the_spool_accepted_reads_back(tmp_path: Path) -> None:
    client = VDTClient(api_key=API_KEY, spool_dir=str(tmp_path / "spool"))
    edges = [2**64 - 1, -(2**63), 1e308, "\U0001f600", {"k": [None, True, 0.5]}]
    ids = [client.log_model_call("m", input_data=value) for value in edges]
    with pytest.raises(ValidationError):
        client.log_model_call("m", input_data=10**5000)
    ids.append(client.log_metric("x", 1.0, step=2**63 - 1))
    client.close()
    events = list(iter_events(tmp_path / "spool"))
    assert [e.event_id for e in events] == ids
    assert [getattr(e, "input_data", None) for e in events[:-1]] == edges


# -- fuzzing every log_* call -------------------------------------------------

_key_text = st.text(max_size=6).filter(
    lambda k: not is_sensitive_key(k) and "vdt_" not in k
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**64 + 1)
    | st.sampled_from([4300, 5000]).map(lambda n: 10**n)  # past str() limits
    | st.floats()
    | st.text(max_size=8)  # lone surrogates included
    | st.binary(max_size=8)
    | st.decimals()
    | st.uuids()
    | st.datetimes(timezones=st.none() | st.just(UTC))
)
_anything = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.tuples(inner, inner)
    | st.dictionaries(_key_text | st.integers(), inner, max_size=4)
    | st.frozensets(st.integers() | st.text(max_size=3), max_size=3),
    max_leaves=10,
)
_maybe_names = st.text(min_size=0, max_size=10) | _scalars
_timestamps = st.none() | st.datetimes(
    # Fixed offsets rather than st.timezones(): that one needs zoneinfo,
    # which CPython 3.8 lacks.
    timezones=st.none()
    | st.just(UTC)
    | st.builds(
        dt.timezone,
        st.timedeltas(
            min_value=dt.timedelta(hours=-23, minutes=-59),
            max_value=dt.timedelta(hours=23, minutes=59),
        ),
    )
)
_FUZZ = settings(
    max_examples=examples(150),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)


def _check(call: Callable[[], Any], memory: MemoryTransport, sent: List[Event]) -> None:
    """Accepted: every id reads back equal to the event sent. Refused: a
    ValidationError, and nothing recorded. Anything else fails the test."""
    before = len(memory.records)
    try:
        result = call()
    except ValidationError:
        assert len(memory.records) == before
        return
    ids = result if isinstance(result, (list, EventIds)) else [result]
    decoded = memory.events
    for event_id in ids:
        assert event_id is not None
        read = find_event(decoded, event_id)
        original = next(e for e in sent if e.event_id == event_id)
        assert read == original


@_FUZZ
@given(
    name=_maybe_names,
    input_data=_anything,
    prediction=_anything,
    latency=st.none() | st.floats() | st.integers() | st.booleans(),
    tokens=st.none() | st.integers() | st.floats(),
    message=st.none() | st.text(max_size=20),
    tags=st.none() | st.dictionaries(st.text(max_size=4), st.text(max_size=4)),
    timestamp=_timestamps,
)
def test_fuzz_log_model_call(
    boundary: VDTClient,
    memory: MemoryTransport,
    sent: List[Event],
    name: Any,
    input_data: Any,
    prediction: Any,
    latency: Any,
    tokens: Any,
    message: Any,
    tags: Any,
    timestamp: Any,
) -> None:
    _check(
        lambda: boundary.log_model_call(
            name,
            input_data,
            prediction,
            latency,
            prompt_tokens=tokens,
            error_message=message,
            tags=tags,
            timestamp=timestamp,
        ),
        memory,
        sent,
    )


@_FUZZ
@given(items=st.lists(st.dictionaries(_key_text, _anything, max_size=3), max_size=3))
def test_fuzz_log_model_calls(
    boundary: VDTClient, memory: MemoryTransport, sent: List[Event], items: Any
) -> None:
    calls = [{"model_name": "m", **item} for item in items]
    _check(lambda: boundary.log_model_calls(calls), memory, sent)


@_FUZZ
@given(
    name=_maybe_names,
    value=_scalars,
    step=st.none() | st.integers() | st.floats(),
    metrics=st.dictionaries(st.text(max_size=5), _scalars, max_size=3),
    timestamp=_timestamps,
)
def test_fuzz_log_metric_and_metrics(
    boundary: VDTClient,
    memory: MemoryTransport,
    sent: List[Event],
    name: Any,
    value: Any,
    step: Any,
    metrics: Any,
    timestamp: Any,
) -> None:
    _check(
        lambda: boundary.log_metric(name, value, step=step, timestamp=timestamp),
        memory,
        sent,
    )
    _check(lambda: boundary.log_metrics(metrics, step=step), memory, sent)


@_FUZZ
@given(
    records=st.integers() | _scalars,
    columns=st.none()
    | _anything
    | st.lists(
        st.fixed_dictionaries(
            {"name": _maybe_names, "min": _anything, "max": _anything}
        ),
        max_size=3,
    ),
)
def test_fuzz_log_data_quality(
    boundary: VDTClient,
    memory: MemoryTransport,
    sent: List[Event],
    records: Any,
    columns: Any,
) -> None:
    _check(
        lambda: boundary.log_data_quality("d", records, columns=columns), memory, sent
    )


@_FUZZ
@given(
    request_id=_maybe_names,
    actual=_anything,
    metrics=_anything,
    start=_timestamps,
    end=_timestamps,
)
def test_fuzz_log_ground_truth_and_job_run(
    boundary: VDTClient,
    memory: MemoryTransport,
    sent: List[Event],
    request_id: Any,
    actual: Any,
    metrics: Any,
    start: Any,
    end: Any,
) -> None:
    _check(lambda: boundary.log_ground_truth(request_id, actual), memory, sent)
    _check(
        lambda: boundary.log_job_run(
            "j", "succeeded", start_time=start, end_time=end, metrics=metrics
        ),
        memory,
        sent,
    )


@_FUZZ
@given(input_data=_anything, tokens=st.integers())
def test_fuzz_log_event_of_unvalidated_copies(
    boundary: VDTClient,
    memory: MemoryTransport,
    sent: List[Event],
    input_data: Any,
    tokens: int,
) -> None:
    copy = ModelCall(model_name="m").model_copy(
        update={"input_data": input_data, "prompt_tokens": tokens}
    )
    _check(lambda: boundary.log_event(copy), memory, sent)


def test_accepted_free_form_values_are_plain_json() -> None:
    value = {1: (decimal.Decimal("1.50"), uuid.UUID(int=1)), "s": {3, 1, 2}}
    assert to_json_value(value) == {
        "1": ["1.50", "00000000-0000-0000-0000-000000000001"],
        "s": [1, 2, 3],
    }
