"""Embeddings: log the vectors a model sees, one call at a time or a frame at once.

Run: ``python examples/embeddings.py`` (needs numpy and pandas). A toy text
encoder (hashed words, 64 dimensions) stands in for a real one; a CPU torch or
TensorFlow tensor is taken the same way as the numpy arrays here.

The client stores vectors as float16 (``embedding_dtype="float16"``: 2 bytes
a dimension, values rounded to that precision; float32 is the default) under
a name per kind of embedding (``embedding_name``). With
``--bootstrap-servers`` the events go to Kafka (topics ``emb<hex>.*``);
without, to a temporary offline spool that is read back and removed.
"""

import argparse
import hashlib
import shutil
import tempfile
import uuid
import warnings
from typing import Optional

import numpy as np
import pandas as pd

from vdt_ai import ModelCall, OfflineModeWarning, VDTClient
from vdt_ai.spool import iter_events

DIMENSIONS = 64


def encode(text: str) -> np.ndarray:
    """A unit vector from the text's words (a stand-in for a real encoder)."""
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    for word in text.lower().split():
        digest = hashlib.sha256(word.encode()).digest()
        vector[digest[0] % DIMENSIONS] += 1.0 if digest[1] % 2 else -1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap-servers", help="Kafka brokers; omit for offline")
    args = parser.parse_args()
    servers: Optional[str] = args.bootstrap_servers
    spool = tempfile.mkdtemp(prefix="vdt-ai-embeddings-")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OfflineModeWarning)  # expected offline
            client = VDTClient(
                bootstrap_servers=servers,
                topic_prefix="emb" + uuid.uuid4().hex[:8],
                spool_dir=spool,
                service="embeddings-example",
                embedding_dtype="float16",
            )
        # One request: the query's embedding beside its prediction.
        query = "cheap flights to lisbon"
        client.log_model_call(
            "search_ranker",
            input_data={"query": query},
            prediction={"top_document": 2},
            embedding=encode(query),
            embedding_name="query",
            request_id="req-1",
        )
        # A batch: one event per row, the embedding column read as vectors.
        documents = pd.DataFrame(
            {
                "doc_id": ["d1", "d2", "d3"],
                "title": ["Hotels in Porto", "Lisbon flights", "Rome by train"],
            }
        )
        documents["vector"] = [encode(t) for t in documents["title"]]
        documents["score"] = [0.12, 0.91, 0.05]
        client.log_predictions(
            documents,
            model_name="search_ranker",
            embedding_column="vector",
            embedding_name="document",
            score_column="score",
            request_id_column="doc_id",
            input_columns=["title"],
        )
        client.close()
        print(client.stats())
        if not servers:
            for event in iter_events(spool):
                assert isinstance(event, ModelCall) and event.embedding is not None
                norm = float(np.linalg.norm(event.embedding))
                print(
                    f"{event.embedding_name:<8} {event.request_id}: "
                    f"{len(event.embedding)} dims ({event.embedding_dtype}), "
                    f"norm {norm:.4f}"
                )
    finally:
        shutil.rmtree(spool, ignore_errors=True)


if __name__ == "__main__":
    main()
