"""Data profiles at the edges: nasty values and tables either profile
correctly (counts as pandas counts them) or raise vdt_ai.ValidationError;
nothing else escapes profile(), DataProfile.merge() or log_data_profile()."""

import datetime as dt
import decimal
import math
from typing import Any, Dict, List

import datasketches
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vdt_ai import ColumnKind, ColumnSketches, DataProfile, ValidationError, VDTClient
from vdt_ai.profiles import RollingProfile, profile
from vdt_ai.testing import MemoryTransport

from .._examples import examples

polars: Any
try:
    import polars
except ImportError:  # no polars wheels for CPython 3.8: its cases are skipped
    polars = None
PANDAS_2 = int(pd.__version__.split(".")[0]) >= 2
NO_POLARS = pytest.mark.skipif(polars is None, reason="polars is not installed")


def _polars(make: Any) -> Any:
    """A parameter built by ``make()`` when polars is installed, else skipped."""
    if polars is None:
        return pytest.param(None, marks=NO_POLARS)
    return make()


UTC = dt.timezone.utc
YEAR_3000 = dt.datetime(3000, 1, 1, tzinfo=UTC).timestamp()
YEAR_9999 = dt.datetime(9999, 1, 1, tzinfo=UTC).timestamp()
YEAR_1500 = dt.datetime(1500, 1, 1, tzinfo=UTC).timestamp()
HIDE_LAST = [False, False, True]


def _column(data: Any, name: str = "a") -> Any:
    return profile(data).columns[name]


# -- dates beyond int64 nanoseconds (after 2261, before 1678) ---------------------


@pytest.mark.parametrize(
    "data",
    [
        pa.table({"a": pa.array([dt.datetime(3000, 1, 1), None], pa.timestamp("s"))}),
        pa.table({"a": pa.array([dt.datetime(3000, 1, 1), None], pa.timestamp("us"))}),
        pa.table({"a": pa.array([dt.date(3000, 1, 1), None], pa.date32())}),
        pa.table({"a": pa.array([dt.date(3000, 1, 1), None], pa.date64())}),
        _polars(lambda: polars.DataFrame({"a": [dt.date(3000, 1, 1), None]})),
        _polars(
            lambda: polars.DataFrame(
                {
                    "a": polars.Series(
                        [dt.datetime(3000, 1, 1), None], dtype=polars.Datetime
                    )
                }
            )
        ),
        # pandas before 2 holds nanoseconds only: it refuses the year 3000.
        pytest.param(
            (
                pd.DataFrame(
                    {"a": np.array(["3000-01-01", "NaT"], dtype="datetime64[s]")}
                )
                if PANDAS_2
                else None
            ),
            marks=pytest.mark.skipif(not PANDAS_2, reason="pandas 2 needed"),
        ),
        {"a": np.array(["3000-01-01", "NaT"], dtype="datetime64[D]")},
        [{"a": np.datetime64("3000-01-01", "D")}, {"a": np.datetime64("NaT", "s")}],
        [{"a": dt.datetime(3000, 1, 1)}, {"a": None}],
        pd.DataFrame(
            {
                "a": pd.array(
                    [dt.date(3000, 1, 1), None], dtype=pd.ArrowDtype(pa.date32())
                )
            }
        ),
    ],
    ids=lambda d: type(d).__module__.split(".")[0],
)
def test_dates_after_2261_keep_their_value(data: Any) -> None:
    # Before: pyarrow and polars raised their cast errors (ArrowInvalid,
    # InvalidOperationError); numpy and pandas wrapped around int64 silently
    # (year 3000 profiled as 1715); a pyarrow-backed pandas date column
    # raised ValueError.
    col = _column(data)
    assert col.kind is ColumnKind.DATETIME
    assert (col.count, col.null_count) == (1, 1)
    assert col.min == col.max == YEAR_3000


@pytest.mark.parametrize(
    "data",
    [
        pa.table({"a": pa.array([10**9, None], pa.int32()).cast(pa.date32())}),
        _polars(
            lambda: polars.DataFrame(
                {
                    "a": polars.Series([10**9, None], dtype=polars.Int32).cast(
                        polars.Date
                    )
                }
            )
        ),
        {"a": np.array([10**9, "NaT"], dtype="datetime64[D]")},
    ],
    ids=["pyarrow", "polars", "numpy"],
)
def test_dates_beyond_microseconds_of_int64(data: Any) -> None:
    # A billion days (2.7 million years): beyond int64 microseconds too.
    # Before: ArrowInvalid / InvalidOperationError, numpy wrapped around.
    col = _column(data)
    assert (col.count, col.null_count) == (1, 1)
    assert col.max == 10**9 * 86_400


