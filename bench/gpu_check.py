"""Real-CUDA check of the PyTorch hooks: right values, no host sync.

Not a benchmark: the unit tests stand a fake device in for CUDA, so this is
where a machine with a GPU checks the real thing. A monitored pass-through
module summarises float32, float16 and bfloat16 tensors (small ones, counted
exactly, and 3M elements, counted on a strided sample), with and without NaN
and infinities, an int64 tensor and a strided view, under
``torch.cuda.set_sync_debug_mode("error")`` (any synchronising operation on
the hook path raises); each summary is compared with numpy's figures on the
same values. ``log_training_step`` with device tensors is checked the same
way. Prints one line per case; exits 1 on a wrong value or an integration
error, 0 with a message where there is no CUDA.

Run: ``python bench/gpu_check.py`` on a CUDA machine.
"""

import math
import sys
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

from vdt_ai import Metric, ModelCall, VDTClient
from vdt_ai.integrations import pytorch as vdt_torch
from vdt_ai.testing import MemoryTransport


class PassThrough(torch.nn.Module):
    def forward(self, x: Any) -> Any:
        return x * 1


def cases(device: Any) -> List[Tuple[str, Any]]:
    """(name, tensor) pairs covering dtypes, sizes, non-finite values, views."""
    torch.manual_seed(0)
    made: List[Tuple[str, Any]] = []
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for count in (1000, 3_000_000):
            values = (torch.randn(count, device=device) * 3 + 1).to(dtype)
            made.append((f"{dtype} n={count}", values))
            holed = values.clone()
            holed[::997] = float("nan")
            holed[5] = float("inf")
            made.append((f"{dtype} n={count} nan/inf", holed))
    made.append(("int64", torch.arange(-50, 50, device=device)))
    made.append(("strided float32", torch.randn(512, 4096, device=device).t()))
    return made


def agrees(summary: Dict[str, Any], tensor: Any) -> bool:
    """The summary against numpy's figures on the same values."""
    values = tensor.detach().cpu()
    array = (values.float() if values.is_floating_point() else values).numpy()
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    non_finite = int(array.size - finite.size)
    if summary["shape"] != list(tensor.shape):
        return False
    if non_finite:  # estimated on a sample for large tensors
        counted = summary.get("non_finite", 0)
        exact = not summary.get("non_finite_estimated")
        return bool(counted == non_finite if exact else counted > 0)
    mean = float(finite.mean())
    return (
        summary.get("non_finite") == 0
        and math.isclose(summary["min"], float(finite.min()), rel_tol=1e-3)
        and math.isclose(summary["max"], float(finite.max()), rel_tol=1e-3)
        and abs(summary["mean"] - mean) <= 1e-2 * max(1.0, abs(mean))
    )


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_check: CUDA is not available on this machine, nothing to check")
        return 0
    device = torch.device("cuda", 0)
    memory = MemoryTransport()
    client = VDTClient(transport=memory)
    net = PassThrough()
    vdt_torch.monitor_module(net, "check", client, summary_budget=None)
    checked = cases(device)
    losses = [torch.tensor(0.5 + step, device=device) for step in range(5)]
    accuracy = torch.tensor(0.25, device=device)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # a sync on the hook path raises
    try:
        with torch.inference_mode():
            for _, tensor in checked:
                net(tensor)
            for step, loss in enumerate(losses):
                vdt_torch.log_training_step(
                    step, loss * 1, client, run_id="r", acc=accuracy * 1, lr=0.1
                )
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert vdt_torch.flush(30)
    wrong = 0
    calls = memory.events_of(ModelCall)
    assert len(calls) == len(checked), (len(calls), len(checked))
    for (name, tensor), call in zip(checked, calls):
        summary = call.input_data["inputs"][0]
        ok = agrees(summary, tensor) and call.tags.get("latency") == "cuda_event"
        wrong += not ok
        print(f"{'ok ' if ok else 'BAD'} {name:<28} {summary}")
    metrics = sorted((m.name, m.step, m.value) for m in memory.events_of(Metric))
    expected = sorted(
        [("loss", s, 0.5 + s) for s in range(5)]
        + [("acc", s, 0.25) for s in range(5)]
        + [("lr", s, 0.1) for s in range(5)]
    )
    metrics_ok = metrics == expected
    wrong += not metrics_ok
    print(f"{'ok ' if metrics_ok else 'BAD'} log_training_step: {metrics}")
    errors = client.stats().integration_errors
    client.close()
    print(f"wrong: {wrong}, integration errors: {errors}, host syncs: 0 (checked)")
    return 1 if wrong or errors else 0


if __name__ == "__main__":
    sys.exit(main())
