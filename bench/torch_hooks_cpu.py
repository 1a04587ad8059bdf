"""What ``monitor_module``'s hooks cost the CPU per call, with no GPU at hand.

A fake device backend makes CPU tensors take the CUDA path (events that are
always done, plain host buffers), so the hooks' own Python, the hand-over of
pending calls and the logging are measured without CUDA's costs. Printed per
variant (medians over alternating rounds of ``--calls`` calls of a tiny
module): wall time, the process's CPU time (every thread) and the calling
thread's CPU time per call, minus the bare module's; and one
``log_model_call`` of the same event alone, the floor of logging a call.

Run: ``python bench/torch_hooks_cpu.py``. Its figures say nothing about a
GPU's kernels: ``bench/gpu_overhead.py`` measures those on a CUDA machine.
"""

import argparse
import statistics
import sys
import time
from typing import Any, Callable, Dict, List

import torch
from torch import nn

from vdt_ai import VDTClient
from vdt_ai.integrations import pytorch as vdt_torch
from vdt_ai.testing import MemoryTransport


class _DoneEvent:
    """A CUDA event stand-in whose work is always done."""

    __slots__ = ()

    def record(self, stream: Any = None) -> None:
        pass

    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, end: Any) -> float:
        return 1.0


class _FakeDevice:
    """Events and host buffers for tensors that claim an asynchronous device."""

    def event(self, device: Any, timing: bool) -> _DoneEvent:
        return _DoneEvent()

    def capturing(self) -> bool:
        return False

    def recycle(self, device: Any, timing: bool, event: Any) -> None:
        pass

    def host_buffer(self, like: Any) -> Any:
        return torch.empty(like.shape, dtype=like.dtype)


def _run(net: Any, x: Any, calls: int) -> List[float]:
    """us per call: wall, process CPU, calling thread's CPU."""
    wall, process, thread = time.perf_counter(), time.process_time(), time.thread_time()
    for _ in range(calls):
        net(x)
    assert vdt_torch.flush(60)
    return [
        (time.perf_counter() - wall) * 1e6 / calls,
        (time.process_time() - process) * 1e6 / calls,
        (time.thread_time() - thread) * 1e6 / calls,
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5_000, help="per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    vdt_torch._BACKENDS["cpu"] = _FakeDevice()  # CPU tensors take the CUDA path
    memory = MemoryTransport()
    client = VDTClient(transport=memory)
    x = torch.randn(4, 4)
    nets: Dict[str, Any] = {"bare": nn.Identity()}
    for label, budget in (("no summaries", 0.0), ("every call summarised", None)):
        nets[label] = nn.Identity()
        vdt_torch.monitor_module(nets[label], "m", client, summary_budget=budget)
    # A client that logs 1 call in 100: sampling is decided before the work.
    sampled = VDTClient(transport=memory, sample_rate=0.01)
    nets["sample_rate=0.01"] = nn.Identity()
    vdt_torch.monitor_module(
        nets["sample_rate=0.01"], "m", sampled, summary_budget=None
    )
    figures: Dict[str, List[List[float]]] = {label: [] for label in nets}
    with torch.inference_mode():
        for net in nets.values():
            _run(net, x, 500)  # warm up
        for _ in range(args.rounds):
            for label, net in nets.items():
                figures[label].append(_run(net, x, args.calls))
                memory.clear()
    log: Callable[[], Any] = lambda: client.log_model_call(  # noqa: E731
        "m",
        input_data={"batch_size": 4, "inputs": [{"shape": [4, 4], "dtype": "float32"}]},
        prediction={"shape": [4, 4], "dtype": "float32"},
        latency_ms=1.0,
        tags={"framework": "torch", "module": "Identity", "summary": "skipped"},
    )
    floor = []
    for _ in range(args.rounds):
        start = time.thread_time()
        for _ in range(args.calls):
            log()
        floor.append((time.thread_time() - start) * 1e6 / args.calls)
        memory.clear()
    bare = [statistics.median(r[i] for r in figures["bare"]) for i in range(3)]
    print(f"# Python {sys.version.split()[0]}, torch {torch.__version__}, fake device")
    print(f"{'variant':<24} {'wall us':>8} {'process CPU':>12} {'caller CPU':>11}")
    for label, rounds in figures.items():
        if label == "bare":
            continue
        extra = [statistics.median(r[i] for r in rounds) - bare[i] for i in range(3)]
        print(f"{label:<24} {extra[0]:8.1f} {extra[1]:12.1f} {extra[2]:11.1f}")
    alone = statistics.median(floor)
    print(f"{'log_model_call alone':<24} {'':>8} {'':>12} {alone:11.1f}")
    print("(per call, over the bare module)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
