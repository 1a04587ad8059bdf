"""Shared fixtures: every test runs with a clean VDT_AI_* environment and
private config/data folders, so the developer's own settings never leak in."""

import os
from pathlib import Path
from typing import Iterator

import pytest

from vdt_ai import VDTClient, _log
from vdt_ai.testing import MemoryTransport

from ._examples import SCALE, examples

if SCALE != 1:  # the properties without a count of their own (100 by default)
    from hypothesis import settings

    settings.register_profile("scaled", max_examples=examples(100))
    settings.load_profile("scaled")

# Spark's driver JVM in the tests (tests/integrations/test_spark.py, the Spark
# blocks of the docs and examples/spark_example.py, run in subprocesses that
# inherit this): a JVM that lives for seconds spends most of its CPU in the
# C2 JIT compiler and its web UI is never looked at. Compiling with C1 only and
# no UI halves the CPU a local session takes (46 -> 26 s for spark_example.py);
# the code the tests run is the same. Not for bench/ (steady-state figures).
os.environ.setdefault(
    "PYSPARK_SUBMIT_ARGS",
    "--driver-java-options -XX:TieredStopAtLevel=1"
    " --conf spark.ui.enabled=false pyspark-shell",
)

# A well-formed key whose secret the leak tests search for.
KEY_ID = "k3yid0000abc"
SECRET = "S3cretS3cretS3cretS3cretS3cret99"
API_KEY = f"vdt_{KEY_ID}_{SECRET}"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith("VDT_AI_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    _log._once_keys.clear()  # each test sees its own first occurrences
    # Files the tests write are private, as `vdt-ai configure` makes them; a
    # test of the group/other-readable warning sets its mode itself.
    old_umask = os.umask(0o077)
    yield
    os.umask(old_umask)


@pytest.fixture
def memory() -> MemoryTransport:
    return MemoryTransport()


@pytest.fixture
def client(memory: MemoryTransport) -> Iterator[VDTClient]:
    c = VDTClient(api_key=API_KEY, transport=memory, service="svc", environment="test")
    yield c
    c.close()
