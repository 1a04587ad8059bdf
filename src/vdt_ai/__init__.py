"""vdt-ai: send ML monitoring events to the VDT AI platform through Kafka.

Example::

    from vdt_ai import VDTClient

    client = VDTClient(api_key="vdt_...")
    client.log_model_call(model_name="recommendation_model",
                          input_data={"user_id": 123},
                          prediction={"items": [1, 2, 3]}, latency_ms=45)
"""

from typing import TYPE_CHECKING, Dict, List

from ._version import __version__

if TYPE_CHECKING:  # what type checkers and IDEs see; loaded on first use below
    from ._uuid7 import EventIds
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
        ColumnKind,
        ColumnProfile,
        ColumnSketches,
        DataProfile,
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

# Public name -> the module that defines it. ``import vdt_ai`` loads none of
# them (pydantic and the rest stay unloaded until a name is used: PEP 562);
# ``from vdt_ai import VDTClient`` loads the client module, still not pydantic
# (the first client made loads the settings, the models and the pipeline).
_HOMES: Dict[str, str] = {
    "VDTClient": "client",
    "AsyncVDTClient": "client",
    "get_client": "client",
    "OfflineModeWarning": "client",
    "EventIds": "_uuid7",
    "Record": "codec",
    "decode": "codec",
    "encode": "codec",
    "Settings": "config",
    "load_settings": "config",
    "AuthenticationError": "exceptions",
    "AuthorizationError": "exceptions",
    "ConfigError": "exceptions",
    "SerializationError": "exceptions",
    "TransportError": "exceptions",
    "ValidationError": "exceptions",
    "VDTError": "exceptions",
    "CallStatus": "models",
    "ColumnKind": "models",
    "ColumnProfile": "models",
    "ColumnSketches": "models",
    "DataProfile": "models",
    "DataQuality": "models",
    "Event": "models",
    "EventType": "models",
    "GroundTruth": "models",
    "JobRun": "models",
    "JobStatus": "models",
    "Metric": "models",
    "ModelCall": "models",
    "Source": "models",
    "Stats": "transport",
    "Transport": "transport",
}

# Public submodules that ``import vdt_ai`` used to load, so that
# ``vdt_ai.codec.decode`` after a bare ``import vdt_ai`` keeps working.
_SUBMODULES = frozenset(
    ("client", "codec", "config", "exceptions", "models", "policy", "transport")
)

if not TYPE_CHECKING:  # pragma: no branch - hidden from type checkers (typos)

    def __getattr__(name: str) -> object:
        from importlib import import_module

        if name in _SUBMODULES:
            return import_module(f"{__name__}.{name}")  # sets the attribute
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(f"{__name__}.{home}"), name)
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "__version__",
    "VDTClient",
    "AsyncVDTClient",
    "get_client",
    "OfflineModeWarning",
    "EventIds",
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
    "DataProfile",
    "ColumnSketches",
    "ColumnKind",
    "Metric",
    "GroundTruth",
    "JobRun",
    "JobStatus",
    "Source",
]
