"""Every examples/*.py runs, as a user runs it, and leaves nothing behind.

Each runs in a fresh interpreter with a private HOME and TMPDIR; afterwards
that TMPDIR must be empty (the Spark example used to leave its
``vdt-ai-spark-*`` spool folder in /tmp). Without a broker they log offline or
to a MemoryTransport; ``quickstart.py`` also runs against the dev broker.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Dict, List

import pytest

from ._blocks import ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# Arguments for examples that need them (examples/consumer.py reads Kafka).
ARGS: Dict[str, List[str]] = {
    "consumer.py": [
        "--bootstrap-servers",
        "127.0.0.1:9092",
        "--topic-prefix",
        "ex" + uuid.uuid4().hex[:10],
        "--idle-timeout",
        "2",
    ],
    # 1,000,000 rows by default: fewer here (the same code path).
    "batch_scoring.py": ["--rows", "20000"],
}
NEEDS_BROKER = {"consumer.py"}
# Caches frameworks keep in TMPDIR by design, shared across runs (not ours).
FRAMEWORK_CACHES = ("torchinductor_",)


def _run(path: Path, tmp_path: Path, args: List[str]) -> None:
    home, temp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDT_AI_")}
    env.update(
        HOME=str(home),
        TMPDIR=str(temp),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        PYTHONPATH=str(ROOT / "src"),
        PYSPARK_PYTHON=sys.executable,
    )
    done = subprocess.run(
        [sys.executable, str(path), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    left = [n for n in os.listdir(temp) if not n.startswith(FRAMEWORK_CACHES)]
    assert left == [], "left behind in TMPDIR"


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLES if p.name not in NEEDS_BROKER], ids=lambda p: p.name
)
def test_example_runs_offline_and_cleans_up(path: Path, tmp_path: Path) -> None:
    _run(path, tmp_path, ARGS.get(path.name, []))


@pytest.mark.integration
@pytest.mark.parametrize(
    "path",
    [p for p in EXAMPLES if p.name in NEEDS_BROKER | {"quickstart.py"}],
    ids=lambda p: p.name,
)
def test_example_runs_against_the_dev_broker(
    path: Path, tmp_path: Path, broker: None
) -> None:
    args = ARGS.get(path.name, ["--bootstrap-servers", "127.0.0.1:9092"])
    _run(path, tmp_path, args)
