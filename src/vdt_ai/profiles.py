"""Mergeable data profiles built with Apache DataSketches.

:func:`profile` turns a table (pandas, pyarrow, polars, numpy, a list of
dicts or a mapping of columns) into a :class:`vdt_ai.DataProfile`: per column
its kind, count, null count, min/max/mean/stddev, a KLL quantile sketch
(numbers), an HLL distinct-count sketch (every kind) and a frequent items
sketch (strings and booleans), each in DataSketches' serialized binary form,
which its Java and C++ libraries read and merge on the platform side.
Profiles of parts merge into the profile of the whole
(:meth:`vdt_ai.DataProfile.merge`).

Needs the ``profiles`` extra (``pip install 'vdt-ai[profiles]'``:
``datasketches`` and ``numpy``); wheels of ``datasketches`` exist for CPython
3.8 (5.1) and 3.9 to 3.13 (5.2). Nothing here is imported by ``import vdt_ai``.

Sizes and error bounds (the defaults):

* KLL doubles sketch, ``k = 200``: normalized rank error about 1.33%
  (99% confidence, :data:`KLL_K`); serialized about 5 KB once it holds more
  than a few thousand values (5.0 KB at 1M values, 5.2 KB at 10M).
* HLL sketch, HLL_4, ``lg_k = 12``: relative error of the distinct count
  about 1.6% (one standard deviation, 3.3% at 95%); at most about 2.1 KB.
* Frequent strings sketch, ``lg_max_k = 7``: tracks up to 96 items; strings
  are cut to :data:`MAX_FREQUENT_ITEM_LENGTH` characters before they are
  counted, so a column's sketch stays under about 8 KB for ASCII text (about
  28 KB when every character takes 4 bytes in UTF-8).
* At most :data:`vdt_ai.models.MAX_PROFILE_COLUMNS` columns (1,000) per
  profile; choose them with ``columns=``. The encoded event must still fit
  ``max_event_bytes`` (1 MiB by default): about 100 ASCII text columns or
  140 numeric columns at full sketch sizes.

Numbers are hashed as doubles in the HLL sketch (``1`` and ``1.0`` are one
value; integers beyond 2**53 lose precision there); NaN, NaT, ``None``,
pandas' ``NA`` and infinities count as nulls. Python ``date`` values are
datetimes (midnight UTC) and ``Decimal`` values numbers, as pyarrow's
``date32`` and ``decimal128`` columns are. Dates after 2261 keep their value
(numpy's nanoseconds stop there). Two columns whose names are one as text
(``1`` and ``"1"``, or cut to 256 characters) are refused.
"""

import collections
import datetime as dt
import math
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import (
    Any,
    Deque,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Set,
    Tuple,
)

from . import _lifecycle
from ._jsonlike import valid_text
from .exceptions import ValidationError
from .models import (
    MAX_COUNT,
    MAX_NAME_LENGTH,
    MAX_PROFILE_COLUMNS,
    ColumnKind,
    ColumnSketches,
    DataProfile,
    build_event,
    utc_now,
)

KLL_K = 200
HLL_LG_K = 12
FREQUENT_LG_MAX_K = 7
MAX_FREQUENT_ITEM_LENGTH = 128
INSTALL_HINT = "data profiles need the profiles extra: pip install 'vdt-ai[profiles]'"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_TRUE_FALSE = {True: "true", False: "false"}

# A column ready to sketch: (kind, values). Numbers: a float64 numpy array
# with NaN for nulls (in an _OwnedFloats when made here). Datetimes: int64
# nanoseconds with None for nulls, as a list. Others: a list with None for
# nulls.
_Column = Tuple[ColumnKind, Any]


class _OwnedFloats(NamedTuple):
    """A number column's float64 array made here (not the caller's): it may
    be sorted in place."""

    values: Any


class _Nanos(NamedTuple):
    """A date/time column read by numpy, pandas, pyarrow or polars: its
    non-null values (int64 nanoseconds since the epoch) and its length."""

    present: Any
    total: int


def _libraries() -> Tuple[Any, Any]:
    try:
        import datasketches
        import numpy
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from None
    return datasketches, numpy


def profile(
    data: Any,
    *,
    columns: Optional[Sequence[str]] = None,
    dataset_name: str = "unnamed",
) -> DataProfile:
    """Profiles ``data`` column by column, in one vectorised pass.

    Args:
        data: a pandas DataFrame or Series, a pyarrow Table or RecordBatch, a
            polars DataFrame, a numpy array (1-D: one column ``value``; 2-D:
            columns ``"0"``, ``"1"``...; structured: its field names), a list
            of dicts (rows; a key missing from a row is a null), or a mapping
            of column name -> sequence.
        columns: the columns to profile (default all, at most 1,000).
        dataset_name: the profile's dataset name;
            :meth:`vdt_ai.VDTClient.log_data_profile` sets its own.

    Returns:
        The profile; its window is the time it was built.

    Raises:
        ImportError: ``datasketches`` or ``numpy`` is not installed.
        ValidationError: ``data`` is not a table this function reads, a
            named column does not exist, or there are too many columns.
    """
    ds, np = _libraries()
    start = utc_now()
    rows, table = _columns_of(data, np)
    if columns is not None:
        if isinstance(columns, (str, bytes)) or not isinstance(columns, Iterable):
            raise ValidationError(
                [
                    (
                        "columns",
                        "must be a list of column names, not a "
                        f"{type(columns).__name__}",
                    )
                ]
            )
        wanted = [str(name) for name in columns]
        missing = [name for name in wanted if name not in table]
        if missing:
            raise ValidationError(
                [("columns", f"no such column(s): {', '.join(missing[:5])}")]
            )
        table = {name: table[name] for name in wanted}
    if len(table) > MAX_PROFILE_COLUMNS:
        raise ValidationError(
            [
                (
                    "columns",
                    f"{len(table)} columns, more than {MAX_PROFILE_COLUMNS}; "
                    "choose some with columns=",
                )
            ]
        )
    names = {name: _column_name(name) for name in table}
    _unique(names.values())
    sketched = {
        names[name]: _sketch(kind, values, ds, np)
        for name, (kind, values) in table.items()
    }
    return build_event(
        DataProfile,
        {
            "dataset_name": dataset_name,
            "row_count": rows,
            "columns": sketched,
            "window_start": start,
            "window_end": utc_now(),
            "kll_k": KLL_K,
            "hll_lg_k": HLL_LG_K,
            "frequent_lg_max_k": FREQUENT_LG_MAX_K,
        },
    )


