"""Locks that stay usable in a child process made by ``fork()``.

A lock held by another thread at the moment of ``fork()`` stays locked forever
in the child, where that thread does not exist. Objects that guard state with
a lock register here; the child gets fresh locks before it runs any code.
"""

import os
import weakref
from typing import Any

_holders: "weakref.WeakSet[Any]" = weakref.WeakSet()
_module_locks: "list[tuple[Any, str]]" = []


def register(holder: Any) -> None:
    """Gives ``holder._lock`` a fresh lock of the same type in each forked child."""
    _holders.add(holder)


def register_module_lock(module: Any, name: str) -> None:
    """Gives the module-level lock ``module.<name>`` a fresh lock in each child."""
    _module_locks.append((module, name))


def _after_fork_in_child() -> None:
    for holder in list(_holders):
        holder._lock = type(holder._lock)()
    for module, name in _module_locks:
        setattr(module, name, type(getattr(module, name))())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
