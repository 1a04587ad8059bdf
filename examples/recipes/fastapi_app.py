"""FastAPI: one AsyncVDTClient per process, made at startup, flushed at shutdown.

Run: ``uvicorn fastapi_app:app --app-dir examples/recipes`` (``pip install
fastapi uvicorn``). Settings come from ``VDT_AI_*`` variables or the config
file (``VDT_AI_BOOTSTRAP_SERVERS`` to deliver; without it, offline mode).
"""

import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict

from fastapi import FastAPI, Request

from vdt_ai import AsyncVDTClient


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Startup: one client for this worker process. Its log_* calls never
    # block the event loop (they validate, encode and queue).
    app.state.vdt = AsyncVDTClient(service="fastapi-recipe")
    yield
    # Shutdown (uvicorn got SIGTERM or Ctrl-C): wait for Kafka's acks in a
    # worker thread; what is not acked within shutdown_timeout is spooled.
    await app.state.vdt.aclose()


app = FastAPI(lifespan=lifespan)


def predict(features: Dict[str, float]) -> float:
    """Your model."""
    return min(1.0, sum(features.values()) / 100.0)


@app.post("/predict")
async def predict_endpoint(features: Dict[str, float], request: Request) -> Any:
    start = time.perf_counter()
    score = predict(features)
    vdt: AsyncVDTClient = request.app.state.vdt
    event_id = vdt.log_model_call(
        "churn_model",
        input_data=features,
        prediction=score,
        latency_ms=(time.perf_counter() - start) * 1000,
        request_id=request.headers.get("x-request-id"),
    )
    return {"score": score, "event_id": str(event_id)}
