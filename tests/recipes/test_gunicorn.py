"""gunicorn recipe (docs/recipes/gunicorn.md): 2 prefork workers, SIGTERM."""

import json
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Tuple

import pytest

from .conftest import (
    RECIPES,
    assert_all_once,
    count_by_id,
    free_port,
    stop,
    wait_for_port,
)

pytestmark = pytest.mark.integration


def _get(port: int, i: int) -> Tuple[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/item/{i}", timeout=30) as r:
        body = json.loads(r.read())
    return body["event_id"], body["pid"]


@pytest.mark.parametrize("preload", [False, True])
def test_two_workers_deliver_every_event_once(
    app_env: Dict[str, str], preload: bool
) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(RECIPES / "gunicorn.conf.py"),
        "--chdir",
        str(RECIPES),
        "--bind",
        f"127.0.0.1:{port}",
        "gunicorn_app:app",
    ]
    # --preload imports the app in the master before the fork: the SDK's
    # state must not cross it (each worker builds its own producer).
    server = subprocess.Popen(
        command + (["--preload"] if preload else []),
        env=app_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, server, 60)
        with ThreadPoolExecutor(8) as pool:  # concurrent: both workers serve
            results = list(pool.map(lambda i: _get(port, i), range(400)))
    finally:
        output = stop(server)
    assert server.returncode == 0, output
    ids = {event_id for event_id, _ in results}
    pids = {pid for _, pid in results}
    assert len(ids) == 400 and len(pids) == 2, (len(ids), pids)
    assert_all_once(count_by_id(app_env["VDT_AI_TOPIC_PREFIX"], ids), ids)
