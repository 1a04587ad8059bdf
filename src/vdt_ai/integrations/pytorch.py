"""PyTorch: forward-call monitoring and training-step metrics.

Example::

    from vdt_ai.integrations.pytorch import log_training_step, monitor_module

    handle = monitor_module(model, "resnet_embedder")   # each forward -> ModelCall
    model(batch)
    handle.remove()                                      # detaches the hooks

    for step, batch in enumerate(loader):
        loss = train_step(batch)
        log_training_step(step, loss, run_id="run-9", lr=scheduler.get_last_lr()[0])

Forward calls are logged with latency and tensor summaries (shape, dtype,
non-finite count, min/max/mean), never tensor contents. With ``lightning``
installed, ``VDTLightningCallback`` logs the trainer's metrics the same way.
Supported: PyTorch 2.0 to <3.

The hooks never synchronise the device. A summary is a handful of reductions
on the tensor's own device into small tensors (one per dtype), copied with
``non_blocking=True`` into pinned host memory; a CUDA event recorded after the
copy says when the values can be read: the next calls query it (never wait)
and log what has arrived, and a background thread logs what is left after a
pause. CPU tensors take the same path and are resolved at once.
Summaries cost a dozen kernel launches whatever the tensor's size, so their
share of the caller's time is bounded (``summary_budget``, 5% by default):
the calls of a tiny, launch-bound forward are summarised one in several.
The latency of a CUDA forward is the GPU time between CUDA events recorded by
the pre- and post-hooks. The hooks are hidden from ``torch.compile``
(``torch.compiler.disable`` and a skipped frame), so a monitored module
compiles to the same graphs as the bare one; monitor the compiled module.
"""

# Annotations stay text: the hooks define closures on every call, whose
# annotations would otherwise be evaluated each time.
from __future__ import annotations

import atexit
import importlib
import math
import os
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from .. import _forksafe, _lifecycle
from .._call_sender import CallSender
from ..client import VDTClient
from ._common import report, require, resolve, sample_rows

torch = require("torch", "torch", ("2.0", "3"))

MAX_TENSORS = 8
# Summaries of tensors in lists nested deeper than this are checked by the
# pipeline like any user's input_data (see _Summaries.plain).
PLAIN_NESTING = 2
# Tensors up to this many elements get an exact non-finite count (its
# temporaries stay under 1 MiB); larger ones count it on a strided sample of
# this size, so the extra memory stays constant whatever the tensor's size.
EXACT_LIMIT = 1 << 16
# A CPU sum of a half-precision tensor in float32 converts the whole tensor
# first, so it is summed in at most this many pieces (CUDA kernels accumulate
# in float32 without a copy).
CPU_SUM_PIECES = 512
# Summaries waiting for their device: past this many, the caller waits for
# the oldest (bounded memory over losing events; a GPU this far behind has
# already stalled the launch queue).
MAX_PENDING = 4096
# Summaries whose values have arrived are logged by the next calls, up to
# this many per call; the resolver thread takes the rest after lingering this
# long (or at once when this many are queued, or for a flush).
DRAIN_PER_CALL = 2
LINGER_S = 0.05
GATHER_MAX = 256

# The share of the caller's time that values summaries of a monitored module
# may take by default, and the most credit (seconds) an idle module saves up.
SUMMARY_BUDGET = 0.05
MAX_CREDIT_S = 0.005

# Resolved CUDA events kept for reuse (per device and kind), stream objects
# kept by id.
MAX_FREE_EVENTS = 256
MAX_STREAMS = 64

# The start of a forward inside a CUDA graph capture (not monitored).
_CAPTURED: Any = object()

# Starts kept per thread: nested forwards of one module, and those that raised.
MAX_NESTING = 64

_HALF = (torch.float16, torch.bfloat16)


def _compiler_disable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as a frame torch.compile runs eagerly instead of tracing."""
    compiler = getattr(torch, "compiler", None)
    disable = getattr(compiler, "disable", None)
    if disable is None:  # pragma: no cover - torch 2.0
        disable = importlib.import_module("torch._dynamo").disable
    return disable(fn)  # type: ignore[no-any-return]


_is_exporting: Callable[[], bool] = getattr(
    getattr(torch, "compiler", None), "is_exporting", lambda: False
)


_is_compiling: Callable[[], bool] = getattr(
    getattr(torch, "compiler", None),
    "is_compiling",
    lambda: True,  # torch 2.0-2.2: always through the disabled frame
)


def _no_callback_known() -> Any:  # pragma: no cover - older torch
    return True  # unknown: take the disabled frame


def _find_compile_callback() -> Callable[[], Any]:
    """torch.compile's frame callback getter (None where no compile is active)."""
    try:
        frames = importlib.import_module("torch._C._dynamo.eval_frame")
    except ImportError:  # pragma: no cover - older torch
        return _no_callback_known
    return getattr(frames, "get_eval_frame_callback", _no_callback_known)


