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
min/max/mean), never tensor contents. With ``lightning`` installed,
``VDTLightningCallback`` logs the trainer's metrics the same way. Supported:
PyTorch 2.0 to <3.
"""

import time
import weakref
from typing import Any, Dict, List, Optional

from ..client import VDTClient
from ._common import log_sampled_rows, report, require, resolve

torch = require("torch", "torch", ("2.0", "3"))

MAX_TENSORS = 8


def _tensor_summary(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        summary: Dict[str, Any] = {
            "shape": list(value.shape),
            "dtype": str(value.dtype).replace("torch.", ""),
        }
        if value.numel() and (value.is_floating_point() or not value.is_complex()):
            with torch.no_grad():
                data = value.detach().float()
                finite = torch.isfinite(data)
                summary["non_finite"] = int((~finite).sum().item())
                if bool(finite.any()):
                    kept = data[finite]
                    summary["min"] = float(kept.min().item())
                    summary["max"] = float(kept.max().item())
                    summary["mean"] = float(kept.mean().item())
        return summary
    if isinstance(value, (list, tuple)):
        return [_tensor_summary(v) for v in list(value)[:MAX_TENSORS]]
    if isinstance(value, dict):
        return {
            str(k): _tensor_summary(v) for k, v in list(value.items())[:MAX_TENSORS]
        }
    return {"type": type(value).__name__}


def _batch(inputs: Any) -> Optional[int]:
    first = inputs[0] if isinstance(inputs, (list, tuple)) and inputs else inputs
    if isinstance(first, torch.Tensor) and first.dim() > 0:
        return int(first.shape[0])
    return None


class MonitorHandle:
    """What :func:`monitor_module` returns; ``remove()`` detaches the hooks."""

    def __init__(self, handles: List[Any]) -> None:
        self._handles = handles

    def remove(self) -> None:
        """Detaches the hooks; the module is as it was before."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def monitor_module(
    module: Any,
    model_name: str,
    client: Optional[VDTClient] = None,
    model_version: Optional[str] = None,
    log_rows: bool = False,
    row_sample_rate: float = 0.01,
    max_rows_per_call: int = 100,
) -> MonitorHandle:
    """Logs each forward call of ``module`` as a ModelCall.

    Uses forward pre- and post-hooks (nothing is wrapped, so ``state_dict()``,
    pickling and ``torch.save`` are unaffected). The forward's output is
    returned unchanged; an internal failure is counted, never raised. With
    ``log_rows`` (opt-in), a sample of rows of the first input tensor and of
    the output tensor is also logged row by row through the bulk path.

    Returns:
        A handle whose ``remove()`` detaches the hooks.
    """
    starts: "weakref.WeakKeyDictionary[Any, List[float]]" = weakref.WeakKeyDictionary()

    def before(mod: Any, inputs: Any) -> None:
        starts.setdefault(mod, []).append(time.perf_counter())

    def after(mod: Any, inputs: Any, output: Any) -> None:
        try:
            stack = starts.get(mod) or [time.perf_counter()]
            latency_ms = (time.perf_counter() - stack.pop()) * 1000
            resolve(client).log_model_call(
                model_name,
                input_data={
                    "batch_size": _batch(inputs),
                    "inputs": _tensor_summary(inputs),
                },
                prediction=_tensor_summary(output),
                latency_ms=latency_ms,
                model_version=model_version,
                tags={"framework": "torch", "module": type(mod).__name__},
            )
            first = inputs[0] if isinstance(inputs, (list, tuple)) and inputs else None
            if (
                log_rows
                and isinstance(first, torch.Tensor)
                and (isinstance(output, torch.Tensor))
            ):
                with torch.no_grad():
                    log_sampled_rows(
                        resolve(client),
                        _batch(inputs) or 0,
                        row_sample_rate,
                        max_rows_per_call,
                        lambda i: first[i].detach().cpu().tolist(),
                        lambda i: output[i].detach().cpu().tolist(),
                        model_name,
                        model_version,
                        "torch",
                    )
        except Exception as exc:  # never break the forward pass
            report(client, "pytorch.forward", exc)

    return MonitorHandle(
        [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    )


def log_training_step(
    step: int,
    loss: Any,
    client: Optional[VDTClient] = None,
    run_id: Optional[str] = None,
    **metrics: Any,
) -> None:
    """Logs ``loss`` and any other ``metrics`` (tensors or numbers) at ``step``.

    Non-finite values are skipped (and counted as an integration error) rather
    than failing the training loop.
    """
    try:
        values: Dict[str, float] = {}
        for name, value in {"loss": loss, **metrics}.items():
            number = float(value.item() if hasattr(value, "item") else value)
            if number == number and abs(number) != float("inf"):
                values[name] = number
            else:
                raise ValueError(f"{name} is not finite at step {step}")
        resolve(client).log_metrics(
            values, step=step, run_id=run_id, tags={"framework": "torch"}
        )
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
        """Logs Lightning's logged metrics after each training batch and epoch."""

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
            loss = metrics.pop("loss", metrics.pop("train_loss", float("nan")))
            if loss == loss:
                log_training_step(step, loss, self.client, self.run_id, **metrics)
