"""The delivery ledger (SdkReport): counts since the previous report, never
its own, over a transport that can carry reports."""

import time
from pathlib import Path
from typing import Any, List, Optional

import pytest

from vdt_ai import Stats, VDTClient, decode
from vdt_ai.codec import Record
from vdt_ai.models import Event, SdkReport
from vdt_ai.spool import SpoolTransport
from vdt_ai.testing import MemoryTransport
from vdt_ai.transport import Counters


class ReportingTransport(MemoryTransport):
    """MemoryTransport plus the Kafka transport's send_report."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: List[Record] = []

    def send_report(self, record: Record, counters: Counters) -> None:
        self.reports.append(record)
        counters.add("delivered")

    def spool_bytes(self) -> int:
        return 123


def decoded(transport: ReportingTransport) -> List[SdkReport]:
    out = []
    for record in transport.reports:
        assert record.topic == "vdt.sdk_reports"
        event = decode(record.value)
        assert isinstance(event, SdkReport)
        assert record.key == event.instance_id.encode()
        out.append(event)
    return out


def test_close_sends_the_counts_and_reports_are_not_counted() -> None:
    transport = ReportingTransport()
    client = VDTClient(transport=transport, sample_rate=0.5, service="svc")
    for i in range(200):
        client.log_metric("m", float(i))
    stats_before = client.stats()
    client.close()
    assert client.stats() == stats_before  # the report is in no count
    (report,) = decoded(transport)
    assert report.final and report.sequence == 1
    assert report.accepted == stats_before.accepted == len(transport.records)
    assert report.delivered == stats_before.delivered
    assert report.sampled_out == stats_before.sampled_out > 0
    assert report.accepted + report.sampled_out == 200
    assert report.spool_bytes == 123 and report.source.service == "svc"
    assert report.window_start is not None and report.window_end is not None
    assert report.window_start <= report.window_end
    assert len(transport.records) == stats_before.accepted  # not among events


def test_periodic_reports_carry_deltas_and_skip_empty_windows() -> None:
    transport = ReportingTransport()
    client = VDTClient(transport=transport, ledger_interval_s=0.05)
    client.log_metric("m", 1.0)
    deadline = time.monotonic() + 10
    while not transport.reports and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # idle windows: no reports
    assert len(transport.reports) == 1
    client.log_metric("m", 2.0)
    client.log_metric("m", 3.0)
    client.close()
    # The two may go out in a periodic report (then close() sends an empty
    # final one) or in close()'s: either way they are counted once, and the
    # sequence ends with a final report.
    first, *middle, last = decoded(transport)
    assert (first.sequence, first.accepted, first.final) == (1, 1, False)
    assert len(middle) <= 1 and sum(r.accepted for r in middle + [last]) == 2
    assert last.final and last.sequence == 2 + len(middle)
    assert all(r.instance_id == first.instance_id for r in middle + [last])
    assert (middle + [last])[0].window_start == first.window_end


def test_close_ends_a_begun_sequence_even_with_nothing_new() -> None:
    transport = ReportingTransport()
    client = VDTClient(transport=transport, ledger_interval_s=3600)
    client.log_metric("m", 1.0)
    assert client._ledger is not None
    sent = client._ledger.report(final=False)  # as the periodic thread would
    assert sent is not None and sent.accepted == 1
    client.close()
    first, last = decoded(transport)
    assert (first.sequence, first.final) == (1, False)
    assert (last.sequence, last.final, last.accepted) == (2, True, 0)


@pytest.mark.parametrize("interval", [0.0, None])
def test_no_reports_when_off_or_without_send_report(
    interval: Optional[float],
) -> None:
    memory = MemoryTransport()
    client = VDTClient(transport=memory)  # no send_report: no ledger
    client.log_metric("m", 1.0)
    client.close()
    assert [r.topic for r in memory.records] == ["vdt.metrics"]
    if interval is not None:
        transport = ReportingTransport()
        off = VDTClient(transport=transport, ledger_interval_s=interval)
        off.log_metric("m", 1.0)
        off.close()
        assert transport.reports == []


def test_nothing_logged_sends_nothing_and_env_sets_the_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transport = ReportingTransport()
    VDTClient(transport=transport).close()
    assert transport.reports == []
    monkeypatch.setenv("VDT_AI_LEDGER_INTERVAL_S", "7.5")
    assert VDTClient(transport=MemoryTransport()).settings.ledger_interval_s == 7.5


def test_a_failing_transport_never_reaches_the_caller() -> None:
    class Broken(ReportingTransport):
        def send_report(self, record: Record, counters: Counters) -> None:
            raise RuntimeError("boom")

    transport = Broken()
    client = VDTClient(transport=transport)
    client.log_metric("m", 1.0)
    client.close()  # no exception
    assert client.stats() == Stats(accepted=1, delivered=1)


class ReportingSpool(SpoolTransport):
    """The offline spool plus send_report: its real "spool full" drops."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        super().__init__(directory, max_bytes)
        self.reports: List[Record] = []

    def send_report(self, record: Record, counters: Counters) -> None:
        self.reports.append(record)
        counters.add("delivered")


