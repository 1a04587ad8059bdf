"""Turns the free-form values users log into plain JSON values, or says why not.

``input_data``, ``prediction``, ``actual`` and similar fields accept what ML
code has at hand. Each value becomes ``None``, ``bool``, ``int``, ``float``,
``str``, ``list`` or ``dict`` (string keys) before the event is accepted, so
the event that is decoded later equals the event that was logged:

* numpy scalars become Python numbers; numpy arrays become nested lists;
* ``datetime``/``date``/``time`` (pandas ``Timestamp`` too) become ISO 8601
  strings, pandas ``NaT`` becomes ``None``;
* ``Decimal`` becomes its exact decimal string (``"12.30"``), ``UUID`` its
  canonical string, ``bytes`` a base64 string, an ``Enum`` its value;
* tuples become lists; sets become sorted lists; ``int`` dict keys become strings;
* Pydantic models and dataclasses become dicts.

Rejected, with the path to the bad part: NaN and infinite floats (JSON has no
such numbers), non-string dict keys other than integers, nesting deeper than
:data:`MAX_DEPTH`, and any other object (pandas frames included: summarise
them, or pass ``df.to_dict()``).
"""

import base64
import dataclasses
import datetime as dt
import enum
import math
import uuid
from decimal import Decimal
from typing import Any, Callable, Dict, List, Union

JSONValue = Union[None, bool, int, float, str, List[Any], Dict[str, Any]]

MAX_DEPTH = 64

_PLAIN_SCALARS = (str, bool, type(None))


class JSONLikeError(ValueError):
    """A value that cannot become JSON; ``path`` shows where it sits."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        where = f"at {path}: " if path else ""
        super().__init__(f"{where}{reason}")


def to_json_value(value: Any) -> JSONValue:
    """Returns ``value`` as plain JSON data; raises :class:`JSONLikeError`.

    Values that are plain JSON already (the common case) are returned as they
    are, after one check that allocates nothing.
    """
    if _is_plain(value, 0):
        return value  # type: ignore[no-any-return]
    return _convert(value, "", 0)


_SCALAR_TYPES = frozenset((str, int, bool, type(None)))


def _is_plain(value: Any, depth: int) -> bool:
    # Exact types only: subclasses (numpy.float64, str enums) take the slow path.
    kind = type(value)
    if kind in _SCALAR_TYPES:
        return True
    if kind is float:
        return math.isfinite(value)
    if depth >= MAX_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            kind = type(item)
            if kind in _SCALAR_TYPES:
                continue
            if not _is_plain(item, depth + 1):
                return False
        return True
    if kind is list:
        for item in value:
            if type(item) in _SCALAR_TYPES:
                continue
            if not _is_plain(item, depth + 1):
                return False
        return True
    return False


def _convert(value: Any, path: str, depth: int) -> JSONValue:
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return value  # type: ignore[no-any-return]
    if kind is float:
        if math.isfinite(value):
            return value  # type: ignore[no-any-return]
        raise JSONLikeError(path, f"{value!r} is not a finite number; JSON has none")
    if depth >= MAX_DEPTH:
        raise JSONLikeError(path, f"nested deeper than {MAX_DEPTH} levels")
    if kind is dict:
        return _convert_dict(value, path, depth)
    if kind is list or kind is tuple:
        return [_convert(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    return _convert_other(value, path, depth)


def _convert_dict(value: Dict[Any, Any], path: str, depth: int) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, item in value.items():
        if type(key) is not str:
            if isinstance(key, str):
                key = str(key)
            elif isinstance(key, int) and not isinstance(key, bool):
                key = str(int(key))
            elif isinstance(key, enum.Enum) and isinstance(key.value, str):
                key = key.value
            else:
                raise JSONLikeError(
                    path, f"dict key {type(key).__name__} is not a string"
                )
        out[key] = _convert(item, f"{path}[{key!r}]", depth + 1)
    return out


def _convert_other(value: Any, path: str, depth: int) -> JSONValue:
    converter = _find_converter(value)
    if converter is None:
        raise JSONLikeError(
            path,
            f"{type(value).__module__}.{type(value).__qualname__} is not JSON-like "
            "(use dicts, lists, strings, numbers, booleans or None)",
        )
    try:
        converted = converter(value)
    except (TypeError, ValueError) as exc:
        raise JSONLikeError(path, f"cannot convert {type(value).__name__}: {exc}")
    return _convert(converted, path, depth + 1)


def _find_converter(value: Any) -> Union[Callable[[Any], Any], None]:
    # Ordered from common to rare; subclasses of the plain types land here too.
    if isinstance(value, bool):
        return bool
    if isinstance(value, int):
        return int
    if isinstance(value, float):
        return float
    if isinstance(value, str):
        return str
    if isinstance(value, dict):
        return dict
    if isinstance(value, (list, tuple)):
        return list
    module = type(value).__module__
    if module == "numpy" or module.startswith("numpy."):
        return _from_numpy(value)
    if type(value).__name__ == "NaTType":
        return lambda _: None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return _isoformat
    if isinstance(value, Decimal):
        return _from_decimal
    if isinstance(value, uuid.UUID):
        return str
    if isinstance(value, (bytes, bytearray, memoryview)):
        return lambda v: base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(value, enum.Enum):
        return lambda v: v.value
    if isinstance(value, (set, frozenset)):
        return _sorted_if_possible
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return lambda v: v.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict
    return None


def _from_numpy(value: Any) -> Union[Callable[[Any], Any], None]:
    if hasattr(value, "tolist") and hasattr(value, "ndim"):
        # ndarray and numpy scalars alike; datetime64 gives datetime or int.
        return lambda v: v.tolist()
    return None


def _isoformat(value: Union[dt.datetime, dt.date, dt.time]) -> str:
    return value.isoformat()


def _from_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite number; JSON has none")
    return str(value)


def _sorted_if_possible(value: Any) -> List[Any]:
    try:
        return sorted(value)
    except TypeError:
        return list(value)