def _unique(names: Iterable[str]) -> None:
    """Raises a ValidationError when two columns have one name (as text, cut
    to MAX_NAME_LENGTH characters): one would hide the other."""
    names = list(names)
    if len(set(names)) < len(names):
        seen: Dict[str, None] = {}
        twice = [n for n in names if n in seen or seen.setdefault(n, None)]
        raise ValidationError(
            [
                (
                    "columns",
                    f"two columns are named {twice[0][:64]!r} (as text, cut to "
                    f"{MAX_NAME_LENGTH} characters); rename one or choose some "
                    "with columns=",
                )
            ]
        )


def _column_name(name: Any) -> str:
    text = _utf8(str(name)) or "(empty)"
    return text if len(text) <= MAX_NAME_LENGTH else text[:MAX_NAME_LENGTH]


# -- reading tables ---------------------------------------------------------------


def _columns_of(data: Any, np: Any) -> Tuple[int, Dict[str, _Column]]:
    """(row count, column name -> column) of any supported table."""
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        if hasattr(data, "to_frame") and not hasattr(data, "columns"):
            data = data.to_frame(name=str(data.name or "value"))
        _unique(map(str, data.columns))
        return len(data), {
            str(name): _pandas_column(data.iloc[:, i], np)
            for i, name in enumerate(data.columns)
        }
    if module == "pyarrow" and hasattr(data, "num_rows") and hasattr(data, "schema"):
        _unique(data.schema.names)
        return data.num_rows, {
            name: _arrow_column(data.column(i), np)
            for i, name in enumerate(data.schema.names)
        }
    if module == "pyarrow" and hasattr(data, "type") and hasattr(data, "null_count"):
        return len(data), {"value": _arrow_column(data, np)}  # an (chunked) array
    if module == "polars" and hasattr(data, "height"):
        return data.height, {s.name: _polars_column(s, np) for s in data}
    if module == "polars" and hasattr(data, "to_frame") and hasattr(data, "dtype"):
        return len(data), {data.name or "value": _polars_column(data, np)}
    if isinstance(data, np.ndarray):
        return _numpy_columns(data, np)
    if isinstance(data, Mapping):
        sizes = set()
        columns: Dict[str, _Column] = {}
        _unique(map(str, data))
        for key, values in data.items():
            # A numpy array or a pandas Series is read as one (vectorised,
            # and its dtype kept: datetime64 values are dates, not numbers).
            module = type(values).__module__
            if isinstance(values, np.ndarray) and values.ndim == 1:
                columns[str(key)] = _numpy_column(values, np)
            elif module.startswith("pandas") and (
                getattr(values, "ndim", 0) == 1 and hasattr(values, "dtype")
            ):
                columns[str(key)] = _pandas_column(values, np)
            elif module.startswith("pyarrow") and hasattr(values, "null_count"):
                columns[str(key)] = _arrow_column(values, np)  # nulls are None
            else:
                values = _column_values(key, values, np)
                columns[str(key)] = _infer(values, np)
            sizes.add(len(values))
        if len(sizes) > 1:
            raise ValidationError([("data", "columns have different lengths")])
        rows = sizes.pop() if sizes else 0
        return rows, columns
    if isinstance(data, (list, tuple)) and all(isinstance(r, Mapping) for r in data):
        return len(data), _rows_to_columns(data, np)
    raise ValidationError(
        [
            (
                "data",
                "must be a pandas, pyarrow or polars table, a numpy array, a "
                f"list of dicts or a mapping of columns, not {type(data).__name__}",
            )
        ]
    )


def _column_values(key: Any, values: Any, np: Any) -> List[Any]:
    """The values of one column of a mapping, as a list."""
    problem = None
    if isinstance(values, (str, bytes, Mapping)) or (
        isinstance(values, np.ndarray) and values.ndim != 1
    ):
        problem = f"not {type(values).__name__}"
    else:
        try:
            return list(values)
        except TypeError:  # not iterable
            problem = f"not {type(values).__name__}"
    raise ValidationError(
        [(f"data.{key}", f"a column must be a sequence of values, {problem}")]
    )


def _rows_to_columns(rows: Sequence[Mapping[str, Any]], np: Any) -> Dict[str, _Column]:
    names: Dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    _unique(map(str, names))
    return {str(name): _infer([row.get(name) for row in rows], np) for name in names}


def _numpy_columns(array: Any, np: Any) -> Tuple[int, Dict[str, _Column]]:
    if isinstance(array, np.matrix):  # its columns are 2-D
        array = np.asarray(array)
    if array.dtype.names:
        return len(array), {
            name: _numpy_column(array[name], np) for name in array.dtype.names
        }
    if array.ndim == 1:
        return len(array), {"value": _numpy_column(array, np)}
    if array.ndim == 2:
        return array.shape[0], {
            str(i): _numpy_column(array[:, i], np) for i in range(array.shape[1])
        }
    raise ValidationError([("data", "a numpy array must have 1 or 2 dimensions")])


