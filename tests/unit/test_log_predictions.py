"""VDTClient.log_predictions: tables in, one ModelCall per row out."""

import datetime as dt
import math
import subprocess
import sys
from typing import Any, Dict, List

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from vdt_ai import ModelCall, ValidationError, VDTClient, _predictions, decode
from vdt_ai.codec._reference import reference_value
from vdt_ai.testing import MemoryTransport

from .test_codec_wire import assert_same_event_bytes

UTC = dt.timezone.utc
ROLES: Dict[str, Any] = {
    "label_column": "label",
    "score_column": "score",
    "probability_columns": {"churn": "p_churn", "stay": "p_stay"},
    "request_id_column": "rid",
    "latency_column": "latency",
    "timestamp_column": "ts",
    "embedding_column": "emb",
    "embedding_name": "text",
    "feature_importance_columns": {"age": "shap_age", "income": "shap_income"},
    "prediction_column": "raw",
}


def _frame(rows: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    p = rng.random(rows)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows),
            "income": rng.normal(size=rows),
            "city": [f"c{i % 3}" for i in range(rows)],
            "label": ["churn" if x > 0.5 else "stay" for x in p],
            "score": p,
            "p_churn": p,
            "p_stay": 1 - p,
            "rid": [f"r{i}" for i in range(rows)],
            "latency": rng.random(rows) * 10,
            "ts": pd.date_range("2026-01-01", periods=rows, freq="s", tz="UTC"),
            "emb": [rng.random(4).tolist() for _ in range(rows)],
            "raw": [{"k": i} for i in range(rows)],
            "shap_age": rng.normal(size=rows),
            "shap_income": rng.normal(size=rows),
        }
    )


def _client(**settings: Any) -> "tuple[VDTClient, MemoryTransport]":
    transport = MemoryTransport()
    return VDTClient(transport=transport, handle_sigterm=False, **settings), transport


def _content(event: Any) -> Dict[str, Any]:
    fields: Dict[str, Any] = event.model_dump()
    fields.pop("event_id")
    return fields


def _expected(df: pd.DataFrame, **settings: Any) -> List[Dict[str, Any]]:
    """The same rows through log_model_call, one by one (the reference)."""
    client, transport = _client(**settings)
    for row in df.to_dict("records"):
        client.log_model_call(
            "churn",
            {"age": int(row["age"]), "income": row["income"], "city": row["city"]},
            row["raw"],
            row["latency"],
            request_id=row["rid"],
            timestamp=row["ts"].to_pydatetime(),
            prediction_label=row["label"],
            prediction_score=row["score"],
            class_probabilities={"churn": row["p_churn"], "stay": row["p_stay"]},
            embedding=row["emb"],
            embedding_name="text",
            feature_importance={
                "age": row["shap_age"],
                "income": row["shap_income"],
            },
            tags={"job": "nightly"},
        )
    return [_content(e) for e in transport.events]


@pytest.mark.parametrize("fast", [True, False])
def test_a_frame_gives_what_log_model_call_gives_row_by_row(fast: bool) -> None:
    df = _frame()
    client, transport = _client()
    client._pipeline.fast = fast
    count = client.log_predictions(
        df, model_name="churn", tags={"job": "nightly"}, **ROLES
    )
    assert count == len(df) == len(transport.records)
    events = [decode(r.value) for r in transport.records]
    assert [_content(e) for e in events] == _expected(df)
    for record, event in zip(transport.records, events):
        assert record.key == b"churn"
        assert_same_event_bytes(record.value, reference_value(event))
    assert [e.event_id for e in events] == sorted(e.event_id for e in events)


