"""Keras / TensorFlow: a callback that logs training and prediction.

Example::

    from vdt_ai.integrations.tensorflow import VDTCallback

    callback = VDTCallback(run_id="cnn-3", model_name="digits", log_every_n_batches=100)
    model.fit(x, y, epochs=5, callbacks=[callback])   # Metric per epoch, a JobRun
    model.predict(x, callbacks=[callback])            # a ModelCall per predict batch

Logged: a JobRun ``started`` at ``on_train_begin`` and ``succeeded`` (with
duration and the last epoch's metrics) at ``on_train_end``; every epoch's
metrics as Metric events with ``step`` = epoch (and, with
``log_every_n_batches``, every n-th batch's with ``step`` = global batch);
each predict batch as a ModelCall with its latency and an output summary
(Keras does not show callbacks the inputs). Keras has no hook for a ``fit``
that raises: such a run stays ``started``. The callback is not part of the
model, so ``model.save()`` is unaffected. Supported: TensorFlow 2.12 to <3.
"""

import math
import threading
import time
import uuid
from typing import Any, Dict, Optional

from ..client import VDTClient
from ..models import JobStatus, utc_now
from ._common import batch_size, report, require, resolve, summarize

tf = require("tensorflow", "tensorflow", ("2.12", "3"))
_Callback: Any = tf.keras.callbacks.Callback


def _numbers(logs: Optional[Dict[str, Any]]) -> Dict[str, float]:
    out: Dict[str, float] = {}
    for name, value in (logs or {}).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[str(name)] = number
    return out


class VDTCallback(_Callback):  # type: ignore[misc]
    """Logs a Keras ``fit`` as a JobRun and Metrics, and ``predict`` batches as
    ModelCalls.

    Safe for Keras 3's asynchronous callback dispatch (``async_safe``): a
    callback without it makes Keras run every batch's callbacks on the
    training thread, converting each batch's logs (and predict outputs) to
    NumPy there, which waits for the device each batch.

    Args:
        client: the client to log with; default ``vdt_ai.get_client()``.
        run_id: the run id of the metrics and the JobRun; default a new one
            per ``fit``.
        model_name: the name events carry; default the Keras model's name.
        log_every_n_batches: also log training metrics every n batches.
    """

    # Batch-end hooks may run on Keras' worker threads, in any order.
    async_safe = True

    def __init__(
        self,
        client: Optional[VDTClient] = None,
        run_id: Optional[str] = None,
        model_name: Optional[str] = None,
        log_every_n_batches: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.run_id = run_id
        self.model_name = model_name
        self.log_every_n_batches = log_every_n_batches
        self._run: Optional[str] = None
        self._started: Any = None
        self._epoch = 0
        self._batches_seen = 0
        self._last_metrics: Dict[str, float] = {}
        self._predict_starts: Dict[int, float] = {}
        self._lock = threading.Lock()

    def _name(self) -> str:
        model = getattr(self, "model", None)
        return self.model_name or str(getattr(model, "name", None) or "keras_model")

    def _safely(self, where: str, action: Any) -> None:
        try:
            action()
        except Exception as exc:  # never break the user's fit/predict
            report(self.client, f"tensorflow.{where}", exc)

    # -- training -------------------------------------------------------------

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        def start() -> None:
            self._run = self.run_id or f"keras-{uuid.uuid4().hex[:16]}"
            self._started = utc_now()
            self._epoch = 0
            self._batches_seen = 0
            self._last_metrics = {}
            resolve(self.client).log_job_run(
                self._name(),
                JobStatus.STARTED,
                run_id=self._run,
                start_time=self._started,
                tags={"framework": "tensorflow"},
            )

        self._safely("on_train_begin", start)

    def on_train_batch_end(
        self, batch: int, logs: Optional[Dict[str, Any]] = None
    ) -> None:
        with self._lock:
            self._batches_seen += 1
            seen = self._batches_seen
        every = self.log_every_n_batches
        if not every or seen % every:
            return
        self._safely(
            "on_train_batch_end",
            lambda: resolve(self.client).log_metrics(
                _numbers(logs),
                step=seen,
                run_id=self._run,
                tags={"framework": "tensorflow", "phase": "batch"},
            ),
        )

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        def log() -> None:
            self._epoch = epoch
            self._last_metrics = _numbers(logs)
            resolve(self.client).log_metrics(
                self._last_metrics,
                step=epoch,
                run_id=self._run,
                tags={"framework": "tensorflow", "phase": "epoch"},
            )

        self._safely("on_epoch_end", log)

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        def finish() -> None:
            resolve(self.client).log_job_run(
                self._name(),
                JobStatus.SUCCEEDED,
                run_id=self._run,
                start_time=self._started,
                end_time=utc_now(),
                metrics={"epochs": self._epoch + 1, **self._last_metrics},
                tags={"framework": "tensorflow"},
            )

        self._safely("on_train_end", finish)

    # -- prediction -----------------------------------------------------------

    def on_predict_batch_begin(
        self, batch: int, logs: Optional[Dict[str, Any]] = None
    ) -> None:
        with self._lock:
            self._predict_starts[batch] = time.perf_counter()

    def on_predict_batch_end(
        self, batch: int, logs: Optional[Dict[str, Any]] = None
    ) -> None:
        # From the batch's start until its outputs reached the host (Keras 3
        # converts them before this runs, on a worker thread when dispatched
        # asynchronously).
        now = time.perf_counter()
        with self._lock:
            start = self._predict_starts.pop(batch, now)
        latency_ms = (now - start) * 1000

        def log() -> None:
            outputs: Any = (logs or {}).get("outputs")
            if hasattr(outputs, "numpy"):
                outputs = outputs.numpy()
            resolve(self.client).log_model_call(
                self._name(),
                input_data={"batch": batch, "batch_size": batch_size(outputs)},
                prediction=summarize(outputs) if outputs is not None else None,
                latency_ms=latency_ms,
                tags={"framework": "tensorflow"},
            )

        self._safely("on_predict_batch_end", log)
