"""EventIds: what log_model_calls returns (a sequence of UUIDs held as bytes)."""

import copy
import gc
import pickle
import uuid
from typing import List

import pytest

from vdt_ai import EventIds, VDTClient
from vdt_ai.testing import MemoryTransport
from vdt_ai.transport import Counters, Transport


class _Forgets(Transport):
    def send(self, record: object, counters: Counters) -> None:
        return None


class _Index:
    # An integer of another type (numpy's, say): indexes through __index__.
    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


def _ids(count: int) -> List[uuid.UUID]:
    return [uuid.uuid4() for _ in range(count)]


def _event_ids(values: List[uuid.UUID]) -> EventIds:
    return EventIds(b"".join(value.bytes for value in values))


def test_reads_as_the_list_of_its_ids() -> None:
    values = _ids(5)
    ids = _event_ids(values)
    assert len(ids) == 5
    assert ids == values and values == ids and ids == tuple(values)
    assert ids != values[:4] and ids != list(reversed(values))
    assert list(ids) == values and list(reversed(ids)) == values[::-1]
    assert [ids[i] for i in range(-5, 5)] == values + values
    assert ids[1:4] == values[1:4] and ids[::-2] == values[::-2]
    assert isinstance(ids[1:4], EventIds)
    assert ids.index(values[3]) == 3 and ids.count(values[2]) == 1
    assert values[4] in ids and uuid.uuid4() not in ids and "x" not in ids
    assert ids + [] == values and [] + ids == values and ids + ids == values * 2
    assert repr(ids[:1]) == f"EventIds([{values[0]!r}])"
    for bad in (5, -6):
        with pytest.raises(IndexError):
            ids[bad]
    with pytest.raises(TypeError):
        hash(ids)
    with pytest.raises(TypeError):
        ids["0"]  # type: ignore[call-overload]
    assert ids[_Index(2)] == values[2]  # type: ignore[call-overload]


def test_an_id_across_two_ids_is_not_in_it() -> None:
    values = _ids(2)
    ids = _event_ids(values)
    straddling = uuid.UUID(bytes=(values[0].bytes + values[1].bytes)[8:24])
    assert straddling not in ids


def test_empty_pickled_copied_and_refused_when_cut() -> None:
    assert EventIds() == [] and len(EventIds()) == 0 and not EventIds()
    ids = _event_ids(_ids(3))
    assert pickle.loads(pickle.dumps(ids)) == ids
    assert copy.deepcopy(ids) == ids and copy.copy(ids) == ids
    with pytest.raises(ValueError):
        EventIds(bytes(17))


def test_the_bulk_call_returns_them_in_send_order() -> None:
    memory = MemoryTransport()
    client = VDTClient(transport=memory, ledger_interval_s=0)
    ids = client.log_model_calls(
        [{"input_data": {"x": i}} for i in range(50)], model_name="m"
    )
    assert isinstance(ids, EventIds)
    assert list(ids) == [event.event_id for event in memory.events]
    assert list(ids) == sorted(ids)
    assert (
        VDTClient(transport=MemoryTransport(), enabled=False).log_model_calls([{}])
        == EventIds()
    )
    client.close()


def test_the_bulk_call_leaves_no_object_per_row_for_the_collector() -> None:
    # A list of UUIDs left 10,000 objects the garbage collector tracks (and
    # full collections of the program's heap in most large calls).
    client = VDTClient(transport=_Forgets(), ledger_interval_s=0)
    rows = [{"input_data": {"x": i}} for i in range(10_000)]
    client.log_model_calls(rows[:10], model_name="m")
    gc.collect()
    before = len(gc.get_objects())
    ids = client.log_model_calls(rows, model_name="m")
    grown = len(gc.get_objects()) - before
    assert len(ids) == 10_000
    assert grown < 100, grown
    client.close()
