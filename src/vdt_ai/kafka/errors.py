"""One classification of librdkafka errors, used by every Kafka path.

The live path (delivery reports and ``produce()`` exceptions), the spool
replay and the connection check all ask the same question of a
``confluent_kafka.KafkaError``: can the same bytes ever succeed? The answer
decides what happens to the record:

* ``PERMANENT``: retrying the same bytes can never succeed (too large, invalid
  record or topic name). The record is counted ``failed`` and logged once with
  the reason; replay moves on past it.
* ``FATAL``: the producer instance is unusable (``error.fatal()``, possible
  with idempotence). It is torn down and rebuilt; its records are spooled.
* ``AUTH`` / ``AUTHORIZATION``: the key is refused, or may not write to the
  topic. Records stay spooled (a key or an ACL can be fixed) and the user hears
  about it through ``on_error``.
* ``RETRIABLE``: everything else (timeouts, outages, unknown topic while it is
  being created, purges at shutdown). Records stay spooled and are replayed.
"""

from typing import Any, FrozenSet, Optional, Tuple, Type

from ..exceptions import (
    AuthenticationError,
    AuthorizationError,
    TransportError,
    VDTError,
)

PERMANENT = "permanent"
RETRIABLE = "retriable"
AUTH = "auth"
AUTHORIZATION = "authorization"
FATAL = "fatal"

# librdkafka error names (attributes of confluent_kafka.KafkaError); names a
# given confluent-kafka release lacks are ignored.
_PERMANENT_NAMES = (
    "MSG_SIZE_TOO_LARGE",
    "_MSG_SIZE_TOO_LARGE",
    "INVALID_MSG",
    "INVALID_MSG_SIZE",
    "INVALID_RECORD",
    "RECORD_LIST_TOO_LARGE",
    "TOPIC_EXCEPTION",
    "INVALID_REQUIRED_ACKS",
    "_INVALID_ARG",
    "_BAD_MSG",
    "CORRUPT_MESSAGE",
)
_AUTH_NAMES = ("_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED")
_AUTHORIZATION_NAMES = (
    "TOPIC_AUTHORIZATION_FAILED",
    "CLUSTER_AUTHORIZATION_FAILED",
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
)


def _codes(names: Tuple[str, ...]) -> FrozenSet[int]:
    from confluent_kafka import KafkaError

    return frozenset(
        getattr(KafkaError, name) for name in names if hasattr(KafkaError, name)
    )


class _Tables:
    permanent: FrozenSet[int] = frozenset()
    auth: FrozenSet[int] = frozenset()
    authorization: FrozenSet[int] = frozenset()
    fatal_code: Optional[int] = None
    purged: FrozenSet[int] = frozenset()
    loaded = False


def _tables() -> Type[_Tables]:
    # Built on first use: importing confluent_kafka costs ~100 ms.
    if not _Tables.loaded:
        from confluent_kafka import KafkaError

        _Tables.permanent = _codes(_PERMANENT_NAMES)
        _Tables.auth = _codes(_AUTH_NAMES)
        _Tables.authorization = _codes(_AUTHORIZATION_NAMES)
        _Tables.fatal_code = getattr(KafkaError, "_FATAL", None)
        _Tables.purged = _codes(("_PURGE_QUEUE", "_PURGE_INFLIGHT"))
        _Tables.loaded = True
    return _Tables


def error_of(exc_or_error: Any) -> Any:
    """The ``KafkaError`` inside a ``KafkaException`` (or the error itself)."""
    args = getattr(exc_or_error, "args", None)
    if args and hasattr(args[0], "code"):
        return args[0]
    return exc_or_error


def purge_codes() -> FrozenSet[int]:
    """Codes of the reports a ``purge()`` gives its messages."""
    return _tables().purged


def classify(error: Any) -> str:
    """The kind of a ``KafkaError`` (or ``KafkaException``): one of
    :data:`PERMANENT`, :data:`RETRIABLE`, :data:`AUTH`, :data:`AUTHORIZATION`,
    :data:`FATAL`."""
    error = error_of(error)
    tables = _tables()
    try:
        code = error.code()
        fatal = getattr(error, "fatal", None)
        if fatal is not None and fatal():
            return FATAL
    except Exception:  # not a KafkaError: nothing says it can never succeed
        return RETRIABLE
    if code == tables.fatal_code:
        return FATAL
    if code in tables.permanent:
        return PERMANENT
    if code in tables.auth:
        return AUTH
    if code in tables.authorization:
        return AUTHORIZATION
    return RETRIABLE


def describe(error: Any) -> str:
    """``NAME: text`` of a ``KafkaError`` (for logs and exceptions)."""
    error = error_of(error)
    try:
        return f"{error.name()}: {error.str()}"
    except Exception:
        return repr(error)


def to_exception(error: Any, topic: Optional[str] = None) -> VDTError:
    """The SDK exception that tells a user about ``error`` (for ``on_error``)."""
    kind = classify(error)
    text = describe(error)
    if kind == AUTH:
        return AuthenticationError(f"Kafka refused the API key: {text}")
    if kind == AUTHORIZATION:
        return AuthorizationError(
            f"not authorized to write to topic {topic}: {text}", topic=topic
        )
    if kind == PERMANENT:
        return TransportError(f"Kafka refused a record for good ({topic}): {text}")
    if kind == FATAL:
        return TransportError(f"the Kafka producer failed fatally (rebuilt): {text}")
    return TransportError(f"Kafka delivery problem: {text}")


def refusal(error: Any) -> str:
    """The delivery ledger's reason for an event Kafka refused for good:
    ``"refused:<error name>"`` in lower case, without librdkafka's leading
    underscore (``"refused:msg_size_too_large"``)."""
    error = error_of(error)
    try:
        name = str(error.name())
    except Exception:
        name = type(error).__name__
    return f"refused:{name.lstrip('_').lower()}"


def problem_key(error: Any) -> str:
    """A key that is the same for every report of the same kind of problem."""
    error = error_of(error)
    try:
        return f"{classify(error)}:{error.name()}"
    except Exception:
        return f"other:{type(error).__name__}"
