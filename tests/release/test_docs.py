"""The generated reference pages of the documentation site cover the code.

``docs/_hooks/reference.py`` renders them from the settings model and the click
commands when ``make docs`` builds the site (``mkdocs build --strict``); these
tests fail when a setting or an option would appear without its description.
"""

import importlib.util
import re
from types import ModuleType

import click
import pytest

from vdt_ai import cli
from vdt_ai.config import ENV_PREFIX, Settings

from .conftest import ROOT


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "docs_reference_hook", ROOT / "docs" / "_hooks" / "reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_setting_has_its_variable_type_default_and_description(
    hook: ModuleType,
) -> None:
    page = hook.settings_reference()
    rows = {row[0]: row for row in hook.settings_rows()}
    assert set(rows) == set(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        _, env, kind, default, _, text = rows[name]
        assert env == ENV_PREFIX + name.upper()
        assert kind and default and default != "computed", name
        assert len(text) > 10, f"{name} has no description in Settings' docstring"
        assert "``" not in text and ":mod:" not in text
        assert re.search(rf"^\| `{name}` \| `{env}` \|", page, re.M), name
        if field.default_factory is None and field.default is not None:
            shown = (
                str(field.default).lower()
                if isinstance(field.default, bool)
                else field.default
            )
            assert f"`{getattr(shown, 'value', shown)}`" in default, name
    for meta in ("VDT_AI_CONFIG", "VDT_AI_PROFILE", "VDT_AI_DISABLED"):
        assert f"| `{meta}` |" in page


def test_the_reference_table_matches_the_model(hook: ModuleType) -> None:
    rows = {row[0]: row for row in hook.settings_rows()}
    assert rows["sample_rate"][4] == "≥ 0.0, ≤ 1.0"
    assert rows["max_buffer_kbytes"][3] == "`32768` (32 MiB)"
    assert rows["security_protocol"][2].startswith("one of `PLAINTEXT`")
    assert "JSON object" in rows["tags"][2]
    assert rows["api_key"][2] == "secret text, optional"


def _walk(command: click.Command, path: str):  # type: ignore[no-untyped-def]
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _walk(sub, f"{path} {name}")


def test_every_command_and_option_is_in_the_cli_reference(hook: ModuleType) -> None:
    page = hook.cli_reference()
    commands = list(_walk(cli.main, "vdt-ai"))
    assert len(commands) >= 9
    for path, command in commands:
        assert f"## `{path}`" in page, path
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert f"`{param.opts[0]}`" in page, f"{path} {param.opts[0]}"
    assert "Sentinel" not in page and "UNSET" not in page


def test_the_changelog_page_is_the_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog")
    assert "## [Unreleased]" in text
    for heading in re.findall(r"^### (.+)$", text, re.M):
        assert heading in {
            "Added",
            "Changed",
            "Deprecated",
            "Removed",
            "Fixed",
            "Security",
        }
