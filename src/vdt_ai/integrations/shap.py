"""SHAP: per-prediction feature importance as ModelCall events.

Example::

    import shap
    from vdt_ai.integrations.shap import log_explanations

    explanation = shap.TreeExplainer(model)(X)           # or any explainer
    log_explanations(client, "churn", explanation, list(X.columns),
                     request_ids=ids)

Each row of explanations becomes one ModelCall whose ``feature_importance``
maps each feature to its SHAP value (``input_data`` is empty: the row's
inputs were logged with its prediction; ``request_ids`` join the two). The
rows go through :meth:`vdt_ai.VDTClient.log_predictions`: validated as a whole
(a NaN value names its row and feature, nothing is recorded), chunked,
sampled, the data policy applied.

The ``shap`` package is not imported here: ``shap_values`` is a
``shap.Explanation`` (its ``values`` and, when ``feature_names`` is None, its
``feature_names`` are used) or any two-dimensional array-like of numbers
(rows x features), e.g. what ``explainer.shap_values(X)`` returns for a
single-output model. For a multi-output model (a list of arrays, or a
three-dimensional array), choose the output first: ``explanation[:, :, 1]``.
"""

from typing import Any, Dict, List, Optional, Sequence

from ..client import VDTClient
from ..exceptions import ValidationError
from ..models import MAX_FEATURES

_REQUEST_ID = "request_id"


def _fail(field: str, reason: str) -> ValidationError:
    return ValidationError([(field, reason)], event_type="model_call")


def log_explanations(
    client: VDTClient,
    model_name: str,
    shap_values: Any,
    feature_names: Optional[Sequence[str]],
    request_ids: Optional[Sequence[str]] = None,
    *,
    model_version: Optional[str] = None,
    tags: Optional[Dict[str, str]] = None,
) -> int:
    """Logs one ModelCall per explained row, ``feature_importance`` filled.

    Args:
        client: the client to log with.
        model_name: the model the explanations are of.
        shap_values: a ``shap.Explanation`` or a rows x features array-like.
        feature_names: one name per column of ``shap_values`` (None: the
            Explanation's own names).
        request_ids: one id per row, to join each explanation to its
            prediction and ground truth.
        model_version: the model's version.
        tags: tags added to every event (``framework: shap`` is added).

    Returns:
        The number of events recorded.

    Raises:
        ValidationError: the shapes or names do not match, a value is not a
            finite number (``data.<row>.<feature>``); nothing was recorded.
    """
    values = getattr(shap_values, "values", shap_values)
    if feature_names is None:
        feature_names = getattr(shap_values, "feature_names", None)
        if feature_names is None:
            raise _fail("feature_names", "needed: shap_values has no feature names")
    multi = (
        "must be rows x features; for a multi-output model choose one "
        "output, e.g. explanation[:, :, 1]"
    )
    if getattr(values, "ndim", 2) != 2:
        raise _fail("shap_values", multi)
    rows = values.tolist() if hasattr(values, "tolist") else list(values)
    names = list(feature_names)
    if not 0 < len(names) <= MAX_FEATURES:
        raise _fail("feature_names", f"must name 1 to {MAX_FEATURES} features")
    if not all(type(n) is str for n in names) or len(set(names)) != len(names):
        raise _fail("feature_names", "must be distinct text")
    for index, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != len(names):
            raise _fail(
                f"shap_values.{index}",
                f"must be a row of {len(names)} numbers (one per feature); {multi}",
            )
    ids: Optional[List[Any]] = None
    if request_ids is not None:
        ids = list(request_ids)
        if len(ids) != len(rows):
            raise _fail(
                "request_ids", f"has {len(ids)} ids for {len(rows)} rows of values"
            )
    id_column = _REQUEST_ID
    while id_column in names:  # a feature of that name: another column key
        id_column = "_" + id_column
    table: List[Dict[str, Any]] = [dict(zip(names, row)) for row in rows]
    if ids is not None:
        for row_dict, request_id in zip(table, ids):
            row_dict[id_column] = request_id
    return client.log_predictions(
        table,
        model_name=model_name,
        model_version=model_version,
        feature_importance_columns=names,
        request_id_column=id_column if ids is not None else None,
        input_columns=[],
        tags={"framework": "shap", **(tags or {})},
    )


__all__ = ["log_explanations"]
