"""PyTorch integration against real torch on the CPU."""

import io
import os
import pickle
import threading
import time
from typing import Any, Callable, Dict, Iterator, List

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.overrides import TorchFunctionMode

from vdt_ai import Metric, ModelCall, ValidationError, VDTClient
from vdt_ai._call_sender import CallSender
from vdt_ai.integrations import pytorch
from vdt_ai.integrations.pytorch import log_training_step, monitor_module
from vdt_ai.testing import MemoryTransport

from .._examples import examples


def model() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    )


@pytest.fixture
def client(memory: MemoryTransport) -> VDTClient:
    return VDTClient(transport=memory)


def test_forward_calls_are_logged_and_outputs_unchanged(
    client: VDTClient, memory: MemoryTransport
) -> None:
    net = model()
    x = torch.randn(16, 4)
    expected = net(x)
    handle = monitor_module(net, "mlp", client, model_version="2")
    out = net(x)
    torch.testing.assert_close(out, expected)
    (call,) = memory.events_of(ModelCall)
    assert call.model_name == "mlp" and call.model_version == "2"
    assert call.input_data["batch_size"] == 16
    assert call.input_data["inputs"][0]["shape"] == [16, 4]
    assert call.prediction["shape"] == [16, 2] and call.prediction["dtype"] == "float32"
    assert call.latency_ms is not None and call.latency_ms >= 0
    assert call.tags == {"framework": "torch", "module": "Sequential"}
    handle.remove()
    net(x)
    assert len(memory.events_of(ModelCall)) == 1  # detached


def test_state_dict_pickle_and_save_unaffected(
    client: VDTClient, tmp_path: Any
) -> None:
    net = model()
    handle = monitor_module(net, "mlp", client)
    state = net.state_dict()
    assert set(state) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    fresh = model()
    fresh.load_state_dict(torch.load(buffer))
    x = torch.randn(2, 4)
    torch.testing.assert_close(fresh(x), net(x))
    handle.remove()
    assert pickle.loads(pickle.dumps(net)) is not None


def test_internal_failure_leaves_the_output_unchanged(
    client: VDTClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = model()
    x = torch.randn(3, 4)
    expected = net(x)
    monkeypatch.setattr(CallSender, "send", lambda *a, **k: 1 / 0)
    handle = monitor_module(net, "mlp", client)
    torch.testing.assert_close(net(x), expected)
    assert client.stats().integration_errors == 1
    # Failing before anything reaches the device, in both hooks:
    monkeypatch.setattr(pytorch, "_first_tensor", lambda value: 1 / 0)
    torch.testing.assert_close(net(x), expected)
    assert client.stats().integration_errors == 3
    handle.remove()
    log_training_step(1, torch.zeros(2), client)  # not a scalar
    assert client.stats().integration_errors == 4


def test_training_steps_become_metrics(
    client: VDTClient, memory: MemoryTransport
) -> None:
    net = model()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    for step in range(3):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        log_training_step(
            step, loss, client, run_id="r1", lr=0.1, grad=torch.tensor(0.5)
        )
    metrics = memory.events_of(Metric)
    assert {m.name for m in metrics} == {"loss", "lr", "grad"}
    losses = [m for m in metrics if m.name == "loss"]
    assert [m.step for m in losses] == [0, 1, 2] and all(
        m.run_id == "r1" for m in losses
    )
    log_training_step(3, torch.tensor(float("nan")), client)
    assert client.stats().integration_errors == 1  # skipped, not raised


# Lightning's own code trips torch's pytree deprecations and its tips.
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_lightning_callback_logs_trainer_metrics(
    client: VDTClient, memory: MemoryTransport, tmp_path: Any
) -> None:
    import lightning.pytorch as pl

    from vdt_ai.integrations.pytorch import VDTLightningCallback

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = model()

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.TensorDataset(
        torch.randn(32, 4), torch.randint(0, 2, (32,))
    )
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=[VDTLightningCallback(client, run_id="pl-1", log_every_n_steps=2)],
    )
    trainer.fit(Module(), loader)
    losses = [m for m in memory.events_of(Metric) if m.name == "loss"]
    assert losses and all(m.run_id == "pl-1" for m in losses)
    assert max(m.step for m in losses if m.step is not None) == 8  # 4 batches x 2


def test_per_row_logging_is_opt_in_and_sampled(
    client: VDTClient, memory: MemoryTransport
) -> None:
    net = model()
    x = torch.randn(50, 4)
    handle = monitor_module(net, "mlp", client, log_rows=True, row_sample_rate=0.1)
    with torch.no_grad():
        out = net(x)
    handle.remove()
    rows = [c for c in memory.events_of(ModelCall) if c.tags.get("row") == "sampled"]
    assert len(rows) == 5
    for row in rows:
        index = int((x - torch.tensor(row.input_data)).abs().sum(dim=1).argmin())
        torch.testing.assert_close(torch.tensor(row.prediction), out[index])


# -- GPU-safe hooks, proven on the CPU ------------------------------------------

# Operations that make the host wait for a CUDA device's values.
SYNCING = {
    "item",
    "cpu",
    "tolist",
    "numpy",
    "__bool__",
    "__float__",
    "__int__",
    "__index__",
    "nonzero",
    "masked_select",
    "any",
    "all",
}


