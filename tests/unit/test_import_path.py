"""What `import vdt_ai` loads: heavy and optional modules stay off its path.

``import vdt_ai`` loads only the package and its version; each public name is
loaded on first use (PEP 562). ``from vdt_ai import VDTClient`` loads the
client module and the transport boundary, not pydantic: the settings, the
models, the codec and the pipeline load when the first client is made. A
client that logs still leaves the optional parts unloaded.
"""

import importlib
import json
import subprocess
import sys
from typing import Any, Dict, List

import pytest

import vdt_ai

# Never loaded by a client that is not asked for them.
OPTIONAL = [
    "confluent_kafka",
    "loguru",
    "click",
    "asyncio",
    "pydantic_settings",
    "google.protobuf",
    "vdt_ai.proto.events_pb2",
    "vdt_ai.spool",
    "vdt_ai.kafka",
    "vdt_ai.cli",
    "vdt_ai.integrations",
    "vdt_ai.codec._reference",
    "opentelemetry",
    "vdt_ai.profiles",
    "datasketches",
    "numpy",
    "pandas",
]
# Loaded on first use of a public name, not by `import vdt_ai`.
ON_FIRST_USE = [
    "pydantic",
    "pydantic_core",
    "typing_extensions",
    "vdt_ai.client",
    "vdt_ai.codec",
    "vdt_ai.config",
    "vdt_ai.exceptions",
    "vdt_ai.models",
    "vdt_ai.transport",
    "vdt_ai._pipeline",
]


def run_json(code: str) -> Any:
    """The JSON that ``code`` prints last, run in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def loaded_after(statement: str, modules: List[str]) -> List[str]:
    """Which of ``modules`` a fresh interpreter holds after ``statement``."""
    loaded: List[str] = run_json(
        f"import sys, json; {statement}; "
        f"print(json.dumps([m for m in {modules!r} if m in sys.modules]))"
    )
    return loaded


def test_import_vdt_ai_loads_no_public_module() -> None:
    assert loaded_after("import vdt_ai", OPTIONAL + ON_FIRST_USE) == []


# Loaded when the first client is made, not by ``from vdt_ai import VDTClient``.
ON_FIRST_CLIENT = [
    "pydantic",
    "pydantic_core",
    "vdt_ai.config",
    "vdt_ai.models",
    "vdt_ai.codec",
    "vdt_ai._pipeline",
    "vdt_ai._ledger",
    "vdt_ai.policy",
]


def test_importing_the_client_loads_neither_pydantic_nor_the_models() -> None:
    assert (
        loaded_after("from vdt_ai import VDTClient", OPTIONAL + ON_FIRST_CLIENT) == []
    )
    # The transport boundary names Record without the codec.
    assert loaded_after("import vdt_ai.transport", ON_FIRST_CLIENT) == []


# What pydantic loads by itself (with the lowest dependency versions on 3.8,
# pydantic_core pulls asyncio): not ours to keep off.
PYDANTIC_ALONE = (
    "import pydantic, pydantic_core.core_schema; "
    "type('M', (pydantic.BaseModel,), {'__annotations__': {'x': int}})"
)


# A client made and used the common way: one simple model call.
FIRST_CALL = (
    "from vdt_ai import VDTClient; "
    "from vdt_ai.testing import MemoryTransport; "
    "memory = MemoryTransport(); "
    "client = VDTClient(transport=memory, service='svc'); "
    "assert client.log_model_call('m', {'x': 1}, 0.5, 1.0) is not None; "
    "assert len(memory.records) == 1"
)


def test_a_logging_client_leaves_optional_modules_unloaded() -> None:
    by_pydantic = set(loaded_after(PYDANTIC_ALONE, OPTIONAL))
    client = loaded_after(FIRST_CALL, OPTIONAL + ON_FIRST_CLIENT)
    assert set(client) - by_pydantic == set(ON_FIRST_CLIENT)  # made and used
    assert "asyncio" not in by_pydantic or sys.version_info < (3, 9)


def test_every_public_name_loads_in_a_fresh_interpreter() -> None:
    code = (
        "import vdt_ai, json; "
        "print(json.dumps({n: getattr(getattr(vdt_ai, n), '__module__', '')"
        " for n in vdt_ai.__all__ if n != '__version__'}))"
    )
    homes = run_json(code)
    assert set(homes) == set(vdt_ai.__all__) - {"__version__"}
    assert all(home.startswith("vdt_ai.") for home in homes.values()), homes


@pytest.mark.parametrize("name", vdt_ai.__all__)
def test_public_name_is_the_defining_modules_object(name: str) -> None:
    value = getattr(vdt_ai, name)
    if name == "__version__":
        assert isinstance(value, str) and value
        return
    home = importlib.import_module(f"vdt_ai.{vdt_ai._HOMES[name]}")
    assert value is getattr(home, name)
    assert name in dir(vdt_ai)


def test_lazy_table_matches_all() -> None:
    assert set(vdt_ai._HOMES) == set(vdt_ai.__all__) - {"__version__"}
    assert set(vdt_ai.__all__) <= set(dir(vdt_ai))


def test_star_import_and_unknown_names() -> None:
    namespace: Dict[str, object] = {}
    exec("from vdt_ai import *", namespace)
    assert {name for name in vdt_ai.__all__} <= set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        getattr(vdt_ai, "NoSuchName")
    with pytest.raises(ImportError):
        exec("from vdt_ai import NoSuchName", {})


def test_submodules_still_import_through_the_package() -> None:
    assert loaded_after("from vdt_ai import spool", ["vdt_ai.spool"]) == [
        "vdt_ai.spool"
    ]


def test_public_submodules_stay_reachable_as_attributes() -> None:
    # import vdt_ai used to load these; attribute access still works.
    code = (
        "import vdt_ai, json; "
        "print(json.dumps(sorted(n for n in vdt_ai._SUBMODULES "
        "if getattr(vdt_ai, n).__name__ == 'vdt_ai.' + n)))"
    )
    assert run_json(code) == sorted(vdt_ai._SUBMODULES)
    assert "cli" not in vdt_ai._SUBMODULES  # optional ones stay explicit imports


def test_lazy_lookup_of_a_submodule_returns_the_module() -> None:
    lookup = getattr(vdt_ai, "__getattr__")
    assert lookup("policy") is importlib.import_module("vdt_ai.policy")
