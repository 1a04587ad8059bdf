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
such numbers); integers outside ``-2**63 .. 2**64-1`` (what JSON consumers read
exactly, and what fits in a 64-bit column); text holding lone UTF-16 surrogates
(not valid Unicode, so not valid UTF-8 JSON), in keys as in values; non-string
dict keys other than integers; nesting deeper than :data:`MAX_DEPTH` (a value
that refers to itself ends there too); objects that raise while being read
(a ``__str__``, ``model_dump`` or ``__iter__`` that fails, a dict changed by
another thread during the call); and any other object (pandas frames included:
summarise them, or pass ``df.to_dict()``).
"""

import base64
import dataclasses
import datetime as dt
import enum
import math
import re
import uuid
from decimal import Decimal
from typing import Any, Callable, Dict, List, Union

from ._redact import redact

JSONValue = Union[None, bool, int, float, str, List[Any], Dict[str, Any]]

MAX_DEPTH = 64
MIN_INT = -(2**63)
MAX_INT = 2**64 - 1

_SURROGATE = re.compile("[\ud800-\udfff]")
_BAD_TEXT = "holds a lone UTF-16 surrogate (not valid Unicode, cannot be sent as UTF-8)"
_BAD_INT = "integer out of range: JSON values must be -2**63 .. 2**64-1"


class JSONLikeError(ValueError):
    """A value that cannot become JSON; ``path`` shows where it sits."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        if len(path) > 120:  # e.g. a value that refers to itself
            path = "…" + redact(path)[-120:]  # masked before it is cut
        where = f"at {path}: " if path else ""
        super().__init__(f"{where}{reason}")


def valid_text(text: str) -> bool:
    """``True`` when ``text`` can be encoded as UTF-8 (no lone surrogates)."""
    return text.isascii() or _SURROGATE.search(text) is None


def to_json_value(value: Any) -> JSONValue:
    """Returns ``value`` as plain JSON data; raises :class:`JSONLikeError`.

    Values that are plain JSON already (the common case) are returned as they
    are, after one check that allocates nothing. Nothing but
    :class:`JSONLikeError` escapes, whatever the value's objects do.
    """
    try:
        if _is_plain(value, 0):
            return value  # type: ignore[no-any-return]
    except Exception:  # e.g. changed by another thread: the slow path says where
        pass
    try:
        return _convert(value, "", 0)
    except JSONLikeError:
        raise
    except RecursionError:
        raise JSONLikeError("", "nested too deeply (does it refer to itself?)")
    except Exception as exc:  # the value's own code failed; never echo it
        raise JSONLikeError("", f"could not be read ({type(exc).__name__})")


def _is_plain(value: Any, depth: int) -> bool:
    # Exact types only: subclasses (numpy.float64, str enums) take the slow path.
    kind = type(value)
    if kind is str:
        return value.isascii() or _SURROGATE.search(value) is None
    if kind is int:
        return MIN_INT <= value <= MAX_INT  # type: ignore[no-any-return]
    if kind is float:
        return math.isfinite(value)
    if kind is bool or value is None:
        return True
    if depth >= MAX_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not (
                key.isascii() or _SURROGATE.search(key) is None
            ):
                return False
            if not _is_plain(item, depth + 1):
                return False
        return True
    if kind is list:
        for item in value:
            if not _is_plain(item, depth + 1):
                return False
        return True
    return False


def _convert(value: Any, path: str, depth: int) -> JSONValue:
    kind = type(value)
    if kind is str:
        if value.isascii() or _SURROGATE.search(value) is None:
            return value  # type: ignore[no-any-return]
        raise JSONLikeError(path, f"text {_BAD_TEXT}")
    if kind is int:
        if MIN_INT <= value <= MAX_INT:
            return value  # type: ignore[no-any-return]
        raise JSONLikeError(path, _BAD_INT)
    if kind is bool or value is None:
        return value  # type: ignore[no-any-return]
    if kind is float:
        if math.isfinite(value):
            return value  # type: ignore[no-any-return]
        raise JSONLikeError(path, f"{value!r} is not a finite number; JSON has none")
    if depth >= MAX_DEPTH:
        raise JSONLikeError(
            path, f"nested deeper than {MAX_DEPTH} levels (does it refer to itself?)"
        )
    if kind is dict:
        return _convert_dict(value, path, depth)
    if kind is list or kind is tuple:
        try:
            items = list(value)  # one C-level copy: safe from other threads
        except Exception as exc:
            raise JSONLikeError(path, f"could not be read ({type(exc).__name__})")
        return [_convert(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(items)]
    return _convert_other(value, path, depth)


def _convert_dict(value: Dict[Any, Any], path: str, depth: int) -> Dict[str, Any]:
    try:
        # A C-level copy: another thread cannot change it between items.
        items = list(value.items())
    except Exception as exc:
        raise JSONLikeError(path, f"could not be read ({type(exc).__name__})")
    out: Dict[str, Any] = {}
    for key, item in items:
        if type(key) is not str:
            key = _dict_key(key, path)
        if not (key.isascii() or _SURROGATE.search(key) is None):
            raise JSONLikeError(path, f"a dict key {_BAD_TEXT}")
        out[key] = _convert(item, f"{path}[{key!r}]", depth + 1)
    return out


def _dict_key(key: Any, path: str) -> str:
    try:
        if isinstance(key, str):
            # A str subclass is asked for its text once (what json.dumps and
            # f-strings would see); one that cannot give it is bad input.
            # The key kept is the text it holds, not what an override returns.
            str(key)
            return str.__str__(key)
        if isinstance(key, int) and not isinstance(key, bool):
            if not MIN_INT <= key <= MAX_INT:
                raise JSONLikeError(path, f"dict key: {_BAD_INT}")
            return str(int(key))
        if isinstance(key, enum.Enum) and isinstance(key.value, str):
            return str.__str__(key.value)
    except JSONLikeError:
        raise
    except Exception as exc:
        raise JSONLikeError(
            path,
            f"dict key {type(key).__name__} could not be read "
            f"({type(exc).__name__})",
        )
    raise JSONLikeError(path, f"dict key {type(key).__name__} is not a string")


def _convert_other(value: Any, path: str, depth: int) -> JSONValue:
    try:
        converter = _find_converter(value)
    except Exception as exc:
        raise JSONLikeError(
            path, f"{type(value).__name__} could not be read ({type(exc).__name__})"
        )
    if converter is None:
        raise JSONLikeError(
            path,
            f"{type(value).__module__}.{type(value).__qualname__} is not JSON-like "
            "(use dicts, lists, strings, numbers, booleans or None)",
        )
    try:
        converted = converter(value)
    except JSONLikeError:
        raise
    except (TypeError, ValueError) as exc:
        raise JSONLikeError(path, f"cannot convert {type(value).__name__}: {exc}")
    except Exception as exc:  # the object's own code failed; never echo it
        raise JSONLikeError(
            path,
            f"cannot convert {type(value).__name__}: {type(exc).__name__} "
            "raised while reading it",
        )
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
        return str.__str__  # the text itself, whatever __str__ does
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
        return _dataclass_fields
    return None


def _dataclass_fields(value: Any) -> Dict[str, Any]:
    # One level only (dataclasses.asdict recurses without limit): the fields
    # are converted like any value, so a dataclass that refers to itself stops
    # at MAX_DEPTH instead of exhausting the stack.
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


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
    items = list(value)
    try:
        return sorted(items)
    except Exception:  # mixed or unorderable members keep their set order
        return items