def test_arrow_polars_and_dicts_give_identical_events() -> None:
    df = _frame(5).drop(columns=["raw"])
    roles = {k: v for k, v in ROLES.items() if k != "prediction_column"}
    outputs = []
    inputs: List[Any] = [
        df,
        pa.Table.from_pandas(df, preserve_index=False),
        pa.RecordBatch.from_pandas(df, preserve_index=False),
        [
            {**row, "ts": row["ts"].to_pydatetime(), "age": int(row["age"])}
            for row in df.to_dict("records")
        ],
    ]
    try:
        import polars

        inputs.append(polars.from_pandas(df))
    except ImportError:  # pragma: no cover - polars is a dev dependency
        pass
    for data in inputs:
        client, transport = _client()
        assert client.log_predictions(data, model_name="churn", **roles) == 5
        outputs.append([_content(e) for e in transport.events])
    assert len(outputs) >= 4
    for other in outputs[1:]:
        assert other == outputs[0]


def test_input_columns_default_to_the_columns_without_a_role() -> None:
    client, transport = _client()
    client.log_predictions(
        [{"a": 1, "b": "x", "s": 0.5}], model_name="m", score_column="s"
    )
    client.log_predictions(
        [{"a": 1, "b": "x", "s": 0.5}], model_name="m", input_columns=["b"]
    )
    first, second = transport.events
    assert isinstance(first, ModelCall) and isinstance(second, ModelCall)
    assert first.input_data == {"a": 1, "b": "x"} and first.prediction_score == 0.5
    assert second.input_data == {"b": "x"} and second.prediction_score is None


def test_nan_inputs_are_missing_values() -> None:
    client, transport = _client()
    df = pd.DataFrame({"x": [1.0, math.nan], "y": ["a", None]})
    client.log_predictions(df, model_name="m")
    assert [getattr(e, "input_data") for e in transport.events] == [
        {"x": 1.0, "y": "a"},
        {"x": None, "y": None},
    ]


@pytest.mark.parametrize(
    "column, value, roles, field",
    [
        ("score", math.nan, {"score_column": "score"}, "data.{row}.score"),
        ("score", "0.5", {"score_column": "score"}, "data.{row}.score"),
        ("label", 3, {"label_column": "label"}, "data.{row}.label"),
        ("p", 1.5, {"probability_columns": ["p"]}, "data.{row}.p"),
        ("emb", list(range(9000)), {"embedding_column": "emb"}, "data.{row}.emb"),
        ("emb", "abc", {"embedding_column": "emb"}, "data.{row}.emb"),
        ("lat", -1.0, {"latency_column": "lat"}, "data.{row}.lat"),
        ("ts", dt.datetime(2026, 1, 1), {"timestamp_column": "ts"}, "data.{row}.ts"),
        ("x", math.inf, {}, "data.{row}.x"),
        ("x", 2**64, {}, "data.{row}.x"),  # beyond JSON's uint64 (all ints)
    ],
)
def test_a_bad_cell_names_row_and_column_and_nothing_is_recorded(
    monkeypatch: pytest.MonkeyPatch,
    column: str,
    value: Any,
    roles: Dict[str, Any],
    field: str,
) -> None:
    monkeypatch.setattr(_predictions, "CHUNK_ROWS", 4)
    good = {
        "score": 0.5,
        "label": "a",
        "p": 0.5,
        "emb": [1.0],
        "lat": 1.0,
        "ts": dt.datetime(2026, 1, 1, tzinfo=UTC),
        "x": 1.0,
    }
    rows = [dict(good) for _ in range(10)]
    rows[9][column] = value  # in the last chunk: the first ones are not sent
    client, transport = _client()
    with pytest.raises(ValidationError) as caught:
        client.log_predictions(rows, model_name="m", **roles)
    assert caught.value.errors[0][0] == field.format(row=9)
    assert transport.records == []


def test_bad_arguments() -> None:
    client, transport = _client()
    with pytest.raises(ValidationError, match="label_column"):
        client.log_predictions([{"a": 1}], model_name="m", label_column="nope")
    with pytest.raises(ValidationError, match="data"):
        client.log_predictions("abc", model_name="m")
    with pytest.raises(ValidationError, match="data.1"):
        client.log_predictions([{"a": 1}, 5], model_name="m")
    with pytest.raises(ValidationError, match="model_name"):
        client.log_predictions([{"a": 1}], model_name="")
    assert transport.records == []


