"""The sdist and wheel users install: built, checked, installed into a clean venv.

``python -m build`` makes both (the wheel from the sdist), ``twine check
--strict`` reads their metadata as PyPI would, and the wheel alone, installed
into a fresh virtualenv outside the checkout, must import, answer ``vdt-ai
--version`` and run the offline quickstart.
"""

import email
import os
import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from email.message import Message
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from vdt_ai._version import __version__

from .conftest import ROOT

PROTO = "vdt_ai/proto/vdt/ai/v1/events.proto"
PYTHONS = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]


def _clean_env() -> Dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VDT_AI_"))
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        env=_clean_env(),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("*.whl")
    assert found.name == f"vdt_ai-{__version__}-py3-none-any.whl"
    return found


@pytest.fixture(scope="module")
def sdist(dist: Path) -> Path:
    (found,) = dist.glob("*.tar.gz")
    assert found.name == f"vdt_ai-{__version__}.tar.gz"
    return found


@pytest.fixture(scope="module")
def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(f"vdt_ai-{__version__}.dist-info/METADATA").decode()
    return email.message_from_string(text)


def test_twine_check_strict(wheel: Path, sdist: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_wheel_carries_types_generated_code_and_the_schema(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        proto = archive.read(PROTO)
    for needed in (
        "vdt_ai/py.typed",
        "vdt_ai/proto/events_pb2.py",
        "vdt_ai/proto/events_pb2.pyi",
        PROTO,
        "vdt_ai/cli.py",
        "vdt_ai/codec/__init__.py",
        "vdt_ai/integrations/sklearn.py",
        "vdt_ai/kafka/producer.py",
    ):
        assert needed in names, needed
    assert proto == (ROOT / "src" / PROTO).read_bytes()
    assert (ROOT / "proto/vdt/ai/v1/events.proto").read_bytes() == proto
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    assert not [n for n in names if n.endswith((".pyc", "conftest.py"))]
    top_level = {n.split("/")[0] for n in names}
    assert top_level == {"vdt_ai", f"vdt_ai-{__version__}.dist-info"}


def test_sdist_builds_the_wheel_and_carries_schema_and_licence(sdist: Path) -> None:
    base = f"vdt_ai-{__version__}"
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
    for needed in (
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "PKG-INFO",
        f"src/{PROTO}",
    ):
        assert f"{base}/{needed}" in names, needed


def test_metadata_is_complete(metadata: Message) -> None:
    assert metadata["Name"] == "vdt-ai"
    assert metadata["Version"] == __version__
    assert metadata["Requires-Python"] == ">=3.8"
    assert metadata["License"] == "Apache-2.0"
    assert metadata["Summary"]
    assert metadata["Description-Content-Type"] == "text/markdown"
    classifiers: List[str] = metadata.get_all("Classifier") or []
    for version in PYTHONS:
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "License :: OSI Approved :: Apache Software License" in classifiers
    assert "Typing :: Typed" in classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    urls = {u.split(",")[0].strip() for u in metadata.get_all("Project-URL") or []}
    assert {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= urls
    keywords = metadata["Keywords"] or ""
    assert "kafka" in keywords and "monitoring" in keywords
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert {"sklearn", "spark", "tensorflow", "torch", "all", "docs"} <= extras


def test_version_has_one_source() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]$', pyproject, re.M)
    assert 'version = { attr = "vdt_ai._version.__version__" }' in pyproject
    assert not re.search(r'^version = "', pyproject, re.M)
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(
        rf"^## \[{re.escape(__version__)}\] - \d{{4}}-\d\d-\d\d$", changelog, re.M
    )


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("clean")
    venv.create(home / "venv", with_pip=True)
    python = home / "venv" / "bin" / "python"
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        env=_clean_env(),
        cwd=home,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    yield home


def _in_clean(home: Path, *args: str) -> "subprocess.CompletedProcess[str]":
    env = _clean_env()
    env["XDG_DATA_HOME"] = str(home / "data")
    env["XDG_CONFIG_HOME"] = str(home / "config")
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=120, env=env, cwd=home
    )


def test_clean_venv_imports_the_installed_wheel(installed: Path) -> None:
    python = str(installed / "venv" / "bin" / "python")
    result = _in_clean(
        installed,
        python,
        "-c",
        "import vdt_ai, vdt_ai.proto.events_pb2, importlib.resources as r;"
        "print(vdt_ai.__version__); print(vdt_ai.__file__);"
        "schema = r.files('vdt_ai').joinpath('proto/vdt/ai/v1/events.proto');"
        "print(schema.read_text()[:60])",
    )
    assert result.returncode == 0, result.stderr
    version, where, proto = result.stdout.splitlines()[:3]
    assert version == __version__
    assert where.startswith(str(installed / "venv")), where  # not the checkout
    assert proto.startswith("// Wire format of VDT AI monitoring events")


def test_clean_venv_cli_version(installed: Path) -> None:
    result = _in_clean(
        installed, str(installed / "venv" / "bin" / "vdt-ai"), "--version"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"vdt-ai, version {__version__}"


def test_clean_venv_offline_quickstart(installed: Path) -> None:
    python = str(installed / "venv" / "bin" / "python")
    result = _in_clean(installed, python, str(ROOT / "examples" / "quickstart.py"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "events kept offline in" in result.stdout
    assert (
        len(
            re.findall(
                r"^  (model_call|data_quality|metric|ground_truth|job_run) ",
                result.stdout,
                re.M,
            )
        )
        == 9
    )