_compile_callback = _find_compile_callback()


def _no_stream_key(index: Any) -> Any:
    raise LookupError("torch has no _cuda_getCurrentStream")


# (stream id, device index, device type) of a device's current stream: a
# cheap key for the stream objects the CUDA backend keeps.
_current_stream_key: Callable[[Any], Any] = getattr(
    torch._C, "_cuda_getCurrentStream", _no_stream_key
)

# torch.cuda.is_current_stream_capturing() without its Python wrapper (a
# microsecond a call, on every forward).
_is_capturing: Callable[[], bool] = getattr(
    torch._C,
    "_cuda_isCurrentStreamCapturing",
    lambda: torch.cuda.is_current_stream_capturing(),
)

# -- device backends ----------------------------------------------------------


class _CudaBackend:
    """Events and pinned buffers of CUDA devices."""

    def __init__(self) -> None:
        # Events go back to a free list once resolved: creating and destroying
        # a CUDA event per call costs the caller's thread more than recording.
        self._free: Dict[Tuple[Any, bool], List[Any]] = {}
        # Stream objects by torch's (stream id, device index, device type):
        # building one anew is most of torch.cuda.current_stream()'s cost.
        self._streams: Dict[Any, Any] = {}

    def event(self, device: Any, timing: bool) -> Any:
        """A CUDA event recorded now on ``device``'s current stream."""
        free = self._free.get((device, timing))
        event = free.pop() if free else None
        if event is None:
            # The resolver thread waits on the untimed ones: a blocking-sync
            # event lets it sleep instead of spinning a core while the GPU works.
            event = torch.cuda.Event(enable_timing=timing, blocking=not timing)
        event.record(self._stream(device))
        return event

    def capturing(self) -> bool:
        """True while the current stream is being captured into a CUDA graph."""
        return bool(_is_capturing())

    def recycle(self, device: Any, timing: bool, event: Any) -> None:
        """Takes back an event whose work is done and whose time was read."""
        free = self._free.setdefault((device, timing), [])
        if len(free) < MAX_FREE_EVENTS:
            free.append(event)

    def _stream(self, device: Any) -> Any:
        try:
            key = _current_stream_key(device.index)
        except Exception:  # no such function, no index: the public way
            return torch.cuda.current_stream(device)
        stream = self._streams.get(key)
        if stream is None:
            if len(self._streams) >= MAX_STREAMS:
                self._streams.clear()
            stream = self._streams[key] = torch.cuda.current_stream(device)
        return stream

    def upload(self, tensor: Any, device: Any) -> Any:  # pragma: no cover - GPU
        """``tensor`` on ``device``; pinned, since a pageable copy would wait."""
        return tensor.pin_memory().to(device, non_blocking=True)

    def host_buffer(self, like: Any) -> Any:
        """Pinned host memory for a non-blocking copy of ``like``."""
        return torch.empty(like.shape, dtype=like.dtype, pin_memory=True)


# Devices whose work runs asynchronously to the caller. Any other device
# (CPU) is resolved at once. Tests put a fake backend under "cuda".
_BACKENDS: Dict[str, Any] = {"cuda": _CudaBackend()}


def _backend(device: Any) -> Any:
    return _BACKENDS.get(getattr(device, "type", ""))


# "float32" for torch.float32...: str(dtype) costs a call to a C method and a
# replace on every tensor of every call.
_DTYPE_NAMES: Dict[Any, str] = {}


def _dtype_name(dtype: Any) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).replace("torch.", "")
    return name


# -- summaries ------------------------------------------------------------------


