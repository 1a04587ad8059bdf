"""The CLI never prints the API key, wherever it is typed or stored, and never
shows a traceback for a user error (issue 10)."""

from pathlib import Path
from typing import Iterator, List

import pytest
from click.testing import CliRunner, Result

from vdt_ai import _redact
from vdt_ai.cli import main

from ..conftest import API_KEY, SECRET

pytestmark = [
    pytest.mark.filterwarnings("ignore::vdt_ai.OfflineModeWarning"),
    pytest.mark.filterwarnings("ignore::vdt_ai.config.ConfigPermissionWarning"),
]

COMMANDS: List[List[str]] = [
    ["version"],
    ["configure"],
    ["validate-config"],
    ["validate-config", "--json"],
    ["test-connection", "--timeout", "1"],
    ["tail", "--timeout", "0.1"],
    ["spool", "status"],
    ["sync"],
    ["send", "--type", "metric"],
]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `--config <key> configure` writes a file named by the key: not here.
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    # Earlier tests register the secret with the redactor, which would hide a
    # leak: every case here starts with a redactor that never saw it.
    with _redact._lock:
        saved = set(_redact._secrets)
        _redact._secrets.clear()
    yield
    with _redact._lock:
        _redact._secrets.clear()
        _redact._secrets.update(saved)


def invoke(args: List[str], input: str = "") -> Result:
    result = CliRunner().invoke(main, args, input=input, env={})
    # A user error exits with a message, never an exception's traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        result.exception,
    )
    return result


def assert_no_secret(result: Result) -> None:
    text = result.output + (result.stderr if result.stderr_bytes else "")
    assert SECRET not in text
    assert "Traceback" not in text


def _misplaced(command: List[str]) -> List[List[str]]:
    return [
        command + [API_KEY],  # as a positional argument
        command + ["--key", API_KEY],  # an option that does not exist
        command + [f"--api-key={API_KEY}"],
        command + ["--timeout", API_KEY],
        command + ["--type", API_KEY],
        command + ["-n", API_KEY],
        ["--profile", API_KEY] + command,
        ["--config", API_KEY] + command,
        [API_KEY] + command,
    ]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_misplaced_key_is_never_printed(command: List[str]) -> None:
    for args in _misplaced(command):
        assert_no_secret(invoke(args, input=""))


def test_configure_key_as_positional_argument_is_not_echoed() -> None:
    result = invoke(["configure", API_KEY])
    assert result.exit_code == 2
    assert "unexpected extra argument" in result.output
    assert API_KEY[:20] not in result.output  # not even the masked key id
    # A key of the wrong shape is not caught by the pattern, but not shown either.
    odd = "vdt_" + "x" * 40
    assert odd not in invoke(["configure", odd]).output


BAD_FILES = {
    "not-utf8": b'api_key = "' + API_KEY.encode() + b'"\n\xff\xfe\n',
    "not-toml": b'api_key = "' + API_KEY.encode() + b'" !!!\n',
    "unknown-setting": b'api_kee = "' + API_KEY.encode() + b'"\n',
    "bad-key": b'api_key = "' + API_KEY.encode() + b'x"\n',
    "bool-number": b'api_key = "' + API_KEY.encode() + b'"\nsample_rate = true\n',
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_bad_config_file_is_reported_without_its_contents(
    name: str, command: List[str], tmp_path: Path
) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(BAD_FILES[name])
    result = invoke(["--config", str(path)] + command)
    assert_no_secret(result)
    if command != ["version"]:
        assert result.exit_code != 0
        if name == "not-utf8":
            assert "not UTF-8" in result.output and str(path) in result.output


def test_a_config_path_that_is_a_folder_is_an_error(tmp_path: Path) -> None:
    result = invoke(["--config", str(tmp_path), "validate-config"])
    assert result.exit_code == 2 and "is a directory" in result.output


def test_send_reports_each_bad_line_and_goes_on(tmp_path: Path) -> None:
    lines = tmp_path / "lines.jsonl"
    lines.write_bytes(
        b'{"name": "a", "value": 1}\n'
        b'{"name": "b", "value": 1, "step": 9223372036854775808}\n'
        b'{"name": "c", "value": 1, "tags": {"k": "' + API_KEY.encode() + b'"}}\n'
        b'{"name": "d", "value": 1, "run_id": "\\ud800"}\n'
        b"\xff\xfe not utf-8\n"
        b'{"name": "e", "value": ' + b"9" * 5000 + b"}\n"
        b"[1, 2]\n"
        b'{"name": "f", "value": 2}\n'
    )
    result = invoke(["send", "--type", "metric", str(lines)])
    assert_no_secret(result)
    assert result.exit_code == 1
    for number in (2, 4, 5, 6, 7):
        assert f"line {number}:" in result.output
    assert "sent 3 events" in result.output and "5 bad lines" in result.output
