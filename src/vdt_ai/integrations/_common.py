"""Shared helpers of the framework integrations."""

import importlib
import math
import random
import threading
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from .. import _log
from ..client import VDTClient, get_client

MAX_SUMMARY_COLUMNS = 100
MAX_CLASSES = 20
# Values summarised at a time (their temporaries: at most 2 MiB).
SUMMARY_BLOCK = 1 << 18

_warned: Set[str] = set()
_lock = threading.Lock()


def require(module: str, extra: str, supported: Tuple[str, str]) -> Any:
    """Imports ``module`` or raises ImportError with the install hint; warns
    once when its version is outside ``supported`` (inclusive low, exclusive high).
    """
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"vdt_ai.integrations.{extra} needs {module}: pip install 'vdt-ai[{extra}]'"
        ) from exc
    version = str(getattr(imported, "__version__", "0"))
    if not _in_range(version, supported):
        with _lock:
            if module not in _warned:
                _warned.add(module)
                import warnings

                warnings.warn(
                    f"{module} {version} is outside the range vdt-ai supports "
                    f"({supported[0]} to below {supported[1]}); it may still work",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return imported


def _in_range(version: str, supported: Tuple[str, str]) -> bool:
    def parts(text: str) -> Tuple[int, ...]:
        numbers = []
        for piece in text.split(".")[:3]:
            digits = "".join(ch for ch in piece if ch.isdigit())
            numbers.append(int(digits) if digits else 0)
        return tuple(numbers)

    return parts(supported[0]) <= parts(version) < parts(supported[1])


def resolve(client: Optional[VDTClient]) -> VDTClient:
    """The given client, or the process-wide default."""
    return client if client is not None else get_client()


def report(client: Optional[VDTClient], where: str, error: BaseException) -> None:
    """Counts and logs an integration failure; never raises."""
    try:
        resolve(client).report_integration_error(where, error)
    except Exception:  # pragma: no cover - even the default client failed
        _log.log_once(f"integration-report:{where}", "ERROR", "integration failed")


def _finite(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def summarize(data: Any) -> Dict[str, Any]:
    """A small JSON summary of an array, DataFrame, list or scalar: shape,
    dtypes, per-feature null counts and numeric min/max/mean. Never the rows."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - sklearn brings numpy
        return {"type": type(data).__name__}
    kind = type(data).__name__
    module = type(data).__module__
    if module.startswith("pandas") and hasattr(data, "columns"):
        return _summarize_frame(data)
    array = np.asarray(data) if not isinstance(data, np.ndarray) else data
    summary: Dict[str, Any] = {"type": kind, "shape": list(array.shape)}
    summary["dtype"] = str(array.dtype)
    if array.ndim == 0 or array.size == 0:
        return summary
    if array.dtype.kind in "biuf":
        matrix = array.reshape(array.shape[0], -1) if array.ndim > 1 else array[:, None]
        summary.update(_column_stats(np, matrix[:, :MAX_SUMMARY_COLUMNS]))
    return summary


def _column_stats(np: Any, matrix: Any) -> Dict[str, Any]:
    """Per-column NaN count, min, max and mean (NaN ignored, infinities not)
    of a 2-D numeric array, a block of rows at a time: converting the whole
    array to float64 at once cost 4.5x its size and 4x a linear model's
    predict (200k x 50 float32)."""
    rows, columns = matrix.shape
    nulls = np.zeros(columns, dtype=np.int64)
    low = np.full(columns, np.nan)
    high = np.full(columns, np.nan)
    total = np.zeros(columns)
    step = max(1, SUMMARY_BLOCK // max(columns, 1))
    with np.errstate(all="ignore"):
        for start in range(0, rows, step):
            block = matrix[start : start + step]
            if block.dtype.kind != "f":
                block = block.astype(np.float64)
            present = ~np.isnan(block)
            nulls += block.shape[0] - present.sum(axis=0)
            low = np.fmin(low, np.fmin.reduce(block, axis=0))  # fmin skips NaN
            high = np.fmax(high, np.fmax.reduce(block, axis=0))
            total += np.add.reduce(block, axis=0, dtype=np.float64, where=present)
        mean = total / (rows - nulls)
    return {
        "null_count": [int(n) for n in nulls],
        "min": [_finite(v) for v in low],
        "max": [_finite(v) for v in high],
        "mean": [_finite(v) for v in mean],
    }


def _summarize_frame(frame: Any) -> Dict[str, Any]:
    columns: List[Dict[str, Any]] = []
    for name in list(frame.columns)[:MAX_SUMMARY_COLUMNS]:
        series = frame[name]
        column: Dict[str, Any] = {
            "name": str(name),
            "dtype": str(series.dtype),
            "null_count": int(series.isna().sum()),
        }
        if series.dtype.kind in "biuf":
            column["min"] = _finite(series.min())
            column["max"] = _finite(series.max())
            column["mean"] = _finite(series.mean())
        columns.append(column)
    return {"type": "DataFrame", "shape": list(frame.shape), "columns": columns}


def class_distribution(predictions: Any) -> Optional[Dict[str, int]]:
    """Counts per predicted class, when there are few classes; else None."""
    try:
        import numpy as np

        array = np.asarray(predictions)
        if array.ndim != 1 or array.dtype.kind == "f":
            return None
        values, counts = np.unique(array, return_counts=True)
        if len(values) > MAX_CLASSES:
            return None
        return {str(v): int(c) for v, c in zip(values.tolist(), counts.tolist())}
    except Exception:
        return None


def batch_size(data: Any) -> Optional[int]:
    """Rows in a batch (first dimension), if known."""
    shape = getattr(data, "shape", None)
    if shape:
        return int(shape[0])
    try:
        return len(data)
    except TypeError:
        return None


_row_rng = random.Random()


def sample_rows(
    count: int, rate: float, cap: int, rng: Optional[random.Random] = None
) -> List[int]:
    """Indices of the rows to log one by one: about ``rate`` of ``count``
    (randomly chosen, by ``rng`` when given), never more than ``cap``."""
    if count <= 0 or rate <= 0 or cap <= 0:
        return []
    rng = rng or _row_rng
    expected = count * min(rate, 1.0)
    wanted = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
    return sorted(rng.sample(range(count), min(wanted, cap, count)))


def row_value(data: Any, index: int) -> Any:
    """Row ``index`` of a DataFrame (a dict), an array or a list (its item)."""
    if hasattr(data, "iloc"):
        row = data.iloc[index]
        return row.to_dict() if hasattr(row, "to_dict") else row
    item = data[index]
    return item.tolist() if hasattr(item, "tolist") else item


def log_sampled_rows(
    client: VDTClient,
    count: int,
    rate: float,
    cap: int,
    row_input: Any,
    row_output: Any,
    model_name: str,
    model_version: Optional[str],
    framework: str,
    row_fields: Optional[Callable[[int], Dict[str, Any]]] = None,
    rng: Optional[random.Random] = None,
) -> None:
    """Opt-in per-row logging: a sample of ``count`` rows, each as a ModelCall
    (``row_input(i)``, ``row_output(i)``, and the typed fields
    ``row_fields(i)`` gives), sent through the bulk path."""
    rows = sample_rows(count, rate, cap, rng)
    if rows:
        extra = row_fields or (lambda i: {})
        client.log_model_calls(
            [
                {"input_data": row_input(i), "prediction": row_output(i), **extra(i)}
                for i in rows
            ],
            model_name=model_name,
            model_version=model_version,
            tags={"framework": framework, "row": "sampled"},
        )
