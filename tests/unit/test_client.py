"""VDTClient against MemoryTransport and the offline spool."""

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, List, Optional

import pytest

import vdt_ai
from vdt_ai import (
    CallStatus,
    ConfigError,
    DataQuality,
    GroundTruth,
    JobRun,
    Metric,
    ModelCall,
    OfflineModeWarning,
    Stats,
    ValidationError,
    VDTClient,
)
from vdt_ai.codec import Record
from vdt_ai.spool import iter_events
from vdt_ai.testing import MemoryTransport, find_event
from vdt_ai.transport import Counters, Transport

from ..conftest import API_KEY, KEY_ID

UTC = dt.timezone.utc


def sketch_calls(client: VDTClient) -> None:
    client.log_model_call(
        model_name="recommendation_model",
        input_data={"user_id": 123},
        prediction={"items": [1, 2, 3]},
        latency_ms=45,
    )
    client.log_data_quality(
        dataset_name="user_features",
        record_count=10000,
        null_count=15,
        anomaly_score=0.02,
    )


def assert_sketch_events(events: List[Any]) -> None:
    call, quality = events
    assert isinstance(call, ModelCall)
    assert call.model_name == "recommendation_model"
    assert call.input_data == {"user_id": 123}
    assert call.prediction == {"items": [1, 2, 3]}
    assert call.latency_ms == 45.0
    assert call.status is CallStatus.SUCCESS
    assert isinstance(quality, DataQuality)
    assert (quality.dataset_name, quality.record_count) == ("user_features", 10000)
    assert (quality.null_count, quality.anomaly_score) == (15, 0.02)


def test_sketch_calls_with_memory_transport(memory: MemoryTransport) -> None:
    client = VDTClient(api_key=API_KEY, transport=memory)
    sketch_calls(client)
    assert_sketch_events(memory.events)
    assert [r.topic for r in memory.records] == ["vdt.model_calls", "vdt.data_quality"]
    assert all(
        dict(r.headers)["vdt-api-key-id"] == KEY_ID.encode() for r in memory.records
    )
    assert client.stats() == Stats(accepted=2, delivered=2)


def test_sketch_calls_offline(tmp_path: Path) -> None:
    with pytest.warns(OfflineModeWarning, match="kept offline"):
        client = VDTClient(api_key=API_KEY, spool_dir=tmp_path / "spool")
    sketch_calls(client)
    client.close()
    assert client.stats() == Stats(accepted=2, spooled=2)
    assert_sketch_events(list(iter_events(tmp_path / "spool")))


def test_offline_notice_is_given_once_per_spool(tmp_path: Path) -> None:
    with pytest.warns(OfflineModeWarning):
        VDTClient(spool_dir=tmp_path / "once").close()
    # A second client on the same folder stays quiet (warnings are errors here).
    VDTClient(spool_dir=tmp_path / "once").close()


def test_offline_default_spool_dir_is_in_user_data_dir(tmp_path: Path) -> None:
    with pytest.warns(OfflineModeWarning):
        client = VDTClient()
    client.log_metric("m", 1.0)
    client.close()
    events = list(iter_events(tmp_path / "data" / "vdt-ai" / "spool"))
    assert [type(e) for e in events] == [Metric]


def test_decoded_events_equal_what_was_logged(
    client: VDTClient, memory: MemoryTransport
) -> None:
    when = dt.datetime(2024, 3, 1, 12, tzinfo=UTC)
    ids = [
        client.log_model_call(
            "m",
            {"x": 1},
            [0.1, 0.9],
            3.5,
            model_version="2",
            request_id="r1",
            prompt_tokens=5,
            completion_tokens=7,
            cost=0.01,
            tags={"k": "v"},
            timestamp=when,
            trace_id="t1",
            span_id="s1",
        ),
        client.log_ground_truth("r1", 1, model_name="m"),
        client.log_job_run("etl", "started", run_id="run-1", start_time=when),
        client.log_metric("loss", 0.5, step=2, run_id="run-1"),
    ]
    events = memory.events
    assert [e.event_id for e in events] == ids
    call = events[0]
    assert isinstance(call, ModelCall)
    assert call.timestamp == when and call.tags == {"k": "v"}
    assert call.source.service == "svc" and call.source.environment == "test"
    assert call.source.host
    assert isinstance(events[1], GroundTruth) and events[1].actual == 1
    assert isinstance(events[2], JobRun) and events[2].run_id == "run-1"
    assert isinstance(events[3], Metric) and events[3].step == 2
    assert find_event(events, ids[3]) is events[3]
    assert find_event(events, "nope") is None
    assert memory.events_of(Metric) == [events[3]]


