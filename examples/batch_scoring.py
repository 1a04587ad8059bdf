"""Batch scoring: a pandas frame scored by a scikit-learn model, logged with
one ``log_predictions`` call, read back with ``vdt-ai tail``.

Run (needs ``pip install 'vdt-ai[sklearn]' pandas``)::

    python examples/batch_scoring.py --bootstrap-servers 127.0.0.1:9092

1,000,000 rows by default (``--rows`` for fewer). Each row becomes one
ModelCall: its ten features as ``input_data``, the predicted class as
``prediction_label``, its probability as ``prediction_score`` and both classes'
probabilities as ``class_probabilities``. With a broker the events go to topics
of this run only (``batch<hex>.*``) and ``vdt-ai tail`` prints the first
three back; without one the client runs offline, in a temporary spool folder
that is read back with ``vdt_ai.spool.iter_events`` and removed.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import List, Optional

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from vdt_ai import OfflineModeWarning, VDTClient
from vdt_ai.spool import iter_events

FEATURES = [f"f{i}" for i in range(10)]


def scored_frame(rows: int) -> pd.DataFrame:
    """``rows`` rows of ten features, scored by a small logistic regression."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.standard_normal((rows, len(FEATURES))), columns=FEATURES)
    train = df.head(10_000)
    model = LogisticRegression().fit(train, (train["f0"] + train["f1"] > 0))
    probabilities = model.predict_proba(df)  # vectorised over the whole frame
    df["p_no"], df["p_yes"] = probabilities[:, 0], probabilities[:, 1]
    df["label"] = np.where(df["p_yes"] >= 0.5, "yes", "no")
    df["score"] = probabilities.max(axis=1)
    return df


def tail_command(servers: str, prefix: str) -> List[str]:
    """``vdt-ai tail`` for the first three model calls of this run."""
    args = ["tail", "--type", "model_call", "--from-beginning", "-n", "3"]
    args += ["--json", "--timeout", "15"]
    program = shutil.which("vdt-ai") or str(Path(sys.executable).with_name("vdt-ai"))
    print(f"$ VDT_AI_TOPIC_PREFIX={prefix} vdt-ai {' '.join(args)}")
    if Path(program).exists():
        return [program, *args]
    # Not installed as a command (e.g. run from a source tree): the same CLI.
    return [sys.executable, "-c", "from vdt_ai.cli import main; main()", *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("VDT_AI_BOOTSTRAP_SERVERS"),
        help="Kafka brokers; omit for offline",
    )
    args = parser.parse_args()
    servers: Optional[str] = args.bootstrap_servers
    df = scored_frame(args.rows)
    print(
        f"{len(df):,} rows scored ({df.memory_usage(deep=True).sum() / 2**20:.0f} MiB)"
    )

    spool = tempfile.mkdtemp(prefix="vdt-ai-batch-")
    prefix = "batch" + uuid.uuid4().hex[:8]  # topics of this run only
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OfflineModeWarning)  # expected offline
            client = VDTClient(
                bootstrap_servers=servers,
                topic_prefix=prefix,
                spool_dir=spool,
                service="batch-scoring",
            )
        start = time.perf_counter()
        logged = client.log_predictions(
            df,
            model_name="churn",
            model_version="2026-11",
            label_column="label",
            score_column="score",
            probability_columns={"no": "p_no", "yes": "p_yes"},
            tags={"job": "nightly"},
        )
        seconds = time.perf_counter() - start
        print(f"log_predictions: {logged:,} events, {logged / seconds:,.0f} rows/s")
        client.close()  # flushes: every event acked by Kafka, or spooled
        print(client.stats())
        if servers:
            env = dict(os.environ, VDT_AI_BOOTSTRAP_SERVERS=servers)
            env["VDT_AI_TOPIC_PREFIX"] = prefix
            subprocess.run(tail_command(servers, prefix), env=env, check=True)
        else:
            events = iter_events(spool)
            print("offline; the first three events from the spool:")
            for _, event in zip(range(3), events):
                print(event.model_dump_json(exclude={"source"}, exclude_none=True))
    finally:
        shutil.rmtree(spool, ignore_errors=True)


if __name__ == "__main__":
    main()
