"""FastAPI recipe (docs/recipes/fastapi.md): lifespan + AsyncVDTClient."""

import importlib
import json
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
from fastapi.testclient import TestClient

from vdt_ai.spool import iter_events

from .conftest import (
    RECIPES,
    assert_all_once,
    count_by_id,
    free_port,
    stop,
    wait_for_port,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def fastapi_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    monkeypatch.syspath_prepend(str(RECIPES))
    monkeypatch.setenv("VDT_AI_SPOOL_DIR", str(tmp_path / "spool"))
    sys.modules.pop("fastapi_app", None)
    yield importlib.import_module("fastapi_app")
    sys.modules.pop("fastapi_app", None)


def test_test_client_offline_every_event_spooled_once(
    fastapi_app: Any, tmp_path: Path
) -> None:
    # No broker: offline mode. Leaving the `with` runs the lifespan's shutdown.
    with pytest.warns(Warning):  # the offline notice
        with TestClient(fastapi_app.app) as http:
            ids = {
                http.post("/predict", json={"a": float(i), "b": 1.0}).json()["event_id"]
                for i in range(50)
            }
            client = fastapi_app.app.state.vdt
    assert client.closed and len(ids) == 50
    spooled = [str(e.event_id) for e in iter_events(tmp_path / "spool")]
    assert sorted(spooled) == sorted(ids)


def test_uvicorn_sigterm_delivers_every_event_once(app_env: Dict[str, str]) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "fastapi_app:app",
            "--app-dir",
            str(RECIPES),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=app_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, server, 60)
        ids = set()
        for i in range(200):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/predict",
                data=json.dumps({"x": float(i)}).encode(),
                headers={
                    "Content-Type": "application/json",
                    "x-request-id": uuid.uuid4().hex,
                },
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                ids.add(json.loads(response.read())["event_id"])
    finally:
        output = stop(server)
    # uvicorn (>= 0.29) re-raises the SIGTERM it handled, once shut down.
    assert server.returncode in (0, -15), output
    assert len(ids) == 200
    assert_all_once(count_by_id(app_env["VDT_AI_TOPIC_PREFIX"], ids), ids)