def test_invalid_call_records_nothing(
    client: VDTClient, memory: MemoryTransport
) -> None:
    bad_calls: List[Callable[[], object]] = [
        lambda: client.log_model_call(model_name=""),
        lambda: client.log_model_call(model_name="m", latency_ms=float("nan")),
        lambda: client.log_model_call(model_name="m", latency_ms=-1),
        lambda: client.log_model_call(model_name="m", input_data={"f": open}),
        lambda: client.log_model_call(
            model_name="m", timestamp=dt.datetime(2024, 1, 1)
        ),
        lambda: client.log_model_call(model_name="m", input_data="x" * 2_000_000),
        lambda: client.log_data_quality("d", record_count=1, null_count=2),
        lambda: client.log_data_quality("d", record_count=-1),
        lambda: client.log_metric("loss", float("inf")),
        lambda: client.log_metric("loss", "0.5"),  # type: ignore[arg-type]
        lambda: client.log_job_run("j", "exploded"),
        lambda: client.log_ground_truth("", 1),
        lambda: client.log_model_call(
            model_name="m", tags={"k": 5}  # type: ignore[dict-item]
        ),
    ]
    for bad in bad_calls:
        with pytest.raises(ValidationError) as info:
            bad()
        assert info.value.errors and all(f and r for f, r in info.value.errors)
    assert memory.records == []
    assert client.stats() == Stats()


def test_oversized_event_is_refused_by_setting(memory: MemoryTransport) -> None:
    client = VDTClient(transport=memory, max_event_bytes=2048)
    with pytest.raises(ValidationError, match="max_event_bytes"):
        client.log_model_call("m", input_data={"blob": "x" * 4096})
    assert memory.records == []
    client.log_model_call("m", input_data={"blob": "x" * 100})
    assert len(memory) == 1


def test_log_metrics_is_all_or_nothing(
    client: VDTClient, memory: MemoryTransport
) -> None:
    with pytest.raises(ValidationError) as info:
        client.log_metrics({"ok": 1.0, "bad": float("nan")}, step=1)
    assert memory.records == []
    assert "value" in dict(info.value.errors)
    with pytest.raises(ValidationError):
        client.log_metrics([("a", 1.0)])  # type: ignore[arg-type]
    ids = client.log_metrics({"loss": 0.5, "acc": 0.9}, step=3, run_id="r")
    events = memory.events_of(Metric)
    assert [e.event_id for e in events] == ids
    assert {(e.name, e.value, e.step, e.run_id) for e in events} == {
        ("loss", 0.5, 3, "r"),
        ("acc", 0.9, 3, "r"),
    }
    assert events[0].timestamp == events[1].timestamp


def test_default_tags_merge_with_event_tags(memory: MemoryTransport) -> None:
    client = VDTClient(transport=memory, tags={"team": "search", "tier": "1"})
    client.log_metric("m", 1.0)
    client.log_metric("m", 1.0, tags={"tier": "2"})
    first, second = memory.events
    assert first.tags == {"team": "search", "tier": "1"}
    assert second.tags == {"team": "search", "tier": "2"}


