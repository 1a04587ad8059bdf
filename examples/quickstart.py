"""Quickstart: log every kind of event, then read them back.

With no Kafka brokers configured the client runs in offline mode and keeps
events in a local spool folder; this script then reads that folder back with
``vdt_ai.spool.iter_events``, so you can see exactly what would be sent.

Run it with ``make demo`` (or ``python examples/quickstart.py``).
"""

import datetime as dt
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from vdt_ai import OfflineModeWarning, VDTClient
from vdt_ai.spool import iter_events

# A well-formed demo key: vdt_<12-char key id>_<32-char secret>.
DEMO_KEY = "vdt_demo00000001_" + "D" * 32


def main() -> None:
    spool = Path(tempfile.mkdtemp(prefix="vdt-ai-demo-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineModeWarning)  # expected here
        client = VDTClient(
            api_key=DEMO_KEY, spool_dir=spool, service="quickstart", environment="dev"
        )
    print(client)

    # The calls from the original sketch, unchanged.
    client.log_model_call(
        model_name="recommendation_model",
        input_data={"user_id": 123},
        prediction={"items": [1, 2, 3]},
        latency_ms=45,
    )
    client.log_data_quality(
        dataset_name="user_features",
        record_count=10000,
        null_count=15,
        anomaly_score=0.02,
    )

    # The rest of the API.
    started = dt.datetime.now(dt.timezone.utc)
    client.log_job_run("nightly_training", "started", run_id="run-42")
    client.log_metrics({"loss": 0.31, "accuracy": 0.91}, step=1, run_id="run-42")
    client.log_metric("loss", 0.27, step=2, run_id="run-42")
    client.log_model_call(
        "chat_model",
        input_data={"prompt": "Hello"},
        prediction="Hi there",
        latency_ms=820.5,
        request_id="req-1",
        prompt_tokens=12,
        completion_tokens=5,
        cost=0.0004,
    )
    client.log_ground_truth("req-1", actual="Hello!", model_name="chat_model")
    time.sleep(0.01)
    client.log_job_run(
        "nightly_training",
        "succeeded",
        run_id="run-42",
        start_time=started,
        end_time=dt.datetime.now(dt.timezone.utc),
        metrics={"rows": 10000},
    )
    client.close()

    print(f"\nstats: {client.stats().as_dict()}")
    print(f"events kept offline in {spool}:")
    for event in iter_events(spool):
        fields = event.model_dump(
            mode="json",
            exclude={"event_id", "timestamp", "source", "tags"},
            exclude_none=True,
        )
        print(f"  {event.event_type.value:<13} {fields}")
    shutil.rmtree(spool)


if __name__ == "__main__":
    main()
