"""Keras: log a training run and prediction batches.

Run: ``python examples/tensorflow_example.py`` (needs ``pip install
'vdt-ai[tensorflow]'``). Events go to an in-memory transport printed at the
end (set ``VDT_AI_BOOTSTRAP_SERVERS`` to send them to Kafka instead).
"""

import os

import numpy as np
import tensorflow as tf

from vdt_ai import VDTClient
from vdt_ai.integrations.tensorflow import VDTCallback
from vdt_ai.testing import MemoryTransport


def main() -> None:
    memory = None if os.environ.get("VDT_AI_BOOTSTRAP_SERVERS") else MemoryTransport()
    client = VDTClient(transport=memory, service="keras-example")
    x = np.random.default_rng(0).random((256, 8)).astype("float32")
    y = (x.sum(axis=1) > 4).astype("int32")
    model = tf.keras.Sequential(
        [tf.keras.Input((8,)), tf.keras.layers.Dense(2, activation="softmax")],
        name="threshold_model",
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    callback = VDTCallback(client, run_id="keras-demo")
    model.fit(x, y, epochs=3, verbose=0, callbacks=[callback])
    model.predict(x[:64], verbose=0, callbacks=[callback])
    client.close()
    print(client.stats())
    for event in memory.events if memory is not None else []:
        print(event.event_type.value, event.model_dump(mode="json", exclude={"source"}))


if __name__ == "__main__":
    main()
