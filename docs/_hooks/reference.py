"""MkDocs hook: pages generated from the code at build time, so they cannot drift.

* ``reference/configuration.md`` from :class:`vdt_ai.settings_module.Settings`: every
  field with its ``VDT_AI_*`` variable, type, default, limits and the
  description from the model's docstring.
* ``reference/cli.md`` from the click commands of :mod:`vdt_ai.cli`.
* ``changelog.md`` from ``CHANGELOG.md``.

``tests/release/test_docs.py`` imports the two renderers and checks them.
"""

import enum
import inspect
import re
import sys
import typing
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "src") not in sys.path:  # a checkout without an installed package
    sys.path.insert(0, str(ROOT / "src"))

import click  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

from vdt_ai import cli  # noqa: E402
from vdt_ai import config as settings_module  # noqa: E402

# Defaults computed at run time, described rather than evaluated here.
FACTORY_DEFAULTS = {
    "service": "the program's file name without its extension (`python` for `-c`)",
    "spool_dir": "`$XDG_DATA_HOME/vdt-ai/spool`, else `~/.local/share/vdt-ai/spool`",
    "tags": "`{}`",
    "data_policy": "`{}`",
}


def setting_descriptions() -> Dict[str, str]:
    """Field name -> description, from the ``Attributes:`` block of Settings."""
    doc = inspect.getdoc(settings_module.Settings) or ""
    block = doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""
    found: Dict[str, List[str]] = {}
    current = None
    for line in block.splitlines():
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            current = match.group(1)
            found[current] = [match.group(2).strip()]
        elif current and line.startswith("        "):
            found[current].append(line.strip())
        elif line.strip() and not line.startswith(" "):
            break
    return {name: " ".join(parts) for name, parts in found.items()}


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union:
        rest = [a for a in args if a is not type(None)]
        inner = " or ".join(_type_name(a) for a in rest)
        return f"{inner}, optional" if len(rest) < len(args) else inner
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (dict, typing.Dict):
        return f"table of text to {_type_name(args[1])}"
    if annotation is SecretStr:
        return "secret text"
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "path"
    names = {str: "text", int: "integer", float: "number", bool: "boolean"}
    if annotation in names:
        return names[annotation]
    return getattr(annotation, "__name__", str(annotation))


def _size(value: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return ""


def _default(name: str, field: Any) -> str:
    if field.default_factory is not None:
        return FACTORY_DEFAULTS.get(name) or "computed"
    value = field.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    text = f"`{value}`"
    if isinstance(value, int) and name.endswith(("_bytes", "_kbytes")):
        human = _size(value * (1024 if name.endswith("_kbytes") else 1))
        text += f" ({human})" if human else ""
    return text


def _limits(field: Any) -> str:
    words = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    out = []
    for item in field.metadata:
        for attr, sign in words.items():
            if getattr(item, attr, None) is not None:
                out.append(f"{sign} {getattr(item, attr)}")
        if getattr(item, "min_length", None) is not None:
            out.append(f"length ≥ {item.min_length}")
        if getattr(item, "max_length", None) is not None:
            out.append(f"length ≤ {item.max_length}")
    return ", ".join(out)


def _env_format(name: str, annotation: Any) -> str:
    if name in settings_module._TABLE_SETTINGS:
        return "a JSON object"
    if annotation is bool:
        return "`1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`"
    return ""


def rst_to_md(text: str) -> str:
    """Docstring markup (``code``, :role:`target`) as Markdown code spans."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def settings_rows() -> Iterator[Tuple[str, str, str, str, str, str]]:
    """(name, variable, type, default, limits, description) per setting."""
    descriptions = setting_descriptions()
    for name, field in settings_module.Settings.model_fields.items():
        kind = _type_name(field.annotation)
        fmt = _env_format(name, field.annotation)
        if fmt:
            kind += f" ({fmt} in the variable)"
        yield (
            name,
            settings_module.ENV_PREFIX + name.upper(),
            kind,
            _default(name, field),
            _limits(field),
            rst_to_md(descriptions.get(name, "")),
        )


def settings_reference() -> str:
    """The configuration reference page (Markdown)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "# Configuration reference",
        "",
        "Generated from `vdt_ai.config.Settings` when the site is built.",
        "",
        "A value comes from, in order: the keyword argument "
        "(`VDTClient(sample_rate=0.1)`), the `VDT_AI_*` environment variable, "
        "the chosen profile of the config file, the top level of the config "
        "file, the default. The config file is TOML at `$VDT_AI_CONFIG`, else "
        "`$XDG_CONFIG_HOME/vdt-ai/config.toml`, else "
        "`~/.config/vdt-ai/config.toml`; its keys are the setting names. "
        "See [Configuration](../configuration.md).",
        "",
        "| setting | variable | type | default | limits | description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in settings_rows():
        name, env, kind, default, limits, text = (cell(c) for c in row)
        lines.append(f"| `{name}` | `{env}` | {kind} | {default} | {limits} | {text} |")
    lines += [
        "",
        "## Variables that choose how settings are read",
        "",
        "| variable | meaning |",
        "| --- | --- |",
        f"| `{settings_module.ENV_CONFIG_PATH}` | path of the config file |",
        f"| `{settings_module.ENV_PROFILE}` | the `[profiles.NAME]` table of the "
        "config file to apply (same as `profile=`) |",
        f"| `{settings_module.ENV_DISABLED}` | `1` is the same as `enabled=False` |",
        "",
    ]
    return "\n".join(lines)


def _commands(
    command: click.Command, ctx: click.Context
) -> Iterator[Tuple[click.Command, click.Context]]:
    yield command, ctx
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from _commands(sub, click.Context(sub, info_name=name, parent=ctx))


def cli_reference() -> str:
    """The CLI reference page (Markdown): each command's help and options."""
    root = click.Context(cli.main, info_name="vdt-ai", max_content_width=88)
    lines = [
        "# CLI reference",
        "",
        "Generated from the click commands of `vdt_ai.cli` when the site is "
        "built: what `vdt-ai COMMAND --help` prints. Exit codes: 0 success, "
        "1 failure (the problem on stderr), 2 wrong usage. See "
        "[Command line](../cli.md) for examples.",
        "",
    ]
    for command, ctx in _commands(cli.main, root):
        path = ctx.command_path
        lines += [f"## `{path}`", ""]
        summary = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
        if summary:
            lines += [summary, ""]
        lines += ["```text", command.get_help(ctx).rstrip(), "```", ""]
        rows = []
        for param in command.get_params(ctx):
            if not isinstance(param, click.Option) or param.hidden:
                continue
            flags = ", ".join(f"`{o}`" for o in param.opts + param.secondary_opts)
            kind = "flag" if param.is_flag else param.type.name
            default = ""
            unset = param.default is None or "UNSET" in repr(param.default)
            if not param.is_flag and not unset and param.default != ():
                default = f"`{param.default}`"
            help_text = (param.help or "").replace("|", "\\|").replace("\n", " ")
            rows.append(f"| {flags} | {kind} | {default} | {help_text} |")
        if rows:
            lines += [
                "| option | type | default | meaning |",
                "| --- | --- | --- | --- |",
            ]
            lines += rows + [""]
    return "\n".join(lines)


def on_files(files: Any, config: Any) -> Any:  # noqa: D103 - MkDocs hook
    from mkdocs.structure.files import File

    pages = {
        "reference/configuration.md": settings_reference(),
        "reference/cli.md": cli_reference(),
        "changelog.md": (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"),
    }
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    return files
