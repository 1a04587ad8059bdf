"""What one event costs the caller in the clients our users compare us with.

Each peer is set up the way its documentation shows for production (its own
background delivery), sending the same fields as the SDK's sketch call; only
the caller's time is measured, as for ``log_model_call``:

- kafka-python: ``KafkaProducer(value_serializer=json)`` ``send()`` to the
  same local broker (acks=all, linger 100 ms, as the SDK);
- Sentry: ``capture_event`` of an event carrying the fields, with a transport
  that takes each envelope and drops it (its own worker thread is not part of
  the caller's cost either way);
- PostHog: ``capture`` with the fields as properties (queued for its consumer
  thread, which posts to a closed local port);
- OpenTelemetry: a span with the fields as attributes, ended, through a
  ``BatchSpanProcessor`` with an exporter that drops the batch.

A peer that is not installed is left out with a line saying so (the ``bench``
extra installs them all).
"""

import json
import uuid
from typing import Any, Callable, Dict, Optional, Tuple

from _common import BOOTSTRAP, SKETCH

Call = Callable[[], Any]
Closer = Callable[[], None]
# (name, the call, wait until its background work is done, shut it down)
Peer = Tuple[str, Call, Closer, Closer]


def kafka_python(bootstrap: str = BOOTSTRAP) -> Tuple[Call, Closer, Closer]:
    """kafka-python's producer: json serializer, same broker, acks=all."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=100,
        value_serializer=lambda value: json.dumps(value).encode(),
        key_serializer=str.encode,
    )
    topic = "bench" + uuid.uuid4().hex[:8] + ".kafka_python"
    send = producer.send
    name = SKETCH["model_name"]

    def call() -> Any:
        return send(topic, SKETCH, key=name)

    def settle() -> None:
        producer.flush(60)

    def close() -> None:
        producer.close(10)

    return call, settle, close


def _nothing() -> None:
    return None


def sentry(bootstrap: str = BOOTSTRAP) -> Tuple[Call, Closer, Closer]:
    """sentry-sdk's capture_event with a transport that drops envelopes."""
    import sentry_sdk
    import sentry_sdk.transport

    # Any: the same check whether or not sentry-sdk (typed) is installed.
    base: Any = sentry_sdk.transport.Transport

    class Dropping(base):  # type: ignore[misc]
        def capture_envelope(self, envelope: Any) -> None:
            return None

    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",
        transport=Dropping,
        default_integrations=False,
        traces_sample_rate=0.0,
    )
    capture: Any = sentry_sdk.capture_event  # its Event type is a TypedDict
    event = {"message": "model_call", "level": "info", "extra": dict(SKETCH)}

    def call() -> Any:
        return capture(dict(event))

    def close() -> None:
        sentry_sdk.get_client().close(timeout=2)

    return call, _nothing, close


def posthog(bootstrap: str = BOOTSTRAP) -> Tuple[Call, Closer, Closer]:
    """posthog's capture, queued for its consumer thread (closed local port)."""
    import logging

    from posthog import Posthog

    # Its consumer logs each failed upload (the port is closed on purpose).
    logging.getLogger("posthog").setLevel(logging.CRITICAL)
    client = Posthog(
        "phc_bench", host="http://127.0.0.1:9", max_retries=0, max_queue_size=10**6
    )
    properties = dict(SKETCH)

    def call() -> Any:
        return client.capture("model_call", distinct_id="bench", properties=properties)

    return call, _nothing, client.shutdown


def opentelemetry(bootstrap: str = BOOTSTRAP) -> Tuple[Call, Closer, Closer]:
    """An OpenTelemetry span with the fields as attributes, batch-exported."""
    from opentelemetry.sdk.trace import TracerProvider, export

    exporter_base: Any = export.SpanExporter
    success = export.SpanExportResult.SUCCESS

    class Dropping(exporter_base):  # type: ignore[misc]
        def export(self, spans: Any) -> Any:
            return success

    provider = TracerProvider()
    provider.add_span_processor(
        export.BatchSpanProcessor(Dropping(), max_queue_size=10**5)
    )
    tracer = provider.get_tracer("bench")
    attributes = {
        "model_name": SKETCH["model_name"],
        "input_data": json.dumps(SKETCH["input_data"]),
        "prediction": json.dumps(SKETCH["prediction"]),
        "latency_ms": float(SKETCH["latency_ms"]),
    }

    def call() -> Any:
        with tracer.start_as_current_span("model_call", attributes=attributes):
            pass

    return call, _nothing, provider.shutdown


PEERS: Dict[str, Callable[[str], Tuple[Call, Closer, Closer]]] = {
    "kafka-python send()": kafka_python,
    "Sentry capture_event()": sentry,
    "PostHog capture()": posthog,
    "OpenTelemetry span": opentelemetry,
}


def start(name: str, bootstrap: str = BOOTSTRAP) -> Tuple[Optional[Peer], str]:
    """The peer ``name`` set up (one at a time: a peer's background threads
    would otherwise load the others' measurements), or None and why not."""
    try:
        call, settle, close = PEERS[name](bootstrap)
    except ImportError as exc:
        return None, f"{name}: not installed ({exc.name})"
    except Exception as exc:  # a peer that cannot start is reported, not fatal
        return None, f"{name}: could not start ({type(exc).__name__}: {exc})"
    return (name, call, settle, close), ""