class FakeCuda(TorchFunctionMode):
    """Makes every tensor claim to be on ``cuda:0`` and records each operation
    that would synchronise with a real device."""

    def __init__(self, claims: Callable[[Any], bool] = lambda tensor: True) -> None:
        super().__init__()
        self.syncs: List[str] = []
        self.claims = claims

    def __torch_function__(
        self, func: Any, types: Any, args: Any = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        owner = getattr(getattr(func, "__self__", None), "__name__", None)
        if name == "__get__" and owner in ("device", "is_cuda"):
            if self.claims(args[0]):
                return torch.device("cuda", 0) if owner == "device" else True
        if name in SYNCING and (not args or self._claimed(args[0])):
            self.syncs.append(name)
        if name == "__getitem__" and _has_bool_index(args[1]):
            self.syncs.append("boolean-mask indexing")
        if name in ("to", "copy_") and not kwargs.get("non_blocking", False):
            target = args[1] if len(args) > 1 else kwargs.get("device")
            if isinstance(target, (str, torch.device)) and "cpu" in str(target):
                self.syncs.append(f"blocking {name} to the CPU")
        return func(*args, **kwargs)

    def _claimed(self, value: Any) -> bool:
        return not isinstance(value, torch.Tensor) or bool(self.claims(value))


def _has_bool_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


class FakeEvent:
    """A CUDA event stand-in whose ``synchronize`` waits for the test."""

    def __init__(self, gate: threading.Event, timing: bool) -> None:
        self.gate = gate
        self.at = time.perf_counter()
        self.timing = timing

    def synchronize(self) -> None:
        assert self.gate.wait(10)

    def query(self) -> bool:
        return self.gate.is_set()

    def elapsed_time(self, end: "FakeEvent") -> float:
        assert self.timing and end.timing
        return 42.0


class FakeBackend:
    def __init__(self) -> None:
        self.gate = threading.Event()
        self.events: List[FakeEvent] = []
        self.hosts: List[Any] = []
        self.uploads = 0
        self.capture = False  # a CUDA graph capture in progress

    def event(self, device: Any, timing: bool) -> FakeEvent:
        self.events.append(FakeEvent(self.gate, timing))
        return self.events[-1]

    def host_buffer(self, like: Any) -> Any:
        self.hosts.append(torch.empty(like.shape, dtype=like.dtype))
        return self.hosts[-1]

    def is_host(self, tensor: Any) -> bool:
        """A host buffer: on the CPU, read once its event says done."""
        return any(tensor is host for host in self.hosts)

    def upload(self, tensor: Any, device: Any) -> Any:
        self.uploads += 1
        return tensor

    def capturing(self) -> bool:
        return self.capture


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBackend]:
    backend = FakeBackend()
    monkeypatch.setitem(pytorch._BACKENDS, "cuda", backend)
    yield backend
    backend.gate.set()
    assert pytorch.flush(10)


def test_cuda_forward_issues_no_host_sync_and_resolves_later(
    client: VDTClient, memory: MemoryTransport, fake_cuda: FakeBackend
) -> None:
    net = model()
    x = torch.randn(64, 4)
    x[:, 0] = float("nan")
    expected = net(x)
    monitor_module(net, "mlp", client, log_rows=True, row_sample_rate=0.1)
    spy = FakeCuda()
    with spy, torch.inference_mode():
        out = net(x)
    assert spy.syncs == []
    torch.testing.assert_close(out, expected, equal_nan=True)
    assert memory.events_of(ModelCall) == []  # waiting for the "device"
    assert not pytorch.flush(0.05)
    fake_cuda.gate.set()
    assert pytorch.flush(10)
    call, *rows = memory.events_of(ModelCall)
    assert call.latency_ms == 42.0 and call.tags["latency"] == "cuda_event"
    assert call.input_data["host_latency_ms"] >= 0
    summary = call.input_data["inputs"][0]
    assert summary["non_finite"] == 64 and "mean" not in summary
    assert call.prediction["non_finite"] == 128
    assert len(rows) in (6, 7) and fake_cuda.uploads == 2  # 10% of 64 rows
    assert all(row.input_data[0] is None for row in rows)  # NaN, as JSON has it
    assert [e.timing for e in fake_cuda.events] == [True, True, False]
    assert client.stats().integration_errors == 0


def test_training_step_tensors_are_not_read_on_the_caller(
    client: VDTClient, memory: MemoryTransport, fake_cuda: FakeBackend
) -> None:
    spy = FakeCuda()
    with spy:
        log_training_step(
            7,
            torch.tensor(0.25),
            client,
            run_id="r",
            acc=torch.tensor([0.5]),
            bad=torch.tensor(float("inf")),
            lr=0.1,
        )
    assert spy.syncs == [] and memory.events_of(Metric) == []
    fake_cuda.gate.set()
    assert pytorch.flush(10)
    values = {m.name: m.value for m in memory.events_of(Metric)}
    assert values == {"loss": 0.25, "acc": 0.5, "lr": 0.1}
    assert client.stats().integration_errors == 1  # bad: skipped and counted


def test_summaries_match_numpy(client: VDTClient, memory: MemoryTransport) -> None:
    torch.manual_seed(1)
    values = {
        "f32": torch.randn(100, 7),
        "f64": torch.randn(5, dtype=torch.float64) * 1e6,
        "i64": torch.randint(-(2**40), 2**40, (300,)),
        "flag": torch.rand(40) > 0.5,
        "big_bf16": (torch.randn(300_000) * 3).to(torch.bfloat16),
        "wide_f16": torch.randn(600, 300, dtype=torch.float16).t(),
        "empty": torch.empty(0, 3),
        "complex": torch.randn(3, dtype=torch.complex64),
    }

    net = torch.nn.Identity()
    monitor_module(net, "id", client)
    net(values)
    (call,) = memory.events_of(ModelCall)
    for name, tensor in values.items():
        got = call.prediction[name]
        assert got["shape"] == list(tensor.shape)
        assert got["dtype"] == str(tensor.dtype).replace("torch.", "")
        if name in ("empty", "complex"):
            assert set(got) == {"shape", "dtype"}
            continue
        array = tensor.double().numpy()
        assert got["non_finite"] == 0
        assert got["min"] == array.min() and got["max"] == array.max()
        assert got["mean"] == pytest.approx(array.mean(), rel=1e-5, abs=1e-5)
    if hasattr(torch, "float8_e4m3fn"):  # no aminmax kernel: shape and dtype only
        net(torch.randn(3).to(torch.float8_e4m3fn))
        assert set(memory.events_of(ModelCall)[1].prediction) == {"shape", "dtype"}
    assert client.stats().integration_errors == 0


