"""No thread starts at interpreter shutdown: the SDK works without them.

Python 3.12 refuses to start a thread from an ``atexit`` handler ("can't
create new thread at interpreter shutdown"); a process at its thread limit
refuses one at any time. A client made or used there (a user's own exit
handler logging a last event, an exit purge spooling records) must still
take every event: each SDK thread has a fallback (see
``_lifecycle.start_thread``). Here every thread the SDK names ``vdt-ai-*``
is refused, as the interpreter would.
"""

import threading
import time
from pathlib import Path
from typing import List

import pytest

from vdt_ai import DataProfile, Metric, VDTClient, _lifecycle
from vdt_ai.codec import decode
from vdt_ai.kafka import producer as shared_producers
from vdt_ai.spool import iter_records
from vdt_ai.testing import MemoryTransport

DEAD = "127.0.0.1:1"  # nothing listens on port 1


@pytest.fixture
def refused(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """Refuses to start the SDK's threads; the names of those refused."""
    names: List[str] = []
    start = threading.Thread.start

    def refuse(self: threading.Thread) -> None:
        if self.name.startswith("vdt-ai"):
            names.append(self.name)
            raise RuntimeError("can't create new thread at interpreter shutdown")
        start(self)

    monkeypatch.setattr(threading.Thread, "start", refuse)
    return names


def test_start_thread_says_whether_the_interpreter_started_it() -> None:
    ran = threading.Event()
    assert _lifecycle.start_thread(threading.Thread(target=ran.set))
    assert ran.wait(5)

    class Refused(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't create new thread at interpreter shutdown")

    assert not _lifecycle.start_thread(Refused(target=ran.set))


def test_a_kafka_client_made_at_interpreter_shutdown_spools_every_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused: List[str]
) -> None:
    # Before: the producer's poll thread raised out of VDTClient() (a
    # ConfigError saying the Kafka client refused the configuration).
    monkeypatch.setitem(shared_producers._state, "shut_down_pid", 0)
    client = VDTClient(
        bootstrap_servers=DEAD,
        spool_dir=tmp_path / "spool",
        handle_sigterm=False,
        shutdown_timeout=0.5,
    )
    ids = [client.log_metric("m", float(i)) for i in range(20)]
    client.close()
    assert "vdt-ai-kafka-poll" in refused and "vdt-ai-ledger" in refused
    spooled = [decode(r.value) for r in iter_records(tmp_path / "spool")]
    metrics = [e for e in spooled if isinstance(e, Metric)]
    assert sorted(str(e.event_id) for e in metrics) == sorted(str(i) for i in ids)
    assert client.stats().failed == 0


def test_a_rolling_profile_without_its_thread_is_sent_at_close(
    refused: List[str],
) -> None:
    memory = MemoryTransport()
    client = VDTClient(transport=memory)
    client.profile_model("m", interval_s=60)
    for i in range(50):
        client.log_model_call("m", input_data={"x": i}, prediction=i % 2)
    client.close()
    assert any(name.startswith("vdt-ai-profile") for name in refused)
    (profile,) = memory.events_of(DataProfile)
    assert profile.row_count == 50


def test_an_error_not_passed_on_for_want_of_a_thread_is_passed_on_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A refused thread (a thread limit for a moment) dropped the callback,
    # yet marked its kind as passed on: the next error of that kind within
    # the interval was suppressed although on_error had never been called.
    from vdt_ai._notifier import ErrorNotifier
    from vdt_ai.exceptions import TransportError

    got: List[str] = []
    notifier = ErrorNotifier(lambda error: got.append(str(error)), interval=60)
    start = threading.Thread.start
    refused: List[str] = []

    def refuse_once(self: threading.Thread) -> None:
        if self.name == "vdt-ai-on-error" and not refused:
            refused.append(self.name)
            raise RuntimeError("can't start new thread")
        start(self)

    monkeypatch.setattr(threading.Thread, "start", refuse_once)
    notifier.notify("outage", TransportError("first"))
    notifier.notify("outage", TransportError("second"))
    assert refused and notifier.wait_idle(5)
    assert got == ["second"]


def test_a_rolling_profile_refused_a_thread_once_starts_it_at_a_later_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Past a thread limit for a moment: the profiler used to stay without
    # its thread (one window, at close; none if the process was killed).
    start = threading.Thread.start
    refused: List[str] = []

    def refuse_once(self: threading.Thread) -> None:
        if self.name.startswith("vdt-ai-profile") and not refused:
            refused.append(self.name)
            raise RuntimeError("can't start new thread")
        start(self)

    monkeypatch.setattr(threading.Thread, "start", refuse_once)
    memory = MemoryTransport()
    client = VDTClient(transport=memory)
    client.profile_model("m", interval_s=0.2)
    client.log_model_call("m", input_data={"x": 1}, prediction=1)
    deadline = time.monotonic() + 10
    while not memory.events_of(DataProfile) and time.monotonic() < deadline:
        time.sleep(0.05)  # a window sent by the thread, before close()
    assert refused and memory.events_of(DataProfile)
    client.close()
