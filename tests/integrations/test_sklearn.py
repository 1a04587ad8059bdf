"""scikit-learn integration against the real scikit-learn."""

import pickle
import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vdt_ai import CallStatus, Metric, ModelCall, VDTClient
from vdt_ai.integrations import _common
from vdt_ai.integrations.sklearn import InstrumentedEstimator, instrument, log_fit
from vdt_ai.testing import MemoryTransport


@pytest.fixture
def data() -> Any:
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    X[3, 2] = np.nan  # a missing value the summary must count
    return np.nan_to_num(X, nan=0.0), y, X


@pytest.fixture
def client(memory: MemoryTransport) -> VDTClient:
    return VDTClient(transport=memory)


def test_predictions_unchanged_and_logged_as_summaries(
    data: Any, client: VDTClient, memory: MemoryTransport
) -> None:
    X, y, _ = data
    plain = LogisticRegression().fit(X, y)
    wrapped = instrument(LogisticRegression().fit(X, y), "churn", client, "v3")
    np.testing.assert_array_equal(wrapped.predict(X), plain.predict(X))
    np.testing.assert_allclose(wrapped.predict_proba(X[:7]), plain.predict_proba(X[:7]))
    assert list(wrapped.classes_) == [0, 1]  # fitted attributes pass through
    first, second = memory.events_of(ModelCall)
    assert first.model_name == "churn" and first.model_version == "v3"
    assert first.latency_ms is not None and first.latency_ms >= 0
    assert first.input_data["method"] == "predict"
    assert first.input_data["batch_size"] == 200
    assert first.input_data["summary"]["shape"] == [200, 5]
    assert len(first.input_data["summary"]["mean"]) == 5
    assert sum(first.prediction["class_distribution"].values()) == 200
    assert second.input_data["method"] == "predict_proba"
    assert second.prediction["shape"] == [7, 2]
    assert first.tags == {"framework": "sklearn", "estimator": "LogisticRegression"}
    assert len(memory.records[0].value) < 2000  # a summary, not 200 rows


def test_input_null_counts_in_summary(
    data: Any, client: VDTClient, memory: MemoryTransport
) -> None:
    X, y, with_nan = data
    scaler = instrument(StandardScaler().fit(X), "scaler", client)
    scaler.transform(with_nan)
    (event,) = memory.events_of(ModelCall)
    assert event.input_data["summary"]["null_count"][2] == 1


def test_pipeline_and_error_path(client: VDTClient, memory: MemoryTransport) -> None:
    X, y = make_classification(n_samples=50, n_features=4, random_state=1)
    model = instrument(
        make_pipeline(StandardScaler(), LogisticRegression()), "p", client
    )
    assert model.fit(X, y) is model
    assert model.score(X, y) > 0.5  # not logged: not a prediction method
    with pytest.raises(ValueError) as info:
        model.predict(np.ones((3, 9)))  # wrong width: sklearn's own error
    assert "features" in str(info.value)
    (event,) = memory.events_of(ModelCall)
    assert event.status is CallStatus.ERROR and event.error_type == "ValueError"


def test_clone_params_and_pickle_keep_working(data: Any, client: VDTClient) -> None:
    X, y, _ = data
    wrapped = instrument(LogisticRegression(C=0.5), "m", client)
    params = wrapped.get_params()
    assert params["estimator__C"] == 0.5 and params["model_name"] == "m"
    wrapped.set_params(estimator__C=2.0)
    assert wrapped.estimator.C == 2.0
    copy = clone(wrapped)
    assert isinstance(copy, InstrumentedEstimator) and copy.estimator.C == 2.0
    assert copy.client is client  # clients are shared, not copied
    wrapped.fit(X, y)
    restored = pickle.loads(pickle.dumps(wrapped))
    assert restored.client is None  # re-resolved to the default client on use
    np.testing.assert_array_equal(
        restored.estimator.predict(X), wrapped.estimator.predict(X)
    )
    assert "LogisticRegression" in repr(wrapped)