def test_far_dates_inside_pyarrow_lists_and_dictionaries() -> None:
    # Before: OverflowError from to_pylist() (a year past Python's 9999).
    stamps = pa.array([10**12, None, 10**12], pa.int64()).cast(pa.timestamp("s"))
    listed = pa.array([[10**12], None, [1]], pa.list_(pa.int64())).cast(
        pa.list_(pa.timestamp("s"))
    )
    got = profile(pa.table({"l": listed, "d": stamps.dictionary_encode()})).columns
    assert (got["l"].kind, got["l"].count, got["l"].null_count) == (
        ColumnKind.OTHER,
        2,
        1,
    )
    assert (got["d"].kind, got["d"].count, got["d"].max) == (
        ColumnKind.DATETIME,
        2,
        10**12,
    )


def test_far_dates_sketch_as_the_python_path_does() -> None:
    days = np.array(["9999-01-01", "1500-01-01", "1970-01-01"], dtype="datetime64[D]")
    rows = [{"a": d} for d in days.astype("datetime64[us]").tolist()]
    vectorised, python = _column({"a": days}), _column(rows)
    assert (vectorised.min, vectorised.max) == (YEAR_1500, YEAR_9999)
    assert (python.min, python.max) == (YEAR_1500, YEAR_9999)
    # The same three values hashed (a union of both still holds three).
    union = datasketches.hll_union(12)
    for col in (vectorised, python):
        union.update(datasketches.hll_sketch.deserialize(col.distinct))
    assert round(union.get_estimate()) == 3


def test_python_dates_and_decimals_get_the_kinds_pyarrow_gives_them() -> None:
    # Before: dt.date and Decimal values (pandas' object columns of a
    # Parquet file's date32 and decimal columns) were OTHER while pyarrow's
    # own columns were DATETIME and NUMBER: their profiles merged as OTHER.
    table = pa.table(
        {
            "d": pa.array([dt.date(2020, 1, 2), None, dt.date(3000, 1, 1)]),
            "n": pa.array(
                [decimal.Decimal("1.25"), None, decimal.Decimal("-3")],
                pa.decimal128(5, 2),
            ),
        }
    )
    by_arrow = profile(table).columns
    by_pandas = profile(table.to_pandas()).columns  # object columns
    by_rows = profile(table.to_pylist()).columns
    for got in (by_pandas, by_rows):
        for name in "dn":
            want = by_arrow[name]
            assert got[name].kind is want.kind
            assert (got[name].count, got[name].null_count) == (2, 1)
            assert (got[name].min, got[name].max) == (want.min, want.max)
    assert by_arrow["d"].kind is ColumnKind.DATETIME
    assert by_arrow["n"].kind is ColumnKind.NUMBER
    merged = profile(table).merge(profile(table.to_pandas())).columns
    assert merged["d"].kind is ColumnKind.DATETIME


# Some pandas versions (1.5, 2.0) print the error of their own isna() as
# "Exception ignored" and go on: that report is pandas', not an escape.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signaling_decimal_nan_in_a_pandas_column() -> None:
    # Before: pandas' isna() raised decimal.InvalidOperation through profile().
    frame = pd.DataFrame({"a": [decimal.Decimal("sNaN"), "x", None, pd.NA]})
    col = _column(frame)
    assert col.count + col.null_count == 4
    if col.kind is ColumnKind.STRING:  # pandas whose isna() raised: our check
        # A Decimal NaN is missing to pandas: so is a signaling one.
        assert (col.count, col.null_count) == (1, 3)
    else:  # pandas 2.0's isna() says a signaling NaN is a value: so it is
        assert (col.kind, col.count, col.null_count) == (ColumnKind.OTHER, 2, 2)


@pytest.mark.parametrize("nan", ["NaN", "sNaN"])
def test_a_decimal_nan_among_strings_in_rows_is_missing(nan: str) -> None:
    # Before: a quiet Decimal NaN among strings counted as a value (pandas
    # reads it as missing), so rows and their DataFrame disagreed.
    rows = [{"a": "x"}, {"a": decimal.Decimal(nan)}, {"a": "y"}]
    col = profile(rows).columns["a"]
    assert (col.kind, col.count, col.null_count) == (ColumnKind.STRING, 2, 1)


