"""The typed ML fields through a real broker: what is consumed decodes to
what was logged (fixed rows, and what hypothesis draws)."""

from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vdt_ai import GroundTruth, ModelCall, VDTClient, decode

from ..unit.test_typed_fields import (
    assert_typed_fields,
    client_typed,
    ground_truth_typed,
    loggable,
)
from .conftest import BOOTSTRAP, consume, topics_of

pytestmark = pytest.mark.integration


def test_typed_fields_round_trip_through_kafka(prefix: str, tmp_path: Path) -> None:
    client = VDTClient(
        bootstrap_servers=BOOTSTRAP,
        topic_prefix=prefix,
        handle_sigterm=False,
        spool_dir=tmp_path / "spool",
        embedding_dtype="float16",
    )
    ids: List[str] = []
    for i in range(50):
        event_id = client.log_model_call(
            "churn",
            {"tenure": i},
            request_id=f"r{i}",
            prediction_label="churn" if i % 2 else "stay",
            prediction_score=i / 50,
            class_probabilities={"churn": i / 50, "stay": 1 - i / 50},
            embedding=np.arange(8, dtype=np.float32) * i,
            embedding_name="profile",
            feature_importance={"tenure": -0.1 * i, "plan": 0.5},
        )
        ids.append(str(event_id))
        truth_id = client.log_ground_truth(
            f"r{i}", model_name="churn", actual_label="stay", actual_score=0.0
        )
        ids.append(str(truth_id))
    sent: Dict[Any, Any] = {}
    assert client.flush(30) == 0
    client.close()
    seen = consume(topics_of(prefix), set(ids))
    assert set(ids) <= seen.keys()
    for wanted in ids:
        (record,) = seen[wanted]
        event = decode(record.value)
        assert str(event.event_id) == wanted
        sent[wanted] = event
    calls = [e for e in sent.values() if isinstance(e, ModelCall)]
    truths = [e for e in sent.values() if isinstance(e, GroundTruth)]
    assert len(calls) == len(truths) == 50
    for call in calls:
        i = int((call.request_id or "r")[1:])
        assert call.prediction_label == ("churn" if i % 2 else "stay")
        assert call.prediction_score == i / 50
        assert call.class_probabilities == {"churn": i / 50, "stay": 1 - i / 50}
        expected = (np.arange(8, dtype=np.float32) * i).astype(np.float16)
        assert call.embedding == tuple(expected.tolist())
        assert call.embedding_name == "profile"
        assert call.feature_importance == {"tenure": -0.1 * i, "plan": 0.5}
    assert all(
        (t.actual_label, t.actual_score) == ("stay", 0.0) and t.model_name == "churn"
        for t in truths
    )


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    calls=st.lists(client_typed, min_size=1, max_size=12),
    truths=st.lists(ground_truth_typed, max_size=4),
    dtype=st.sampled_from(["float32", "float16"]),
)
def test_every_typed_field_round_trips_through_kafka(
    prefix: str,
    tmp_path: Path,
    calls: List[Dict[str, Any]],
    truths: List[Any],
    dtype: str,
) -> None:
    # What hypothesis draws, logged to the dev broker and consumed back: each
    # event decodes to what was logged (float16 or float32 embeddings).
    calls = [loggable(typed, dtype) for typed in calls]
    client = VDTClient(
        bootstrap_servers=BOOTSTRAP,
        topic_prefix=prefix,
        handle_sigterm=False,
        spool_dir=tmp_path / "spool",
        embedding_dtype=dtype,
    )
    logged: Dict[str, Any] = {}
    for typed in calls:
        logged[str(client.log_model_call("m", {"x": 1}, **typed))] = typed
    for label, score in truths:
        truth_id = client.log_ground_truth("r", actual_label=label, actual_score=score)
        logged[str(truth_id)] = (label, score)
    assert client.flush(30) == 0
    client.close()
    seen = consume(topics_of(prefix), set(logged))
    for wanted, what in logged.items():
        (record,) = seen[wanted]
        event = decode(record.value)
        if isinstance(what, dict):
            assert_typed_fields(event, what, dtype)
        else:
            assert isinstance(event, GroundTruth)
            assert (event.actual_label, event.actual_score) == what