def test_internal_failure_leaves_the_result_unchanged(
    data: Any,
    client: VDTClient,
    memory: MemoryTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y, _ = data
    expected = LogisticRegression().fit(X, y).predict(X)

    def broken(data: Any) -> Any:
        raise RuntimeError("summary bug")

    monkeypatch.setattr("vdt_ai.integrations.sklearn.summarize", broken)
    wrapped = instrument(LogisticRegression().fit(X, y), "m", client)
    np.testing.assert_array_equal(wrapped.predict(X), expected)
    assert client.stats().integration_errors == 1
    assert memory.records == []
    monkeypatch.setattr("vdt_ai.integrations.sklearn.summarize", _common.summarize)

    # A transport that raises is the client's business: counted failed, never raised.
    class Exploding(MemoryTransport):
        def send(self, record: Any, counters: Any) -> None:
            raise RuntimeError("transport down")

    exploding = VDTClient(transport=Exploding())
    wrapped = instrument(LogisticRegression().fit(X, y), "m", exploding)
    np.testing.assert_array_equal(wrapped.predict(X), expected)
    assert exploding.stats().failed == 1


def test_log_fit_logs_metrics_with_run_id_and_params(
    data: Any, client: VDTClient, memory: MemoryTransport
) -> None:
    X, y, _ = data
    fitted = log_fit(
        LogisticRegression(C=0.25), X, y, client, run_id="r1", model_name="m"
    )
    assert hasattr(fitted, "coef_")
    metrics = {e.name: e for e in memory.events_of(Metric)}
    assert set(metrics) == {"fit_duration_ms", "train_rows", "train_score"}
    assert metrics["train_rows"].value == 200
    assert 0.5 < metrics["train_score"].value <= 1.0
    assert all(e.run_id == "r1" for e in metrics.values())
    tags = metrics["train_score"].tags
    assert tags["param.C"] == "0.25" and tags["model_name"] == "m"
    memory.clear()
    log_fit(LogisticRegression(), X, y, client)
    run_ids = {e.run_id for e in memory.events_of(Metric)}
    assert len(run_ids) == 1 and str(next(iter(run_ids))).startswith("sklearn-")


def test_log_fit_reraises_the_users_error_and_survives_logging_errors(
    client: VDTClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError):
        log_fit(LogisticRegression(), np.ones((4, 2)), np.array([0, 0, 0, 0]), client)
    X, y = make_classification(n_samples=30, n_features=4, random_state=2)
    monkeypatch.setattr(client, "log_metrics", lambda *a, **k: 1 / 0)
    fitted = log_fit(LogisticRegression(), X, y, client)
    assert hasattr(fitted, "coef_")
    assert client.stats().integration_errors == 1


def test_default_client_is_used_when_none_given(
    data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vdt_ai import _registry

    memory = MemoryTransport()
    default = VDTClient(transport=memory)
    monkeypatch.setitem(_registry._clients, _registry.key_of(None), default)
    X, y, _ = data
    instrument(LogisticRegression().fit(X, y), "m").predict(X[:2])
    assert len(memory.events_of(ModelCall)) == 1


def test_missing_framework_gives_the_install_hint() -> None:
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "try:\n"
        "    import vdt_ai.integrations.sklearn\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'vdt-ai[sklearn]'" in out.stdout


def test_version_outside_the_range_warns_once() -> None:
    assert _common._in_range("1.9.1", ("1.1", "2"))
    assert not _common._in_range("0.24.2", ("1.1", "2"))
    with pytest.warns(RuntimeWarning, match="outside the range"):
        _common.require("json", "x", ("99", "100"))  # json has no version: "0"


def test_per_row_logging_is_opt_in_sampled_and_bulk(
    data: Any, client: VDTClient, memory: MemoryTransport
) -> None:
    X, y, _ = data
    fitted = LogisticRegression().fit(X, y)
    instrument(fitted, "m", client).predict(X)
    assert len(memory.events_of(ModelCall)) == 1  # off by default: the summary only
    memory.clear()
    sampled = instrument(fitted, "m", client, log_rows=True, row_sample_rate=0.1)
    predictions = sampled.predict(X)
    calls = memory.events_of(ModelCall)
    rows = [c for c in calls if c.tags.get("row") == "sampled"]
    assert len(calls) == 1 + len(rows) and len(rows) == 20  # 10% of 200
    for row in rows:
        index = int(np.where((X == np.array(row.input_data)).all(axis=1))[0][0])
        assert row.prediction == int(predictions[index])
    memory.clear()
    capped = instrument(
        fitted, "m", client, log_rows=True, row_sample_rate=1.0, max_rows_per_call=5
    )
    capped.predict(X)
    assert len([c for c in memory.events_of(ModelCall) if c.tags.get("row")]) == 5


def test_array_summaries_match_numpy_a_block_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_common, "SUMMARY_BLOCK", 64)  # many blocks of rows
    rng = np.random.default_rng(3)
    data = rng.standard_normal((1000, 5))
    data[::9, 1] = np.nan
    data[:, 2] = np.nan
    data[4, 3] = np.inf
    for array in (data, data.astype(np.float32), rng.integers(-5, 5, (300, 4))):
        got = _common.summarize(array)
        matrix = array.astype(np.float64)
        assert got["null_count"] == np.isnan(matrix).sum(axis=0).tolist()
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column
            expected = {
                "min": np.nanmin(matrix, axis=0),
                "max": np.nanmax(matrix, axis=0),
                "mean": np.nanmean(matrix, axis=0),
            }
        for name, values in expected.items():
            finite = np.isfinite(values)
            assert [v is not None for v in got[name]] == finite.tolist()
            kept = [v for v in got[name] if v is not None]
            assert kept == pytest.approx(values[finite].tolist(), rel=1e-6)


def _sampled_rows(memory: MemoryTransport) -> Any:
    return [c for c in memory.events_of(ModelCall) if c.tags.get("row") == "sampled"]


def test_logged_rows_carry_label_score_and_class_probabilities(
    data: Any, client: VDTClient, memory: MemoryTransport
) -> None:
    X, y, _ = data
    labels = np.array(["no", "yes"])[y]  # text classes
    fitted = LogisticRegression().fit(X, labels)
    model = instrument(fitted, "m", client, log_rows=True, row_sample_rate=1.0)
    predicted = model.predict(X[:5])
    assert [r.prediction_label for r in _sampled_rows(memory)] == list(predicted)
    memory.clear()
    probabilities = model.predict_proba(X[:5])
    rows = _sampled_rows(memory)
    assert len(rows) == 5
    for row, p in zip(rows, probabilities):
        assert row.class_probabilities == pytest.approx({"no": p[0], "yes": p[1]})
        assert row.prediction_label == ("yes" if p[1] > p[0] else "no")
        assert row.prediction_score == pytest.approx(max(p))
    memory.clear()
    model.predict_log_proba(X[:2])
    assert [r.class_probabilities for r in _sampled_rows(memory)] == [
        pytest.approx({"no": p[0], "yes": p[1]}) for p in probabilities[:2]
    ]
    memory.clear()
    scores = model.decision_function(X[:3])
    assert [r.prediction_score for r in _sampled_rows(memory)] == pytest.approx(
        list(scores)
    )
    assert all(r.prediction_label is None for r in _sampled_rows(memory))


def test_logged_rows_of_a_regressor_carry_its_score(
    client: VDTClient, memory: MemoryTransport
) -> None:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(1)
    X = rng.random((20, 3))
    model = instrument(
        LinearRegression().fit(X, X @ [1.0, 2.0, 3.0]),
        "reg",
        client,
        log_rows=True,
        row_sample_rate=1.0,
    )
    predicted = model.predict(X[:4])
    rows = _sampled_rows(memory)
    assert [r.prediction_score for r in rows] == pytest.approx(list(predicted))
    assert all(r.prediction_label is None for r in rows)
    assert all(r.class_probabilities is None for r in rows)