_FAR = 3 * 10**17  # microseconds after 1970: the year 11476


@pytest.mark.parametrize(
    "kind, values",
    [
        (pa.struct([("d", pa.timestamp("us"))]), [{"d": _FAR}, None, {"d": 0}]),
        (pa.list_(pa.timestamp("us")), [[_FAR], None, [0, _FAR]]),
        (pa.string(), ["x", None, "y"]),
    ],
    ids=["struct", "list", "string"],
)
def test_pyarrow_backed_pandas_columns_read_as_pyarrow(
    kind: Any, values: List[Any]
) -> None:
    # Before: a pyarrow-backed struct holding a date past 9999 raised
    # ValueError ("year 11476 is out of range") from pandas' object
    # conversion; every pyarrow-backed column is now read as pyarrow's.
    table = pa.table({"a": pa.array(values, kind)})
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    ours, theirs = _column(frame), _column(table)
    assert (ours.kind, ours.count, ours.null_count) == (
        theirs.kind,
        theirs.count,
        theirs.null_count,
    )
    assert (ours.count, ours.null_count) == (2, 1)
    assert ours.distinct == theirs.distinct


# -- numbers -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [pa.int64(), pa.uint64()])
def test_arrow_integers_beyond_2_to_53_are_rounded_not_refused(dtype: Any) -> None:
    # Before: ArrowInvalid "Integer value ... not in range" from a safe cast.
    big = 2**63 - 1 if dtype == pa.int64() else 2**64 - 1
    col = _column(pa.table({"a": pa.array([big, 1, None], dtype)}))
    assert (col.count, col.null_count) == (2, 1)
    assert col.max == float(big)


def test_complex_numbers_are_other_not_truncated_numbers() -> None:
    # Before: the imaginary part was dropped (a ComplexWarning) for pandas
    # columns and numpy scalars in rows.
    for data in (
        pd.DataFrame({"a": np.array([1 + 1j, 2])}),
        [{"a": np.complex128(1 + 2j)}, {"a": None}],
    ):
        assert _column(data).kind is ColumnKind.OTHER


# -- numpy scalars and arrays in Python rows --------------------------------------


def test_numpy_scalars_in_rows_get_their_kind_and_nulls() -> None:
    rows = [
        {
            "b": np.bool_(True),
            "t": np.datetime64("2020-01-01T00:00:00", "s"),
            "d": np.timedelta64(5, "s"),
            "f": np.float16(1.5),
            "u": np.uint64(2**64 - 1),
        },
        {
            "b": None,
            "t": np.datetime64("NaT", "s"),
            "d": np.timedelta64("NaT", "s"),
            "f": np.float32("nan"),
            "u": np.uint8(0),
        },
    ]
    got = profile(rows).columns
    # Before: np.bool_ and datetime64 were numbers, timedelta64 a number of
    # its ticks and NaT a value of -9.2e18.
    assert got["b"].kind is ColumnKind.BOOLEAN
    assert got["t"].kind is ColumnKind.DATETIME
    assert got["t"].min == dt.datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    assert got["d"].kind is ColumnKind.OTHER
    assert got["f"].kind is got["u"].kind is ColumnKind.NUMBER
    assert got["u"].max == float(2**64 - 1)
    assert [got[n].null_count for n in "btdfu"] == [1, 1, 1, 1, 0]


@pytest.mark.parametrize(
    "missing",
    [pd.NA, pd.NaT, np.float64("nan"), np.datetime64("NaT", "s"), float("nan")],
)
@pytest.mark.parametrize("present", [1, "x", b"x", decimal.Decimal(1)])
def test_missing_values_of_pandas_and_numpy_are_nulls(
    missing: Any, present: Any
) -> None:
    # Before: pd.NA, and numpy NaN among strings, counted as values.
    frame = pd.DataFrame({"a": pd.Series([present, missing, None], dtype=object)})
    col = _column([{"a": present}, {"a": missing}, {"a": None}])
    assert (col.count, col.null_count) == (1, 2)
    assert int(frame["a"].isna().sum()) == 2  # what pandas says
    assert _column(frame).null_count == 2


