"""The delivery ledger over Kafka: the final SdkReport arrives on
<prefix>.sdk_reports with the counts; undeliverable, it is never spooled."""

from pathlib import Path

import pytest

from vdt_ai import Stats, VDTClient, decode
from vdt_ai.models import SdkReport
from vdt_ai.spool import iter_records

from .conftest import BOOTSTRAP, consume

pytestmark = pytest.mark.integration


def test_final_report_reaches_kafka(prefix: str, tmp_path: Path) -> None:
    client = VDTClient(
        bootstrap_servers=BOOTSTRAP,
        topic_prefix=prefix,
        handle_sigterm=False,
        spool_dir=tmp_path / "spool",
    )
    for i in range(40):
        client.log_metric("loss", float(i))
    client.close(30)
    assert client.stats() == Stats(accepted=40, delivered=40)
    ledger = client._ledger
    assert ledger is not None and ledger.last is not None
    sent = str(ledger.last.event_id)
    seen = consume([f"{prefix}.sdk_reports"], {sent}, timeout=60)
    reports = [decode(records[0].value) for records in seen.values()]
    assert len(reports) == 1, "one report, sent once"
    (report,) = reports
    assert isinstance(report, SdkReport) and report.final
    assert str(report.event_id) == sent and report.sequence == 1
    assert (report.accepted, report.delivered, report.spooled) == (40, 40, 0)
    assert report.dropped_by_reason == report.failed_by_reason == {}
    assert report.instance_id == ledger.instance_id
    assert ledger.own.snapshot().delivered == 1


def test_undeliverable_report_is_not_spooled(tmp_path: Path) -> None:
    client = VDTClient(
        bootstrap_servers="127.0.0.1:1",  # nothing listens there
        handle_sigterm=False,
        spool_dir=tmp_path / "spool",
        shutdown_timeout=1.0,
    )
    for i in range(5):
        client.log_metric("loss", float(i))
    client.close()
    assert client.stats() == Stats(accepted=5, spooled=5)
    assert len(list(iter_records(tmp_path / "spool"))) == 5
    ledger = client._ledger
    assert ledger is not None
    own = ledger.own.snapshot()
    assert own.spooled == 0 and own.failed + own.dropped == 1