def test_policy_and_before_send_apply_to_rows_from_a_frame() -> None:
    df = pd.DataFrame(
        {"email": ["a@b.c"], "password": ["hunter2"], "age": [3], "s": [0.5]}
    )
    client, transport = _client()
    client.log_predictions(df, model_name="m", score_column="s")
    assert getattr(transport.events[0], "input_data") == {
        "email": "a@b.c",
        "password": "****",
        "age": 3,
    }
    seen: List[Any] = []

    def hook(event: Any) -> Any:
        seen.append(event)
        return event.model_copy(update={"prediction_score": 1.0})

    transport = MemoryTransport()
    client = VDTClient(
        transport=transport,
        handle_sigterm=False,
        data_policy={"input_data.email": "mask"},
        before_send=hook,
    )
    client.log_predictions(df, model_name="m", score_column="s")
    event = decode(transport.records[0].value)
    assert getattr(event, "input_data") == {
        "email": "****",
        "password": "****",
        "age": 3,
    }
    assert getattr(event, "prediction_score") == 1.0 and len(seen) == 1


def test_sampling_is_honoured() -> None:
    client, transport = _client(sample_rate=0.5)
    rows = [{"x": i} for i in range(400)]
    count = client.log_predictions(rows, model_name="m")
    assert count == len(transport.records)
    assert 120 < count < 280
    assert client.stats().sampled_out == 400 - count


def test_disabled_client_records_nothing() -> None:
    client, transport = _client(enabled=False)
    assert client.log_predictions([{"x": 1}], model_name="m") == 0
    assert transport.records == []


def test_pandas_is_not_imported_for_a_list_of_dicts() -> None:
    code = (
        "import sys\n"
        "from vdt_ai import VDTClient\n"
        "from vdt_ai.testing import MemoryTransport\n"
        "c = VDTClient(transport=MemoryTransport(), handle_sigterm=False)\n"
        "assert c.log_predictions([{'x': 1, 's': 0.5}], model_name='m',"
        " score_column='s') == 1\n"
        "bad = {'pandas', 'pyarrow', 'polars', 'numpy'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    "settings",
    [{}, {"data_policy": {"input_data.other": "hash"}, "hash_salt": "s" * 16}],
    ids=["fast", "policy"],
)
@pytest.mark.parametrize(
    "column, big",
    [
        ("note", "é" * 700),  # 1,400 UTF-8 bytes of text
        ("nested", {"k": list(range(400))}),
        ("emb", [0.5] * 600),  # 2,400 bytes as float32
    ],
)
def test_an_oversized_event_in_a_later_chunk_records_nothing(
    monkeypatch: pytest.MonkeyPatch,
    settings: Dict[str, Any],
    column: str,
    big: Any,
) -> None:
    # The size is checked in pass 1: the chunks before the big row are not
    # sent when it is found.
    monkeypatch.setattr(_predictions, "CHUNK_ROWS", 4)
    rows = [
        {"note": "n", "nested": {"k": [1]}, "emb": [0.5], "s": 0.5} for _ in range(10)
    ]
    rows[9][column] = big
    client, transport = _client(max_event_bytes=1024, **settings)
    with pytest.raises(ValidationError) as caught:
        client.log_predictions(
            rows, model_name="m", score_column="s", embedding_column="emb"
        )
    (field, reason), *_ = caught.value.errors
    assert field == "data.9.event" and "max_event_bytes" in reason
    assert transport.records == []
    # The rows that fit are sent, each within the limit.
    assert (
        client.log_predictions(
            rows[:9], model_name="m", score_column="s", embedding_column="emb"
        )
        == 9
    )
    assert all(len(r.value) <= 1024 for r in transport.records)