def _numpy_column(values: Any, np: Any) -> _Column:
    if isinstance(values, np.ma.MaskedArray):
        values = _unmasked(values, np)
    kind = values.dtype.kind
    if values.ndim != 1:  # a sub-array field: one array a row
        return ColumnKind.OTHER, [str(v) for v in values.tolist()]
    if kind == "b":
        return ColumnKind.BOOLEAN, values.tolist()
    if kind in "iuf":
        if values.dtype == np.float64:  # the caller's own: never reordered
            return ColumnKind.NUMBER, values
        # A new array (ints, float32...): sorted in place, no second copy.
        return ColumnKind.NUMBER, _OwnedFloats(values.astype(np.float64))
    if kind == "M":
        return ColumnKind.DATETIME, _Nanos(
            _datetime64_nanos(values[~np.isnat(values)], np), len(values)
        )
    return _infer(values.tolist(), np)


def _unmasked(values: Any, np: Any) -> Any:
    """A masked array's values with its masked ones missing (NaN, NaT or
    None), as pandas reads it; they held whatever the array had there."""
    mask = np.ma.getmaskarray(values)
    data = np.ma.getdata(values)
    if not mask.any():
        return data
    if data.dtype.kind in "iuf":
        data = data.astype(np.float64)
    elif data.dtype.kind in "mM":
        data = data.copy()
    else:
        data = data.astype(object)
    data[mask] = None  # NaN in floats, NaT in dates
    return data


_NANOS_PER = {
    "W": 7 * 86_400 * 10**9,
    "D": 86_400 * 10**9,
    "h": 3_600 * 10**9,
    "m": 60 * 10**9,
    "s": 10**9,
    "ms": 10**6,
    "us": 10**3,
}
_INT64_MAX = 2**63 - 1


def _datetime64_nanos(values: Any, np: Any) -> Any:
    """Nanoseconds since the epoch of datetime64 ``values`` (no NaT): int64,
    or Python ints (an object array) where some lie beyond int64 nanoseconds
    (years before 1678 or after 2261), which astype() would wrap silently."""
    if not values.size:
        return np.empty(0, dtype=np.int64)
    unit, step = np.datetime_data(values.dtype)
    if unit in ("ns", "ps", "fs", "as"):  # within int64 nanoseconds
        return values.astype("datetime64[ns]").astype(np.int64)
    if unit in ("Y", "M"):  # of varying length: as days
        values, unit, step = values.astype("datetime64[D]"), "D", 1
    factor = _NANOS_PER[unit] * step
    ticks = values.astype(np.int64)  # of its own unit
    limit = _INT64_MAX // factor
    if -limit <= int(ticks.min()) and int(ticks.max()) <= limit:
        return ticks * factor
    return np.array([tick * factor for tick in ticks.tolist()], dtype=object)


def _pandas_values(series: Any) -> List[Any]:
    # Python values with None for every missing one (NaN, NA, NaT): pandas 3's
    # where(..., None) on object data writes NaN, not None.
    values = series.astype(object).tolist()
    try:
        missing = series.isna().tolist()
    except ArithmeticError:  # pandas' isna() on a signaling Decimal NaN
        import numpy

        missing = [
            v is None or _missing(v, numpy) or (type(v) is Decimal and v.is_nan())
            for v in values
        ]
    return [None if gone else value for value, gone in zip(values, missing)]


