# mypy: disable-error-code="import-untyped,untyped-decorator"
"""Celery: one client per worker child, closed when the child exits.

Run: ``celery -A celery_app worker --workdir examples/recipes
--max-tasks-per-child 100`` (``pip install celery``). The broker here is
kombu's filesystem transport, so the recipe needs no service; use yours
(``CELERY_BROKER_URL``) in production.
"""

import os
import tempfile
import time
from typing import Any, Dict, Optional

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

from vdt_ai import VDTClient

QUEUE_DIR = os.environ.get(
    "CELERY_QUEUE_DIR", os.path.join(tempfile.gettempdir(), "vdt-celery-queue")
)
os.makedirs(QUEUE_DIR, exist_ok=True)

app = Celery("celery_app", broker=os.environ.get("CELERY_BROKER_URL", "filesystem://"))
app.conf.broker_transport_options = {
    "data_folder_in": QUEUE_DIR,
    "data_folder_out": QUEUE_DIR,
    "control_folder": os.path.join(QUEUE_DIR, "control"),
}
app.conf.worker_hijack_root_logger = False

client: Optional[VDTClient] = None


@worker_process_init.connect
def start_client(**_: Any) -> None:
    """In each prefork child, as it starts (after the fork)."""
    global client
    client = VDTClient(service="celery-recipe")


@worker_process_shutdown.connect
def close_client(**_: Any) -> None:
    """In each child as it exits: at worker shutdown, and every
    ``max_tasks_per_child`` tasks. close() delivers or spools what is left."""
    if client is not None:
        client.close()


@app.task
def score(features: Dict[str, float], request_id: str) -> float:
    start = time.perf_counter()
    result = min(1.0, sum(features.values()) / 100.0)  # your model
    assert client is not None
    client.log_model_call(
        "churn_model",
        input_data=features,
        prediction=result,
        latency_ms=(time.perf_counter() - start) * 1000,
        request_id=request_id,
        tags={"worker_pid": str(os.getpid())},  # which child served it
    )
    return result
