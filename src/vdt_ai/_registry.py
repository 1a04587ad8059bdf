"""Shared clients: one per process and settings.

:func:`vdt_ai.get_client` (the default client integrations use when none is
passed) and the Spark executors' workers take their clients from here, so a
process never holds two producers for the same settings. A client made in a
parent process is not reused in a forked child (its producer's threads did
not survive the fork): the child makes its own.
"""

import sys
import threading
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple

from . import _forksafe

if TYPE_CHECKING:  # pragma: no cover
    from .client import VDTClient

Key = Tuple[int, Tuple[Tuple[str, str], ...]]

_clients: Dict[Key, "VDTClient"] = {}
_lock = threading.Lock()
# A fork while another thread builds a client must not leave the child's lock
# held forever.
_forksafe.register_module_lock(sys.modules[__name__], "_lock")


def key_of(options: Optional[Mapping[str, Any]]) -> Key:
    """The registry key of a client made in this process from ``options``."""
    settings = tuple(
        sorted((name, repr(value)) for name, value in (options or {}).items())
    )
    return _forksafe.pid, settings


def shared_client(options: Optional[Mapping[str, Any]] = None) -> "VDTClient":
    """This process's client for ``options`` (keyword arguments of
    :class:`~vdt_ai.VDTClient`; None: configuration only), made on first use
    and again after it was closed."""
    key = key_of(options)
    client = _clients.get(key)
    if client is None or client.closed:
        with _lock:
            client = _clients.get(key)
            if client is None or client.closed:
                from .client import VDTClient

                for stale in [k for k in _clients if k[0] != key[0]]:
                    del _clients[stale]  # a parent's, inherited by fork
                client = VDTClient(**dict(options or {}))
                _clients[key] = client
    return client
