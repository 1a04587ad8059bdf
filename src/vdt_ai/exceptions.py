"""The SDK's exceptions. Every one is a :class:`VDTError`.

Messages pass through the secret redactor, so an exception can be logged or
shown as it is.
"""

from typing import Any, List, Optional, Sequence, Tuple

from ._redact import redact, shown

# The longest field path and reason a ValidationError shows (characters).
MAX_FIELD_PATH = 256
MAX_REASON = 1024


class VDTError(Exception):
    """Base class of every error the SDK raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))

    @property
    def message(self) -> str:
        """The (redacted) error message."""
        return str(self.args[0]) if self.args else ""


class ValidationError(VDTError, ValueError):
    """An event or argument is invalid; nothing was recorded.

    Attributes:
        errors: ``(field, reason)`` pairs, one per problem found. ``field`` is a
            dotted path such as ``"tags.env"`` or ``"columns.0.null_count"``.
    """

    def __init__(
        self, errors: Sequence[Tuple[str, str]], *, event_type: Optional[str] = None
    ) -> None:
        # A path may hold the caller's dict keys or column names: bounded and
        # escaped (no line breaks in a log line), secrets masked.
        self.errors: List[Tuple[str, str]] = [
            (shown(field, MAX_FIELD_PATH), shown(reason, MAX_REASON))
            for field, reason in errors
        ]
        self.event_type = event_type
        what = f"invalid {event_type} event" if event_type else "invalid input"
        details = "; ".join(f"{field}: {reason}" for field, reason in self.errors)
        super().__init__(f"{what}: {details}")


def problems_from_pydantic(exc: Any, default_field: str) -> List[Tuple[str, str]]:
    """``(field path, reason)`` for each error of a ``pydantic.ValidationError``.

    The one translation of Pydantic's errors (events and settings alike): input
    values are never included. A check across fields names its field in its
    context (``ctx["field"]``); without one, ``default_field`` is used.
    """
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        # A dict key in the path is the caller's text: shown bounded.
        field = ".".join(
            shown(part) if type(part) is str else str(part)
            for part in error["loc"]
            if part != ""
        )
        if not field:
            field = str(error.get("ctx", {}).get("field", default_field))
        reason = error["msg"]
        if error["type"] == "extra_forbidden":
            reason = "unknown field"
        problems.append((field, reason))
    return problems


class ConfigError(VDTError, ValueError):
    """A setting is unknown or has a bad value.

    Attributes:
        setting: the setting's name, when one setting is at fault.
        source: where the bad value came from: ``"argument"``, the environment
            variable's name, the config file's path, or ``"default"``.
        problems: every problem found, one line each.
    """

    def __init__(
        self,
        message: str,
        *,
        setting: Optional[str] = None,
        source: Optional[str] = None,
        problems: Optional[Sequence[str]] = None,
    ) -> None:
        self.setting = setting
        self.source = source
        super().__init__(message)
        self.problems: List[str] = (
            [redact(p) for p in problems] if problems else [self.message]
        )


class AuthenticationError(VDTError):
    """The broker refused the API key (wrong key id or secret, revoked key)."""


class AuthorizationError(VDTError):
    """The API key is valid but may not write to a topic.

    Attributes:
        topic: the topic that was refused, when known.
    """

    def __init__(self, message: str, *, topic: Optional[str] = None) -> None:
        self.topic = topic
        super().__init__(message)


class TransportError(VDTError):
    """Events could not be handed to Kafka or to the local spool."""


class SerializationError(VDTError):
    """Bytes could not be decoded as an event, or an event could not be encoded."""


__all__ = [
    "VDTError",
    "ValidationError",
    "ConfigError",
    "AuthenticationError",
    "AuthorizationError",
    "TransportError",
    "SerializationError",
]
