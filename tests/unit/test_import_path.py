"""What `import vdt_ai` loads: heavy and optional modules stay off its path."""

import json
import subprocess
import sys

LAZY = [
    "confluent_kafka",
    "loguru",
    "click",
    "asyncio",
    "pydantic_settings",
    "google.protobuf",
    "vdt_ai.proto.events_pb2",
    "vdt_ai.spool",
    "vdt_ai.kafka",
    "vdt_ai.cli",
    "vdt_ai.integrations",
    "vdt_ai.codec._reference",
]


def test_import_vdt_ai_leaves_heavy_modules_unloaded() -> None:
    code = (
        "import sys, json, vdt_ai; "
        f"print(json.dumps([m for m in {LAZY!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == []
