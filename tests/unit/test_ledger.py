"""The delivery ledger (SdkReport): counts since the previous report, never
its own, over a transport that can carry reports."""

import time
from typing import List, Optional

import pytest

from vdt_ai import Stats, VDTClient, decode
from vdt_ai.codec import Record
from vdt_ai.models import SdkReport
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
    first, last = decoded(transport)
    assert (first.sequence, first.accepted, first.final) == (1, 1, False)
    assert (last.sequence, last.accepted, last.final) == (2, 2, True)
    assert first.instance_id == last.instance_id
    assert last.window_start == first.window_end


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
