"""Rough edges a newcomer hits first (issue 16): paths with ``~`` and missing
folders, ``vdt-ai tail`` against a closed port, the true source of a bad value,
and the offline notice pointing at the caller's line."""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from vdt_ai import VDTClient
from vdt_ai.cli import main
from vdt_ai.config import load_settings
from vdt_ai.kafka.config import connection_config
from vdt_ai.spool import iter_events, iter_records, summarize

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once it is closed


def _env(tmp_path: Path, **extra: str) -> dict:  # type: ignore[type-arg]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDT_AI_")}
    env.update(
        PYTHONPATH=SRC,
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        NO_COLOR="1",
        **extra,
    )
    return env


# -- iter_events and the spool readers -------------------------------------------


def test_iter_events_expands_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.warns(Warning):  # the offline notice
        client = VDTClient(spool_dir="~/spool")
    event_id = client.log_metric("loss", 0.5)
    client.close()
    assert [e.event_id for e in iter_events("~/spool")] == [event_id]
    assert summarize("~/spool").records == 1


def test_missing_spool_folder_is_a_clear_error_at_call_time(tmp_path: Path) -> None:
    # Before: iter_events("~/.local/share/vdt-ai/spool") yielded 0 events, as
    # did any mistyped path.
    missing = tmp_path / "nowhere"
    for reader in (iter_events, iter_records, summarize):
        with pytest.raises(FileNotFoundError) as caught:
            reader(missing)  # raised here, before any iteration
        assert "no such spool folder" in str(caught.value)
        assert str(missing) in str(caught.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        iter_events(tmp_path / "file")


def test_ssl_paths_expand_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings(
        bootstrap_servers="k:9093",
        security_protocol="SSL",
        ssl_ca_location="~/ca.pem",
        ssl_certificate_location="~/c.pem",
        ssl_key_location="~/k.pem",
    )
    conf = connection_config(settings)
    assert conf["ssl.ca.location"] == str(tmp_path / "ca.pem")
    assert conf["ssl.certificate.location"] == str(tmp_path / "c.pem")
    assert conf["ssl.key.location"] == str(tmp_path / "k.pem")


def test_cli_spool_status_and_sync_on_a_missing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "never-made"
    env = {"VDT_AI_SPOOL_DIR": str(folder)}
    result = CliRunner().invoke(main, ["spool", "status"], env=env)
    assert result.exit_code == 0, result.output
    assert "does not exist yet" in result.output and "events:    0" in result.output
    env["VDT_AI_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(main, ["sync"], env=env)
    assert result.exit_code == 0, result.output
    assert "is empty (the folder does not exist yet)" in result.output
    assert not folder.exists()


# -- tail against a closed port ------------------------------------------------------


def test_tail_against_a_closed_port_fails_in_at_most_three_lines(
    tmp_path: Path,
) -> None:
    # Before: about 100 raw librdkafka `%3|...|FAIL|` lines, and exit code 0.
    env = _env(tmp_path, VDT_AI_BOOTSTRAP_SERVERS=f"127.0.0.1:{_closed_port()}")
    done = subprocess.run(
        [sys.executable, "-c", "from vdt_ai.cli import main; main()", "tail"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = (done.stdout + done.stderr).splitlines()
    assert done.returncode != 0
    assert 1 <= len(lines) <= 3, lines
    assert "refused the connection" in lines[0]
    assert not any(line.startswith("%") for line in lines)


def test_tail_with_timeout_against_a_closed_port_also_fails(tmp_path: Path) -> None:
    env = {"VDT_AI_BOOTSTRAP_SERVERS": f"127.0.0.1:{_closed_port()}"}
    result = CliRunner().invoke(main, ["tail", "--timeout", "2"], env=env)
    assert result.exit_code == 1
    assert "TransportError: cannot connect to any broker" in result.output


# -- the true source of a value -------------------------------------------------------


def test_configure_names_the_option_a_bad_key_came_from(tmp_path: Path) -> None:
    # Before: "api_key (from .../config.toml)", a file the key was never in.
    result = CliRunner().invoke(main, ["configure", "--api-key", "vdt_bad"])
    assert result.exit_code == 2
    assert "api_key (from --api-key)" in result.output
    assert "config.toml" not in result.output
    assert "vdt_bad" not in result.output or "****" in result.output


def test_configure_names_the_file_for_a_bad_value_already_there(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("sample_rate = 7\n")
    result = CliRunner().invoke(
        main, ["--config", str(path), "configure", "--environment", "dev"]
    )
    assert result.exit_code == 2
    assert f"sample_rate (from {path})" in result.output


# -- the offline notice points at the caller's line -----------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "client = VDTClient()",
        "client = vdt_ai.get_client()",
        "client = AsyncVDTClient()",
    ],
)
def test_offline_notice_points_at_the_callers_line(tmp_path: Path, line: str) -> None:
    # Before: "sys:1: OfflineModeWarning" (one frame too far).
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent("""\
            import vdt_ai
            from vdt_ai import AsyncVDTClient, VDTClient

            {line}
            client.close()
            """).format(line=line))
    done = subprocess.run(
        [sys.executable, "-W", "always", str(script)],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"{script}:4: OfflineModeWarning" in done.stderr, done.stderr


def test_send_expands_tilde_and_names_a_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "m.jsonl").write_text('{"name": "loss", "value": 0.5}\n')
    result = CliRunner().invoke(main, ["send", "--type", "metric", "~/m.jsonl"])
    assert result.exit_code == 0, result.output
    assert "sent 1 events" in result.output
    result = CliRunner().invoke(main, ["send", "--type", "metric", "~/none.jsonl"])
    assert result.exit_code == 2
    assert str(tmp_path / "none.jsonl") in result.output
    assert "No such file" in result.output
