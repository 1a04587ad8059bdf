"""Records rebuilt from librdkafka delivery reports."""

from typing import Any, Dict, Optional

from ..codec import (
    CONTENT_TYPE,
    HEADER_API_KEY_ID,
    HEADER_CONTENT_TYPE,
    HEADER_EVENT_ID,
    HEADER_EVENT_TYPE,
    HEADER_SCHEMA_VERSION,
    SCHEMA_VERSION,
    TOPIC_SUFFIXES,
    Headers,
    Record,
    headers_for_value,
    uuid_text,
)
from ..codec._wire import EVENT_ID_PREFIX
from ..exceptions import SerializationError

_TYPE_BY_SUFFIX: Dict[str, bytes] = {
    suffix: event_type.value.encode() for event_type, suffix in TOPIC_SUFFIXES.items()
}
# An Event's encoding starts with field 1 (event_id, 16 bytes).
_EVENT_ID_PREFIX = EVENT_ID_PREFIX
_SCHEMA_VERSION = SCHEMA_VERSION.encode()
_CONTENT_TYPE = CONTENT_TYPE.encode()


def record_from_report(message: Any, api_key_id: Optional[str]) -> Record:
    """The record of a delivery report, headers included.

    librdkafka's reports carry no headers; they are rebuilt from the topic and
    the value, so a record spooled after a failed delivery is the record that
    was produced. This runs once per failed record (a purge at shutdown can
    fail 100,000 at once), so the event type comes from the topic's suffix and
    the id from the value's first field, without parsing the whole event.
    """
    value = message.value()
    topic = message.topic()
    event_type = _TYPE_BY_SUFFIX.get(topic.rsplit(".", 1)[-1])
    if event_type is not None and value[:2] == _EVENT_ID_PREFIX and len(value) > 18:
        headers: Headers = [
            (HEADER_EVENT_TYPE, event_type),
            (HEADER_EVENT_ID, uuid_text(value[2:18])),
            (HEADER_SCHEMA_VERSION, _SCHEMA_VERSION),
            (HEADER_CONTENT_TYPE, _CONTENT_TYPE),
        ]
        if api_key_id:
            headers.append((HEADER_API_KEY_ID, api_key_id.encode()))
    else:
        try:
            headers = headers_for_value(value, api_key_id)
        except SerializationError:  # pragma: no cover - not produced by us
            headers = list(message.headers() or [])
    return Record(topic, message.key() or b"", value, headers)
