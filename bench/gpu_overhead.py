"""What ``monitor_module`` costs a GPU forward: time, host syncs, memory, latency.

Four models with random weights (nothing is downloaded): a tabular MLP (batch
256), a transformer encoder 6x512 (batch 32, sequence 128, bf16), ResNet-50
(batch 64, 224x224, fp16) and an LM head 512 -> 50257 (8x512 tokens, bf16),
each run bare and monitored (``MemoryTransport``) under ``inference_mode``,
eager and compiled (``torch.compile`` default and ``reduce-overhead``, the
hooks registered before compiling, or after with ``--order after``). Rounds
alternate bare and monitored, each first in every other round, so that noise
hits both alike. Printed per model and mode:

* ms per forward (wall time over many forwards, the device synchronised at
  the end) and the monitored / bare ratio;
* host syncs per forward (``torch.cuda.set_sync_debug_mode("warn")``);
* peak GPU memory (``max_memory_allocated``), bare -> monitored;
* the ``latency_ms`` the SDK logged, the same monitored forwards' time
  between CUDA events the bench records around the call, and the bare
  forward's (medians);
* graphs and graph breaks of ``torch._dynamo.explain``, bare vs monitored;
* the process's CPU time per forward (every thread), bare vs monitored, and
  the share of monitored calls whose values were summarised
  (``--summary-budget``, ``none`` for every call).

Run: ``python bench/gpu_overhead.py`` on a CUDA machine (it says so and exits
0 where there is none). ``--cpu-smoke`` runs tiny versions on the CPU (compiled
with the ``eager`` backend) to check that the script works; its figures say
nothing about GPUs.
"""

import argparse
import statistics
import sys
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from vdt_ai import ModelCall, VDTClient
from vdt_ai.integrations import pytorch as vdt_torch
from vdt_ai.testing import MemoryTransport

MODES = ("eager", "default", "reduce-overhead")


class Root(nn.Module):
    """The model as users write one: a class of their own around the layers.

    torch.compile inlines the hooks of the torch.nn classes it compiles
    directly (Sequential, Linear...) and shares that code between instances
    of the class without guarding on hooks: a bare and a monitored
    ``Sequential`` in one process would share one compiled frame.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Any) -> Any:
        return self.net(x)


class Bottleneck(nn.Module):
    """ResNet's bottleneck block (1x1, 3x3, 1x1 convolutions)."""

    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        out = planes * 4
        self.body = nn.Sequential(
            nn.Conv2d(inplanes, planes, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, stride, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, out, 1, bias=False),
            nn.BatchNorm2d(out),
        )
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or inplanes != out:
            self.skip = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: Any) -> Any:
        return torch.relu(self.body(x) + self.skip(x))


