"""Celery recipe (docs/recipes/celery.md): a prefork worker recycling its
children (max_tasks_per_child), kombu's filesystem broker (no service)."""

import importlib
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Dict, List

import pytest

from vdt_ai import ModelCall, decode

from .conftest import RECIPES, count_by_id, stop

pytestmark = pytest.mark.integration


def test_worker_children_deliver_every_event_once(
    app_env: Dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = tmp_path / "queue"
    app_env["CELERY_QUEUE_DIR"] = str(queue)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_app",
            "--workdir",
            str(RECIPES),
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "2",
            "--max-tasks-per-child",
            "3",
            "--loglevel",
            "WARNING",
        ],
        env=app_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        # The producer side: this process sends the tasks through the folder.
        monkeypatch.setenv("CELERY_QUEUE_DIR", str(queue))
        monkeypatch.syspath_prepend(str(RECIPES))
        sys.modules.pop("celery_app", None)
        celery_app = importlib.import_module("celery_app")
        request_ids = [uuid.uuid4().hex for _ in range(30)]
        for i, request_id in enumerate(request_ids):
            celery_app.score.delay({"x": float(i)}, request_id)
        # Event ids are made in the worker: wait for 30 distinct ones.
        count_by_id(app_env["VDT_AI_TOPIC_PREFIX"], set(), timeout=120, at_least=30)
    finally:
        output = stop(worker, timeout=60)  # warm shutdown: children close()
    sys.modules.pop("celery_app", None)
    assert worker.returncode == 0, output[-20:]
    events: List[ModelCall] = []

    def keep(value: bytes) -> None:
        event = decode(value)
        assert isinstance(event, ModelCall)
        events.append(event)

    seen = count_by_id(
        app_env["VDT_AI_TOPIC_PREFIX"], set(), timeout=30, on_value=keep, at_least=30
    )
    assert {e.request_id for e in events} == set(request_ids)  # every task's event
    assert len(seen) == 30 and sum(seen.values()) == 30  # once each, by event id
    pids = {e.tags["worker_pid"] for e in events}
    assert len(pids) >= 30 // 3, pids  # children were recycled every 3 tasks
