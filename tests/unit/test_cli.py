"""The vdt-ai command line, without a broker (Click's CliRunner)."""

import json
import stat
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from click.testing import CliRunner, Result

from vdt_ai import Metric, ModelCall, VDTClient, __version__
from vdt_ai.cli import main
from vdt_ai.config import default_config_path
from vdt_ai.spool import iter_events

from ..conftest import API_KEY, KEY_ID, SECRET


def run(*args: str, input: str = "", env: Optional[Dict[str, str]] = None) -> Result:
    return CliRunner().invoke(
        main, list(args), input=input, env=env or {}, catch_exceptions=False
    )


def test_version_both_ways() -> None:
    assert run("--version").output.strip() == f"vdt-ai, version {__version__}"
    assert run("version").output.strip() == f"vdt-ai {__version__}"


def test_every_command_has_help_with_an_example() -> None:
    commands = [
        "configure",
        "validate-config",
        "test-connection",
        "tail",
        "sync",
        "send",
        "profile",
    ]
    for command in commands + [None]:
        args = [command, "--help"] if command else ["--help"]
        result = run(*[a for a in args if a])
        assert result.exit_code == 0
        assert "Example:" in result.output, command
    assert "Example:" in run("spool", "status", "--help").output


def test_configure_writes_0600_file_and_never_echoes_the_secret() -> None:
    result = run("configure", "--api-key", API_KEY, "--bootstrap-servers", "k:9092")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and f"vdt_{KEY_ID}_****" in result.output
    path = default_config_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert 'bootstrap_servers = "k:9092"' in text and API_KEY in text


def test_configure_profiles_keep_other_settings() -> None:
    run("configure", "--environment", "dev")
    run(
        "configure", "--profile", "prod", "--environment", "prod", "--topic-prefix", "p"
    )
    run("--profile", "stage", "configure", "--environment", "stage")
    text = default_config_path().read_text()
    assert 'environment = "dev"' in text
    assert "[profiles.prod]" in text and "[profiles.stage]" in text
    out = json.loads(run("--profile", "prod", "validate-config", "--json").output)
    assert out["settings"]["environment"]["value"] == "prod"
    assert out["settings"]["topic_prefix"]["value"] == "p"


def test_configure_refuses_bad_key_without_echo_and_writes_nothing() -> None:
    wrong = "vdt_abc_" + SECRET
    result = run("configure", "--api-key", wrong)
    assert result.exit_code == 2
    assert SECRET not in result.output and "not a VDT API key" in result.output
    assert not default_config_path().exists()