def resnet(blocks: Tuple[int, ...], width: int = 64, classes: int = 1000) -> Any:
    """ResNet-50 with blocks (3, 4, 6, 3) (torchvision's layout)."""
    layers: List[nn.Module] = [
        nn.Conv2d(3, width, 7, 2, 3, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    inplanes = width
    for stage, count in enumerate(blocks):
        planes = width * 2**stage
        for index in range(count):
            stride = 2 if stage and not index else 1
            layers.append(Bottleneck(inplanes, planes, stride))
            inplanes = planes * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(inplanes, classes)]
    return nn.Sequential(*layers)


def models(smoke: bool, device: str) -> Dict[str, Callable[[], Tuple[Any, Any]]]:
    """Builders of (model, input) by name; tiny ones for the CPU smoke run."""
    scale = 8 if smoke else 1

    def mlp() -> Tuple[Any, Any]:
        net = nn.Sequential(
            nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU()
        )
        net.append(nn.Linear(256, 2))
        return net, torch.randn(256 // scale, 64)

    def transformer() -> Tuple[Any, Any]:
        width = 512 // scale
        layer = nn.TransformerEncoderLayer(width, 8, width * 4, batch_first=True)
        net = nn.TransformerEncoder(layer, 6 // (2 if smoke else 1))
        x = torch.randn(32 // scale, 128 // scale, width)
        return net.to(torch.bfloat16), x.to(torch.bfloat16)

    def resnet50() -> Tuple[Any, Any]:
        if smoke:
            return resnet((1, 1), width=8, classes=10), torch.randn(2, 3, 32, 32)
        x = torch.randn(64, 3, 224, 224, dtype=torch.float16)
        return resnet((3, 4, 6, 3)).to(torch.float16), x

    def lm_head() -> Tuple[Any, Any]:
        vocab = 50257 // (64 if smoke else 1)
        net = nn.Linear(512 // scale, vocab, bias=False).to(torch.bfloat16)
        return net, torch.randn(8 // 4 if smoke else 8, 512 // scale, 512 // scale)

    def place(build: Callable[[], Tuple[Any, Any]]) -> Callable[[], Tuple[Any, Any]]:
        def built() -> Tuple[Any, Any]:
            torch.manual_seed(0)
            net, x = build()
            dtype = next(net.parameters()).dtype
            return Root(net).to(device).eval(), x.to(device, dtype)

        return built

    return {
        name: place(build)
        for name, build in (
            ("mlp", mlp),
            ("transformer", transformer),
            ("resnet50", resnet50),
            ("lm_head", lm_head),
        )
    }


class Device:
    """Timing, sync counting and memory, on CUDA or (smoke) on the CPU."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda

    def synchronize(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def peak_mib(self) -> Optional[float]:
        if not self.cuda:
            return None
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20

    def forward_ms(self, run: Callable[[], Any]) -> float:
        """One forward's device time (CUDA events; wall time on the CPU)."""
        if not self.cuda:
            start = time.perf_counter()
            run()
            return (time.perf_counter() - start) * 1e3
        event: Any = torch.cuda.Event  # untyped in torch's stubs
        begin, end = event(enable_timing=True), event(enable_timing=True)
        begin.record()
        run()
        end.record()
        end.synchronize()
        return float(begin.elapsed_time(end))

    def syncs_per_forward(self, run: Callable[[], Any], forwards: int) -> Any:
        """Synchronisations ``run`` makes, from CUDA's sync debug mode."""
        if not self.cuda:
            return "n/a"
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                for _ in range(forwards):
                    run()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs = [w for w in caught if "synchroniz" in str(w.message)]
        return len(syncs) / forwards


def wall_ms(
    device: Device, run: Callable[[], Any], forwards: int
) -> Tuple[float, float]:
    """Mean ms per forward over ``forwards`` back-to-back forwards, and the
    process's CPU us per forward (every thread: the resolver's work too)."""
    device.synchronize()
    cpu = time.process_time()
    start = time.perf_counter()
    for _ in range(forwards):
        run()
    device.synchronize()
    wall = (time.perf_counter() - start) * 1e3 / forwards
    return wall, (time.process_time() - cpu) * 1e6 / forwards


def explain(net: Any, x: Any) -> str:
    """Graphs and graph breaks that torch.compile makes of ``net``."""
    import torch._dynamo as dynamo

    dynamo.reset()
    result = dynamo.explain(net)(x)
    return f"{result.graph_count}/{result.graph_break_count}"


def measure(
    name: str,
    build: Callable[[], Tuple[Any, Any]],
    mode: str,
    device: Device,
    args: Any,
) -> Dict[str, Any]:
    """Bare vs monitored figures of one model in one mode."""
    memory = MemoryTransport()
    client = VDTClient(transport=memory)
    bare, x = build()
    monitored, _ = build()
    options_monitor = {"summary_budget": args.summary_budget}
    if args.order == "before" or mode == "eager":
        vdt_torch.monitor_module(monitored, name, client, **options_monitor)
    graphs = (explain(bare, x), explain(monitored, x)) if mode != "eager" else None
    if mode != "eager":
        backend = "eager" if not device.cuda else "inductor"
        options: Dict[str, Any] = {"backend": backend}
        if device.cuda:
            options["mode"] = mode
        torch._dynamo.reset()
        bare = torch.compile(bare, **options)
        monitored = torch.compile(monitored, **options)
        if args.order == "after":
            vdt_torch.monitor_module(monitored, name, client, **options_monitor)

    def forward(net: Any) -> Callable[[], Any]:
        def run() -> Any:
            with torch.inference_mode():
                return net(x)

        return run

    runs = {"bare": forward(bare), "monitored": forward(monitored)}
    for run in runs.values():  # compile, warm up caches and allocator
        for _ in range(args.warmup):
            run()
    assert vdt_torch.flush(60)
    times: Dict[str, List[float]] = {"bare": [], "monitored": []}
    cpu: Dict[str, List[float]] = {"bare": [], "monitored": []}
    memory.clear()
    for round_index in range(args.rounds):
        # Bare first in even rounds, monitored first in odd ones: whatever
        # the first of a pair pays (clocks after a sync, the resolver's
        # linger) falls on both alike.
        pairs = list(runs.items())
        for label, run in pairs if round_index % 2 == 0 else pairs[::-1]:
            wall, used = wall_ms(device, run, args.forwards)
            times[label].append(wall)
            cpu[label].append(used)
    figures: Dict[str, Any] = {
        label: statistics.median(values) for label, values in times.items()
    }
    for label, values in cpu.items():
        figures[f"cpu_{label}"] = statistics.median(values)
    assert vdt_torch.flush(60)
    calls = memory.events_of(ModelCall)
    skipped = sum(1 for c in calls if c.tags.get("summary") == "skipped")
    figures["summarised"] = 1 - skipped / len(calls) if calls else float("nan")
    for label, run in runs.items():
        figures[f"syncs_{label}"] = device.syncs_per_forward(run, 10)
        device.reset_peak()
        run()
        figures[f"peak_{label}"] = device.peak_mib()
    assert vdt_torch.flush(60)
    memory.clear()
    event_ms = [device.forward_ms(runs["bare"]) for _ in range(args.latency_samples)]
    # The monitored forwards timed by events of the bench's own, around the
    # call (hooks included): what their logged latency_ms should be close to.
    own_ms = [device.forward_ms(runs["monitored"]) for _ in range(args.latency_samples)]
    assert vdt_torch.flush(60)
    logged = [c.latency_ms for c in memory.events_of(ModelCall) if c.latency_ms]
    figures["event_ms"] = statistics.median(event_ms)
    figures["own_ms"] = statistics.median(own_ms)
    figures["logged_ms"] = statistics.median(logged) if logged else float("nan")
    figures["graphs"] = graphs
    figures["errors"] = client.stats().integration_errors
    client.close()
    return figures


def report(name: str, mode: str, f: Dict[str, Any]) -> None:
    def mib(value: Optional[float]) -> str:
        return "n/a" if value is None else f"{value:,.0f}"

    graphs = f["graphs"]
    print(
        f"{name:<12} {mode:<16} {f['bare']:9.3f} {f['monitored']:9.3f} "
        f"{f['monitored'] / f['bare']:6.2f}x "
        f"{f['syncs_bare']!s:>5} {f['syncs_monitored']!s:>5}  "
        f"{mib(f['peak_bare']):>7} -> {mib(f['peak_monitored']):<7} "
        f"{f['logged_ms']:8.3f} {f['own_ms']:8.3f} {f['event_ms']:8.3f}  "
        f"{graphs[0] if graphs else '-':>5} {graphs[1] if graphs else '-':>5}  "
        f"{f['cpu_bare']:7.0f} {f['cpu_monitored']:7.0f} {f['summarised']:6.0%}  "
        f"{f['errors']}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="tiny models on the CPU"
    )
    parser.add_argument("--models", default="mlp,transformer,resnet50,lm_head")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument(
        "--order",
        choices=("before", "after"),
        default="before",
        help="monitor_module before or after torch.compile",
    )
    parser.add_argument(
        "--summary-budget",
        type=lambda text: None if text == "none" else float(text),
        default=vdt_torch.SUMMARY_BUDGET,
        help="monitor_module's summary_budget ('none': every call summarised)",
    )
    parser.add_argument("--forwards", type=int, default=50, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--latency-samples", type=int, default=20)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu_smoke:
        print(
            "gpu_overhead: CUDA is not available on this machine, nothing to "
            "measure (--cpu-smoke runs tiny models on the CPU to check the script)"
        )
        return 0
    if args.cpu_smoke:
        cuda = False
        args.forwards, args.rounds, args.warmup = 3, 2, 2
        args.latency_samples = 3
    device = Device(cuda)
    where = torch.cuda.get_device_name() if cuda else "CPU smoke run (not a GPU)"
    print(
        f"# {where}; torch {torch.__version__}; Python {sys.version.split()[0]}; "
        f"monitor_module {args.order} torch.compile; "
        f"summary_budget {args.summary_budget}"
    )
    print(
        f"{'model':<12} {'mode':<16} {'bare ms':>9} {'mon. ms':>9} {'ratio':>7} "
        f"{'syncs':>5} {'(mon)':>5}  {'peak MiB bare -> mon.':<18} "
        f"{'logged':>8} {'(own)':>8} {'event':>8}  {'g/b':>5} {'(mon)':>5}  "
        f"{'cpu us':>7} {'(mon)':>7} {'summ.':>6}  errors"
    )
    builders = models(args.cpu_smoke, "cuda" if cuda else "cpu")
    for name in args.models.split(","):
        for mode in args.modes.split(","):
            if mode == "reduce-overhead" and not cuda:
                continue  # CUDA graphs
            report(name, mode, measure(name, builders[name], mode, device, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
