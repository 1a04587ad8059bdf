"""Writes the small TOML documents ``vdt-ai configure`` saves.

Only what settings hold: strings, numbers, booleans, and tables of those
(top-level keys, ``[profiles.NAME]`` tables, inline ``tags = {...}``).
Reading uses tomllib/tomli.
"""

import json
import math
import re
from typing import Any, Dict, List

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value} to TOML")
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string for our characters.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dumps(document: Dict[str, Any]) -> str:
    """TOML text for ``document``: scalars and inline tables first, then
    ``profiles`` as ``[profiles.NAME]`` tables."""
    lines: List[str] = []
    profiles = document.get("profiles", {})
    for name, value in document.items():
        if name != "profiles":
            lines.append(f"{_key(name)} = {_value(value)}")
    for profile, table in profiles.items():
        lines.append("")
        lines.append(f"[profiles.{_key(profile)}]")
        for name, value in table.items():
            lines.append(f"{_key(name)} = {_value(value)}")
    return "\n".join(lines).lstrip("\n") + "\n"
