"""Model calls of one integration hook: sampled before the hook's work.

A framework hook (the PyTorch forward hooks) logs every call of one model with
the same name, version and tags, and does real work for each: launching
summaries, recording CUDA events, building the call's input summary. A
``CallSender`` lets it decide sampling *before* that work (``draw()``: the
event's id and time, or None when the call is sampled out, counted as
``sampled_out``) and send it later with the id drawn, so the call is never
sampled twice (the same id gives the same answer). What the calls share is
checked and encoded once (:meth:`Pipeline.model_call_writer`).

The event's id and timestamp are those of the draw: when the call began.
"""

from typing import TYPE_CHECKING, Any, Dict, Optional
from uuid import UUID

from ._otel import OTEL_TRACE, current_span_ids
from ._otel import modules as _modules
from ._pipeline import Stamp
from ._uuid7 import next_stamp

if TYPE_CHECKING:  # pragma: no cover
    from .client import VDTClient


class CallSender:
    """Sends the model calls of one hook through ``client``."""

    __slots__ = ("client", "model_name", "_pipeline", "_send", "_common")

    def __init__(
        self,
        client: "VDTClient",
        model_name: str,
        model_version: Optional[str],
        tags: Optional[Dict[str, str]],
    ) -> None:
        self.client = client
        self.model_name = model_name
        self._pipeline = client._pipeline
        self._common = {
            "model_name": model_name,
            "model_version": model_version,
            "tags": tags,
        }
        self._send = self._pipeline.model_call_writer(self._common)

    def draw(self, sample: bool = True) -> Optional[Stamp]:
        """The next call's id and time; None when it is not to be logged
        (the client is disabled, or sampling drops it: counted). A model
        profiled with ``profile_model`` sees every call: its calls are drawn
        unsampled and sampled when sent, as they are with ``sample=False``
        (a hook whose other work, such as logging rows, is for every call)."""
        client = self.client
        if not client._enabled:
            return None
        if not sample or (client._profilers and self.model_name in client._profilers):
            return next_stamp()
        return self._pipeline.draw()

    def send(
        self,
        drawn: Stamp,
        input_data: Any,
        prediction: Any,
        latency_ms: Any,
        trusted: bool = False,
    ) -> Optional[UUID]:
        """Logs a call drawn by :meth:`draw`, as ``log_model_call`` would.

        ``trusted``: ``input_data`` and ``prediction`` are plain JSON built by
        the hook itself (see :meth:`Pipeline.model_call_writer`).

        Raises:
            ValidationError: the call is invalid.
        """
        client = self.client
        if not client._enabled:
            return None
        span = current_span_ids() if OTEL_TRACE in _modules else None
        if span is not None:
            # The span's ids: the general path, as log_model_call takes them.
            sent = self._pipeline.model_call(
                {
                    **self._common,
                    "input_data": input_data,
                    "prediction": prediction,
                    "latency_ms": latency_ms,
                    "trace_id": span[0],
                    "span_id": span[1],
                },
                drawn,
            )
        else:
            sent = self._send(drawn, input_data, prediction, latency_ms, trusted)
        profilers = client._profilers
        if profilers:
            profiler = profilers.get(self.model_name)
            if profiler is not None:
                profiler.observe(input_data, prediction, None, None)
        return sent