def test_disabled_client_is_a_no_op(
    memory: MemoryTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    for client in (
        VDTClient(transport=memory, enabled=False),
        _with_env(monkeypatch, "VDT_AI_DISABLED", "1", memory),
    ):
        assert client.log_model_call(model_name="") is None  # not even validated
        assert client.log_data_quality("d", 1) is None
        assert client.log_metric("m", 1) is None
        assert client.log_metrics({"m": 1}) == []
        assert client.log_ground_truth("r", 1) is None
        assert client.log_job_run("j", "started") is None
        assert client.log_event(ModelCall(model_name="m")) is None
        assert client.stats() == Stats()
    assert memory.records == []


def _with_env(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, memory: MemoryTransport
) -> VDTClient:
    monkeypatch.setenv(name, value)
    return VDTClient(transport=memory)


def test_sampling_is_deterministic_by_event_id(memory: MemoryTransport) -> None:
    client = VDTClient(transport=memory, sample_rate=0.25)
    results = [client.log_metric("m", 1.0) for _ in range(4000)]
    kept = [r for r in results if r is not None]
    stats = client.stats()
    assert stats.accepted == len(kept) == len(memory)
    assert stats.sampled_out == 4000 - len(kept)
    assert 800 < len(kept) < 1200
    for event in memory.events:  # same rule, same verdict
        assert (event.event_id.int & ((1 << 62) - 1)) < int(0.25 * (1 << 62))
    none = VDTClient(transport=MemoryTransport(), sample_rate=0.0)
    assert none.log_metric("m", 1.0) is None
    assert none.stats().sampled_out == 1


def test_log_event_stamps_source_and_default_tags(memory: MemoryTransport) -> None:
    client = VDTClient(transport=memory, service="svc", tags={"t": "1"})
    event = ModelCall(model_name="m", tags={"u": "2"})
    assert client.log_event(event) == event.event_id
    sent = memory.events[0]
    assert sent.source.service == "svc"
    assert sent.tags == {"t": "1", "u": "2"}
    with pytest.raises(ValidationError):
        client.log_event("not an event")  # type: ignore[arg-type]


class ExplodingTransport(Transport):
    def send(self, record: Record, counters: Counters) -> None:
        raise RuntimeError("kaboom")

    def flush(self, timeout: Optional[float] = None) -> int:
        raise RuntimeError("flush kaboom")

    def close(self, timeout: Optional[float] = None) -> None:
        raise RuntimeError("close kaboom")


def test_transport_failures_never_reach_the_caller() -> None:
    client = VDTClient(transport=ExplodingTransport())
    assert client.log_metric("m", 1.0) is not None
    assert client.stats() == Stats(accepted=1, failed=1)
    assert client.flush(0.1) == 0
    client.close()  # does not raise
    assert client.closed


def test_calls_after_close_are_dropped_and_counted(memory: MemoryTransport) -> None:
    client = VDTClient(transport=memory)
    client.close()
    client.close()  # idempotent
    assert client.log_metric("m", 1.0) is None
    assert client.stats() == Stats(dropped=1)
    assert memory.records == []


def test_context_manager_closes(memory: MemoryTransport) -> None:
    with VDTClient(transport=memory) as client:
        client.log_metric("m", 1.0)
    assert client.closed
    assert client.flush() == 0


def test_threads_share_one_client(memory: MemoryTransport) -> None:
    client = VDTClient(transport=memory)

    def work(n: int) -> None:
        for i in range(500):
            client.log_metric(f"m{n}", float(i), step=i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.stats() == Stats(accepted=4000, delivered=4000)
    assert len({e.event_id for e in memory.events}) == 4000


def test_bad_settings_raise_config_error() -> None:
    with pytest.raises(ConfigError):
        VDTClient(transport=MemoryTransport(), no_such_setting=1)
    with pytest.raises(ConfigError):
        VDTClient(api_key="wrong")


def test_config_file_and_profile_keywords(
    tmp_path: Path, memory: MemoryTransport
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('service = "top"\n[profiles.x]\nservice = "from-profile"\n')
    client = VDTClient(transport=memory, config_file=cfg, profile="x")
    assert client.settings.service == "from-profile"
    assert client.transport is memory


def test_get_client_is_a_process_wide_singleton(tmp_path: Path) -> None:
    from vdt_ai import _registry

    _registry._clients.clear()
    with pytest.warns(OfflineModeWarning):
        first = vdt_ai.get_client()
    assert vdt_ai.get_client() is first
    first.close()
    second = vdt_ai.get_client()
    assert second is not first
    second.close()
    _registry._clients.clear()


def test_repr_shows_key_id_only(client: VDTClient) -> None:
    text = repr(client)
    assert f"vdt_{KEY_ID}_****" in text and "MemoryTransport" in text
    assert "api_key=None" in repr(VDTClient(transport=MemoryTransport()))


def test_interpreter_exit_closes_clients_and_fsyncs_spool(tmp_path: Path) -> None:
    spool = tmp_path / "exit-spool"
    code = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "from vdt_ai import VDTClient\n"
        f"c = VDTClient(spool_dir={str(spool)!r})\n"
        "for i in range(100): c.log_metric('m', float(i))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDT_AI_")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
    values = [e.value for e in iter_events(spool) if isinstance(e, Metric)]
    assert values == [float(i) for i in range(100)]


def test_quickstart_runs_offline() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDT_AI_")}
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, str(root / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "events kept offline" in out.stdout
    assert out.stdout.count("model_call") == 2


def test_log_model_calls_bulk_is_all_or_nothing(memory: MemoryTransport) -> None:
    client = VDTClient(transport=memory)
    with pytest.raises(ValidationError) as info:
        client.log_model_calls(
            [{"input_data": 1}, {"latency_ms": -1}], model_name="m", tags={"t": "1"}
        )
    assert "calls.1.latency_ms" in dict(info.value.errors)
    assert memory.records == []
    ids = client.log_model_calls(
        [
            {"input_data": 1},
            {"input_data": 2, "error_type": "E"},
            {"model_name": "other"},
        ],
        model_name="m",
        tags={"t": "1"},
    )
    events = memory.events_of(ModelCall)
    assert [e.event_id for e in events] == ids
    assert [e.model_name for e in events] == ["m", "m", "other"]
    assert events[1].status is CallStatus.ERROR and events[0].tags == {"t": "1"}
    assert VDTClient(transport=memory, enabled=False).log_model_calls([{}]) == []
