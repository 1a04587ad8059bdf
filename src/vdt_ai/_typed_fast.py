"""The fast path's checks and bytes for a model call's typed ML fields.

``prediction_label``, ``prediction_score``, ``class_probabilities``,
``embedding`` (with ``embedding_name``) and ``feature_importance`` are checked
here on the caller's values, the way :class:`vdt_ai.models.ModelCall`
validates them, and written as wire bytes. A value this module does not take
as it is (a ``str`` subclass, a number that needs converting, text the
denylist would mask, an invalid value...) makes the whole call take the
reference path, which then gives the exact conversion or error.
``tests/unit/test_pipeline_differential.py`` holds both paths to the same
bytes and errors.
"""

import math
import struct
import sys
from typing import Any, Callable, Dict, Optional

from ._jsonlike import valid_text
from .codec._payloads import write_typed_fields
from .models import (
    MAX_CLASSES,
    MAX_EMBEDDING_DIMENSION,
    MAX_FEATURES,
    MAX_LABEL_LENGTH,
    MAX_NAME_LENGTH,
    EmbeddingDType,
)

_MAX_EXACT_FLOAT_INT = 2**53
_PACK_CODE = {EmbeddingDType.FLOAT32: "f", EmbeddingDType.FLOAT16: "e"}
_INFINITY = float("inf")
_FLOAT32_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]
# No call gave a typed field: nothing to write.
NONE_GIVEN = b""


def plain_label(value: Any) -> bool:
    """True for a label (``prediction_label``, ``actual_label``) the fast
    path may send as it is."""
    return _text(value, 0, MAX_LABEL_LENGTH)


def _text(value: Any, shortest: int, longest: int) -> bool:
    # Strict str, length in range, valid UTF-8, and no API key to mask.
    return (
        type(value) is str
        and shortest <= len(value) <= longest
        and "vdt_" not in value
        and (value.isascii() or valid_text(value))
    )


def finite_number(value: Any) -> Optional[float]:
    """``value`` as the float a ``FiniteFloat`` field keeps, for the exact
    types that float() converts without rounding; else None."""
    kind = type(value)
    if kind is float:
        return value if value - value == 0.0 else None
    if kind is int and -_MAX_EXACT_FLOAT_INT <= value <= _MAX_EXACT_FLOAT_INT:
        return float(value)
    return None


def _number_map(
    value: Any, limit: int, longest: int, low: float, high: float
) -> Optional[Dict[str, float]]:
    """``value`` as a name -> number map the model would keep as it is (ints
    made floats), or None for the reference path."""
    if type(value) is not dict or len(value) > limit:
        return None
    converted: Optional[Dict[str, float]] = None
    for name, number in value.items():
        if not _text(name, 1, longest):
            return None
        if type(number) is not float:
            number = finite_number(number)
            if number is None:
                return None
            if converted is None:
                converted = dict(value)
            converted[name] = number
        if not (low <= number <= high and number - number == 0.0):
            return None
    return value if converted is None else converted


def _vector_bytes(value: Any, dtype: EmbeddingDType) -> Optional[bytes]:
    """An embedding packed as ``dtype`` (little-endian), or None for the
    reference path: lists and tuples of floats, and one-dimensional float
    numpy arrays."""
    kind = type(value)
    if kind is not list and kind is not tuple:
        if kind.__module__ != "numpy" or kind.__name__ != "ndarray":
            return None
        if (
            dtype is EmbeddingDType.FLOAT32
            and value.ndim == 1
            and value.dtype.char in "efd"
            and 0 < value.size <= MAX_EMBEDDING_DIMENSION
        ):
            # float16/32/64 to float32 rounds as struct's "f" does. Checked
            # before the cast: a float64 beyond the float32 range would make
            # numpy warn; NaN fails the comparison.
            numpy = sys.modules["numpy"]
            if value.dtype.char == "d":
                if not numpy.abs(value).max() <= _FLOAT32_MAX:
                    return None
            elif not numpy.isfinite(value).all():
                return None
            return value.astype("<f4").tobytes()  # type: ignore[no-any-return]
        value = value.tolist()  # what the model reads, then the same checks
        if type(value) is not list:
            return None
    size = len(value)
    if not 0 < size <= MAX_EMBEDDING_DIMENSION:
        return None
    # Exact floats only: the model converts ints and refuses bools.
    if set(map(type, value)) != {float}:
        return None
    try:
        packed_bytes = struct.pack(f"<{size}{_PACK_CODE[dtype]}", *value)
        # Finite values only (a sum of values in the dtype's range is finite).
        total = math.fsum(value)
    except (OverflowError, ValueError, struct.error):
        return None
    if total - total != 0.0:
        return None
    return packed_bytes


def typed_fields_bytes(
    label: Any,
    score: Any,
    probabilities: Any,
    vector: Any,
    vector_name: Any,
    importance: Any,
    dtype: EmbeddingDType,
) -> Optional[bytes]:
    """A model call's typed ML fields as payload bytes (:data:`NONE_GIVEN`
    when none is given), or None when the call must take the reference path.

    Args:
        label: ``prediction_label`` (None = not given, as for all of them).
        score: ``prediction_score``.
        probabilities: ``class_probabilities``.
        vector: ``embedding``.
        vector_name: ``embedding_name``.
        importance: ``feature_importance``.
        dtype: the client's ``embedding_dtype`` setting.
    """
    if (
        label is None
        and score is None
        and probabilities is None
        and vector is None
        and vector_name is None
        and importance is None
    ):
        return NONE_GIVEN
    if label is not None and not plain_label(label):
        return None
    if score is not None:
        score = finite_number(score)
        if score is None:
            return None
    if probabilities is not None:
        probabilities = _number_map(
            probabilities, MAX_CLASSES, MAX_LABEL_LENGTH, 0.0, 1.0
        )
        if probabilities is None:
            return None
    if importance is not None:
        importance = _number_map(
            importance, MAX_FEATURES, MAX_NAME_LENGTH, -_INFINITY, _INFINITY
        )
        if importance is None:
            return None
    packed = None
    if vector is not None:
        packed = _vector_bytes(vector, dtype)
        if packed is None:
            return None
    if vector_name is not None and (
        packed is None
        or not _text(vector_name, 1, MAX_NAME_LENGTH)
        or vector_name.isspace()
    ):
        return None
    return write_typed_fields(
        label,
        score,
        probabilities,
        packed,
        dtype,
        vector_name,
        importance,
    )


def typed_fields_of(
    get: Callable[[str], Any], dtype: EmbeddingDType
) -> Optional[bytes]:
    """:func:`typed_fields_bytes` of the arguments that ``get`` reads by name
    (a call's or a bulk row's ``dict.get``)."""
    return typed_fields_bytes(
        get("prediction_label"),
        get("prediction_score"),
        get("class_probabilities"),
        get("embedding"),
        get("embedding_name"),
        get("feature_importance"),
        dtype,
    )
