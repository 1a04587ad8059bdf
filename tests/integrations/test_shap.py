"""vdt_ai.integrations.shap against a real shap run on small sklearn models."""

import math
import warnings
from typing import Any

import numpy as np
import pytest

with warnings.catch_warnings():  # shap's plots warn about matplotlib APIs
    warnings.simplefilter("ignore")
    import shap

from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression

from vdt_ai import ModelCall, ValidationError, VDTClient
from vdt_ai.integrations.shap import log_explanations
from vdt_ai.testing import MemoryTransport


@pytest.fixture
def data() -> Any:
    X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    return X, y


def test_an_explanation_becomes_feature_importance_per_row(
    data: Any, memory: MemoryTransport
) -> None:
    X, _ = data
    model = LinearRegression().fit(X, X @ [1.0, -2.0, 0.5, 3.0])
    explanation = shap.LinearExplainer(model, X)(X[:6])
    client = VDTClient(transport=memory)
    ids = [f"r{i}" for i in range(6)]
    assert log_explanations(client, "reg", explanation, None, request_ids=ids) == 6
    calls = memory.events_of(ModelCall)
    assert [c.request_id for c in calls] == ids
    names = list(explanation.feature_names)
    for call, row in zip(calls, explanation.values):
        assert call.feature_importance == pytest.approx(dict(zip(names, row)))
        assert call.input_data == {} and call.tags["framework"] == "shap"
        assert call.model_name == "reg"


def test_tree_shap_values_of_a_classifier_one_output(
    data: Any, memory: MemoryTransport
) -> None:
    X, y = data
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    values = shap.TreeExplainer(model).shap_values(X[:5])
    names = ["a", "b", "c", "request_id"]  # a feature named like the id column
    client = VDTClient(transport=memory)
    with pytest.raises(ValidationError, match="multi-output"):
        log_explanations(client, "rf", values, names)  # (rows, features, classes)
    positive = np.asarray(values)[:, :, 1] if np.ndim(values) == 3 else values[1]
    log_explanations(client, "rf", positive, names, request_ids=list("vwxyz"))
    calls = memory.events_of(ModelCall)
    assert [c.request_id for c in calls] == list("vwxyz")
    assert calls[0].feature_importance == pytest.approx(
        dict(zip(names, positive[0].tolist()))
    )


def test_bad_values_name_row_and_feature_and_record_nothing(
    memory: MemoryTransport,
) -> None:
    client = VDTClient(transport=memory)
    values = np.ones((3, 2))
    values[2, 1] = math.nan
    with pytest.raises(ValidationError) as caught:
        log_explanations(client, "m", values, ["x", "y"])
    assert caught.value.errors[0][0] == "data.2.y"
    for names, ids, field in (
        (["x"], None, "shap_values.0"),
        (["x", "y", "z"], None, "shap_values.0"),
        (["x", "x"], None, "feature_names"),
        (["x", "y"], ["a"], "request_ids"),
        (None, None, "feature_names"),
    ):
        with pytest.raises(ValidationError) as caught:
            log_explanations(client, "m", np.ones((3, 2)), names, request_ids=ids)
        assert caught.value.errors[0][0] == field
    with pytest.raises(ValidationError, match="multi-output"):  # one per class
        log_explanations(client, "m", [np.ones((3, 2))] * 2, ["x", "y"])
    assert memory.records == []
