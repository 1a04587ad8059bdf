"""Docs are tests: every Python block of README.md and docs/**/*.md runs.

Each session (a block and the ``<!-- doctest: continue -->`` blocks after it)
runs in a fresh interpreter with a private HOME, XDG folders and working
folder, so nothing of the developer's or of another block leaks in. Offline
blocks run with no broker configured; ``<!-- doctest: kafka -->`` sessions get
the dev broker (started if it is not answering) and a topic prefix of their
own. Blocks marked ``skip`` are counted and must give a reason; the terminal
summary lists them (see conftest.py). TOML blocks are loaded as config files.
"""

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Dict

import pytest

from vdt_ai.config import load_settings, read_toml

from ._blocks import ROOT, Block, Session, all_blocks, sessions

BLOCKS = all_blocks()
SESSIONS = sessions(BLOCKS)
RUNNER = str(Path(__file__).with_name("_run_session.py"))


def _env(home: Path, kafka: bool) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDT_AI_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        PYTHONPATH=os.pathsep.join(
            [str(ROOT / "src")] + [p for p in [env.get("PYTHONPATH")] if p]
        ),
        NO_COLOR="1",
        PYSPARK_PYTHON=sys.executable,
        TMPDIR=str(home),  # whatever a block leaves in the temp dir goes too
    )
    if kafka:
        env["VDT_AI_BOOTSTRAP_SERVERS"] = "127.0.0.1:9092"
        env["VDT_AI_TOPIC_PREFIX"] = "doc" + uuid.uuid4().hex[:10]
    return env


def run_session(session: Session) -> "subprocess.CompletedProcess[str]":
    with tempfile.TemporaryDirectory(prefix="vdt-doc-") as folder:
        home = Path(folder)
        payload = [
            {
                "where": b.where,
                "path": str(b.path.relative_to(ROOT)),
                "line": b.line,
                "lang": b.lang,
                "code": b.code,
            }
            for b in session.blocks
        ]
        return subprocess.run(
            [sys.executable, RUNNER],
            input=json.dumps(payload),
            env=_env(home, session.kafka),
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=session.timeout,
        )


@pytest.mark.parametrize(
    "session", [s for s in SESSIONS if not s.kafka], ids=lambda s: s.where
)
def test_offline_session_runs(session: Session) -> None:
    done = run_session(session)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


@pytest.mark.integration
@pytest.mark.parametrize(
    "session", [s for s in SESSIONS if s.kafka], ids=lambda s: s.where
)
def test_kafka_session_runs(session: Session, broker: None) -> None:
    done = run_session(session)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


def test_every_python_block_runs_or_says_why_not() -> None:
    python = [b for b in BLOCKS if b.lang == "python"]
    in_sessions = {id(b) for s in SESSIONS for b in s.blocks}
    for block in python:
        reason = block.skip_reason
        if reason is None:
            assert id(block) in in_sessions, block.where
        else:
            assert len(reason) >= 20, f"{block.where}: give a real reason ({reason!r})"
    assert len(python) >= 20  # README.md alone has more; the parser found them


@pytest.mark.parametrize(
    "block", [b for b in BLOCKS if b.lang == "toml"], ids=lambda b: b.where
)
def test_toml_block_is_a_valid_config_file(block: Block, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(block.code)
    path.chmod(0o600)
    document = read_toml(path)
    load_settings(config_file=path)
    for profile in document.get("profiles", {}):
        load_settings(config_file=path, profile=profile)


@pytest.mark.parametrize(
    "block", [b for b in BLOCKS if "file" in b.directives], ids=lambda b: b.where
)
def test_block_shows_its_file_verbatim(block: Block) -> None:
    """A page that shows an example file shows it as it is (and so runs it)."""
    assert block.code == (ROOT / block.directives["file"]).read_text()
