"""A WSGI app served by gunicorn's prefork workers (``gunicorn.conf.py``).

Run: ``gunicorn -c examples/recipes/gunicorn.conf.py gunicorn_app:app`` (``pip
install gunicorn``). Each worker process uses ``vdt_ai.get_client()``: the
process-wide client, built on first use inside the worker (after the fork),
so no producer or lock crosses a fork.
"""

import json
import os
import time
from typing import Callable, Iterable, List, Tuple

import vdt_ai


def app(
    environ: dict,  # type: ignore[type-arg]
    start_response: Callable[[str, List[Tuple[str, str]]], object],
) -> Iterable[bytes]:
    start = time.perf_counter()
    score = 0.42  # your model
    event_id = vdt_ai.get_client().log_model_call(
        "churn_model",
        input_data={"path": environ.get("PATH_INFO", "/")},
        prediction=score,
        latency_ms=(time.perf_counter() - start) * 1000,
    )
    body = json.dumps({"event_id": str(event_id), "pid": os.getpid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