def test_the_size_is_measured_after_the_data_policy() -> None:
    # As log_model_call: a long value the policy hashes is not too large.
    rows = [{"note": "n" * 2000}]
    client, transport = _client(max_event_bytes=1024)
    with pytest.raises(ValidationError, match="max_event_bytes"):
        client.log_predictions(rows, model_name="m")
    client, transport = _client(
        max_event_bytes=1024,
        data_policy={"input_data.note": "hash"},
        hash_salt="s" * 16,
    )
    assert client.log_predictions(rows, model_name="m") == 1


def test_rows_near_the_limit_are_measured_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Rows whose bound is over the limit are built and measured: one that
    # fits is sent, one byte more is refused, and small rows cost no exact
    # measure at all.
    measured: List[int] = []
    exact = _predictions._exact_size

    def counting(*args: Any) -> None:
        measured.append(args[-1])
        exact(*args)

    monkeypatch.setattr(_predictions, "_exact_size", counting)
    client, transport = _client(max_event_bytes=1024)
    client.log_predictions(pd.DataFrame({"x": np.arange(100.0)}), model_name="m")
    assert measured == [] and len(transport.records) == 100
    size = len(transport.records[0].value)
    free = 1024 - size - len('"xxxxxxxxxx"') - 8  # the timestamp's longest nanos
    for extra, fits in ((free, True), (free + 60, False)):
        transport = MemoryTransport()
        client = VDTClient(
            transport=transport, handle_sigterm=False, max_event_bytes=1024
        )
        rows = [{"x": 1.5, "t": "a" * extra}]
        if fits:
            assert client.log_predictions(rows, model_name="m") == 1
            assert len(transport.records[0].value) <= 1024
        else:
            with pytest.raises(ValidationError, match="max_event_bytes"):
                client.log_predictions(rows, model_name="m")
    assert measured  # the text column's bound (6 bytes a character) was over


def test_feature_importance_columns_and_embedding_name() -> None:
    client, transport = _client()
    rows = [{"x": 1.0, "shap_x": -0.25, "emb": [1.0, 2.0]}]
    client.log_predictions(
        rows,
        model_name="m",
        feature_importance_columns=["shap_x"],
        embedding_column="emb",
        embedding_name="image",
    )
    (event,) = transport.events
    assert getattr(event, "feature_importance") == {"shap_x": -0.25}
    assert getattr(event, "embedding_name") == "image"
    assert getattr(event, "input_data") == {"x": 1.0}
    for bad, field in (
        ({"embedding_name": "image"}, "embedding_name"),
        ({"embedding_name": " ", "embedding_column": "emb"}, "embedding_name"),
        ({"feature_importance_columns": "shap_x"}, "feature_importance_columns"),
        ({"feature_importance_columns": ["nope"]}, "feature_importance_columns"),
    ):
        with pytest.raises(ValidationError) as caught:
            client.log_predictions(rows, model_name="m", **bad)
        assert caught.value.errors[0][0] == field
    with pytest.raises(ValidationError) as caught:
        client.log_predictions(
            rows + [{"x": 1.0, "shap_x": math.nan, "emb": [1.0]}],
            model_name="m",
            feature_importance_columns={"x": "shap_x"},
        )
    assert caught.value.errors[0][0] == "data.1.shap_x"
    assert len(transport.records) == 1
    # The data policy's rules reach them (a rule may drop an entry).
    client, transport = _client(
        data_policy={"feature_importance.shap_x": "drop", "embedding_name": "mask"}
    )
    client.log_predictions(
        [{"x": 1.0, "shap_x": -0.25, "shap_y": 0.5, "emb": [1.0]}],
        model_name="m",
        feature_importance_columns=["shap_x", "shap_y"],
        embedding_column="emb",
        embedding_name="image",
    )
    (event,) = transport.events
    assert getattr(event, "feature_importance") == {"shap_y": 0.5}
    assert getattr(event, "embedding_name") == "****"
