"""Prints what the documentation tests ran and what they did not, and why."""

import subprocess
from typing import Any, Iterator

import pytest

from .._broker import under_broker_lock
from ._blocks import ROOT, all_blocks, sessions

KAFKA_DEV = str(ROOT / "scripts" / "kafka-dev")


@pytest.fixture(scope="session")
def broker() -> Iterator[None]:
    """The dev broker, started when not answering (never skipped)."""
    if subprocess.run(["bash", KAFKA_DEV, "status"], capture_output=True).returncode:
        done = subprocess.run(
            under_broker_lock(["bash", KAFKA_DEV, "up"]),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    yield


def pytest_terminal_summary(terminalreporter: Any) -> None:
    blocks = all_blocks()
    python = [b for b in blocks if b.lang == "python"]
    marked = [b for b in python if b.skip_reason is not None]
    runs = sessions(blocks)
    bash = [b for s in runs for b in s.blocks if b.lang == "bash"]
    kafka = [b for s in runs if s.kafka for b in s.blocks if b.lang == "python"]
    write = terminalreporter.write_line
    write(
        f"doc blocks: {len(python)} Python blocks in README.md and docs/, "
        f"{len(python) - len(marked)} executed ({len(kafka)} against the dev "
        f"broker) in {len(runs)} sessions, {len(marked)} marked not runnable; "
        f"{len(bash)} bash blocks executed; "
        f"{sum(1 for b in blocks if b.lang == 'toml')} TOML blocks loaded"
    )
    for block in marked:
        write(f"  not runnable: {block.where}: {block.skip_reason}")