class _Summaries:
    """Tensor summaries of one call, built in two steps.

    ``add`` runs on the caller's thread: it records shape and dtype and
    queues on-device reductions (no value is read). ``fill`` runs at
    resolution with the reductions' values as floats.
    """

    def __init__(self, values: bool = True) -> None:
        self.scalars: List[Any] = []
        self._slots: List[Tuple[Dict[str, Any], int, int, int, bool]] = []
        self._values = values  # False: shape and dtype only
        # True while every value added is a torch.Tensor (no subclass), in
        # lists at most PLAIN_NESTING deep: the templates are then plain JSON
        # of the SDK's own (finite numbers, ASCII names, no key of the
        # user's), which the pipeline need not walk again (see
        # CallSender.send's ``trusted``).
        self.plain = True

    def add(self, value: Any, depth: int = 0) -> Any:
        """The summary template of ``value`` (a tensor, list, tuple or dict)."""
        if isinstance(value, torch.Tensor):
            if type(value) is not torch.Tensor:
                # A subclass's shape and dtype are its own (text, numpy
                # integers, symbolic sizes): the pipeline checks them.
                self.plain = False
            return self._tensor(value)
        if isinstance(value, (list, tuple)):
            if depth >= PLAIN_NESTING:
                self.plain = False
            return [self.add(v, depth + 1) for v in list(value)[:MAX_TENSORS]]
        self.plain = False
        if isinstance(value, dict):
            return {
                str(k): self.add(v, depth + 1)
                for k, v in list(value.items())[:MAX_TENSORS]
            }
        return {"type": type(value).__name__}

    def _tensor(self, value: Any) -> Dict[str, Any]:
        summary: Dict[str, Any] = {
            "shape": list(value.shape),
            "dtype": _dtype_name(value.dtype),
        }
        count = value.numel()
        if not self._values or not count or value.is_complex() or value.is_quantized:
            return summary
        data = value.detach()
        try:
            if data.is_contiguous():
                low, high = torch.aminmax(data)
            else:  # aminmax of all elements copies a strided tensor first
                low, high = torch.amin(data), torch.amax(data)
            if data.is_floating_point():
                total = _sum(data)
                part = data if count <= EXACT_LIMIT else _strided_sample(data)
                # x * 0 is 0 where x is finite, NaN elsewhere: two kernels
                # (isfinite alone launches four).
                finite = torch.count_nonzero(part * 0)
                counted = part.numel()
            else:
                total = data.sum()
                finite, counted = None, 0
        except RuntimeError:  # a dtype without these kernels (float8...)
            return summary
        start = len(self.scalars)
        self.scalars.extend([low, high, total])
        if finite is not None:
            self.scalars.append(finite)
        self._slots.append((summary, start, count, counted, count == counted))
        return summary

    def fill(self, values: List[float]) -> None:
        """Writes the resolved values into the templates ``add`` returned."""
        for summary, start, count, counted, exact in self._slots:
            low, high, total = values[start : start + 3]
            if not counted:
                summary.update(non_finite=0, min=low, max=high, mean=total / count)
                continue
            non_finite = int(values[start + 3])
            if math.isfinite(low) and math.isfinite(high):
                non_finite = 0  # aminmax propagates NaN: every value is finite
            elif not exact:
                non_finite = max(1, round(non_finite * count / counted))
                summary["non_finite_estimated"] = True
            summary["non_finite"] = non_finite
            for name, number in (("min", low), ("max", high), ("mean", total / count)):
                if non_finite == 0 and math.isfinite(number):
                    summary[name] = number