def _pandas_column(series: Any, np: Any) -> _Column:
    import pandas

    types = pandas.api.types
    dtype = series.dtype
    if types.is_bool_dtype(dtype):
        return ColumnKind.BOOLEAN, _pandas_values(series)
    if types.is_numeric_dtype(dtype) and not types.is_complex_dtype(dtype):
        floats = series.to_numpy(dtype=np.float64, na_value=np.nan)
        if isinstance(dtype, np.dtype) and dtype != np.float64:
            # Converted from ints or float32: a new array, sorted in place.
            return ColumnKind.NUMBER, _OwnedFloats(floats)
        # float64 or an extension type: may be the caller's memory.
        return ColumnKind.NUMBER, floats
    if isinstance(dtype, pandas.ArrowDtype):
        # pyarrow-backed (dates, text, lists, structs...): read as pyarrow's,
        # which keeps far dates that pandas' object conversion refuses.
        import pyarrow

        column = pyarrow.array(series)  # pandas 1.5 gives a ChunkedArray
        if not hasattr(column, "chunks"):
            column = pyarrow.chunked_array([column])
        return _arrow_column(column, np)
    if types.is_datetime64_any_dtype(dtype):
        if getattr(dtype, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        stamps = series.to_numpy()  # datetime64 of its own unit
        present = _datetime64_nanos(stamps[~np.isnat(stamps)], np)
        return ColumnKind.DATETIME, _Nanos(present, len(series))
    values = _pandas_values(series)
    if isinstance(dtype, pandas.CategoricalDtype) or types.is_string_dtype(dtype):
        if all(v is None or isinstance(v, str) for v in values):
            return ColumnKind.STRING, values
    return _infer(values, np)


def _arrow_column(column: Any, np: Any) -> _Column:
    import pyarrow
    import pyarrow.compute

    t = column.type
    types = pyarrow.types
    if types.is_integer(t) or types.is_floating(t) or types.is_decimal(t):
        # Unsafe: an integer beyond 2**53 is rounded, as numpy rounds it.
        floats = pyarrow.compute.cast(column, pyarrow.float64(), safe=False)
        return ColumnKind.NUMBER, _OwnedFloats(_arrow_numpy(floats, np.float64, np))
    if types.is_timestamp(t) or types.is_date(t):
        # Their integers (UTC), no cast to nanoseconds: that refuses dates
        # after 2261; _datetime64_nanos() takes them as Python ints.
        unit = t.unit if types.is_timestamp(t) else "D" if types.is_date32(t) else "ms"
        storage = pyarrow.int32() if types.is_date32(t) else pyarrow.int64()
        ticks = pyarrow.compute.drop_null(pyarrow.compute.cast(column, storage))
        stamps = _arrow_numpy(ticks, np.int64, np).view(f"datetime64[{unit}]")
        return ColumnKind.DATETIME, _Nanos(_datetime64_nanos(stamps, np), len(column))
    if types.is_boolean(t):
        return ColumnKind.BOOLEAN, column.to_pylist()
    if types.is_dictionary(t):  # read as its values' type
        return _arrow_column(pyarrow.compute.cast(column, t.value_type), np)
    try:
        values = column.to_pylist()
    except (OverflowError, ValueError):  # holds a date beyond Python's year 9999
        return ColumnKind.OTHER, _arrow_texts(column)
    return _infer(values, np)


def _arrow_texts(column: Any) -> List[Optional[str]]:
    """Each value of a pyarrow column as pyarrow writes it (which any date
    survives), None for nulls."""
    chunks = column.chunks if hasattr(column, "chunks") else [column]
    return [
        (
            None
            if gone
            else chunk.slice(i, 1).to_string(
                indent=0, window=1 << 30, skip_new_lines=True
            )
        )
        for chunk in chunks
        for i, gone in enumerate(chunk.is_null().to_pylist())
    ]


def _arrow_numpy(array: Any, dtype: Any, np: Any) -> Any:
    """A pyarrow Array or ChunkedArray as one numpy array of ``dtype``."""
    # Chunk by chunk: ChunkedArray.to_numpy() takes no zero_copy_only before
    # pyarrow 13, and Array.to_numpy() needs it for nulls (NaN).
    chunks = array.chunks if hasattr(array, "chunks") else [array]
    return np.concatenate(
        [np.empty(0, dtype=dtype)]
        + [
            np.asarray(chunk.to_numpy(zero_copy_only=False), dtype=dtype)
            for chunk in chunks
        ]
    )


def _polars_column(series: Any, np: Any) -> _Column:
    import polars

    dtype = series.dtype
    if dtype == polars.Boolean:
        return ColumnKind.BOOLEAN, series.to_list()
    if dtype.is_numeric():
        floats = series.cast(polars.Float64).fill_null(float("nan"))
        return ColumnKind.NUMBER, np.asarray(floats.to_numpy(), dtype=np.float64)
    if dtype.is_temporal() and dtype != polars.Time and dtype != polars.Duration:
        # As for pyarrow: its integers (days of a Date), no cast to ns.
        unit = getattr(dtype, "time_unit", None) or "D"
        storage = polars.Int32 if unit == "D" else polars.Int64
        ticks = series.cast(storage).drop_nulls()
        stamps = np.asarray(ticks.to_numpy(), dtype=np.int64).view(
            f"datetime64[{unit}]"
        )
        return ColumnKind.DATETIME, _Nanos(_datetime64_nanos(stamps, np), len(series))
    if dtype == polars.Categorical or dtype == polars.Enum:
        series = series.cast(polars.Utf8)
    return _infer(series.to_list(), np)


_NONE = type(None)
# Exact types -> kind: one set of the values' types decides most columns at C
# speed (rolling profiles infer every batch); anything else takes the loop.
_EXACT_KINDS = {
    frozenset({int}): ColumnKind.NUMBER,
    frozenset({float}): ColumnKind.NUMBER,
    frozenset({int, float}): ColumnKind.NUMBER,
    frozenset({str}): ColumnKind.STRING,
    frozenset({bool}): ColumnKind.BOOLEAN,
}


_NUMBER_TYPES = frozenset((float, int, type(None)))


def _infer(values: List[Any], np: Any) -> _Column:
    """The kind of a list of Python values, and the values to sketch."""
    types = set(map(type, values))
    odd = types - _NUMBER_TYPES
    if odd and not all(map(_real_number_type, odd)):
        # NaN among other kinds of values is a missing one (pandas writes a
        # missing string as NaN, and to_dict() rows carry it); so are pandas'
        # NA and NaT and numpy's NaN and NaT scalars. (Among numbers NaN is
        # a null already.)
        if types <= _PLAIN_TYPES:  # only float NaN to look for: at C speed
            if float in types:
                values = [None if type(v) is float and v != v else v for v in values]
        else:
            values = [None if _missing(v, np) else v for v in values]
        types = set(map(type, values))
    nulls = _NONE in types
    exact = _EXACT_KINDS.get(frozenset(types - {_NONE}))
    if exact is ColumnKind.NUMBER and not nulls:
        try:
            return exact, np.asarray(values, dtype=np.float64)
        except OverflowError:  # an int beyond float64: the loop below
            pass
    elif exact is not None and exact is not ColumnKind.NUMBER:
        return exact, values
    kinds = set()
    for value in values:
        if value is None:
            continue
        if isinstance(value, (bool, np.bool_)):
            kinds.add(ColumnKind.BOOLEAN)
        elif isinstance(value, str):
            kinds.add(ColumnKind.STRING)
        elif isinstance(value, np.timedelta64):  # an integer to numpy
            kinds.add(ColumnKind.OTHER)
        elif isinstance(value, (int, float, np.integer, np.floating, Decimal)):
            kinds.add(ColumnKind.NUMBER)  # Decimal: as pyarrow's decimals are
        elif isinstance(value, (dt.date, np.datetime64)):
            kinds.add(ColumnKind.DATETIME)  # a date: as pyarrow's date32 is
        else:
            kinds.add(ColumnKind.OTHER)
        if len(kinds) > 1:
            break
    if len(kinds) != 1:
        # All nulls (no kind) or mixed: sketched as text.
        return ColumnKind.OTHER, values
    kind = kinds.pop()
    if kind is ColumnKind.NUMBER:
        try:
            numbers = np.array(
                [math.nan if v is None else v for v in values], dtype=np.float64
            )
        except (TypeError, ValueError, OverflowError):
            return ColumnKind.OTHER, values
        return kind, numbers
    if kind is ColumnKind.DATETIME:
        # pandas' NaT is a datetime that equals nothing, itself included.
        return kind, [None if v is None or v != v else _nanos(v, np) for v in values]
    return kind, values


# Values of these exact types are never a null other than None and NaN.
_PLAIN_TYPES = frozenset((float, int, str, bool, type(None), bytes))


def _real_number_type(kind: type) -> bool:
    """Whether values of ``kind`` are real numbers (numpy's too), not bools."""
    import numpy

    return issubclass(kind, (int, float, numpy.integer, numpy.floating)) and not (
        issubclass(kind, (bool, numpy.bool_, numpy.timedelta64))
    )


def _missing(value: Any, np: Any) -> bool:
    """Whether ``value`` is a null of pandas or numpy (or a float or Decimal
    NaN)."""
    if isinstance(value, (float, np.floating, np.datetime64, np.timedelta64)):
        return bool(value != value)  # NaN and NaT equal nothing
    if isinstance(value, Decimal):  # as pandas reads it; != raises on sNaN
        return value.is_nan()
    name = type(value).__name__
    return name in ("NAType", "NaTType") and type(value).__module__.startswith("pandas")


def _nanos(value: Any, np: Any) -> int:
    if isinstance(value, np.datetime64):
        unit = np.datetime_data(value.dtype)[0]
        if unit in ("ns", "ps", "fs", "as"):
            return int(value.astype("datetime64[ns]").astype(np.int64))
        return int(value.astype("datetime64[us]").astype(np.int64)) * 1000
    if not isinstance(value, dt.datetime):  # a date: its midnight, UTC
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    delta: dt.timedelta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


# -- sketching ----------------------------------------------------------------------


def _sketch(kind: ColumnKind, values: Any, ds: Any, np: Any) -> ColumnSketches:
    if kind is ColumnKind.NUMBER:
        if isinstance(values, _OwnedFloats):
            return _number_sketches(values.values, ds, np, owned=True)
        return _number_sketches(values, ds, np)
    if isinstance(values, _Nanos):
        return _datetime_sketches(values, ds, np)
    total = len(values)
    present = [v for v in values if v is not None]
    hll = ds.hll_sketch(HLL_LG_K, ds.tgt_hll_type.HLL_4)
    fields: Dict[str, Any] = {"kind": kind, "count": len(present)}
    fields["null_count"] = total - len(present)
    if kind is ColumnKind.DATETIME:
        if present:
            _update_all(hll.update, (float(n) for n in set(present)))
            fields["min"] = min(present) / 1e9
            fields["max"] = max(present) / 1e9
    else:
        if kind is ColumnKind.BOOLEAN:
            texts = [_TRUE_FALSE[bool(v)] for v in present]
        elif kind is ColumnKind.STRING:
            texts = present
        else:
            texts = [str(v) for v in present]
        counts = Counter(texts)
        _update_all(hll.update, (_utf8(t) for t in counts))
        if kind in (ColumnKind.STRING, ColumnKind.BOOLEAN):
            frequent = ds.frequent_strings_sketch(FREQUENT_LG_MAX_K)
            for text, weight in counts.items():
                frequent.update(_utf8(text)[:MAX_FREQUENT_ITEM_LENGTH], weight)
            fields["frequent"] = frequent.serialize()
    fields["distinct"] = hll.serialize_compact()
    return ColumnSketches(**fields)


def _datetime_sketches(values: _Nanos, ds: Any, np: Any) -> ColumnSketches:
    # As the loop in _sketch() does for Python datetimes, in numpy: the HLL
    # takes each value as a float, min and max are seconds since the epoch.
    present = values.present
    count = int(present.size)
    hll = ds.hll_sketch(HLL_LG_K, ds.tgt_hll_type.HLL_4)
    fields: Dict[str, Any] = {
        "kind": ColumnKind.DATETIME,
        "count": count,
        "null_count": values.total - count,
    }
    if count:
        hll = _number_hll(present.astype(np.float64), hll, ds, np)
        fields["min"] = int(present.min()) / 1e9
        fields["max"] = int(present.max()) / 1e9
    fields["distinct"] = hll.serialize_compact()
    return ColumnSketches(**fields)


def _number_sketches(
    values: Any, ds: Any, np: Any, owned: bool = False
) -> ColumnSketches:
    """``owned``: ``values`` (float64) was made here and may be reordered."""
    finite = np.isfinite(values)
    if finite.all():
        numbers = values
    else:
        numbers, owned = values[finite], True
    count = int(numbers.size)
    kll = ds.kll_doubles_sketch(KLL_K)
    hll = ds.hll_sketch(HLL_LG_K, ds.tgt_hll_type.HLL_4)
    fields: Dict[str, Any] = {
        "kind": ColumnKind.NUMBER,
        "count": count,
        "null_count": int(values.size) - count,
    }
    if count:
        # Sorted once (a copy, so the vectorised update may write it): KLL
        # takes sorted values about twice as fast (its compactions sort
        # sorted runs; its error bound holds for any order, and measured
        # here the rank error is lower, not higher), min and max are its
        # ends, and the distinct values are found without another sort.
        if owned:
            numbers.sort()
        else:
            numbers = np.sort(numbers.astype(np.float64, copy=False))
        kll.update(numbers)
        hll = _number_hll(numbers, hll, ds, np, ordered=True)
        fields["min"] = float(numbers[0])
        fields["max"] = float(numbers[-1])
        with np.errstate(all="ignore"):
            mean = float(numbers.mean())
            stddev = float(numbers.std())
        fields["mean"] = _finite_or_none(mean)
        fields["stddev"] = _finite_or_none(stddev)
    fields["quantiles"] = kll.serialize()
    fields["distinct"] = hll.serialize_compact()
    return ColumnSketches(**fields)


# The HLL sketch of many numbers, hashed by numpy. DataSketches' HLL hashes a
# double's 8 bytes with MurmurHash3_x64_128 (seed 9001; -0.0 as 0.0); the low
# HLL_LG_K bits of the first half pick a slot, whose register keeps the largest
# min(leading zeros of the second half, 62) + 1 seen: that of the smallest
# second half. So the registers after all the values are those after each
# slot's smallest alone: numpy hashes every value and the sketch is fed at most
# a few per slot (about 4,096 calls instead of one per distinct value). A
# sketch fed so has not seen the whole stream, so its HIP estimate is wrong: it
# goes through a union (with itself), which marks it out of order, as every
# merged sketch is, and estimates from its registers (the very bytes of the
# same union of a sketch fed every value). Used for columns of at least 32,768
# numbers whose sample holds many distinct values and that fill at least half
# the slots (far beyond the 384 coupons past which DataSketches keeps
# registers, not exact coupons); others are fed one distinct value at a time.
_MURMUR_SEED = 9001
_HLL_VECTOR_MIN_VALUES = 8 << HLL_LG_K
_HLL_SAMPLE = 2 << HLL_LG_K
_HASH_BLOCK = 32 * 1024  # values: 256 KiB a block array


def _number_hll(numbers: Any, hll: Any, ds: Any, np: Any, ordered: bool = False) -> Any:
    """``hll`` updated with ``numbers`` (finite float64; ``ordered``: sorted
    ascending), or its equivalent."""
    slots = 1 << HLL_LG_K
    size = int(numbers.size)
    if size >= _HLL_VECTOR_MIN_VALUES:
        sample = numbers[:: size // _HLL_SAMPLE][:_HLL_SAMPLE]
        if np.unique(sample).size * 2 >= slots:
            keep = _slot_maxima(numbers, np)
            if keep is not None:
                _update_all(hll.update, numbers[keep].tolist())
                union = ds.hll_union(HLL_LG_K)
                union.update(hll)
                union.update(hll)  # a second merge marks the result out of order
                return union.get_result(ds.tgt_hll_type.HLL_4)
    if ordered:
        distinct = numbers[np.concatenate(([True], numbers[1:] != numbers[:-1]))]
    else:
        distinct = np.unique(numbers)
    _update_all(hll.update, distinct.tolist())
    return hll


def _slot_maxima(numbers: Any, np: Any) -> Any:
    """The indices of ``numbers`` holding, for each HLL slot, the values that set
    its register (those of the slot's smallest second hash half: the most
    leading zeros); ``None`` when fewer than half the slots are filled."""
    slots = 1 << HLL_LG_K
    size = int(numbers.size)
    slot = np.empty(size, dtype=np.int64)
    second = np.empty(size, dtype=np.uint64)
    low = np.uint64(slots - 1)
    block = min(size, _HASH_BLOCK)
    first = np.empty(block, dtype=np.uint64)
    scratch = np.empty(block, dtype=np.uint64)
    # Hashed in blocks that stay in the CPU's cache: the ~25 passes of the
    # hash over whole columns were bound by memory (1.5-2x slower at 1M).
    # Every step writes into these buffers or the outputs: no temporaries.
    for start in range(0, size, _HASH_BLOCK):
        end = min(start + _HASH_BLOCK, size)
        n = end - start
        _murmur3_doubles(
            numbers[start:end], first[:n], second[start:end], scratch[:n], np
        )
        # The slot (under 4,096) written straight into the int64 output.
        np.bitwise_and(first[:n], low, out=slot[start:end].view(np.uint64))
    empty = np.iinfo(np.uint64).max
    smallest = np.full(slots, empty, dtype=np.uint64)
    np.minimum.at(smallest, slot, second)
    filled = smallest != empty
    if int(np.count_nonzero(filled)) * 2 < slots:
        return None
    # Only values at or under the largest slot minimum can be one: a pass of
    # one comparison leaves a few percent to look up by slot.
    near = np.flatnonzero(second <= smallest[filled].max())
    return near[second[near] == smallest[slot[near]]]


def _murmur3_doubles(
    numbers: Any, first: Any, second: Any, scratch: Any, np: Any
) -> None:
    """MurmurHash3_x64_128 of each float64's 8 bytes (seed 9001), as
    DataSketches' HLL hashes a double: the two 64-bit halves, written into
    ``first`` and ``second`` (uint64 arrays of ``numbers``' length;
    ``scratch`` is one more)."""
    u64 = np.uint64
    np.add(numbers, 0.0, out=first.view(np.float64))  # + 0.0: -0.0 is 0.0
    # One 8-byte tail block k1, no full 16-byte blocks; in place throughout.
    first *= u64(0x87C37B91114253D5)
    np.right_shift(first, u64(33), out=scratch)
    np.left_shift(first, u64(31), out=first)
    first |= scratch  # rotl64(k1, 31)
    first *= u64(0x4CF5AD432745937F)
    mixed = u64(_MURMUR_SEED) ^ u64(8)  # the seed, then ^= length, in both
    first ^= mixed  # h1 = seed ^ k1, then h1 ^= length
    first += mixed  # h1 += h2
    np.add(first, mixed, out=second)  # h2 += h1
    _fmix64(first, scratch, np)
    _fmix64(second, scratch, np)
    first += second
    second += first


def _fmix64(k: Any, scratch: Any, np: Any) -> None:
    u64 = np.uint64
    for multiplier in (u64(0xFF51AFD7ED558CCD), u64(0xC4CEB9FE1A85EC53)):
        np.right_shift(k, u64(33), out=scratch)
        k ^= scratch
        k *= multiplier
    np.right_shift(k, u64(33), out=scratch)
    k ^= scratch


def _update_all(update: Any, values: Iterable[Any]) -> None:
    # map() drives the calls from C: about a third faster than a for loop.
    collections.deque(map(update, values), 0)


def _utf8(text: str) -> str:
    # A lone surrogate cannot be hashed or stored as UTF-8: replaced.
    if text.isascii() or valid_text(text):
        return text
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _finite_or_none(value: float) -> Optional[float]:
    return value if math.isfinite(value) else None


# -- merging --------------------------------------------------------------------------


def merge_profiles(a: DataProfile, b: DataProfile) -> DataProfile:
    """``a`` and ``b`` as one profile (see :meth:`vdt_ai.DataProfile.merge`).

    Raises:
        ImportError: ``datasketches`` or ``numpy`` is not installed.
        ValidationError: ``b`` is not a DataProfile, the sketch parameters
            differ, or a sketch cannot be read (a ValueError, as before).
    """
    if not isinstance(b, DataProfile):
        raise ValidationError(
            [("other", f"can only merge a DataProfile, not {type(b).__name__}")]
        )
    parameters = ("kll_k", "hll_lg_k", "frequent_lg_max_k")
    if any(getattr(a, p) != getattr(b, p) for p in parameters):
        raise ValidationError(
            [("other", "cannot merge profiles built with other sketch parameters")]
        )
    if a.row_count + b.row_count > MAX_COUNT:  # every column's counts fit then
        raise ValidationError(
            [("row_count", f"the merged profile would count more than {MAX_COUNT}")]
        )
    ds, _ = _libraries()
    columns: Dict[str, ColumnSketches] = {}
    for name in list(a.columns) + [n for n in b.columns if n not in a.columns]:
        left = a.columns.get(name) or _all_null(b.columns[name].kind, a.row_count, ds)
        right = b.columns.get(name) or _all_null(left.kind, b.row_count, ds)
        try:
            columns[name] = _merge_columns(left, right, a.hll_lg_k, ds)
        except _SketchError:
            raise ValidationError(
                [(f"columns.{name}", "a sketch is not DataSketches' serialized form")]
            ) from None
    starts = [t for t in (a.window_start, b.window_start) if t is not None]
    ends = [t for t in (a.window_end, b.window_end) if t is not None]
    fields = {name: getattr(a, name) for name in type(a).model_fields}
    fields.update(
        row_count=a.row_count + b.row_count,
        columns=columns,
        window_start=min(starts) if starts else None,
        window_end=max(ends) if ends else None,
    )
    return build_event(DataProfile, fields)


def _all_null(kind: ColumnKind, rows: int, ds: Any) -> ColumnSketches:
    return ColumnSketches(kind=kind, count=0, null_count=rows)


def _merge_columns(
    a: ColumnSketches, b: ColumnSketches, lg_k: int, ds: Any
) -> ColumnSketches:
    kind = a.kind
    if not b.count:
        kind = a.kind
    elif not a.count:
        kind = b.kind
    elif a.kind is not b.kind:
        kind = ColumnKind.OTHER
    fields: Dict[str, Any] = {
        "kind": kind,
        "count": a.count + b.count,
        "null_count": a.null_count + b.null_count,
        "distinct": _merge_hll(a.distinct, b.distinct, lg_k, ds),
    }
    if kind is ColumnKind.NUMBER:
        fields["quantiles"] = _merge_with(
            ds.kll_doubles_sketch, a.quantiles, b.quantiles
        )
    if kind in (ColumnKind.STRING, ColumnKind.BOOLEAN):
        fields["frequent"] = _merge_with(
            ds.frequent_strings_sketch, a.frequent, b.frequent
        )
    if kind in (ColumnKind.NUMBER, ColumnKind.DATETIME):
        fields["min"] = _pick(min, a.min, b.min)
        fields["max"] = _pick(max, a.max, b.max)
    if kind is ColumnKind.NUMBER:
        fields["mean"], fields["stddev"] = _merge_moments(a, b)
    return ColumnSketches(**fields)


class _SketchError(Exception):
    """A serialized sketch that DataSketches cannot read."""


def _read(cls: Any, data: bytes) -> Any:
    try:
        return cls.deserialize(data)
    except (ValueError, IndexError, RuntimeError) as exc:
        raise _SketchError() from exc


def _merge_hll(
    a: Optional[bytes], b: Optional[bytes], lg_k: int, ds: Any
) -> Optional[bytes]:
    if a is None or b is None:
        return a if b is None else b
    union = ds.hll_union(lg_k)
    union.update(_read(ds.hll_sketch, a))
    union.update(_read(ds.hll_sketch, b))
    result: bytes = union.get_result(ds.tgt_hll_type.HLL_4).serialize_compact()
    return result


def _merge_with(cls: Any, a: Optional[bytes], b: Optional[bytes]) -> Optional[bytes]:
    if a is None or b is None:
        return a if b is None else b
    sketch = _read(cls, a)
    try:
        sketch.merge(_read(cls, b))
    except (ValueError, IndexError, RuntimeError) as exc:  # e.g. another k
        raise _SketchError() from exc
    result: bytes = sketch.serialize()
    return result


def _pick(choose: Any, a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None:
        return a if b is None else b
    return float(choose(a, b))


def _merge_moments(
    a: ColumnSketches, b: ColumnSketches
) -> Tuple[Optional[float], Optional[float]]:
    # Chan et al.'s parallel update of mean and variance (population).
    if not b.count:
        return a.mean, a.stddev
    if not a.count:
        return b.mean, b.stddev
    if a.mean is None or b.mean is None or a.stddev is None or b.stddev is None:
        return None, None
    n = a.count + b.count
    delta = b.mean - a.mean
    try:
        mean = a.mean + delta * (b.count / n)
        m2 = (
            a.stddev**2 * a.count
            + b.stddev**2 * b.count
            + delta**2 * (a.count * b.count / n)
        )
        stddev = math.sqrt(m2 / n)
    except OverflowError:
        return None, None
    return _finite_or_none(mean), _finite_or_none(stddev)


# -- rolling profiles of live traffic ----------------------------------------------

MAX_ROLLING_COLUMNS = 200
MAX_ROLLING_DEPTH = 4
_BATCH_ROWS = 4096
_MAX_PENDING_ROWS = 65_536
_LEAF_TYPES = (int, float, str, bool)
_EXACT_LEAVES = frozenset(_LEAF_TYPES)


def flatten_call(
    input_data: Any,
    prediction: Any,
    prediction_label: Optional[str],
    prediction_score: Optional[float],
) -> Dict[str, Any]:
    """One model call as a profile row: the numeric, text and boolean leaves
    of ``input_data`` (``input.<key path>``, dicts only, up to 4 levels) and
    of ``prediction`` (``prediction[.<key path>]``), and the typed
    ``prediction_label`` and ``prediction_score``."""
    row: Dict[str, Any] = {}
    if input_data is not None:
        _leaves("input", input_data, row, 0)
    if prediction is not None:
        _leaves("prediction", prediction, row, 0)
    if prediction_label is not None:
        row["prediction_label"] = prediction_label
    if prediction_score is not None:
        row["prediction_score"] = prediction_score
    return row


def _leaves(path: str, value: Any, row: Dict[str, Any], depth: int) -> None:
    kind = type(value)
    if kind is not dict:
        if kind in _EXACT_LEAVES or isinstance(value, _LEAF_TYPES):
            if len(row) < MAX_ROLLING_COLUMNS:
                row[path] = value
            return
        if not isinstance(value, Mapping):
            return
    if depth >= MAX_ROLLING_DEPTH:
        return
    prefix = path + "."
    for key, item in value.items():
        # Leaves of the usual exact types without a call each.
        if type(item) in _EXACT_LEAVES and type(key) is str:
            if len(row) < MAX_ROLLING_COLUMNS:
                row[prefix + key] = item
        else:
            _leaves(prefix + str(key), item, row, depth + 1)


class RollingProfile:
    """Profiles every logged call of one model, one DataProfile a window.

    Made by :meth:`vdt_ai.VDTClient.profile_model`. A call adds one row (its
    flattened leaves, see :func:`flatten_call`) to a buffer under a lock; a
    background thread folds the buffer into the window's sketches (vectorised,
    :func:`profile` then :meth:`vdt_ai.DataProfile.merge`) every 4,096 rows
    and sends the window's profile every ``interval_s`` seconds and at
    :meth:`close`. Calls are profiled before sampling: the profile counts
    every call while raw events may be sampled. At most
    :data:`MAX_ROLLING_COLUMNS` columns per model (the first seen).
    """

    def __init__(
        self,
        model_name: str,
        interval_s: float,
        send: Any,
        on_error: Any,
    ) -> None:
        _libraries()  # the ImportError now, not in the background
        self.model_name = model_name
        self.interval_s = interval_s
        self._send = send
        self._on_error = on_error
        # Appended by callers, taken by the fold (deque: both atomic).
        self._rows: Deque[Dict[str, Any]] = collections.deque()
        self._fold_lock = threading.RLock()  # emit() folds under it too
        self._window: Optional[DataProfile] = None
        self._window_start = utc_now()
        self._columns: Dict[str, None] = {}
        self._short_names: Set[str] = set()  # the known columns' profiled names
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        # At interpreter shutdown no thread starts: the calls then fold their
        # rows themselves (past _MAX_PENDING_ROWS) and close() sends the
        # window. Past a thread limit (maybe for a moment) the next call
        # tries again.
        self._start()

    def _start(self) -> None:
        with self._fold_lock:
            if self._thread is None and not self._stop.is_set():
                thread = threading.Thread(
                    target=self._run,
                    name=f"vdt-ai-profile-{self.model_name}",
                    daemon=True,
                )
                if _lifecycle.start_thread(thread):
                    self._thread = thread

    def observe(
        self,
        input_data: Any,
        prediction: Any,
        prediction_label: Optional[str] = None,
        prediction_score: Optional[float] = None,
    ) -> None:
        """Adds one call (cheap: the sketches are updated in the background).
        Never raises."""
        try:
            row = flatten_call(
                input_data, prediction, prediction_label, prediction_score
            )
        except Exception as exc:  # e.g. a mapping whose items() raises
            self._on_error("profiles.rolling", exc)
            row = {}
        rows = self._rows
        rows.append(row)
        if self._thread is None:  # refused when it was built
            self._start()
        pending = len(rows)
        if pending >= _BATCH_ROWS:
            self._wake.set()
            if pending >= _MAX_PENDING_ROWS:  # the background fell behind
                self._fold()

    def _run(self) -> None:
        deadline = time.monotonic() + self.interval_s
        while not self._stop.is_set():
            self._wake.wait(max(0.0, deadline - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                return
            self._fold()
            if time.monotonic() >= deadline:
                self.emit()
                deadline = time.monotonic() + self.interval_s

    def _fold(self) -> None:
        """Folds the buffered rows into the window's sketches."""
        with self._fold_lock:
            pending = self._rows
            rows = [pending.popleft() for _ in range(len(pending))]
            if not rows:
                return
            try:
                part = profile(self._known_columns(rows), dataset_name=self.model_name)
                self._window = (
                    part if self._window is None else self._window.merge(part)
                )
            except Exception as exc:  # never the caller's problem
                self._on_error("profiles.rolling", exc)

    def _known_columns(self, rows: List[Dict[str, Any]]) -> Dict[str, List[Any]]:
        # Columns as lists; a column first seen once MAX_ROLLING_COLUMNS are
        # known is left out. Rows without a key hold a null there.
        known = self._columns
        for row in rows:
            for name in row:
                if name not in known and len(known) < MAX_ROLLING_COLUMNS:
                    # Not a second path of one cut name: profile() refuses it.
                    short = _column_name(name)
                    if short not in self._short_names:
                        self._short_names.add(short)
                        known[name] = None
        return {name: [row.get(name) for row in rows] for name in known}

    def emit(self) -> Optional[DataProfile]:
        """Sends the window's profile now (when it holds a call) and starts
        a new window; the profile sent, or None."""
        with self._fold_lock:
            self._fold()
            window, self._window = self._window, None
            start, self._window_start = self._window_start, utc_now()
        if window is None:
            return None
        try:
            done = window.model_copy(
                update={"window_start": start, "window_end": self._window_start}
            )
            self._send(self.model_name, done)
        except Exception as exc:
            self._on_error("profiles.rolling", exc)
            return None
        return done

    def close(self) -> Optional[DataProfile]:
        """Stops the thread and sends the last window."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        return self.emit()
