"""scikit-learn: log predictions and fits without changing your code's behaviour.

Example::

    from vdt_ai.integrations.sklearn import instrument, log_fit

    model = log_fit(RandomForestClassifier(), X_train, y_train, run_id="run-7")
    model = instrument(model, model_name="churn")
    model.predict(X)          # returns what the estimator returns; logs a ModelCall

``instrument`` returns a wrapper that behaves as the estimator: every attribute
is the estimator's, ``predict``/``predict_proba``/``predict_log_proba``/
``decision_function``/``transform`` are timed and logged (batch size, input
summary, output summary or class distribution: never the rows), and it keeps
``clone()``, ``get_params()``/``set_params()`` and pickling working. Supported:
scikit-learn 1.1 to below 2.

With ``log_rows=True`` each sampled row is a ModelCall whose typed fields are
filled from the method's output: ``predict`` of a classifier gives
``prediction_label`` (the class as text), of a regressor ``prediction_score``;
``predict_proba`` (and ``predict_log_proba``) give ``class_probabilities``
(class -> probability, over ``classes_``) with the most likely class as
``prediction_label`` and its probability as ``prediction_score``; a
one-dimensional ``decision_function`` gives ``prediction_score``.
"""

import math
import time
import uuid
from typing import Any, Dict, Optional

from ..client import VDTClient
from ..models import MAX_CLASSES, MAX_LABEL_LENGTH, CallStatus
from ._common import (
    batch_size,
    class_distribution,
    log_sampled_rows,
    report,
    require,
    resolve,
    row_value,
    summarize,
)

_sklearn = require("sklearn", "sklearn", ("1.1", "2"))
import numpy  # noqa: E402
from sklearn.base import BaseEstimator, is_classifier, is_regressor  # noqa: E402

LOGGED_METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
)
MAX_PARAM_TAGS = 50


class InstrumentedEstimator(BaseEstimator):  # type: ignore[misc]
    """An estimator that logs its prediction calls as ModelCall events.

    Args:
        estimator: the scikit-learn estimator (fitted or not).
        model_name: the model name events carry.
        client: the client to log with; default ``vdt_ai.get_client()``.
        model_version: optional model version.
        log_rows: also log sampled rows one by one (input row and its output),
            through the client's bulk path; off by default.
        row_sample_rate: the fraction of rows logged when ``log_rows``.
        max_rows_per_call: the most rows logged for one call.
    """

    def __init__(
        self,
        estimator: Any,
        model_name: str,
        client: Optional[VDTClient] = None,
        model_version: Optional[str] = None,
        log_rows: bool = False,
        row_sample_rate: float = 0.01,
        max_rows_per_call: int = 100,
    ) -> None:
        self.estimator = estimator
        self.model_name = model_name
        self.client = client
        self.model_version = model_version
        self.log_rows = log_rows
        self.row_sample_rate = row_sample_rate
        self.max_rows_per_call = max_rows_per_call

    # Everything not defined here is the estimator's (fitted attributes too).
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "estimator":
            raise AttributeError(name)
        attribute = getattr(self.__dict__["estimator"], name)
        if name in LOGGED_METHODS and callable(attribute):
            return _Logged(self, name, attribute)
        return attribute

    def fit(self, X: Any, y: Any = None, **kwargs: Any) -> "InstrumentedEstimator":
        """Fits the wrapped estimator; returns this wrapper."""
        self.estimator.fit(X, y, **kwargs)
        return self

    def __getstate__(self) -> Dict[str, Any]:
        # A client holds sockets and threads: the unpickled copy uses the
        # process's default client (or one set again with .client = ...).
        state = dict(self.__dict__)
        state["client"] = None
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        return (
            f"InstrumentedEstimator({self.estimator!r}, "
            f"model_name={self.model_name!r})"
        )


