"""Locks that stay usable in a child process made by ``fork()``.

A lock held by another thread at the moment of ``fork()`` stays locked forever
in the child, where that thread does not exist. Objects that guard state with
a lock register here; the child gets fresh locks before it runs any code.
"""

import os
import threading
import weakref
from typing import Any

_holders: "weakref.WeakSet[Any]" = weakref.WeakSet()
# This process's id, renewed in each forked child before it runs any code:
# a per-event "was I forked?" check reads it instead of calling getpid()
# (a system call, about 0.3 us on our VMs).
pid = os.getpid()
_module_locks: "list[tuple[Any, str]]" = []


def register(holder: Any) -> None:
    """Gives ``holder._lock`` a fresh lock of the same type in each forked child
    (and each lock named in ``holder._fork_locks``, when it has that tuple)."""
    _holders.add(holder)


def register_module_lock(module: Any, name: str) -> None:
    """Gives the module-level lock ``module.<name>`` a fresh lock in each child."""
    _module_locks.append((module, name))


_RLOCK_TYPE = type(threading.RLock())


def _fresh_like(lock: Any) -> Any:
    # Lock types cannot be instantiated through type(); use the factories.
    return threading.RLock() if isinstance(lock, _RLOCK_TYPE) else threading.Lock()


def _after_fork_in_child() -> None:
    global pid
    pid = os.getpid()
    for holder in list(_holders):
        for name in getattr(holder, "_fork_locks", ("_lock",)):
            setattr(holder, name, _fresh_like(getattr(holder, name)))
    for module, name in _module_locks:
        setattr(module, name, _fresh_like(getattr(module, name)))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
