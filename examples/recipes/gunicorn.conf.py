"""gunicorn settings for gunicorn_app.py: prefork workers, each flushing its
events when it exits (a graceful stop, a reload, or max_requests)."""

from typing import Any

import vdt_ai

bind = "127.0.0.1:8000"
workers = 2
max_requests = 1000  # workers are recycled; each flushes on the way out
graceful_timeout = 10  # more than shutdown_timeout (5 s by default)


def worker_exit(server: Any, worker: Any) -> None:
    """Runs in the worker as it exits: deliver (or spool) what it logged."""
    vdt_ai.get_client().close()