class _Logged:
    """A prediction method of the estimator, timed and logged."""

    def __init__(self, owner: InstrumentedEstimator, name: str, method: Any) -> None:
        self._owner = owner
        self._name = name
        self._method = method

    def __call__(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            result = self._method(X, *args, **kwargs)
        except Exception as exc:
            self._log(X, None, start, exc)
            raise  # the user's exception, unchanged
        self._log(X, result, start, None)
        return result

    def _log(
        self, X: Any, result: Any, start: float, error: Optional[BaseException]
    ) -> None:
        owner = self._owner
        try:
            latency_ms = (time.perf_counter() - start) * 1000
            prediction: Dict[str, Any] = {}
            if error is None:
                prediction = summarize(result)
                classes = class_distribution(result)
                if classes is not None:
                    prediction["class_distribution"] = classes
            client = resolve(owner.client)
            client.log_model_call(
                owner.model_name,
                input_data={
                    "method": self._name,
                    "batch_size": batch_size(X),
                    "summary": summarize(X),
                },
                prediction=prediction or None,
                latency_ms=latency_ms,
                model_version=owner.model_version,
                status=CallStatus.ERROR if error is not None else CallStatus.SUCCESS,
                error_type=type(error).__name__ if error is not None else None,
                error_message=str(error) if error is not None else None,
                tags={
                    "framework": "sklearn",
                    "estimator": type(owner.estimator).__name__,
                },
            )
            if owner.log_rows and error is None:
                log_sampled_rows(
                    client,
                    batch_size(X) or 0,
                    owner.row_sample_rate,
                    owner.max_rows_per_call,
                    lambda i: row_value(X, i),
                    lambda i: row_value(result, i),
                    owner.model_name,
                    owner.model_version,
                    "sklearn",
                    lambda i: typed_fields(owner.estimator, self._name, result, i),
                )
        except Exception as exc:  # never break the user's call
            report(owner.client, f"sklearn.{self._name}", exc)


def _scalar(value: Any) -> Any:
    # numpy scalars (and 0-d arrays) as Python values; None for anything else.
    if hasattr(value, "ndim") and value.ndim != 0:
        return None
    return value.item() if hasattr(value, "item") else value


def _label(value: Any) -> str:
    return str(value)[:MAX_LABEL_LENGTH]


def typed_fields(
    estimator: Any, method: str, result: Any, index: int
) -> Dict[str, Any]:
    """The typed ModelCall fields of row ``index`` of ``method``'s output:
    label, score and class probabilities (see the module's docstring); an
    empty dict for an output they do not describe."""
    if method == "predict":
        value = _scalar(result[index])
        if value is None:
            return {}
        if is_classifier(estimator):
            return {"prediction_label": _label(value)}
        if is_regressor(estimator):
            return _score(value)
        return {}
    if method in ("predict_proba", "predict_log_proba"):
        classes = getattr(estimator, "classes_", None)
        row = numpy.asarray(result[index], dtype=float)
        if (
            classes is None
            or numpy.ndim(classes) != 1
            or row.ndim != 1
            or not 0 < len(row) == len(classes) <= MAX_CLASSES
        ):
            return {}  # e.g. multi-output: a list of arrays, one per output
        values = row.tolist()
        if method == "predict_log_proba":
            values = [math.exp(p) for p in values]
        if not all(0.0 <= p <= 1.0 for p in values):
            return {}
        names = [_label(_scalar(c)) for c in classes]
        best = max(range(len(values)), key=values.__getitem__)
        return {
            "class_probabilities": dict(zip(names, values)),
            "prediction_label": names[best],
            "prediction_score": values[best],
        }
    if method == "decision_function":  # binary: one score a row
        return _score(_scalar(result[index]))
    return {}


def _score(value: Any) -> Dict[str, Any]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value):
            return {"prediction_score": float(value)}
    return {}


def instrument(
    estimator: Any,
    model_name: str,
    client: Optional[VDTClient] = None,
    model_version: Optional[str] = None,
    log_rows: bool = False,
    row_sample_rate: float = 0.01,
    max_rows_per_call: int = 100,
) -> InstrumentedEstimator:
    """Wraps ``estimator`` so that its prediction calls are logged.

    Args:
        estimator: a scikit-learn estimator or pipeline.
        model_name: the model name events carry.
        client: the client to log with; default ``vdt_ai.get_client()``.
        model_version: optional model version.
        log_rows: also log sampled rows one by one (opt-in).
        row_sample_rate: the fraction of rows logged when ``log_rows``.
        max_rows_per_call: the most rows logged for one call.

    Returns:
        An :class:`InstrumentedEstimator` that behaves as ``estimator``.
    """
    return InstrumentedEstimator(
        estimator,
        model_name,
        client,
        model_version,
        log_rows,
        row_sample_rate,
        max_rows_per_call,
    )


def log_fit(
    estimator: Any,
    X: Any,
    y: Any = None,
    client: Optional[VDTClient] = None,
    run_id: Optional[str] = None,
    model_name: Optional[str] = None,
    **fit_params: Any,
) -> Any:
    """Fits ``estimator`` and logs the fit as Metric events with ``run_id``.

    Logged: ``fit_duration_ms``, ``train_score`` (``estimator.score(X, y)``
    when it has one) and ``train_rows``, all with ``run_id`` (a new
    ``sklearn-<hex>`` id when none is given); the estimator's parameters become
    tags (``param.<name>``). The user's exception from ``fit`` is re-raised
    unchanged; a logging failure is counted and ignored.

    Returns:
        The fitted estimator (what ``estimator.fit`` returned).
    """
    start = time.perf_counter()
    fitted = estimator.fit(X, y, **fit_params)
    duration_ms = (time.perf_counter() - start) * 1000
    try:
        log = resolve(client)
        metrics: Dict[str, float] = {"fit_duration_ms": duration_ms}
        rows = batch_size(X)
        if rows is not None:
            metrics["train_rows"] = float(rows)
        if y is not None and hasattr(estimator, "score"):
            metrics["train_score"] = float(estimator.score(X, y))
        tags = {"framework": "sklearn", "estimator": type(estimator).__name__}
        if model_name:
            tags["model_name"] = model_name
        params = (
            estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
        )
        for name, value in list(params.items())[:MAX_PARAM_TAGS]:
            tags[f"param.{name}"[:128]] = repr(value)[:256]
        log.log_metrics(
            metrics, run_id=run_id or f"sklearn-{uuid.uuid4().hex[:16]}", tags=tags
        )
    except Exception as exc:
        report(client, "sklearn.log_fit", exc)
    return fitted