def test_arrays_as_cell_values_are_other() -> None:
    # Before: a column of numpy arrays (embeddings) became a 2-D float array
    # and the KLL update raised ValueError.
    col = _column([{"a": np.array([1.0, 2.0])}, {"a": np.array([3.0, 4.0])}])
    assert col.kind is ColumnKind.OTHER
    assert col.count == 2


def test_a_sub_array_field_is_other() -> None:
    # Before: ValueError (2-D input to the KLL sketch).
    data = np.array([([1, 2],), ([3, 4],)], dtype=[("a", "i4", (2,))])
    col = _column(data)
    assert (col.kind, col.count, col.null_count) == (ColumnKind.OTHER, 2, 0)


def test_masked_values_of_a_masked_array_are_nulls() -> None:
    # Before: the mask was ignored (the hidden values counted as values).
    for data in (
        np.ma.masked_array([1.0, 2.0, 99.0], mask=HIDE_LAST),
        np.ma.masked_array([1, 2, 99], mask=HIDE_LAST),
        np.ma.masked_array([True, False, True], mask=HIDE_LAST),
        np.ma.masked_array(["x", "y", "secret"], mask=HIDE_LAST),
        np.ma.masked_array(
            np.array(["2020-01-01", "2020-01-02", "2999-01-01"], "datetime64[D]"),
            mask=HIDE_LAST,
        ),
    ):
        col = _column(data, "value")
        assert (col.count, col.null_count) == (2, 1)
        assert col.count == pd.Series(data).notna().sum()  # what pandas says
        if col.max is not None:  # not the hidden 99 or year 2999
            assert col.max in (2.0, dt.datetime(2020, 1, 2, tzinfo=UTC).timestamp())


# -- tables and arguments ----------------------------------------------------------


def test_single_arrays_and_series_of_pyarrow_and_polars() -> None:
    # Before: AttributeError (no num_rows / height).
    for data in (pa.array([1, None]), pa.chunked_array([[1], [None]])):
        col = _column(data, "value")
        assert (col.kind, col.count, col.null_count) == (ColumnKind.NUMBER, 1, 1)
    if polars is not None:
        assert _column(polars.Series("x", [1, None]), "x").null_count == 1
        with pytest.raises(ValidationError, match="LazyFrame"):
            profile(polars.LazyFrame({"a": [1]}))


def test_pyarrow_arrays_in_a_mapping_keep_their_nulls() -> None:
    # Before: its values were pyarrow scalars: OTHER, the null a value.
    col = _column({"a": pa.array([1.5, None])})
    assert (col.kind, col.count, col.null_count) == (ColumnKind.NUMBER, 1, 1)


@pytest.mark.parametrize(
    "column", [5, None, object(), "abc", b"abc", np.array(5), np.zeros((2, 2))]
)
def test_a_column_that_is_not_a_sequence_is_refused(column: Any) -> None:
    # Before: TypeError or ValueError; a string was profiled as its letters.
    with pytest.raises(ValidationError, match="sequence of values"):
        profile({"a": column})


@pytest.mark.parametrize("columns", [5, "ab", b"ab"])
def test_columns_must_be_a_list_of_names(columns: Any) -> None:
    with pytest.raises(ValidationError, match="list of column names"):
        profile({"a": [1], "b": [2]}, columns=columns)


@pytest.mark.parametrize(
    "data",
    [
        pd.DataFrame([[1, "x"]], columns=["a", "a"]),
        pa.Table.from_arrays([pa.array([1]), pa.array(["x"])], names=["a", "a"]),
        {1: [1], "1": [2]},
        [{1: 1}, {"1": 2}],
        {"": [1], "(empty)": [2]},
        {"x" * 300: [1], "x" * 300 + "y": [2]},
    ],
)
def test_two_columns_of_one_name_are_refused(data: Any) -> None:
    # Before: one silently hid the other.
    with pytest.raises(ValidationError, match="two columns are named"):
        profile(data)


def test_a_lone_surrogate_in_a_column_name_is_replaced() -> None:
    # Before: ValidationError from the DataProfile (a valid table refused).
    (name,) = profile({"a\ud800": [1]}).columns
    assert name.startswith("a") and "\ufffd" in name
    name.encode("utf-8")  # no lone surrogate left


def test_rolling_profile_keeps_the_first_of_two_paths_cut_to_one_name() -> None:
    sent = []
    roll = RollingProfile("m", 3600.0, lambda n, p: sent.append(p), pytest.fail)
    long = "k" * 300
    roll.observe({long + "1": 1, long + "2": 2}, None)
    got = roll.close()
    assert got is not None and len(got.columns) == 1
    assert next(iter(got.columns.values())).count == 1