def _sum(data: Any) -> Any:
    """The float32-accumulated sum of a floating tensor, without a full copy."""
    if data.dtype not in _HALF or data.device.type == "cuda":
        return data.sum(dtype=torch.float32) if data.dtype in _HALF else data.sum()
    if data.is_contiguous():
        flat = data.view(-1)
        pieces = flat.split(max(EXACT_LIMIT, -(-flat.numel() // CPU_SUM_PIECES)))
    else:  # along its longest dimension (a view per piece, no copy)
        dim = max(range(data.dim()), key=lambda d: int(data.shape[d]))
        pieces = data.split(-(-int(data.shape[dim]) // CPU_SUM_PIECES), dim=dim)
    # One float32 buffer reused for every piece: a fresh temporary per piece
    # leaves the C allocator holding tens of MiB.
    buffer = torch.empty(pieces[0].numel(), dtype=torch.float32)
    total = torch.zeros((), dtype=torch.float64)
    for piece in pieces:
        chunk = buffer[: piece.numel()].view(piece.shape)
        total += chunk.copy_(piece).sum(dtype=torch.float64)
    return total


def _strided_sample(data: Any) -> Any:
    """A view of about EXACT_LIMIT elements spread over ``data`` (no copy)."""
    if data.is_contiguous():
        flat = data.view(-1)
        return flat[:: -(-flat.numel() // EXACT_LIMIT)]
    part = data
    while part.numel() > EXACT_LIMIT:
        dim = max(range(part.dim()), key=lambda d: int(part.shape[d]))
        step = min(int(part.shape[dim]), -(-part.numel() // EXACT_LIMIT))
        index = [slice(None)] * part.dim()
        index[dim] = slice(None, None, max(step, 2))
        part = part[tuple(index)]
    return part


def _first_tensor(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value
    items = list(value.values()) if isinstance(value, dict) else value
    if isinstance(items, (list, tuple)):
        for item in items:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _batch(inputs: Any) -> Optional[int]:
    first = inputs[0] if isinstance(inputs, (list, tuple)) and inputs else inputs
    if isinstance(first, torch.Tensor) and first.dim() > 0:
        return int(first.shape[0])
    return None


# -- resolution off the caller's path ----------------------------------------


class _Pending:
    """Device values on their way to the host, and what to do with them."""

    __slots__ = ("host", "done", "finish", "client", "where", "spent", "arrived")

    def __init__(
        self,
        host: Any,
        done: Any,
        finish: Callable[[List[Any]], None],
        client: Optional[VDTClient],
        where: str,
        spent: List[Tuple[Any, Any, bool, Any]],
    ) -> None:
        self.host = host
        self.done = done
        self.finish = finish
        self.client = client
        self.where = where
        self.spent = spent  # (backend, device, timing, event) to reuse after
        self.arrived = False  # ready() said so: no wait needed

    def ready(self) -> bool:
        """True when the device is done with it (a query, never a wait)."""
        try:
            self.arrived = all(event.query() for event in self.done)
        except Exception:  # an event that cannot say: the resolver waits
            return False
        return self.arrived

    def resolve(self) -> None:
        """Waits for the device (off the caller's path), reads, finishes."""
        try:
            if not self.arrived:  # a wait on a done event still costs a call
                for event in self.done:
                    event.synchronize()
            self.finish([h.tolist() for h in self.host])
        except Exception as exc:
            report(self.client, self.where, exc)
            return
        for backend, device, timing, event in self.spent:
            recycle = getattr(backend, "recycle", None)
            if recycle is not None:
                recycle(device, timing, event)


class _Resolver:
    """Resolves pending summaries: mostly on the callers' own threads, the
    rest on one background thread.

    Each ``submit`` first takes up to ``DRAIN_PER_CALL`` items at the head of
    the queue whose device work is done (a non-blocking event query) and
    logs them on the caller's thread. The background thread sleeps until a
    first item arrives in an empty queue, lingers ``LINGER_S`` (or until a
    flush or a backlog of ``GATHER_MAX``) and then resolves whatever the
    callers left, waiting on the device if need be. Two threads taking turns
    on the GIL for every call cost the caller more than the logging itself
    (measured: 40 us of the caller's CPU per call became 100 us with a
    resolver thread per batch); this way a steady forward loop hands nothing
    to another thread, and the last calls before a pause are logged within
    ``LINGER_S``.
    """

    def __init__(self) -> None:
        self._pending: Deque[_Pending] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._busy = 0
        self._waiting = 0  # flushes in progress
        self._sleeping = False  # the thread waits for a first item
        self._thread: Optional[threading.Thread] = None
        self._pid = 0
        self._atexit = False

    def after_fork_in_child(self) -> None:
        """A forked child starts empty, with a fresh lock: another thread of
        the parent may have held the old one at the fork, and its queue and
        thread belong to the parent."""
        self._pending = deque()
        self._cond = threading.Condition(threading.Lock())
        self._busy = self._waiting = 0
        self._sleeping = False
        self._thread, self._pid = None, os.getpid()

    def submit(self, item: _Pending) -> None:
        """Queues ``item``, after logging items whose values have arrived."""
        taken: List[_Pending] = []
        with self._cond:
            # The thread did not survive a fork (getpid() is a system call:
            # _forksafe keeps the pid, renewed in a forked child).
            if self._pid != _forksafe.pid:
                self._pending.clear()
                self._busy, self._thread, self._pid = 0, None, os.getpid()
                self._sleeping = False
            pending = self._pending
            while pending and len(taken) < DRAIN_PER_CALL and pending[0].ready():
                taken.append(pending.popleft())
            if len(pending) >= MAX_PENDING:  # the device is this far behind
                taken.append(pending.popleft())
            pending.append(item)
            if self._thread is None:
                thread = threading.Thread(
                    target=self._run, name="vdt-ai-torch-resolver", daemon=True
                )
                if _lifecycle.start_thread(thread):
                    self._thread = thread
                else:  # at interpreter shutdown: this call resolves them all
                    taken.extend(pending)
                    pending.clear()
                if not self._atexit:
                    self._atexit = True
                    atexit.register(self.flush, 5.0)
            self._busy += len(taken)
            if self._sleeping or len(pending) == GATHER_MAX:
                self._sleeping = False
                self._cond.notify_all()
        if taken:
            self._complete(taken)

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            # Ended by a BaseException out of a call's logging (a user's
            # callback calling sys.exit...): the next submit starts another,
            # else the calls queued after it would wait for ever.
            with self._cond:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._sleeping = True
                    self._cond.wait()
                self._sleeping = False
                if not self._waiting and len(self._pending) < GATHER_MAX:
                    self._cond.wait(LINGER_S)  # the callers take what is ready
                batch = list(self._pending)
                self._pending.clear()
                self._busy += len(batch)
            self._complete(batch)

    def _complete(self, items: List[_Pending]) -> None:
        done = 0
        try:
            for item in items:
                done += 1
                item.resolve()
        finally:  # one lock for the lot; a flush waits for the count
            with self._cond:
                self._busy -= len(items)
                # A BaseException out of one call's logging (a Ctrl-C, a
                # callback's SystemExit): that call is given up, the calls
                # after it go back to the head of the queue, not lost.
                if done < len(items):
                    self._pending.extendleft(reversed(items[done:]))
                    self._cond.notify_all()  # a sleeping resolver takes them
                elif not self._busy and self._waiting:
                    self._cond.notify_all()

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Waits until every queued summary is logged; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            taken: List[_Pending] = []
            if self._pending and self._thread is None:
                # No resolver (it ended, or none could start): this thread,
                # which waits anyway, resolves what is queued.
                taken = list(self._pending)
                self._pending.clear()
                self._busy += len(taken)
        if taken:
            self._complete(taken)
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()  # the resolver stops lingering
            try:
                while self._pending or self._busy:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._cond.wait(left)
            finally:
                self._waiting -= 1
        return True


_resolver = _Resolver()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_resolver.after_fork_in_child)


def flush(timeout: Optional[float] = None) -> bool:
    """Waits until every summary still on its way from a device is logged.

    Called at interpreter exit (5 s) too. Never needed for CPU tensors.

    Args:
        timeout: the most seconds to wait; ``None`` waits as long as it takes.

    Returns:
        ``True`` when nothing is left pending.
    """
    return _resolver.flush(timeout)


def _no_values(
    finish: Callable[[List[float], List[Any]], None],
) -> Callable[[List[Any]], None]:
    def complete(values: List[Any]) -> None:
        finish([], [])

    return complete


def _deliver(
    scalars: List[Any],
    extra: List[Any],
    finish: Callable[[List[float], List[Any]], None],
    client: Optional[VDTClient],
    where: str,
    recorded: Any = None,
    spent: Optional[List[Tuple[Any, Any, bool, Any]]] = None,
) -> None:
    """Brings ``scalars`` and the ``extra`` tensors to the host without a
    synchronisation, then calls ``finish(scalar values, extra values)``: at
    once when all are on the CPU, else on the resolver thread once every
    device involved is done (and the event ``recorded``, if given, too).
    ``spent`` events go back to their backend once ``finish`` has run.
    Scalars are stacked per device (a model may take CPU inputs and return
    CUDA outputs)."""
    if not scalars and not extra:  # shapes and dtypes only: nothing to copy
        item = _Pending(
            (),
            [recorded] if recorded is not None else [],
            _no_values(finish),
            client,
            where,
            list(spent or ()),
        )
        if item.done:
            _resolver.submit(item)
        else:
            item.resolve()
        return
    # One stack per device and dtype: stacking scalars of one dtype is one
    # kernel, mixing dtypes copies them one by one.
    by_device: Dict[Any, List[int]] = {}
    for index, scalar in enumerate(scalars):
        by_device.setdefault((scalar.device, scalar.dtype), []).append(index)
    tensors = [torch.stack([scalars[i] for i in group]) for group in by_device.values()]
    hosts = []
    waits: Dict[Any, Any] = {}
    for tensor in tensors + extra:
        backend = _backend(tensor.device)
        if backend is None:
            hosts.append(tensor)
            continue
        host = backend.host_buffer(tensor)
        host.copy_(tensor, non_blocking=True)
        hosts.append(host)
        waits[tensor.device] = backend
    spent = list(spent or ())
    done = []
    for device, backend in waits.items():
        done.append(backend.event(device, False))
        spent.append((backend, device, False, done[-1]))
    if recorded is not None and not done:
        done.append(recorded)  # no copy to wait for: the forward's end event
    groups = list(by_device.values())

    def complete(values: List[Any]) -> None:
        flat = [0.0] * len(scalars)
        for indices, group_values in zip(groups, values):
            for index, value in zip(indices, group_values):
                flat[index] = float(value)  # bools and ints too, as before
        finish(flat, values[len(groups) :])

    item = _Pending(hosts, done, complete, client, where, spent)
    if done:
        _resolver.submit(item)
    else:
        item.resolve()


# -- forward hooks ----------------------------------------------------------------


class MonitorHandle:
    """What :func:`monitor_module` returns; ``remove()`` detaches the hooks."""

    def __init__(self, handles: List[Any]) -> None:
        self._handles = handles

    def remove(self) -> None:
        """Detaches the hooks; the module is as it was before."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Waits until the calls already made are logged (see :func:`flush`)."""
        return flush(timeout)


def monitor_module(
    module: Any,
    model_name: str,
    client: Optional[VDTClient] = None,
    model_version: Optional[str] = None,
    log_rows: bool = False,
    row_sample_rate: float = 0.01,
    max_rows_per_call: int = 100,
    summary_budget: Optional[float] = SUMMARY_BUDGET,
) -> MonitorHandle:
    """Logs each forward call of ``module`` as a ModelCall.

    Uses forward pre- and post-hooks (nothing is wrapped, so ``state_dict()``,
    pickling and ``torch.save`` are unaffected). The forward's output is
    returned unchanged; an internal failure is counted, never raised. Nothing
    on the caller's path waits for the device: summaries of CUDA tensors are
    logged once their values arrive, by a later call or a background thread
    (see :func:`flush`). ``latency_ms`` is the GPU time between CUDA events for a
    CUDA forward (``input_data["host_latency_ms"]`` keeps the CPU time and the
    ``latency`` tag says ``cuda_event``), else the wall time of the call.

    The hooks never enter a compiled graph. Recommended: monitor the module
    ``torch.compile`` returned. Monitoring before compiling also works, but
    torch.compile does not guard on hooks: a torch.nn class compiled directly
    (``Sequential``...) reuses code compiled for another instance of it, and
    a monitored submodule of a compiled parent breaks the parent's graph.
    With ``log_rows`` (opt-in), a sample of rows of the first input tensor and
    of the output tensor is also logged row by row through the bulk path
    (NaN and infinities as ``None``).

    Every call is logged with its latency and the shape and dtype of each
    tensor. The values summary (min, max, mean, non-finite count: a few
    reductions launched on the caller's thread) is bounded by
    ``summary_budget``: the share of the caller's time it may take, measured
    as it runs. A forward that lasts milliseconds is summarised every time; a
    tiny one that lasts 100 us is summarised about once in every few calls,
    and its other calls say ``tags["summary"] == "skipped"``. ``None``
    summarises every call whatever it costs.

    Args:
        module: the ``torch.nn.Module`` to monitor (the compiled one, if any).
        model_name: the ``model_name`` of the logged calls.
        client: the client to log with (default: the global one).
        model_version: the ``model_version`` of the logged calls.
        log_rows: also log a sample of rows (see above).
        row_sample_rate: the share of rows logged with ``log_rows``.
        max_rows_per_call: the most rows logged per forward with ``log_rows``.
        summary_budget: the share of the caller's time (0 to 1) that values
            summaries may take; ``None`` for every call, ``0`` for none.

    Returns:
        A handle whose ``remove()`` detaches the hooks.
    """
    local = threading.local()
    # Seconds of summary work the caller may still spend: the budget's share
    # of the time between calls is credited, each summary's cost debited.
    budget = {"credit": 0.0, "last": 0.0}
    if summary_budget is not None and not 0 <= summary_budget <= 1:
        raise ValueError("summary_budget must be between 0 and 1, or None")

    def summarise_now(now: float) -> bool:
        if summary_budget is None:
            return True
        last, budget["last"] = budget["last"], now
        credit = budget["credit"]
        if last:
            credit = min(credit + summary_budget * (now - last), MAX_CREDIT_S)
            budget["credit"] = credit
        return summary_budget > 0 and credit >= 0

    def stack() -> List[Tuple[Any, ...]]:
        starts: Optional[List[Tuple[Any, ...]]] = getattr(local, "starts", None)
        if starts is None:
            starts = local.starts = []
        return starts

    def own_start(starts: List[Tuple[Any, ...]], inputs: Any) -> Tuple[Any, ...]:
        # The entry this call's before() pushed: the newest for its inputs
        # (torch hands both hooks the same tuple). Entries above it are of
        # calls inside this one that raised (no after()): dropped, else this
        # call would take their start, id and sampling. None of its inputs
        # (a later pre-hook replaced them): the newest.
        key = id(inputs)
        for at in range(len(starts) - 1, -1, -1):
            if starts[at][0] == key:
                entry = starts[at]
                del starts[at:]
                return entry
        return starts.pop()

    # The senders of this module's calls, by (summarised, CUDA latency): the
    # tags differ, the rest is shared and encoded once per client.
    senders: Dict[Tuple[bool, bool], CallSender] = {}

    def sender(target: VDTClient, summarised: bool, cuda: bool, mod: Any) -> Any:
        found = senders.get((summarised, cuda))
        if found is None or found.client is not target:
            tags = {"framework": "torch", "module": type(mod).__name__}
            if not summarised:
                tags["summary"] = "skipped"
            if cuda:
                tags["latency"] = "cuda_event"
            found = CallSender(target, model_name, model_version, tags)
            senders[summarised, cuda] = found
        return found

    def before(mod: Any, inputs: Any) -> None:
        try:
            first = _first_tensor(inputs)
            device = first.device if first is not None else None
            backend = _backend(device)
            if backend is None:  # CPU inputs, maybe a model on a GPU
                weight = next(mod.parameters(), None)
                device = weight.device if weight is not None else None
                backend = _backend(device)
            starts = stack()
            if len(starts) >= MAX_NESTING:  # forwards that raised never popped
                del starts[0]
            if backend is not None and backend.capturing():
                # Inside a CUDA graph capture: a query or a wait would break
                # it, and a captured value is read by nobody. Not monitored.
                starts.append((id(inputs), _CAPTURED, None, None, None, None, None))
                return
            # Sampling is decided first: a call it drops costs no more. With
            # log_rows, every call's rows are sampled on their own (the bulk
            # path): the call is then sampled when sent.
            target = resolve(client)
            drawn = sender(target, True, False, mod).draw(not log_rows)
            if drawn is None:
                starts.append((id(inputs), _CAPTURED, None, None, None, None, None))
                return
            event = backend.event(device, True) if backend is not None else None
            starts.append(
                (id(inputs), time.perf_counter(), event, backend, device, target, drawn)
            )
        except Exception as exc:  # never break the forward pass
            report(client, "pytorch.forward", exc)

    def after(mod: Any, inputs: Any, output: Any) -> None:
        try:
            starts = stack()
            started: Optional[float] = None
            start_event: Any = None
            end_event: Any = None
            target: Optional[VDTClient] = None
            drawn: Any = None
            if starts:
                _, started, start_event, backend, device, target, drawn = own_start(
                    starts, inputs
                )
                if started is _CAPTURED:
                    return
            if target is None:  # an after() without its before()
                target = resolve(client)
                drawn = sender(target, True, False, mod).draw(not log_rows)
                if drawn is None:
                    return
            now = time.perf_counter()
            host_ms = (now - (started or now)) * 1e3
            # No torch.no_grad() (microseconds a call): the summaries read
            # detached tensors, so they never join autograd.
            if start_event is not None:  # on the stream the start was on
                end_event = backend.event(device, True)
            first_call = not budget["last"]  # 0.0 before the first call
            summarised = summarise_now(now)
            summaries = _Summaries(values=summarised)
            input_data: Dict[str, Any] = {
                "batch_size": _batch(inputs),
                "inputs": summaries.add(inputs),
            }
            prediction = summaries.add(output)
            extra: List[Any] = []
            first = _first_tensor(inputs) if log_rows else None
            if first is not None and isinstance(output, torch.Tensor):
                count = _batch(inputs) or 0
                picked = sample_rows(count, row_sample_rate, max_rows_per_call)
                if picked:
                    index = torch.tensor(picked)
                    extra = [
                        _take(first, index),
                        _take(output, index),
                    ]
            send = sender(target, summarised, end_event is not None, mod).send
            plain = summaries.plain
            if end_event is not None:
                input_data["host_latency_ms"] = host_ms

            def finish(values: List[float], rows: List[Any]) -> None:
                summaries.fill(values)
                latency = host_ms
                if end_event is not None:
                    latency = float(start_event.elapsed_time(end_event))
                send(drawn, input_data, prediction, latency, plain)
                if rows:
                    rows_in, rows_out = rows
                    target.log_model_calls(
                        [
                            {"input_data": _finite(i), "prediction": _finite(o)}
                            for i, o in zip(rows_in, rows_out)
                        ],
                        model_name=model_name,
                        model_version=model_version,
                        tags={"framework": "torch", "row": "sampled"},
                    )

            events: List[Tuple[Any, Any, bool, Any]] = []
            if end_event is not None:
                events = [
                    (backend, device, True, start_event),
                    (backend, device, True, end_event),
                ]
            _deliver(
                summaries.scalars,
                extra,
                finish,
                client,
                "pytorch.forward",
                end_event,
                events,
            )
            if summarised and summary_budget is not None and not first_call:
                # The first call is free: its cost is mostly one-time setup.
                cost = time.perf_counter() - now
                budget["credit"] -= min(cost, MAX_CREDIT_S)
        except Exception as exc:  # never break the forward pass
            report(client, "pytorch.forward", exc)

    return MonitorHandle(
        [
            module.register_forward_pre_hook(_outside_graphs(before)),
            module.register_forward_hook(_outside_graphs(after)),
        ]
    )


def _outside_graphs(body: Callable[..., None]) -> Callable[..., None]:
    """A hook that runs ``body`` eagerly, never inside a compiled graph.

    torch.compile calls the hooks of the module it compiles from eager code,
    but would still trace each hook as a frame of its own: the hook's frame is
    marked to run as is (no graph, no graph break, no recompiles), whether it
    was registered before or after compiling. Where a tracer inlines the hook
    instead, a strict ``torch.export`` skips it (the exported program has no
    hooks) and a compiled parent of a monitored submodule breaks its graph
    there (``body`` is ``torch.compiler.disable``d).
    """
    eager = _compiler_disable(body)

    def hook(*args: Any) -> None:
        if _is_exporting():  # pragma: no cover - only traced, never run
            return
        if _is_compiling() or _compile_callback() is not None:
            eager(*args)  # inside torch.compile's reach
        else:
            body(*args)  # plain eager code: no need to pay for the guard

    frames = importlib.import_module("torch._dynamo.eval_frame")
    skip = getattr(frames, "skip_code", None)
    if skip is None:  # pragma: no cover - an older torch: the body is the hook
        return eager
    skip(hook.__code__)
    return hook


def _finite(value: Any) -> Any:
    """A row's values with NaN and infinities as None (JSON has neither)."""
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _take(tensor: Any, index: Any) -> Any:
    """Rows ``index`` (a CPU tensor) of ``tensor``, gathered on its device."""
    backend = _backend(tensor.device)
    if backend is not None:
        index = backend.upload(index, tensor.device)
    return tensor.detach().index_select(0, index)


# -- training metrics -----------------------------------------------------------


def log_training_step(
    step: int,
    loss: Any,
    client: Optional[VDTClient] = None,
    run_id: Optional[str] = None,
    **metrics: Any,
) -> None:
    """Logs ``loss`` and any other ``metrics`` (tensors or numbers) at ``step``.

    Device tensors are not read until the device is done with them: their
    values are copied without a synchronisation and logged once they arrive,
    by a later call or a background thread (see :func:`flush`). Non-finite
    values are skipped (and counted as an integration error) rather than
    failing the training loop.
    """
    try:
        numbers: Dict[str, Any] = {}
        names: List[str] = []
        scalars: List[Any] = []
        for name, value in {"loss": loss, **metrics}.items():
            if isinstance(value, torch.Tensor):
                names.append(name)
                scalars.append(value.detach().reshape(()))
            else:
                numbers[name] = value

        def finish(values: List[float], rows: List[Any]) -> None:
            resolved = dict(numbers)
            resolved.update(zip(names, values))
            finite: Dict[str, float] = {}
            for name, value in resolved.items():
                number = float(value)
                if math.isfinite(number):
                    finite[name] = number
                else:
                    report(
                        client,
                        "pytorch.log_training_step",
                        ValueError(f"{name} is not finite at step {step}"),
                    )
            if finite:
                resolve(client).log_metrics(
                    finite, step=step, run_id=run_id, tags={"framework": "torch"}
                )

        _deliver(scalars, [], finish, client, "pytorch.log_training_step")
    except Exception as exc:
        report(client, "pytorch.log_training_step", exc)


def _lightning_callback_base() -> Any:
    import importlib

    for module in ("lightning.pytorch.callbacks", "pytorch_lightning.callbacks"):
        try:
            return importlib.import_module(module).Callback
        except ImportError:
            continue
    return None


_LightningBase = _lightning_callback_base()

if _LightningBase is not None:  # defined only where lightning is installed

    class VDTLightningCallback(_LightningBase):  # type: ignore
        """Logs Lightning's logged metrics after each training batch and epoch.

        Metric tensors stay on their device: they are read by a background
        thread, never on the training loop's (see :func:`log_training_step`).
        """

        def __init__(
            self,
            client: Optional[VDTClient] = None,
            run_id: Optional[str] = None,
            log_every_n_steps: int = 50,
        ) -> None:
            super().__init__()
            self.client = client
            self.run_id = run_id
            self.log_every_n_steps = log_every_n_steps

        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            step = int(trainer.global_step)
            if self.log_every_n_steps and step % self.log_every_n_steps == 0:
                self._log(trainer, step)

        def on_train_epoch_end(self, trainer: Any, *args: Any) -> None:
            self._log(trainer, int(trainer.global_step))

        def _log(self, trainer: Any, step: int) -> None:
            metrics = dict(trainer.callback_metrics)
            loss = metrics.pop("loss", metrics.pop("train_loss", None))
            if loss is not None:
                log_training_step(step, loss, self.client, self.run_id, **metrics)
