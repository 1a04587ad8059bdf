"""vdt-ai: send ML monitoring events to the VDT AI platform through Kafka.

Example::

    from vdt_ai import VDTClient

    client = VDTClient(api_key="vdt_...")
    client.log_model_call(model_name="recommendation_model",
                          input_data={"user_id": 123},
                          prediction={"items": [1, 2, 3]}, latency_ms=45)
"""

from ._version import __version__
from .client import AsyncVDTClient, OfflineModeWarning, VDTClient, get_client
from .codec import Record, decode, encode
from .config import Settings, load_settings
from .exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConfigError,
    SerializationError,
    TransportError,
    ValidationError,
    VDTError,
)
from .models import (
    CallStatus,
    ColumnProfile,
    DataQuality,
    Event,
    EventType,
    GroundTruth,
    JobRun,
    JobStatus,
    Metric,
    ModelCall,
    Source,
)
from .transport import Stats, Transport

__all__ = [
    "__version__",
    "VDTClient",
    "AsyncVDTClient",
    "get_client",
    "OfflineModeWarning",
    "decode",
    "encode",
    "Record",
    "Settings",
    "load_settings",
    "Stats",
    "Transport",
    "VDTError",
    "ValidationError",
    "ConfigError",
    "AuthenticationError",
    "AuthorizationError",
    "TransportError",
    "SerializationError",
    "Event",
    "EventType",
    "ModelCall",
    "CallStatus",
    "DataQuality",
    "ColumnProfile",
    "Metric",
    "GroundTruth",
    "JobRun",
    "JobStatus",
    "Source",
]
