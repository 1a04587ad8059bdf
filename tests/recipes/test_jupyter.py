"""Jupyter recipe (docs/recipes/jupyter.md): a real IPython kernel runs the
page's cells (top-level ``await`` included); the kernel is shut down without
a final flush, and every event logged in it is counted by id."""

import json
import re
from pathlib import Path
from typing import Dict, List

import pytest
from jupyter_client.manager import start_new_kernel

from .conftest import ROOT, assert_all_once, count_by_id

pytestmark = pytest.mark.integration

PAGE = ROOT / "docs" / "recipes" / "jupyter.md"


def cells() -> List[str]:
    text = PAGE.read_text()
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def test_kernel_shutdown_delivers_every_event_once(
    app_env: Dict[str, str], tmp_path: Path
) -> None:
    manager, kernel = start_new_kernel(
        kernel_name="python3", env=app_env, cwd=str(tmp_path)
    )
    outputs: List[str] = []

    def keep(message: Dict) -> None:  # type: ignore[type-arg]
        if message["msg_type"] == "stream":
            outputs.append(message["content"]["text"])
        if message["msg_type"] == "error":
            outputs.append("\n".join(message["content"]["traceback"]))

    try:
        for cell in cells():
            reply = kernel.execute_interactive(cell, timeout=60, output_hook=keep)
            assert reply["content"]["status"] == "ok", "".join(outputs)
        reply = kernel.execute_interactive(
            "import json; print('IDS=' + json.dumps(event_ids))",
            timeout=30,
            output_hook=keep,
        )
        assert reply["content"]["status"] == "ok", "".join(outputs)
    finally:
        kernel.stop_channels()
        # What "Shut Down Kernel" does: a shutdown request; the kernel exits
        # normally, and the SDK's exit hook closes the client.
        manager.shutdown_kernel(now=False)
    printed = "".join(outputs)
    ids = set(json.loads(printed.split("IDS=")[1].splitlines()[0]))
    assert len(ids) >= 3, printed
    assert_all_once(count_by_id(app_env["VDT_AI_TOPIC_PREFIX"], ids), ids)
