"""Removes secrets from text before it reaches a log, an exception or a repr.

Every secret the SDK is given is registered here when it is validated, so a
message that carries one by accident (an f-string, a library's error text) is
cleaned on the way out. Anything shaped like a VDT API key is masked too, even
when this process never saw it as a setting.
"""

import re
import sys
import threading
from typing import Set

from . import _forksafe

# vdt_<12 lowercase/digits key id>_<32 alphanumerics secret>
API_KEY_PATTERN = re.compile(r"vdt_([a-z0-9]{12})_([A-Za-z0-9]{32})")
MASK = "****"

# Re-entrant: SIGTERM's exit procedure (which logs) may run inside redact().
_lock = threading.RLock()
_forksafe.register_module_lock(sys.modules[__name__], "_lock")
_secrets: Set[str] = set()


def register_secret(secret: str) -> None:
    """Remembers ``secret`` so that :func:`redact` masks it wherever it appears."""
    # Very short strings would mask ordinary words; real secrets are long.
    if len(secret) >= 8:
        with _lock:
            _secrets.add(secret)


def mask_api_key(key_id: str) -> str:
    """The displayable form of an API key: its id, never its secret."""
    return f"vdt_{key_id}_{MASK}"


def redact(text: str) -> str:
    """Returns ``text`` with every known secret and API-key-shaped string masked."""
    if "vdt_" in text:
        text = API_KEY_PATTERN.sub(lambda m: mask_api_key(m.group(1)), text)
    if _secrets:
        with _lock:
            secrets = sorted(_secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, MASK)
    return text


def shown(text: str, limit: int = 64) -> str:
    """``text`` (a caller's dict key or column name) as an error or a log may
    show it: secrets masked first, then characters that are not printable
    escaped (``\\n``), then cut to ``limit`` characters (``…`` marks a cut).

    Masking before cutting means a cut never leaves part of a secret that
    the redactor would no longer recognise.
    """
    text = redact(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