def test_non_finite_values_counted_exactly_or_estimated(
    client: VDTClient, memory: MemoryTransport
) -> None:
    small = torch.randn(1000)
    small[:10] = float("nan")
    small[10:13] = float("inf")
    big = torch.zeros(400, 1000)
    big[::10] = float("nan")  # 10% of the rows
    only_inf = torch.tensor([1.0, float("inf")])
    net = torch.nn.Identity()
    monitor_module(net, "id", client)
    net([small, big, big.t(), only_inf])
    exact, estimated, strided, inf = memory.events_of(ModelCall)[0].prediction
    assert exact["non_finite"] == 13 and "min" not in exact
    assert "non_finite_estimated" not in exact
    for got in (estimated, strided):
        assert got["non_finite_estimated"] is True
        assert got["non_finite"] == pytest.approx(40_000, rel=0.1)
    assert inf == {"shape": [2], "dtype": "float32", "non_finite": 1}


def _peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")  # pragma: no cover


@pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux procfs"
)
@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "strided"])
def test_extra_memory_is_bounded_for_a_large_bf16_tensor(
    client: VDTClient, memory: MemoryTransport, strided: bool
) -> None:
    big = torch.empty(32 * 2**20, dtype=torch.bfloat16).uniform_()  # 64 MiB
    big[123] = float("nan")
    if strided:  # as torch.compile pads outputs: aminmax would copy this one
        big = big.view(4096, -1)[:, :-8]
    net = torch.nn.Identity()
    monitor_module(net, "id", client, summary_budget=None)
    net(big)  # warm up the allocator and the code
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets the peak RSS
    before = _peak_rss_mib()
    net(big)
    extra = _peak_rss_mib() - before
    assert extra <= 1 + 0.01 * 64, f"{extra:.2f} MiB"
    summary = memory.events_of(ModelCall)[-1].prediction
    assert summary["non_finite"] >= 1 and summary["non_finite_estimated"] is True


def test_cpu_inputs_to_a_gpu_model_are_summarised_per_device(
    client: VDTClient, memory: MemoryTransport, fake_cuda: FakeBackend
) -> None:
    class OnGpu(torch.nn.Module):  # float64 stands for "on the GPU" here
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 2).double()

        def forward(self, x: Any) -> Any:
            return self.linear(x.double())

    net = OnGpu()
    monitor_module(net, "gpu", client)
    x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    spy = FakeCuda(claims=lambda t: t.dtype == torch.float64)
    with spy, torch.inference_mode():
        out = net(x)
        log_training_step(1, out.sum(), client, cpu=x.sum())
    assert spy.syncs == [] and memory.events_of(ModelCall) == []
    fake_cuda.gate.set()
    assert pytorch.flush(10)
    (call,) = memory.events_of(ModelCall)
    assert call.tags["latency"] == "cuda_event"  # timed on the model's device
    assert call.input_data["inputs"][0]["max"] == 11.0
    assert call.prediction["mean"] == pytest.approx(float(out.mean()))
    values = {m.name: m.value for m in memory.events_of(Metric)}
    assert values == pytest.approx({"loss": float(out.sum()), "cpu": 66.0})


def test_a_full_queue_makes_the_caller_resolve_the_oldest(
    client: VDTClient,
    memory: MemoryTransport,
    fake_cuda: FakeBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pytorch, "MAX_PENDING", 1)
    threading.Timer(0.3, fake_cuda.gate.set).start()  # the "device" is slow
    with FakeCuda():
        for step in range(20):
            log_training_step(step, torch.tensor(float(step)), client)
    assert pytorch.flush(10)
    steps = sorted(m.step for m in memory.events_of(Metric) if m.step is not None)
    assert steps == list(range(20))
    handle = monitor_module(model(), "m", client)
    assert handle.flush(1)