# -- merge ---------------------------------------------------------------------------


def test_merge_refuses_other_things_and_corrupt_sketches_with_validation_error() -> (
    None
):
    good = profile({"a": [1.0, 2.0], "s": ["x", "y"]})
    with pytest.raises(ValidationError, match="DataProfile"):
        good.merge({"a": [1]})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sketch parameters"):  # still a ValueError
        good.merge(good.model_copy(update={"kll_k": 100}))
    for column, field in (("a", "quantiles"), ("a", "distinct"), ("s", "frequent")):
        broken = good.columns[column].model_copy(update={field: b"\x00" * 40})
        other = good.model_copy(update={"columns": {**good.columns, column: broken}})
        with pytest.raises(ValidationError, match=f"columns.{column}"):
            good.merge(other)


def test_merge_beyond_int64_rows_raises_validation_error() -> None:
    # Before: pydantic_core's ValidationError escaped from ColumnSketches.
    huge = DataProfile(
        dataset_name="x",
        row_count=2**62,
        columns={"c": ColumnSketches(kind=ColumnKind.OTHER, count=2**62)},
    )
    with pytest.raises(ValidationError, match="row_count"):
        huge.merge(huge)


# -- hypothesis: anything in Python rows -------------------------------------------

_cells = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.binary(max_size=3),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.datetimes(timezones=st.sampled_from([None, UTC])),
    st.dates(),
    st.timedeltas(),
    st.sampled_from(
        [
            pd.NA,
            pd.NaT,
            np.float32("nan"),
            np.int8(-1),
            np.uint64(2**64 - 1),
            np.bool_(False),
            np.complex64(1j),
            np.datetime64("NaT", "s"),
            np.datetime64("2500-01-01", "D"),
            np.timedelta64(3, "D"),
            np.str_("\ud800"),
            np.array([1, 2]),
            [1, {"x": 2}],
            -0.0,
        ]
    ),
)


def _nulls_as_pandas(values: Any) -> int:
    nulls = 0
    for v in values:
        if v is None or v is pd.NA or v is pd.NaT:
            nulls += 1
        elif isinstance(v, (float, np.floating)) and not math.isfinite(float(v)):
            nulls += 1  # NaN (pandas) and infinities (documented as nulls)
        elif isinstance(v, (np.datetime64, np.timedelta64)) and np.isnat(v):
            nulls += 1
        elif isinstance(v, decimal.Decimal) and v.is_nan():
            nulls += 1  # pd.isna(Decimal("NaN")) is True
    return nulls


@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(st.dictionaries(st.sampled_from("abc"), _cells, max_size=3), max_size=8)
)
def test_any_python_rows_profile_or_raise_validation_error(rows: Any) -> None:
    try:
        built = profile(rows)
    except ValidationError:
        return
    assert built.row_count == len(rows)
    for name, col in built.columns.items():
        values = [row.get(name) for row in rows]
        assert col.count + col.null_count == len(rows)
        floats_only = (
            all(type(v) in (float, int) for v in values if v is not None)
            and col.kind is ColumnKind.NUMBER
        )
        if floats_only or col.kind is not ColumnKind.NUMBER:
            # Infinities count as nulls only for numbers; elsewhere pandas'.
            expected = _nulls_as_pandas(values)
            if col.kind is not ColumnKind.NUMBER:
                expected -= sum(
                    1
                    for v in values
                    if isinstance(v, (float, np.floating)) and math.isinf(float(v))
                )
            assert col.null_count == expected
    merged = built.merge(built)
    assert merged.row_count == 2 * len(rows)


def test_log_data_profile_of_nasty_tables_raises_only_validation_error() -> None:
    client = VDTClient(transport=MemoryTransport())
    try:
        tables: Dict[str, Any] = {
            "far dates": pa.table({"d": pa.array([dt.date(9999, 1, 1)])}),
            "big ints": pa.table({"i": pa.array([2**63 - 1])}),
        }
        for table in tables.values():
            assert client.log_data_profile("ds", table) is not None
        for bad in ({"a": 5}, pd.DataFrame([[1, 2]], columns=["a", "a"])):
            with pytest.raises(ValidationError):
                client.log_data_profile("ds", bad)
        assert isinstance(profile(tables["far dates"]), DataProfile)
    finally:
        client.close()
