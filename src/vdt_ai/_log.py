"""The SDK's own logging: loguru, off until the user turns it on, redacted.

Library convention: records from the ``vdt_ai`` namespace are disabled until
the application calls ``logger.enable("vdt_ai")`` or sets ``log_level``.
loguru is imported on the first record, not with the package (it costs over
100 ms), so importing ``vdt_ai`` stays cheap.

Every record passes :func:`vdt_ai._redact.redact` (message and bound fields)
before loguru sees it. Nothing here is called per event: callers log state
changes and once-per-kind problems, with counts, never payloads.
"""

import sys
import threading
from typing import Any, Dict, Optional, Set

from . import _forksafe
from ._redact import redact

_LEVELS = {
    "TRACE": 5,
    "DEBUG": 10,
    "INFO": 20,
    "SUCCESS": 25,
    "WARNING": 30,
    "ERROR": 40,
    "CRITICAL": 50,
}

_lock = threading.RLock()  # re-entrant: see _lifecycle (SIGTERM)
_forksafe.register_module_lock(sys.modules[__name__], "_lock")
_state: Dict[str, Any] = {"logger": None, "min_level": 0}
_once_keys: Set[str] = set()


def _disable_unless_user_enabled(logger: Any, imported_here: bool) -> None:
    if not imported_here:
        # The application had loguru before us and may have enabled "vdt_ai"
        # already; loguru keeps that choice in its activation list.
        try:
            for name, active in logger._core.activation_list:
                if "vdt_ai.".startswith(name) and name:
                    if active:
                        return
                    break
        except Exception:  # pragma: no cover - loguru internals changed
            pass
    logger.disable("vdt_ai")


def _logger() -> Any:
    logger = _state["logger"]
    if logger is None:
        with _lock:
            logger = _state["logger"]
            if logger is None:
                imported_here = "loguru" not in sys.modules
                from loguru import logger as loguru_logger

                logger = loguru_logger
                _disable_unless_user_enabled(logger, imported_here)
                _state["logger"] = logger
    return logger


def configure(level: Optional[str]) -> None:
    """Applies the ``log_level`` setting: a level turns the SDK's logs on."""
    if level is None:
        return
    logger = _logger()
    _state["min_level"] = _LEVELS[level]
    logger.enable("vdt_ai")


def log(level: str, message: str, **fields: Any) -> None:
    """Emits one redacted, structured record at ``level``."""
    if _LEVELS[level] < _state["min_level"]:
        return
    if _state["logger"] is None and "loguru" not in sys.modules:
        # Nobody can have enabled our logs (that takes loguru), and importing
        # it here (~130 ms holding the GIL, often on the delivery thread)
        # would stall the caller's log_* calls for nothing.
        return
    clean = {key: _clean(value) for key, value in fields.items()}
    try:
        # Logged from this module, so loguru's disable("vdt_ai") always applies.
        _logger().bind(**clean).log(level, redact(message))
    except Exception:  # pragma: no cover - a broken sink must not hurt the host
        pass


def log_once(key: str, level: str, message: str, **fields: Any) -> None:
    """Like :func:`log`, but only the first time ``key`` is seen in this process."""
    with _lock:
        if key in _once_keys:
            return
        _once_keys.add(key)
    log(level, message, **fields)


def _clean(value: Any) -> Any:
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact(str(value))


def debug(message: str, **fields: Any) -> None:
    """A DEBUG record."""
    log("DEBUG", message, **fields)


def info(message: str, **fields: Any) -> None:
    """An INFO record."""
    log("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    """A WARNING record."""
    log("WARNING", message, **fields)