def test_dropped_and_failed_events_are_reported_by_reason(tmp_path: Path) -> None:
    transport = ReportingSpool(tmp_path / "spool", max_bytes=0)  # always full
    hook = {"mode": "keep"}

    def before_send(event: Event) -> Any:
        if hook["mode"] == "raise":
            raise RuntimeError("scrubber bug")
        if hook["mode"] == "junk":
            return "not an event"
        return event

    client = VDTClient(transport=transport, before_send=before_send)
    ledger = client._ledger
    assert ledger is not None
    for i in range(3):
        client.log_metric("m", float(i))  # spool full: dropped
    first = ledger.report(final=False)
    assert first is not None
    assert (first.dropped, first.failed) == (3, 0)
    assert first.dropped_by_reason == {"spool_full": 3}
    assert first.failed_by_reason == {}
    hook["mode"] = "raise"
    client.log_metric("m", 1.0)
    client.log_metric("m", 2.0)
    hook["mode"] = "junk"
    client.log_metric("m", 3.0)
    hook["mode"] = "keep"
    client.log_metric("m", 4.0)
    client.close()
    client.log_metric("m", 5.0)  # after close: dropped, in no report
    _, last = [decode(r.value) for r in transport.reports]
    assert isinstance(last, SdkReport) and last.final
    # Only this window's counts, each under its reason, summing to the totals.
    assert (last.dropped, last.failed) == (1, 3)
    assert last.dropped_by_reason == {"spool_full": 1}
    assert last.failed_by_reason == {"before_send_error": 2, "before_send_invalid": 1}
    stats, reasons = client._counters.snapshot_with_reasons()
    assert reasons["dropped"] == {"spool_full": 4, "client_closed": 1}
    assert stats.dropped == 5 and stats.failed == 3


def test_a_transport_that_raises_is_reported_as_transport_error() -> None:
    class Raising(ReportingTransport):
        def send(self, record: Record, counters: Counters) -> None:
            raise OSError("boom")

    transport = Raising()
    client = VDTClient(transport=transport)
    client.log_metric("m", 1.0)
    client.close()
    (report,) = decoded(transport)
    assert (report.accepted, report.failed) == (1, 1)
    assert report.failed_by_reason == {"transport_error": 1}


def test_reports_that_fail_are_in_no_report() -> None:
    class Refusing(ReportingTransport):
        """Each report is lost (as a full producer queue loses it)."""

        def send_report(self, record: Record, counters: Counters) -> None:
            self.reports.append(record)
            counters.add("dropped", reason="queue_full")

    transport = Refusing()
    client = VDTClient(transport=transport)
    ledger = client._ledger
    assert ledger is not None
    client.log_metric("m", 1.0)
    assert ledger.report(final=False) is not None
    client.log_metric("m", 2.0)
    client.close()
    first, last = decoded(transport)
    for report in (first, last):
        assert (report.accepted, report.delivered) == (1, 1)
        assert (report.dropped, report.failed) == (0, 0)
        assert report.dropped_by_reason == report.failed_by_reason == {}
    assert client.stats() == Stats(accepted=2, delivered=2)
    assert ledger.own.snapshot_with_reasons()[1]["dropped"] == {"queue_full": 2}


def test_close_never_waits_for_ever_on_a_report_in_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The SIGTERM handler closes clients on the main thread; a periodic
    # report that holds the ledger and waits for a lock the interrupted main
    # thread holds can never finish: close() skips the final report.
    from vdt_ai import _ledger

    monkeypatch.setattr(_ledger, "FINAL_REPORT_WAIT_SECONDS", 0.2)
    transport = ReportingTransport()
    client = VDTClient(transport=transport, ledger_interval_s=3600)
    client.log_metric("m", 1.0)
    ledger = client._ledger
    assert ledger is not None
    ledger._lock.acquire()  # a report that never ends
    try:
        start = time.monotonic()
        client.close()
        assert time.monotonic() - start < 5
    finally:
        ledger._lock.release()
    assert transport.reports == []  # skipped, not sent half-built
    assert len(transport.records) == 1  # the event itself is untouched
