"""The delivery ledger: a client's periodic :class:`vdt_ai.models.SdkReport`.

Every ``ledger_interval_s`` seconds (from a daemon thread of its own) and
once more when the client closes, the ledger reads the client's counters and
sends the counts since its previous report, so the platform can reconcile
what it received. It runs only over a transport that can send reports
(``send_report``: the Kafka transport); offline mode and test transports
send none.

A report bypasses sampling, the data policy and ``before_send`` (it holds no
user data), and its own outcome is counted in the ledger's private counters,
never in the client's: reports are never counted in the counts they carry.
A window with nothing to count sends no report, except that ``close()``
always sends a final one once any was sent. ``dropped`` and ``failed``
are also reported by reason (``dropped_by_reason``, ``failed_by_reason``),
read with the totals in one step so that each map sums to its total.
"""

import datetime as dt
import os
import threading
import uuid
from typing import Any, Dict, Optional

from . import _lifecycle, _log
from .codec import Encoder
from .models import LEDGER_COUNTS, SdkReport, Source, build_event, utc_now
from .transport import Counters, Stats, Transport

# How long close() waits for a periodic report in progress.
FINAL_REPORT_WAIT_SECONDS = 2.0


class Ledger:
    """One client's delivery ledger (see the module doc)."""

    def __init__(
        self,
        counters: Counters,
        transport: Transport,
        encoder: Encoder,
        source: Source,
        interval: float,
    ) -> None:
        self.counters = counters
        self.transport = transport
        self.encoder = encoder
        self.source = source
        self.interval = interval
        self.instance_id = uuid.uuid4().hex
        self.sequence = 0
        self.own = Counters()  # the reports' own outcomes
        self._last = Stats()
        self._last_reasons: Dict[str, Dict[str, int]] = {}
        self._since: dt.datetime = utc_now()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.last: Optional[SdkReport] = None  # the latest report sent

    @staticmethod
    def supported(transport: Any) -> bool:
        """Whether ``transport`` can carry reports."""
        return callable(getattr(transport, "send_report", None))

    def start(self) -> None:
        """Starts the periodic reports (a daemon thread)."""
        thread = threading.Thread(target=self._run, name="vdt-ai-ledger", daemon=True)
        # At interpreter shutdown no thread starts: only the final report
        # (at close) is sent then.
        self._thread = thread if _lifecycle.start_thread(thread) else None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.report(final=False)

    def close(self) -> None:
        """Stops the periodic reports and sends the final one."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)
        # Bounded: close() may run in the SIGTERM handler, on the main thread,
        # while the periodic report holds our lock and waits for a lock the
        # interrupted main thread holds (the event-id lock): waiting for ever
        # would hang the exit. The final report is then skipped (the platform
        # reads a sequence without its end as an unclean exit).
        self.report(final=True, wait=FINAL_REPORT_WAIT_SECONDS)

    def report(self, final: bool, wait: float = -1) -> Optional[SdkReport]:
        """Sends the counts since the previous report; the report sent, or
        ``None`` when there was nothing to count (or, after ``wait`` seconds,
        another report still held the ledger). Never raises."""
        try:
            if not self._lock.acquire(timeout=wait):
                _log.log_once(
                    "ledger-busy",
                    "WARNING",
                    "the final delivery report was skipped: the periodic one "
                    "did not finish in time",
                )
                return None
            try:
                return self._report(final)
            finally:
                self._lock.release()
        except Exception as exc:  # never hurt the host program
            _log.log_once(
                "ledger-error", "ERROR", "the delivery ledger failed", error=repr(exc)
            )
            return None

    def _report(self, final: bool) -> Optional[SdkReport]:
        now, reasons = self.counters.snapshot_with_reasons()
        last, self._last = self._last, now
        last_reasons, self._last_reasons = self._last_reasons, reasons
        counts = {
            name: getattr(now, name) - getattr(last, name) for name in LEDGER_COUNTS
        }
        # An empty window sends nothing, but close() always ends a sequence
        # it began, so that the platform can tell a clean end from a crash.
        if not any(counts.values()) and not (final and self.sequence):
            return None
        by_reason = {
            f"{name}_by_reason": _deltas(by, last_reasons.get(name, {}))
            for name, by in reasons.items()
        }
        start, self._since = self._since, utc_now()
        self.sequence += 1
        spool_bytes = getattr(self.transport, "spool_bytes", None)
        report = build_event(
            SdkReport,
            {
                "source": self.source,
                "instance_id": self.instance_id,
                "pid": os.getpid(),
                "sequence": self.sequence,
                "window_start": start,
                "window_end": self._since,
                "final": final,
                "spool_bytes": spool_bytes() if spool_bytes is not None else 0,
                **{name: max(0, value) for name, value in counts.items()},
                **by_reason,
            },
        )
        self.transport.send_report(  # type: ignore[attr-defined]
            self.encoder.encode(report), self.own
        )
        self.last = report
        return report


def _deltas(now: Dict[str, int], last: Dict[str, int]) -> Dict[str, int]:
    """The counts in ``now`` that grew since ``last``, by how much."""
    return {
        reason: count - last.get(reason, 0)
        for reason, count in sorted(now.items())
        if count > last.get(reason, 0)
    }
