"""Keras/TensorFlow integration against real tensorflow-cpu."""

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from vdt_ai import (  # noqa: E402
    JobRun,
    JobStatus,
    Metric,
    ModelCall,
    ValidationError,
    VDTClient,
)
from vdt_ai.integrations.tensorflow import VDTCallback  # noqa: E402
from vdt_ai.testing import MemoryTransport  # noqa: E402


def small_model() -> Any:
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [tf.keras.Input((4,)), tf.keras.layers.Dense(3, activation="softmax")],
        name="tiny",
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture
def data() -> Any:
    rng = np.random.default_rng(0)
    return rng.random((64, 4)).astype("float32"), rng.integers(0, 3, 64)


def test_fit_logs_epochs_batches_and_a_job_run(
    data: Any, memory: MemoryTransport
) -> None:
    x, y = data
    client = VDTClient(transport=memory)
    callback = VDTCallback(client, run_id="r1", log_every_n_batches=2)
    history = small_model().fit(
        x, y, epochs=3, batch_size=16, verbose=0, callbacks=[callback]
    )
    started, finished = memory.events_of(JobRun)
    assert (started.status, finished.status) == (JobStatus.STARTED, JobStatus.SUCCEEDED)
    assert started.job_name == "tiny" and finished.run_id == "r1"
    assert finished.metrics["epochs"] == 3
    assert finished.duration_ms is not None and finished.duration_ms > 0
    epochs = [m for m in memory.events_of(Metric) if m.tags["phase"] == "epoch"]
    losses = [m.value for m in epochs if m.name == "loss"]
    assert losses == pytest.approx(history.history["loss"])
    assert [m.step for m in epochs if m.name == "loss"] == [0, 1, 2]
    batches = [m for m in memory.events_of(Metric) if m.tags["phase"] == "batch"]
    assert {m.step for m in batches} == {2, 4, 6, 8, 10, 12}  # 4 batches x 3 epochs


def test_predict_batches_become_model_calls(data: Any, memory: MemoryTransport) -> None:
    x, _ = data
    client = VDTClient(transport=memory)
    model = small_model()
    out = model.predict(
        x, batch_size=32, verbose=0, callbacks=[VDTCallback(client, model_name="m")]
    )
    assert out.shape == (64, 3)
    calls = memory.events_of(ModelCall)
    assert len(calls) == 2 and all(c.model_name == "m" for c in calls)
    assert sum(c.input_data["batch_size"] for c in calls) == 64
    assert all(c.prediction["shape"] == [32, 3] for c in calls)
    assert all(c.latency_ms is not None and c.latency_ms >= 0 for c in calls)


def test_keras_keeps_dispatching_batch_callbacks_asynchronously(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On a thread-safe Keras 3 backend (JAX, torch; TensorFlow is not), a
    # callback that is not async_safe makes Keras run every batch's callbacks
    # on the training thread, converting its logs to NumPy there.
    callback_list = pytest.importorskip("keras.src.callbacks.callback_list")
    monkeypatch.setattr(callback_list.backend, "IS_THREAD_SAFE", True)
    callbacks = callback_list.CallbackList([VDTCallback()])
    assert callbacks._async_train and callbacks._async_predict


def test_internal_failure_leaves_training_unchanged(data: Any) -> None:
    x, y = data

    class Broken(MemoryTransport):
        pass

    client = VDTClient(transport=Broken())
    client.log_metrics = lambda *a, **k: 1 / 0  # type: ignore
    client.log_job_run = lambda *a, **k: 1 / 0  # type: ignore
    plain = small_model().fit(x, y, epochs=2, verbose=0).history
    monitored = (
        small_model()
        .fit(x, y, epochs=2, verbose=0, callbacks=[VDTCallback(client)])
        .history
    )
    assert monitored["loss"] == pytest.approx(plain["loss"])
    assert client.stats().integration_errors >= 3


# Keras' own save/load path trips numpy 2's __array__(copy=) deprecation.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_model_save_still_works(
    data: Any, tmp_path: Path, memory: MemoryTransport
) -> None:
    x, y = data
    model = small_model()
    model.fit(
        x, y, epochs=1, verbose=0, callbacks=[VDTCallback(VDTClient(transport=memory))]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    restored = tf.keras.models.load_model(path)
    np.testing.assert_allclose(
        restored.predict(x, verbose=0), model.predict(x, verbose=0)
    )


def test_tf_tensors_are_embeddings(memory: MemoryTransport) -> None:
    # A CPU tf.Tensor (float32, float64, float16) is read through .numpy();
    # the values arrive as float32 (or float16 when that is the setting).
    client = VDTClient(transport=memory)
    vector = tf.constant([0.25, -1.5, 3.0], dtype=tf.float32)
    client.log_model_call("m", {}, embedding=vector, embedding_name="text")
    client.log_model_call("m", {}, embedding=tf.cast(vector, tf.float64))
    client.log_model_call("m", {}, embedding=tf.cast(vector, tf.float16))
    rows = [{"x": i, "emb": tf.constant([float(i), 0.5])} for i in range(3)]
    assert client.log_predictions(rows, model_name="m", embedding_column="emb") == 3
    calls = memory.events_of(ModelCall)
    assert [c.embedding for c in calls[:3]] == [(0.25, -1.5, 3.0)] * 3
    assert calls[0].embedding_name == "text"
    assert [c.embedding for c in calls[3:]] == [(0.0, 0.5), (1.0, 0.5), (2.0, 0.5)]
    with pytest.raises(ValidationError, match="embedding"):
        client.log_model_call("m", {}, embedding=tf.ones((2, 2)))
    with pytest.raises(ValidationError, match="embedding"):
        client.log_model_call("m", {}, embedding=tf.constant([1.0, float("nan")]))
    kept = MemoryTransport()
    half = VDTClient(transport=kept, embedding_dtype="float16")
    half.log_model_call("m", {}, embedding=tf.constant([1 / 3, 2.0]))
    (event,) = kept.events_of(ModelCall)
    assert event.embedding == (float(np.float16(1 / 3)), 2.0)