def test_configure_prompts_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # CliRunner's stdin is not a terminal: nothing is asked, nothing blocks.
    result = run("configure", "--environment", "x")
    assert result.exit_code == 0 and "API key" not in result.output
    monkeypatch.setattr("vdt_ai.cli._interactive", lambda: True)
    result = CliRunner().invoke(
        main, ["configure"], input=f"{API_KEY}\nk1:9092\n", catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output  # the prompt hid it
    assert 'bootstrap_servers = "k1:9092"' in default_config_path().read_text()


def test_validate_config_lists_values_and_sources(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run("configure", "--api-key", API_KEY, "--environment", "from-file")
    monkeypatch.setenv("VDT_AI_TOPIC_PREFIX", "envprefix")
    result = run("validate-config")
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines() if line}
    assert str(default_config_path()) in lines["environment"]
    assert "VDT_AI_TOPIC_PREFIX" in lines["topic_prefix"]
    assert "default" in lines["compression"]
    assert f"vdt_{KEY_ID}_****" in lines["api_key"] and SECRET not in result.output
    data = json.loads(run("validate-config", "--json").output)
    assert data["valid"] is True
    assert data["settings"]["topic_prefix"] == {
        "value": "envprefix",
        "source": "VDT_AI_TOPIC_PREFIX",
    }


def test_validate_config_masks_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VDT_AI_HASH_SALT", "salt-salt-salt-salt-0001")
    monkeypatch.setenv("VDT_AI_DATA_POLICY", '{"input_data.email": "hash"}')
    result = run("validate-config", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["settings"]["hash_salt"]["value"] == "****"
    assert "salt-salt-salt-salt-0001" not in result.output


def test_validate_config_lists_each_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VDT_AI_SAMPLE_RATE", "7")
    monkeypatch.setenv("VDT_AI_SHUTDOWN_TIMEOUT", "-1")
    result = run("validate-config")
    assert result.exit_code == 1
    assert "sample_rate (from VDT_AI_SAMPLE_RATE)" in result.output
    assert "shutdown_timeout (from VDT_AI_SHUTDOWN_TIMEOUT)" in result.output
    data = json.loads(run("validate-config", "--json").output)
    assert data["valid"] is False and len(data["problems"]) == 2
    monkeypatch.delenv("VDT_AI_SAMPLE_RATE")
    monkeypatch.delenv("VDT_AI_SHUTDOWN_TIMEOUT")
    monkeypatch.setenv("VDT_AI_NOT_A_SETTING", "1")
    assert "unknown setting" in run("validate-config").output


def test_test_connection_without_brokers_says_what_to_do() -> None:
    result = run("test-connection", "--timeout", "2")
    assert result.exit_code == 1
    assert "no bootstrap_servers configured" in result.output


def test_send_reports_bad_lines_and_keeps_good_ones_offline(tmp_path: Path) -> None:
    lines = "\n".join(
        [
            json.dumps({"model_name": "m1", "latency_ms": 3}),
            json.dumps({"model_name": ""}),
            "not json",
            "[1, 2]",
            "",
            json.dumps({"model_name": "m2", "timestamp": "2024-05-01T10:00:00Z"}),
            json.dumps({"model_name": "m3", "timestamp": "2024-05-01T10:00:00"}),
        ]
    )
    result = run("send", "--type", "model_call", input=lines)
    assert result.exit_code == 1
    # The offline notice is one plain line, not a warning pointing into click.
    assert "note: vdt-ai: no Kafka brokers configured" in result.output
    assert "line 2: invalid model_call event: model_name" in result.output
    assert "line 3: not JSON" in result.output
    assert "line 4: expected a JSON object" in result.output
    assert "line 7: invalid model_call event: timestamp" in result.output
    assert "sent 2 events" in result.output and "4 bad lines" in result.output
    spool = tmp_path / "data" / "vdt-ai" / "spool"
    names = [e.model_name for e in iter_events(spool) if isinstance(e, ModelCall)]
    assert names == ["m1", "m2"]


def test_send_from_file_all_good_exits_zero(tmp_path: Path) -> None:
    source = tmp_path / "metrics.jsonl"
    source.write_text('{"name": "loss", "value": 0.5, "step": 1}\n')
    result = run("send", "--type", "metric", str(source))
    assert result.exit_code == 0, result.output
    events = list(iter_events(tmp_path / "data" / "vdt-ai" / "spool"))
    assert isinstance(events[0], Metric) and events[0].value == 0.5


def test_spool_status_counts_and_sync_needs_brokers(tmp_path: Path) -> None:
    spool = tmp_path / "s"
    with pytest.warns(Warning):
        client = VDTClient(spool_dir=spool)
    for i in range(3):
        client.log_metric("m", float(i))
    client.close()
    result = run("spool", "status", env={"VDT_AI_SPOOL_DIR": str(spool)})
    assert "events:    3" in result.output and str(spool) in result.output
    assert "oldest:    20" in result.output
    result = run("sync", env={"VDT_AI_SPOOL_DIR": str(spool)})
    assert result.exit_code == 2 and "no bootstrap_servers" in result.output


def test_no_color_and_non_terminal_output_has_no_escape_codes() -> None:
    for env in ({"NO_COLOR": "1"}, {}):
        output = run("validate-config", env=env).output
        assert "\x1b[" not in output


def test_bad_global_config_path_is_a_clear_error(tmp_path: Path) -> None:
    result = run("--config", str(tmp_path / "missing.toml"), "validate-config")
    assert result.exit_code == 1 and "does not exist" in result.output
    result = run("--config", str(tmp_path / "missing.toml"), "test-connection")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_verbose_turns_sdk_logs_on(tmp_path: Path) -> None:
    from loguru import logger

    try:
        result = CliRunner().invoke(main, ["-vv", "spool", "status"])
        assert result.exit_code == 0
    finally:
        logger.remove()
        logger.add(__import__("sys").stderr)
        logger.disable("vdt_ai")


ALL_COMMANDS: List[List[str]] = [
    ["version"],
    ["validate-config"],
    ["validate-config", "--json"],
    ["test-connection", "--timeout", "1"],
    ["spool", "status"],
    ["sync"],
    ["send", "--type", "metric"],
    ["configure", "--environment", "e"],
    ["tail", "-n", "1", "--timeout", "1"],
]


@pytest.mark.parametrize("args", ALL_COMMANDS, ids=lambda a: " ".join(a))
def test_no_command_prints_the_secret(args: List[str], tmp_path: Path) -> None:
    run("configure", "--api-key", API_KEY)
    result = CliRunner().invoke(
        main, args, input=json.dumps({"name": API_KEY, "value": 1}) + "\n"
    )
    assert SECRET not in result.output
    assert SECRET not in str(result.exception or "")