def test_calls_without_tensors_and_edge_paths(
    client: VDTClient, memory: MemoryTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Echo(torch.nn.Module):
        def forward(self, text: str) -> str:
            return text.upper()

    echo = Echo()
    monitor_module(echo, "echo", client, log_rows=True)
    assert echo("hi") == "HI"
    net = model()
    monitor_module(net, "mlp", client, log_rows=True, row_sample_rate=0.0)
    net(torch.randn(4, 4))
    first, second = memory.events_of(ModelCall)
    assert (
        first.prediction == {"type": "str"} and first.input_data["batch_size"] is None
    )
    assert second.prediction["shape"] == [4, 2]
    log_training_step(2, 0.5, client, acc=1.0)  # numbers only
    assert {m.name for m in memory.events_of(Metric)} == {"loss", "acc"}
    from vdt_ai.integrations.pytorch import VDTLightningCallback

    callback = VDTLightningCallback(client)
    callback._log(type("Trainer", (), {"callback_metrics": {"acc": 1.0}})(), 3)
    assert len(memory.events_of(Metric)) == 2  # no loss: nothing logged


def test_the_resolver_starts_again_after_a_fork(
    client: VDTClient,
    memory: MemoryTransport,
    fake_cuda: FakeBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_cuda.gate.set()
    with FakeCuda():
        log_training_step(1, torch.tensor(1.0), client)
    assert pytorch.flush(10)
    monkeypatch.setattr(pytorch._resolver, "_pid", -1)  # as a forked child sees it
    with FakeCuda():
        log_training_step(2, torch.tensor(2.0), client)
    assert pytorch.flush(10)
    assert [m.step for m in memory.events_of(Metric)] == [1, 2]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_fork_while_another_thread_holds_the_resolver_lock(
    client: VDTClient, memory: MemoryTransport, fake_cuda: FakeBackend
) -> None:
    fake_cuda.gate.set()
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with pytorch._resolver._cond:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: its copy of the lock would stay held forever
        code = 1
        try:
            log_training_step(3, torch.tensor(3.0), client)
            if pytorch.flush(5) and [m.step for m in memory.events_of(Metric)] == [3]:
                code = 0
        finally:
            os._exit(code)
    release.set()
    holder.join()
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not done:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert done and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_forwards_that_raise_leave_no_growing_state(client: VDTClient) -> None:
    net = model()
    monitor_module(net, "mlp", client)
    for _ in range(pytorch.MAX_NESTING + 5):
        with pytest.raises(RuntimeError):
            net(torch.randn(2, 3))  # wrong width: the forward raises
    net(torch.randn(2, 4))
    assert client.stats().integration_errors == 0


# -- torch.compile and torch.export ---------------------------------------------


def _explain(net: Any, x: Any, backend: str) -> Any:
    import torch._dynamo as dynamo

    dynamo.reset()
    compiled = torch.compile(net, backend=backend)
    explained = dynamo.explain(compiled)(x)
    return explained.graph_count, explained.graph_break_count


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_compiled_monitored_module_has_the_bare_graphs(
    client: VDTClient, memory: MemoryTransport, backend: str
) -> None:
    x = torch.randn(8, 4)
    bare = _explain(model(), x, backend)
    monitored = model()
    monitor_module(monitored, "mlp", client)
    assert _explain(monitored, x, backend) == bare == (1, 0)


@pytest.mark.parametrize("order", ["before", "after"])
def test_compiled_calls_are_logged_without_recompiles(
    client: VDTClient, memory: MemoryTransport, order: str
) -> None:
    import torch._dynamo as dynamo

    graphs: List[Any] = []

    def counting(gm: Any, example_inputs: Any) -> Any:
        graphs.append(gm)
        return gm.forward

    dynamo.reset()
    net = model()
    if order == "before":
        monitor_module(net, "mlp", client)
    compiled: Any = torch.compile(net, backend=counting)
    if order == "after":
        monitor_module(compiled, "mlp", client)
    bare = model()  # the same weights (seeded), no hooks
    for _ in range(3):  # new values each call: the same graph serves them all
        x = torch.randn(8, 4)
        torch.testing.assert_close(compiled(x), bare(x))
    assert len(graphs) == 1
    calls = memory.events_of(ModelCall)
    assert len(calls) == 3 and all(c.prediction["shape"] == [8, 2] for c in calls)


def test_strict_export_leaves_the_hooks_out(
    client: VDTClient, memory: MemoryTransport
) -> None:
    net = model()
    monitor_module(net, "mlp", client)
    x = torch.randn(2, 4)
    exported = torch.export.export(net, (x,), strict=True).module()
    assert memory.events_of(ModelCall) == []
    torch.testing.assert_close(exported(x), net(x))
    assert len(memory.events_of(ModelCall)) == 1  # the eager call only
    monitor_module(exported, "exported", client)  # monitor the exported module
    exported(x)
    assert [c.model_name for c in memory.events_of(ModelCall)] == ["mlp", "exported"]


def test_gpu_overhead_bench_runs_its_cpu_smoke_mode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import runpy

    script = os.path.join(os.path.dirname(__file__), "../../bench/gpu_overhead.py")
    argv = ["gpu_overhead.py", "--cpu-smoke", "--models", "mlp,lm_head"]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(script, run_name="__main__")
    assert exited.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines[2:]]
    assert [row[:2] for row in rows] == [
        ["mlp", "eager"],
        ["mlp", "default"],
        ["lm_head", "eager"],
        ["lm_head", "default"],
    ]
    assert all(row[-1] == "0" for row in rows)  # no integration errors
    assert [row[-6:-4] for row in rows if row[1] == "default"] == [["1/0", "1/0"]] * 2
    monkeypatch.setattr("sys.argv", ["gpu_overhead.py"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(script, run_name="__main__")
    assert exited.value.code == 0
    assert "CUDA is not available" in capsys.readouterr().out


def test_monitoring_the_compiled_module_survives_shared_compiled_code(
    client: VDTClient, memory: MemoryTransport
) -> None:
    # torch.compile shares the code it made for a torch.nn class between its
    # instances without guarding on hooks: hooks on the compiled wrapper (the
    # recommended order) still run.
    import torch._dynamo as dynamo

    dynamo.reset()
    x = torch.randn(8, 4)
    first: Any = torch.compile(model(), backend="eager")
    first(x)  # a bare one compiled and run first
    compiled: Any = torch.compile(model(), backend="eager")
    monitor_module(compiled, "mlp", client)
    compiled(x)
    compiled(torch.randn(8, 4))
    assert len(memory.events_of(ModelCall)) == 2


def test_the_cuda_backend_calls_torch_cuda_as_its_signatures_allow(
    client: VDTClient, memory: MemoryTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No GPU here: torch.cuda's pieces are stood in for, each call checked
    # against the real signature, and the whole hook path runs through them.
    import inspect

    real_event = inspect.signature(torch.cuda.Event.__new__)
    stream = object()

    made: List[Any] = []

    class Event:
        def __init__(self, **kwargs: Any) -> None:
            real_event.bind(torch.cuda.Event, **kwargs)
            self.kwargs = kwargs
            made.append(self)

        def record(self, on: Any = None) -> None:
            assert on is stream

        def synchronize(self) -> None:
            assert self.kwargs == {"enable_timing": False, "blocking": True}

        def query(self) -> bool:
            return True  # the "device" is always done

        def elapsed_time(self, end: "Event") -> float:
            assert self.kwargs["enable_timing"] and end.kwargs["enable_timing"]
            return 3.5

    def current_stream(device: Any = None) -> Any:
        assert device == torch.device("cuda", 0)
        looked_up.append(device)
        return stream

    looked_up: List[Any] = []

    empty = torch.empty

    def pinned_empty(*args: Any, pin_memory: bool = False, **kwargs: Any) -> Any:
        pinned.append(pin_memory)
        return empty(*args, **kwargs)

    pinned: List[bool] = []

    def is_current_stream_capturing() -> bool:
        captures.append(True)
        return False

    captures: List[bool] = []

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "current_stream", current_stream)
    assert not inspect.signature(torch.cuda.is_current_stream_capturing).parameters
    # The hook calls the C function behind it directly (same signature).
    monkeypatch.setattr(pytorch, "_is_capturing", is_current_stream_capturing)
    # A fresh backend (free events and streams of its own); the current
    # stream's id as torch's C function gives it.
    monkeypatch.setitem(pytorch._BACKENDS, "cuda", pytorch._CudaBackend())
    monkeypatch.setattr(pytorch, "_current_stream_key", lambda index: (7, index, 1))
    net = model()
    monkeypatch.setattr(torch, "empty", pinned_empty)
    monitor_module(net, "mlp", client, summary_budget=None)
    spy = FakeCuda()
    with spy:
        net(torch.randn(4, 4))
    assert spy.syncs == [] and pytorch.flush(10)
    (call,) = memory.events_of(ModelCall)
    assert call.latency_ms == 3.5 and call.prediction["shape"] == [4, 2]
    assert pinned == [True, True]  # a host buffer per dtype: values, counts
    assert len(made) == 3  # start and end (timed), and the copies' done event
    assert captures == [True]  # asked once, by the pre-hook
    with spy:
        net(torch.randn(4, 4))
    assert spy.syncs == [] and pytorch.flush(10)
    assert len(made) == 3 and len(memory.events_of(ModelCall)) == 2  # reused
    assert len(looked_up) == 1  # the stream object was built once
    monkeypatch.setattr(pytorch, "_current_stream_key", pytorch._no_stream_key)
    with spy:
        net(torch.randn(4, 4))
    assert pytorch.flush(10) and len(looked_up) == 4  # the public way, each time


def test_no_reference_to_the_output_is_held_while_pending(
    client: VDTClient, memory: MemoryTransport, fake_cuda: FakeBackend
) -> None:
    # Under CUDA graphs the output lives in the graph's static buffers, which
    # the next replay overwrites: only the small summary copy may be kept.
    import gc
    import weakref

    net = model()
    monitor_module(net, "mlp", client, log_rows=True, row_sample_rate=1.0)
    with FakeCuda(), torch.inference_mode():
        out = net(torch.randn(8, 4))
    gone = weakref.ref(out)
    del out
    gc.collect()
    assert gone() is None and memory.events_of(ModelCall) == []  # still pending
    fake_cuda.gate.set()
    assert pytorch.flush(10)
    assert len(memory.events_of(ModelCall)) == 9  # the call and its 8 rows


def test_torch_tensors_are_embeddings(memory: MemoryTransport) -> None:
    # A CPU tensor (float32, float64, float16, bfloat16, one that requires
    # grad) is read through tolist(); values arrive as float32.
    client = VDTClient(transport=memory)
    vector = torch.tensor([0.25, -1.5, 3.0])
    client.log_model_call("m", {}, embedding=vector, embedding_name="image")
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        client.log_model_call("m", {}, embedding=vector.to(dtype))
    client.log_model_call("m", {}, embedding=vector.clone().requires_grad_())
    frame = pd.DataFrame({"x": [1, 2], "emb": list(torch.eye(2))})
    assert client.log_predictions(frame, model_name="m", embedding_column="emb") == 2
    calls = memory.events_of(ModelCall)
    assert [c.embedding for c in calls[:5]] == [(0.25, -1.5, 3.0)] * 5
    assert calls[0].embedding_name == "image"
    assert [c.embedding for c in calls[5:]] == [(1.0, 0.0), (0.0, 1.0)]
    with pytest.raises(ValidationError, match="embedding"):
        client.log_model_call("m", {}, embedding=torch.ones(2, 2))
    with pytest.raises(ValidationError, match="embedding"):
        client.log_model_call("m", {}, embedding=torch.tensor([1.0, float("inf")]))
    with pytest.raises(ValidationError, match="embedding"):
        client.log_model_call("m", {}, embedding=torch.tensor(1.0))


def test_summary_budget_bounds_the_share_of_summarised_calls(
    client: VDTClient, memory: MemoryTransport
) -> None:
    class Slow(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            time.sleep(0.05)  # a forward of milliseconds: always summarised
            return x * 2

    fast, slow = model(), Slow()
    monitor_module(fast, "fast", client)  # the default budget, 5%
    monitor_module(slow, "slow", client)
    x = torch.randn(8, 4)
    for _ in range(200):
        fast(x)
    for _ in range(5):
        slow(x)
    calls = memory.events_of(ModelCall)
    fast_calls = [c for c in calls if c.model_name == "fast"]
    skipped = [c for c in fast_calls if c.tags.get("summary") == "skipped"]
    assert "min" in fast_calls[0].prediction  # the first call is summarised
    # A tiny forward costs less than a summary: most of its calls skip it...
    assert 0 < len(skipped) < 200
    # ...but each call is logged, with its shapes, dtypes and latency.
    assert len(fast_calls) == 200 and all(c.latency_ms is not None for c in skipped)
    assert skipped[0].prediction == {"shape": [8, 2], "dtype": "float32"}
    slow_calls = [c for c in calls if c.model_name == "slow"]
    assert [c.tags.get("summary") for c in slow_calls] == [None] * 5
    assert all(c.prediction["max"] == float((x * 2).max()) for c in slow_calls)


def test_summary_budget_none_summarises_every_call_and_zero_none(
    client: VDTClient, memory: MemoryTransport
) -> None:
    every, never = model(), model()
    monitor_module(every, "every", client, summary_budget=None)
    monitor_module(never, "never", client, summary_budget=0)
    x = torch.randn(8, 4)
    for _ in range(50):
        every(x)
        never(x)
    calls = memory.events_of(ModelCall)
    assert all("mean" in c.prediction for c in calls if c.model_name == "every")
    assert all(
        c.tags["summary"] == "skipped" and "mean" not in c.prediction
        for c in calls
        if c.model_name == "never"
    )
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="summary_budget"):
            monitor_module(every, "bad", client, summary_budget=bad)


def test_ready_summaries_are_logged_by_the_next_calls_the_rest_by_the_thread(
    client: VDTClient,
    memory: MemoryTransport,
    fake_cuda: FakeBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A thread taking the GIL for each call costs the caller more than the
    # logging: calls whose values have arrived are logged by the next call.
    senders: List[str] = []
    send = CallSender.send

    def recording_send(*args: Any, **kwargs: Any) -> Any:
        senders.append(threading.current_thread().name)
        return send(*args, **kwargs)

    monkeypatch.setattr(CallSender, "send", recording_send)
    # The thread lingers long enough for the six calls on a loaded machine.
    monkeypatch.setattr(pytorch, "LINGER_S", 2.0)
    fake_cuda.gate.set()  # the "device" is done at once
    net = model()
    monitor_module(net, "mlp", client, summary_budget=None)
    x = torch.randn(8, 4)
    # Reading a host buffer whose event said done waits for nothing.
    with FakeCuda(claims=lambda t: not fake_cuda.is_host(t)) as spy:
        for _ in range(6):
            net(x)
    assert spy.syncs == []
    main = threading.current_thread().name
    assert senders == [main] * 5  # each call logged the one before it
    deadline = time.monotonic() + 10
    while len(senders) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)  # no flush: the thread takes the last one
    assert senders[5] == "vdt-ai-torch-resolver"
    calls = memory.events_of(ModelCall)
    assert len(calls) == 6 and all("max" in c.prediction for c in calls)


def test_hooks_cpu_bench_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import runpy

    script = os.path.join(os.path.dirname(__file__), "../../bench/torch_hooks_cpu.py")
    argv = ["torch_hooks_cpu.py", "--calls", "50", "--rounds", "2"]
    monkeypatch.setattr("sys.argv", argv)
    # The bench puts its fake device under "cpu"; leave the table as it was.
    monkeypatch.setattr(pytorch, "_BACKENDS", dict(pytorch._BACKENDS))
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(script, run_name="__main__")
    assert exited.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line[:24].strip(): line[24:].split() for line in lines[2:-1]}
    assert set(rows) == {
        "no summaries",
        "every call summarised",
        "sample_rate=0.01",
        "log_model_call alone",
    }
    assert all(float(value) == float(value) for row in rows.values() for value in row)


def test_forwards_inside_a_cuda_graph_capture_are_left_alone(
    client: VDTClient, memory: MemoryTransport, fake_cuda: FakeBackend
) -> None:
    # A query or a wait during a capture would invalidate it, and the values
    # of a captured call are never read: such calls are not monitored.
    fake_cuda.gate.set()
    inner, outer = torch.nn.Linear(4, 4), torch.nn.Sequential()
    outer.append(inner)
    monitor_module(inner, "inner", client)
    monitor_module(outer, "outer", client)
    x = torch.randn(2, 4)
    fake_cuda.capture = True
    with FakeCuda() as spy:
        outer(x)
    assert spy.syncs == [] and fake_cuda.events == [] and fake_cuda.hosts == []
    fake_cuda.capture = False
    outer(x)  # the nesting stack is as it was: both calls are logged
    assert pytorch.flush(10)
    assert sorted(c.model_name for c in memory.events_of(ModelCall)) == [
        "inner",
        "outer",
    ]


def test_summaries_stay_out_of_autograd_and_grad_mode_is_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A training-mode forward with grad on: the summaries' reductions and the
    # sampled rows must not join the graph (the hooks use no torch.no_grad(),
    # which costs microseconds a call), grad mode is left as it was (also
    # when the hook fails inside), and backward still works.
    transport = MemoryTransport()
    client = VDTClient(transport=transport, handle_sigterm=False)
    net = torch.nn.Linear(4, 2)
    monitor_module(
        net, "m", client, summary_budget=None, log_rows=True, row_sample_rate=1.0
    )
    delivered: List[Any] = []
    deliver = pytorch._deliver

    def spy(scalars: List[Any], extra: List[Any], *rest: Any) -> None:
        delivered.extend(scalars + extra)
        deliver(scalars, extra, *rest)

    monkeypatch.setattr(pytorch, "_deliver", spy)
    assert torch.is_grad_enabled()
    out = net(torch.randn(3, 4))
    assert torch.is_grad_enabled()
    assert delivered and not any(t.requires_grad for t in delivered)
    out.sum().backward()
    assert net.weight.grad is not None
    monkeypatch.setattr(pytorch._Summaries, "add", lambda *a: 1 / 0)
    net(torch.randn(3, 4))
    assert torch.is_grad_enabled()
    assert client.stats().integration_errors == 1
    with torch.no_grad():
        net(torch.randn(3, 4))
        assert not torch.is_grad_enabled()
    assert pytorch.flush(10)
    client.close()


@pytest.mark.parametrize("enabled", [True, False])
def test_sampled_out_and_disabled_calls_cost_no_hook_work(
    memory: MemoryTransport, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    # Sampling is decided in the pre-hook: a dropped call builds no summary
    # and records no event; a kept one is logged once (not sampled again).
    client = VDTClient(transport=memory, sample_rate=0.2, enabled=enabled)
    built: List[int] = []
    summaries = pytorch._Summaries

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(1)
        return summaries(*args, **kwargs)

    monkeypatch.setattr(pytorch, "_Summaries", counting)
    net = model()
    monitor_module(net, "mlp", client, summary_budget=None)
    x = torch.randn(2, 4)
    expected = net(x)
    for _ in range(1000):
        torch.testing.assert_close(net(x), expected)
    assert pytorch.flush(10)
    calls = memory.events_of(ModelCall)
    stats = client.stats()
    if not enabled:
        assert built == [] and calls == [] and stats.sampled_out == 0
        return
    assert len(built) == len(calls) == stats.accepted
    assert stats.sampled_out + len(calls) == 1001  # with the first call
    assert 120 <= len(calls) <= 280  # 200 expected: 5 standard deviations
    assert all("max" in c.prediction for c in calls)


def test_rows_are_sampled_once_whatever_the_calls_sampling(
    memory: MemoryTransport,
) -> None:
    # log_rows' rows are sampled row by row (the bulk path) as any logged
    # call is: a call that sampling drops must not take its rows with it
    # (rows were then kept at sample_rate squared), and each row and each
    # call is counted once.
    client = VDTClient(transport=memory, sample_rate=0.5, handle_sigterm=False)
    net = model()
    monitor_module(
        net,
        "mlp",
        client,
        summary_budget=None,
        log_rows=True,
        row_sample_rate=1.0,
        max_rows_per_call=10,
    )
    x = torch.randn(10, 4)
    for _ in range(400):
        net(x)
    assert pytorch.flush(10)
    events = memory.events_of(ModelCall)
    rows = [c for c in events if c.tags.get("row") == "sampled"]
    calls = [c for c in events if c.tags.get("row") is None]
    stats = client.stats()
    assert stats.sampled_out + stats.accepted == 400 * 11
    # 2,000 rows and 200 calls expected: about 7 standard deviations each.
    assert 1_780 <= len(rows) <= 2_220
    assert 130 <= len(calls) <= 270
    client.close()


class _Retrying(torch.nn.Module):
    """Calls itself once more (after a pause); that inner call raises and
    the outer one catches it: the inner forward's post-hook never runs."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, x: Any, attempt: int = 0) -> Any:
        if attempt:
            raise ValueError("the retry fails")
        time.sleep(0.1)
        try:
            return self(x, 1)
        except ValueError:
            return self.linear(x)


@pytest.mark.parametrize("inner_sampled_out", [False, True])
def test_a_forward_that_raised_inside_another_leaves_the_outer_its_own_start(
    memory: MemoryTransport, monkeypatch: pytest.MonkeyPatch, inner_sampled_out: bool
) -> None:
    # The outer call's post-hook must take the outer call's own start (its
    # time, id and sampling decision), not the one the raising inner call
    # left on the stack.
    client = VDTClient(transport=memory, handle_sigterm=False)
    if inner_sampled_out:
        draw = CallSender.draw
        drawn: List[Any] = []

        def second_dropped(self: CallSender, *args: Any) -> Any:
            drawn.append(draw(self, *args))
            return None if len(drawn) % 2 == 0 else drawn[-1]

        monkeypatch.setattr(CallSender, "draw", second_dropped)
    net = _Retrying()
    monitor_module(net, "retrying", client, summary_budget=None)
    before = time.time()
    for _ in range(2):
        net(torch.randn(3, 4))
    assert pytorch.flush(10)
    calls = memory.events_of(ModelCall)
    assert len(calls) == 2
    for call in calls:
        assert call.latency_ms is not None and call.latency_ms >= 95
        assert call.prediction["shape"] == [3, 2]
    first = calls[0].timestamp.timestamp()
    assert before - 0.001 <= first <= before + 0.06  # the outer call's start
    client.close()


def test_summaries_of_tensors_only_are_plain_and_user_keys_are_not() -> None:
    """The hook tells the pipeline to skip its denylist walk only for
    summaries it built from tensors alone (no key or text of the user's)."""
    t = torch.ones(2, 3)
    for value, plain in (
        ((t,), True),
        ((t, [t, t]), True),
        (t, True),
        (({"password": t},), False),  # a user's key: the denylist decides
        ((t, "text"), False),  # a non-tensor: its type name is text
        ((t, [[t]]), False),  # nested deeper than PLAIN_NESTING
    ):
        summaries = pytorch._Summaries(values=False)
        summaries.add(value)
        assert summaries.plain is plain, value


@settings(max_examples=examples(200), deadline=None)
@given(
    shapes=st.lists(st.lists(st.integers(0, 2**40), max_size=4), max_size=4),
    numbers=st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3),
    dtype=st.sampled_from(["float32", "bfloat16", "int64", "bool"]),
)
def test_a_trusted_summary_is_sent_as_the_checked_path_sends_it(
    shapes: List[List[int]], numbers: List[float], dtype: str
) -> None:
    """Skipping the denylist walk for a plain summary changes no byte."""
    inputs = [{"shape": s, "dtype": dtype} for s in shapes]
    prediction: Dict[str, Any] = {"shape": shapes[0] if shapes else [], "dtype": dtype}
    prediction.update(zip(("min", "max", "mean"), numbers))
    input_data = {"batch_size": 4, "inputs": inputs, "host_latency_ms": 0.25}
    sent: List[bytes] = []
    for trusted in (False, True):
        memory = MemoryTransport()
        client = VDTClient(transport=memory)
        sender = CallSender(client, "m", "v1", {"framework": "torch"})
        drawn = (1234567, 1_700_000_000_000_000_000)
        sender.send(drawn, input_data, prediction, 1.5, trusted)
        sent.append(memory.records[0].value)
        client.close()
    assert sent[0] == sent[1]


def test_a_users_secret_looking_input_key_is_still_masked(
    client: VDTClient, memory: MemoryTransport
) -> None:
    class Keyed(torch.nn.Module):
        def forward(self, batch: Any) -> Any:
            return batch["password"] * 2

    module = Keyed()
    monitor_module(module, "keyed", client, summary_budget=None)
    with torch.inference_mode():
        module({"password": torch.ones(2, 2)})
    assert pytorch.flush(5)
    (call,) = memory.events_of(ModelCall)
    assert call.input_data["inputs"][0]["password"] == "****"


def test_at_interpreter_shutdown_a_cuda_forward_is_logged_by_its_own_call(
    client: VDTClient,
    memory: MemoryTransport,
    fake_cuda: FakeBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Python 3.12 starts no thread from an atexit handler: a forward run
    # there left its call pending for a resolver that never started (and the
    # exit flush waited 5 s for it). It is resolved by the call itself now.
    start = threading.Thread.start

    def refuse(self: threading.Thread) -> None:
        if self.name.startswith("vdt-ai"):
            raise RuntimeError("can't create new thread at interpreter shutdown")
        start(self)

    monkeypatch.setattr(threading.Thread, "start", refuse)
    monkeypatch.setattr(pytorch._resolver, "_thread", None)
    fake_cuda.gate.set()  # the "device" is done
    net = model()
    monitor_module(net, "mlp", client)
    # Tensors claim to be on cuda:0. Here the call reads its values on this
    # thread (waiting for the device if need be): the process is exiting.
    with FakeCuda(), torch.inference_mode():
        net(torch.randn(4, 4))
    (call,) = memory.events_of(ModelCall)  # no flush needed
    assert call.tags["latency"] == "cuda_event"
    assert pytorch.flush(1) and client.stats().integration_errors == 0


class _OddShape(torch.Tensor):
    """A tensor subclass whose shape is not torch's own: its entries are
    whatever the subclass says (text holding an API key, numpy integers)."""

    odd: Any = None

    @property
    def shape(self) -> Any:  # type: ignore[override]
        return (2, self.odd)


@pytest.mark.parametrize(
    "odd, sent",
    [
        (
            "vdt_abcdefghijkl_0123456789abcdef0123456789ABCDEF",
            "vdt_abcdefghijkl_****",
        ),
        (np.int64(3), 3),
    ],
)
def test_a_tensor_subclass_summary_is_checked_as_a_users_value(
    client: VDTClient, memory: MemoryTransport, odd: Any, sent: Any
) -> None:
    # Only torch's own tensors give a summary the pipeline may trust: a
    # subclass's shape was sent unchecked (an API key unmasked, a numpy
    # integer failing the encoder and the call lost).
    class Echo(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return x

    module = Echo()
    monitor_module(module, "echo", client, summary_budget=None)
    value = torch.ones(2).as_subclass(_OddShape)
    value.odd = odd
    module(value)
    assert pytorch.flush(5)
    (call,) = memory.events_of(ModelCall)
    assert call.input_data["inputs"][0]["shape"] == [2, sent]
    assert call.prediction["shape"] == [2, sent]
    assert client.stats().integration_errors == 0


# The test ends the resolver thread with a SystemExit on purpose.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_resolver_thread_ended_by_a_callback_is_replaced(
    client: VDTClient,
    memory: MemoryTransport,
    fake_cuda: FakeBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A SystemExit out of a call's logging on the resolver thread (a user's
    # callback) ended the thread but left it registered: every later call
    # waited for it for ever, and flush() with it.
    send = CallSender.send
    exits: List[int] = []

    def exit_once(self: CallSender, *args: Any) -> Any:
        if not exits:
            exits.append(1)
            raise SystemExit(3)
        return send(self, *args)

    monkeypatch.setattr(CallSender, "send", exit_once)
    net = model()
    monitor_module(net, "mlp", client)
    with FakeCuda(), torch.inference_mode():
        net(torch.randn(4, 4))  # pending: the "device" is not done
        fake_cuda.gate.set()
        deadline = time.monotonic() + 10
        while not exits and time.monotonic() < deadline:
            time.sleep(0.01)  # the resolver thread takes it and dies
        assert exits
        thread = pytorch._resolver._thread
        if thread is not None:
            thread.join(5)
        net(torch.randn(4, 4))  # left to the background thread alone
    assert pytorch.flush(5)
    assert len(memory.events_of(ModelCall)) == 1  # the second call


def test_calls_after_one_whose_logging_raised_are_queued_again_not_lost() -> None:
    # A Ctrl-C (or a callback's SystemExit) out of one call's logging while
    # a batch was resolved dropped the rest of the batch, counted nowhere.
    resolver = pytorch._Resolver()
    logged: List[int] = []

    def finisher(index: int) -> Callable[[List[Any]], None]:
        def finish(values: List[Any]) -> None:
            if index == 1 and 1 not in logged:
                logged.append(1)
                raise KeyboardInterrupt
            logged.append(index)

        return finish

    items = [pytorch._Pending((), [], finisher(i), None, "t", []) for i in range(3)]
    with resolver._cond:
        resolver._busy += 3
    with pytest.raises(KeyboardInterrupt):
        resolver._complete(items)
    assert logged == [0, 1] and list(resolver._pending) == [items[2]]
    assert resolver._busy == 0
    resolver._complete([resolver._pending.popleft()])
    assert logged == [0, 1, 2]


def test_flush_resolves_calls_left_without_a_resolver_thread() -> None:
    # Calls queued again after the resolver thread ended (or before any
    # could start) waited for a thread that nobody started: flush() hung.
    resolver = pytorch._Resolver()
    logged: List[str] = []
    item = pytorch._Pending((), [], lambda values: logged.append("x"), None, "t", [])
    resolver._pending.append(item)
    assert resolver._thread is None
    assert resolver.flush(1) and logged == ["x"]
