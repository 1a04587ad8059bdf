"""Data profiles: every table kind, mergeability, the pipeline, the wire."""

import datetime as dt
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import datasketches
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vdt_ai import (
    ColumnKind,
    DataProfile,
    OfflineModeWarning,
    Stats,
    ValidationError,
    VDTClient,
    decode,
)
from vdt_ai.profiles import (
    FREQUENT_LG_MAX_K,
    HLL_LG_K,
    KLL_K,
    MAX_FREQUENT_ITEM_LENGTH,
    _murmur3_doubles,
    profile,
)
from vdt_ai.spool import iter_events
from vdt_ai.testing import MemoryTransport

from .._examples import examples

UTC = dt.timezone.utc
# KLL's normalized rank error (99% confidence, both sides of a merge) and
# HLL's relative error at 3 standard deviations, from the libraries' own
# bounds for the parameters used.
RANK_ERROR = datasketches.kll_doubles_sketch.get_normalized_rank_error(KLL_K, False)
HLL_ERROR = 3 * 1.04 / math.sqrt(2**HLL_LG_K)


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 2000
    return pd.DataFrame(
        {
            "x": rng.normal(10, 2, n),
            "i": pd.array([1, None, 3, 4] * (n // 4), dtype="Int64"),
            "s": rng.choice(np.array(["red", "green", "blue", None], dtype=object), n),
            "b": rng.random(n) > 0.3,
            "t": pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC"),
            "c": pd.Categorical(rng.choice(["p", "q"], n)),
        }
    )


def test_pandas_columns_kinds_counts_and_sketches() -> None:
    df = frame()
    p = profile(df)
    assert isinstance(p, DataProfile) and p.row_count == len(df)
    kinds = {name: c.kind for name, c in p.columns.items()}
    assert kinds == {
        "x": ColumnKind.NUMBER,
        "i": ColumnKind.NUMBER,
        "s": ColumnKind.STRING,
        "b": ColumnKind.BOOLEAN,
        "t": ColumnKind.DATETIME,
        "c": ColumnKind.STRING,
    }
    x = p.columns["x"]
    assert (x.count, x.null_count) == (2000, 0)
    assert x.min == df.x.min() and x.max == df.x.max()
    assert x.mean == pytest.approx(df.x.mean()) and x.stddev == pytest.approx(
        df.x.std(ddof=0)
    )
    kll = datasketches.kll_doubles_sketch.deserialize(x.quantiles)
    assert kll.n == 2000 and kll.k == KLL_K
    assert abs(kll.get_rank(float(df.x.median())) - 0.5) <= RANK_ERROR
    assert p.columns["i"].null_count == 500 and p.columns["i"].mean == 8 / 3
    s = p.columns["s"]
    assert s.quantiles is None and s.null_count == int(df.s.isna().sum())
    top = datasketches.frequent_strings_sketch.deserialize(s.frequent)
    assert {
        item[0]
        for item in top.get_frequent_items(
            datasketches.frequent_items_error_type.NO_FALSE_NEGATIVES
        )
    } == {"red", "green", "blue"}
    hll = datasketches.hll_sketch.deserialize(s.distinct)
    assert round(hll.get_estimate()) == 3
    assert p.columns["b"].frequent is not None and p.columns["b"].min is None
    t = p.columns["t"]
    assert t.min == df.t.min().timestamp() and t.max == df.t.max().timestamp()
    assert (p.kll_k, p.hll_lg_k, p.frequent_lg_max_k) == (
        KLL_K,
        HLL_LG_K,
        FREQUENT_LG_MAX_K,
    )
    assert p.window_start is not None and p.window_end is not None
    assert p.window_start <= p.window_end


def _summary(p: DataProfile) -> Dict[str, Any]:
    return {
        name: (c.kind, c.count, c.null_count, c.min, c.max)
        for name, c in p.columns.items()
    }


def test_every_table_kind_gives_the_same_profile() -> None:
    rows: List[Dict[str, Any]] = [
        {"x": 1.5, "n": 3, "s": "a", "b": True},
        {"x": None, "n": 4, "s": None, "b": False},
        {"x": -2.0, "n": 5, "s": "b", "b": True},
    ]
    expected = _summary(profile(rows))
    assert expected["x"] == (ColumnKind.NUMBER, 2, 1, -2.0, 1.5)
    assert expected["s"] == (ColumnKind.STRING, 2, 1, None, None)
    df = pd.DataFrame(rows)
    assert _summary(profile(df)) == expected
    assert _summary(profile(pa.Table.from_pylist(rows))) == expected
    assert _summary(profile(pa.RecordBatch.from_pylist(rows))) == expected
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    assert _summary(profile(columns)) == expected
    if sys.version_info >= (3, 9):
        import polars

        assert _summary(profile(polars.DataFrame(rows))) == expected


@pytest.mark.parametrize("size", [5, 40_000])
def test_date_time_columns_agree_across_table_kinds(size: int) -> None:
    # Date/time columns are read by numpy for pandas, pyarrow, polars, numpy
    # arrays and mappings of arrays or Series (a mapping of datetime64 arrays
    # was sketched as numbers before), by a loop for Python rows; missing
    # values (None, NaT) count as nulls everywhere. 40,000 distinct values
    # take the HLL's numpy-hashed path.
    rng = np.random.default_rng(3)
    stamps = pd.Series(
        pd.to_datetime("2024-01-01")
        + pd.to_timedelta(rng.permutation(10**7)[:size], unit="s")
    )
    stamps[::4] = pd.NaT
    present = stamps.dropna()
    rows = [{"t": None if pd.isna(v) else v.to_pydatetime()} for v in stamps.tolist()]
    rows[0][
        "t"
    ] = pd.NaT  # a missing one as pandas' own missing datetime, in a Python row
    tables: Dict[str, Any] = {
        "rows": rows,
        "pandas": pd.DataFrame({"t": stamps}),
        "pandas UTC": pd.DataFrame({"t": stamps.dt.tz_localize("UTC")}),
        "pyarrow": pa.table({"t": pa.array(stamps)}),
        "numpy mapping": {"t": stamps.to_numpy()},
        "Series mapping": {"t": stamps},
    }
    if sys.version_info >= (3, 9):
        import polars

        tables["polars"] = polars.DataFrame({"t": stamps})
    expected = (
        ColumnKind.DATETIME,
        len(present),
        size - len(present),
        present.min().timestamp(),
        present.max().timestamp(),
    )
    distinct = len(set(present))
    for name, table in tables.items():
        column = profile(table).columns["t"]
        summary = (column.kind, column.count, column.null_count, column.min)
        assert summary + (column.max,) == expected, name
        hll = datasketches.hll_sketch.deserialize(column.distinct)
        assert abs(hll.get_estimate() - distinct) <= HLL_ERROR * distinct, name
    one = profile(np.array(stamps.to_numpy()))
    assert one.columns["value"].kind is ColumnKind.DATETIME


def test_numpy_arrays() -> None:
    one = profile(np.array([1.0, np.nan, np.inf, 4.0]))
    assert list(one.columns) == ["value"]
    v = one.columns["value"]
    assert (v.count, v.null_count, v.min, v.max) == (2, 2, 1.0, 4.0)
    two = profile(np.arange(12).reshape(4, 3))
    assert list(two.columns) == ["0", "1", "2"] and two.row_count == 4
    assert two.columns["2"].max == 11.0
    structured = np.array([(1, "a"), (2, "b")], dtype=[("n", "i4"), ("s", "U3")])
    p = profile(structured)
    assert p.columns["n"].kind is ColumnKind.NUMBER
    assert p.columns["s"].kind is ColumnKind.STRING
    assert profile(pd.Series([1, 2], name="y")).columns["y"].max == 2.0


def test_columns_argument_and_bad_input() -> None:
    df = frame()
    assert list(profile(df, columns=["s", "x"]).columns) == ["s", "x"]
    with pytest.raises(ValidationError, match="no such column"):
        profile(df, columns=["nope"])
    with pytest.raises(ValidationError, match="list of dicts"):
        profile(42)
    with pytest.raises(ValidationError, match="more than 1000"):
        profile({str(i): [1] for i in range(1001)})


def test_long_strings_are_cut_in_the_frequent_sketch_only() -> None:
    long = "z" * 1000
    p = profile([{"s": long}, {"s": long + "!"}])
    top = datasketches.frequent_strings_sketch.deserialize(p.columns["s"].frequent)
    assert top.get_estimate("z" * MAX_FREQUENT_ITEM_LENGTH) == 2
    hll = datasketches.hll_sketch.deserialize(p.columns["s"].distinct)
    assert round(hll.get_estimate()) == 2


def test_mixed_and_surrogate_values_do_not_fail() -> None:
    p = profile([{"m": 1}, {"m": "a"}, {"m": [1]}, {"m": "\ud800"}, {"m": None}])
    m = p.columns["m"]
    assert (m.kind, m.count, m.null_count) == (ColumnKind.OTHER, 4, 1)
    assert m.quantiles is None and m.frequent is None and m.distinct


# -- mergeability (the acceptance) ------------------------------------------


@st.composite
def frames(draw: Any) -> pd.DataFrame:
    n = draw(st.integers(0, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    numbers = rng.normal(draw(st.floats(-1e6, 1e6)), draw(st.floats(0, 1e3)), n)
    numbers[rng.random(n) < draw(st.floats(0, 1))] = np.nan
    ints = rng.integers(-50, 50, n).astype(float)
    words = np.array(
        draw(st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=20))
    )
    strings = rng.choice(words, n).astype(object)
    strings[rng.random(n) < 0.2] = None
    return pd.DataFrame(
        {"x": numbers, "k": ints, "s": pd.Series(strings, dtype=object)}
    )


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(frames(), frames())
def test_profile_of_concat_equals_merge_of_profiles(
    a: pd.DataFrame, b: pd.DataFrame
) -> None:
    whole = profile(pd.concat([a, b], ignore_index=True))
    merged = profile(a).merge(profile(b))
    assert merged.row_count == whole.row_count == len(a) + len(b)
    assert list(merged.columns) == list(whole.columns)
    for name, w in whole.columns.items():
        m = merged.columns[name]
        assert (m.count, m.null_count) == (w.count, w.null_count), name
        if w.count == 0:
            continue
        assert m.kind is w.kind, name
        assert (m.min, m.max) == (w.min, w.max), name
        for got, want in ((m.mean, w.mean), (m.stddev, w.stddev)):
            if want is None:
                assert got is None, name
            else:
                assert got == pytest.approx(want, rel=1e-6, abs=1e-6), name
        est_m = datasketches.hll_sketch.deserialize(m.distinct).get_estimate()
        est_w = datasketches.hll_sketch.deserialize(w.distinct).get_estimate()
        exact = len(set(pd.concat([a[name], b[name]]).dropna()))
        for estimate in (est_m, est_w):
            assert abs(estimate - exact) <= HLL_ERROR * exact + 1, name
        if w.kind is ColumnKind.NUMBER:
            assert m.quantiles is not None and w.quantiles is not None
            qm = datasketches.kll_doubles_sketch.deserialize(m.quantiles)
            values = np.sort(pd.concat([a[name], b[name]]).dropna().to_numpy())
            assert qm.n == len(values)
            for q in (0.1, 0.5, 0.9):
                # The merged sketch's quantile has a true rank within the bound.
                v = qm.get_quantile(q)
                lo = np.searchsorted(values, v, side="left") / len(values)
                hi = np.searchsorted(values, v, side="right") / len(values)
                assert lo - 2 * RANK_ERROR <= q <= hi + 2 * RANK_ERROR, name
        if w.kind is ColumnKind.STRING:
            fm = datasketches.frequent_strings_sketch.deserialize(m.frequent)
            assert fm.total_weight == w.count


def test_merge_fills_missing_columns_with_nulls_and_keeps_windows() -> None:
    a = profile([{"x": 1}, {"x": 2}])
    b = profile([{"y": "q"}])
    m = a.merge(b)
    assert m.row_count == 3
    assert (m.columns["x"].count, m.columns["x"].null_count) == (2, 1)
    assert (m.columns["y"].count, m.columns["y"].null_count) == (1, 2)
    assert m.columns["y"].kind is ColumnKind.STRING
    assert m.window_start == min(a.window_start, b.window_start)  # type: ignore
    assert m.window_end == max(a.window_end, b.window_end)  # type: ignore
    clash = profile([{"x": "text"}])
    other = a.merge(clash).columns["x"]
    assert other.kind is ColumnKind.OTHER and other.quantiles is None
    with pytest.raises(ValueError, match="sketch parameters"):
        a.merge(a.model_copy(update={"kll_k": 100}))


# -- the pipeline -------------------------------------------------------------------


def test_log_data_profile_round_trip(memory: MemoryTransport) -> None:
    client = VDTClient(transport=memory, service="svc")
    df = frame()
    event_id = client.log_data_profile("features", df, tags={"run": "1"})
    built = profile(df).merge(profile(df))
    assert client.log_data_profile("merged", built) is not None
    assert client.stats() == Stats(accepted=2, delivered=2)
    first, second = memory.records
    assert (first.topic, first.key) == ("vdt.data_profiles", b"features")
    assert second.key == b"merged"
    event = decode(first.value)
    assert isinstance(event, DataProfile) and event.event_id == event_id
    assert event.dataset_name == "features" and event.tags == {"run": "1"}
    assert event.source.service == "svc"
    assert event == memory.events[0]
    for name, column in event.columns.items():
        hll = datasketches.hll_sketch.deserialize(column.distinct)
        assert hll.lg_config_k == HLL_LG_K, name
    assert decode(second.value).row_count == 2 * len(df)  # type: ignore
    # Profile size on the wire: 6 columns, about 10 KB.
    assert len(first.value) < 20_000


def test_log_data_profile_through_policy_and_before_send(
    memory: MemoryTransport,
) -> None:
    seen: List[Any] = []

    def hook(event: Any) -> Any:
        seen.append(event)
        return event

    client = VDTClient(transport=memory, before_send=hook)
    client.log_data_profile("users", [{"password": "hunter2", "age": 3}])
    (event,) = memory.events
    assert seen and isinstance(seen[0], DataProfile)
    secret = event.columns["password"]  # type: ignore[attr-defined]
    assert secret.frequent is None and secret.distinct is not None
    assert secret.count == 1
    assert event.columns["age"].quantiles is not None  # type: ignore
    with pytest.raises(ValidationError, match="columns"):
        client.log_data_profile("users", profile([{"a": 1}]), columns=["a"])
    with pytest.raises(ValidationError, match="dataset_name"):
        client.log_data_profile("", [{"a": 1}])


def test_too_large_profile_is_refused(memory: MemoryTransport) -> None:
    client = VDTClient(transport=memory, max_event_bytes=2_000)
    with pytest.raises(ValidationError, match="max_event_bytes"):
        client.log_data_profile("big", frame())
    assert memory.records == []


def test_offline_round_trip(tmp_path: Path) -> None:
    with pytest.warns(OfflineModeWarning):
        client = VDTClient(spool_dir=tmp_path / "spool")
    client.log_data_profile("offline", frame())
    client.close()
    assert client.stats() == Stats(accepted=1, spooled=1)
    (event,) = list(iter_events(tmp_path / "spool"))
    assert isinstance(event, DataProfile) and event.row_count == 2000
    kll = datasketches.kll_doubles_sketch.deserialize(event.columns["x"].quantiles)
    assert kll.n == 2000


def test_missing_extra_gives_the_install_hint() -> None:
    code = (
        "import sys; sys.modules['datasketches'] = None\n"
        "from vdt_ai.profiles import profile\n"
        "try:\n    profile([{'a': 1}])\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "pip install 'vdt-ai[profiles]'" in out.stdout


def test_numpy_hashes_numbers_as_datasketches_does() -> None:
    # A one-value HLL sketch serializes its coupon: the slot address (26
    # bits of the first hash half) and the second half's leading zeros + 1.
    values = np.concatenate(
        [
            np.random.default_rng(7).normal(0, 1e6, 200),
            [0.0, -0.0, 1.0, -1.0, 5e-324, 1.7e308, -1.7e308],
        ]
    )
    first, second, scratch = (np.empty(values.size, dtype=np.uint64) for _ in "123")
    _murmur3_doubles(values, first, second, scratch, np)
    for value, h1, h2 in zip(values.tolist(), first.tolist(), second.tolist()):
        sketch = datasketches.hll_sketch(HLL_LG_K)
        sketch.update(value)
        image = sketch.serialize_compact()
        coupon = int.from_bytes(image[-4:], "little")
        zeros = 64 - h2.bit_length()
        assert coupon == (min(zeros, 62) + 1) << 26 | (h1 & (2**26 - 1)), value


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).random(200_000) * 100,  # all distinct
        np.repeat(np.random.default_rng(2).normal(size=3_000), 20),  # borderline
        np.arange(40_000.0) - 20_000,  # -0.0 and 0.0 among them
    ],
    ids=["distinct", "repeated", "integers"],
)
def test_hll_of_many_numbers_equals_the_sketch_fed_every_value(
    values: np.ndarray,
) -> None:
    column = profile(values).columns["value"]
    fed = datasketches.hll_sketch(HLL_LG_K, datasketches.tgt_hll_type.HLL_4)
    for value in values.tolist():
        fed.update(value)
    union = datasketches.hll_union(HLL_LG_K)
    union.update(fed)
    union.update(fed)  # out of order: the estimate from the registers
    # The same registers: the bytes of the union of the sketch fed every value.
    expected = union.get_result(datasketches.tgt_hll_type.HLL_4)
    assert column.distinct == expected.serialize_compact()
    exact = len(np.unique(values))
    estimate = datasketches.hll_sketch.deserialize(column.distinct).get_estimate()
    assert abs(estimate - exact) <= HLL_ERROR * exact
    # Halves profiled apart merge into the same sketch.
    half = len(values) // 2
    merged = profile(values[:half]).merge(profile(values[half:]))
    merged_hll = datasketches.hll_sketch.deserialize(merged.columns["value"].distinct)
    assert merged_hll.get_estimate() == pytest.approx(estimate, rel=1e-9)


def test_few_distinct_numbers_in_a_long_column() -> None:
    values = np.random.default_rng(3).integers(0, 1_000, 100_000).astype(float)
    image = profile(values).columns["value"].distinct
    assert image is not None
    estimate = datasketches.hll_sketch.deserialize(image).get_estimate()
    assert abs(estimate - 1_000) <= HLL_ERROR * 1_000
    out_of_order = 16  # the preamble's flag: fed one distinct value at a time
    assert not image[5] & out_of_order


@pytest.mark.parametrize(
    "kind, nulls",
    [
        (kind, nulls)
        for kind in (
            "numpy",
            "numpy-float32",
            "numpy-int",
            "pandas",
            "pandas-int",
            "pandas-Float64",
            "pyarrow",
            "rows",
        )
        for nulls in (False, True)
        if not (nulls and kind.endswith("int"))  # integer arrays hold no NaN
    ],
)
def test_profile_leaves_the_callers_data_as_it_was(kind: str, nulls: bool) -> None:
    # Number columns are sorted for the sketches: in place only when the
    # array was made here (pyarrow's, or one converted from ints or
    # float32), never the caller's own.
    rng = np.random.default_rng(5)
    values: Any = rng.normal(size=50_000)
    if kind.endswith("int"):
        values = rng.integers(-1000, 1000, size=50_000)
    elif kind.endswith("float32"):
        values = values.astype(np.float32)
    if nulls:
        values[::97] = np.nan
    original = values.copy()
    data: Any = {
        "numpy": values,
        "numpy-float32": values,
        "numpy-int": values,
        "pandas": pd.DataFrame({"x": values}),
        "pandas-int": pd.DataFrame({"x": values}),
        "pandas-Float64": pd.DataFrame({"x": pd.array(values, dtype="Float64")}),
        "pyarrow": pa.table({"x": values}),
        "rows": [{"x": v} for v in values.tolist()],
    }[kind]
    made = profile(data)
    column = next(iter(made.columns.values()))
    finite = original[np.isfinite(original)]
    assert column.count == finite.size
    assert (column.min, column.max) == (finite.min(), finite.max())
    if kind.startswith("pandas"):
        values = data["x"].to_numpy(dtype=np.float64, na_value=np.nan)
    elif kind == "pyarrow":
        values = data.column("x").to_numpy()
    elif kind == "rows":
        values = np.array([row["x"] for row in data])
    np.testing.assert_array_equal(values, original)
    quantiles = datasketches.kll_doubles_sketch.deserialize(column.quantiles)
    assert abs(quantiles.get_rank(float(np.median(finite))) - 0.5) < 0.02
