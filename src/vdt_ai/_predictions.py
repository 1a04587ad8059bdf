"""``VDTClient.log_predictions``: one ModelCall per row of a table.

The table (pandas or polars DataFrame, pyarrow Table or RecordBatch, list of
dicts) is read a chunk of rows at a time, one column at a time (``tolist()``
of a column, never ``iterrows()``). Two passes over the chunks:

1. every cell is checked (types, finite numbers, ranges, embeddings): a bad
   cell raises :class:`vdt_ai.ValidationError` naming ``data.<row>.<column>``
   before anything is recorded;
2. each chunk's rows are written and sent: directly as wire bytes when the
   client's fast path applies (no data-policy rules, no ``before_send``,
   values the denylist leaves alone), else through the bulk call's reference
   path (validation, policy, ``before_send``), row by row as
   ``log_model_calls`` would.

Only one chunk's columns are held at a time. pandas, pyarrow and polars are
never imported: the object passed is used through its own methods.
"""

import datetime as dt
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from pydantic_core import to_json

from ._jsonlike import MAX_INT, MIN_INT, JSONLikeError, to_json_value, valid_text
from ._otel import current_span_ids
from ._pipeline import SAMPLE_SPACE, Pipeline, _name, datetime_of, in_item
from ._redact import shown
from ._uuid7 import reserve
from .codec import Record
from .codec._payloads import (
    _MC,
    _MC_KEY,
    _MC_STATUS,
    _delimited,
    write_model_call,
    write_typed_fields,
)
from .codec._wire import EVENT_ID_PREFIX
from .codec._wire import SMALL_VARINTS as _SMALL
from .codec._wire import pack_double as _pack_double
from .codec._wire import stamp
from .codec._wire import varint as _varint
from .exceptions import ValidationError
from .models import (
    MAX_CLASSES,
    MAX_FEATURES,
    MAX_ID_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_NAME_LENGTH,
    EmbeddingDType,
    EventType,
    _vector,
    pack_vector,
    unpack_vector,
)

CHUNK_ROWS = 10_000
_INPUT = _MC["input_data_json"]
_PREDICTION = _MC["prediction_json"]
_LATENCY = _MC["latency_ms"]
_REQUEST_ID = _MC["request_id"]
_LABEL = _MC["prediction_label"]
_SCORE = _MC["prediction_score"]
_STATUS = _MC_STATUS
_MISSING = object()
Columns = Dict[str, List[Any]]


def _fail(row: int, column: str, reason: str) -> ValidationError:
    return ValidationError(
        [(f"data.{row}.{shown(column)}", reason)], event_type="model_call"
    )


def _not_in_data(role: str, column: Any) -> ValidationError:
    return ValidationError(
        [(role, f"column {shown(str(column))!r} is not in data")],
        event_type="model_call",
    )


def table_reader(data: Any) -> Tuple[List[str], int, Callable[[int, int], Columns]]:
    """(column names, row count, ``read(start, stop)`` -> name -> values)."""
    module = type(data).__module__.split(".")[0]
    if module == "pandas" and hasattr(data, "iloc"):
        names = [str(c) for c in data.columns]
        if len(set(names)) != len(names):
            raise ValidationError([("data", "has duplicate column names")])
        frame = data

        def read_pandas(start: int, stop: int) -> Columns:
            part = frame.iloc[start:stop]
            return {
                str(name): part[name].tolist() for name in part.columns
            }  # Series.tolist(): Python values, C speed for numbers

        return names, len(frame), read_pandas
    if module == "pyarrow" and hasattr(data, "schema"):
        names = list(data.schema.names)
        table = data

        def read_arrow(start: int, stop: int) -> Columns:
            part = table.slice(start, stop - start)
            return {name: part.column(name).to_pylist() for name in names}

        return names, table.num_rows, read_arrow
    if module == "polars" and hasattr(data, "get_column"):
        names = list(data.columns)
        frame = data

        def read_polars(start: int, stop: int) -> Columns:
            part = frame.slice(start, stop - start)
            return {name: part.get_column(name).to_list() for name in names}

        return names, frame.height, read_polars
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Sequence):
        raise ValidationError(
            [
                (
                    "data",
                    "must be a pandas or polars DataFrame, a pyarrow Table or "
                    f"RecordBatch, or a list of dicts, not {type(data).__name__}",
                )
            ],
            event_type="model_call",
        )
    rows = data
    seen: Dict[str, None] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValidationError(
                [(f"data.{index}", f"must be a dict, not {type(row).__name__}")],
                event_type="model_call",
            )
        for key in row:
            if key not in seen:
                if type(key) is not str:
                    raise _fail(
                        index, f"<{type(key).__name__}>", "column names must be text"
                    )
                seen[key] = None

    def read_rows(start: int, stop: int) -> Columns:
        part = rows[start:stop]
        return {name: [row.get(name) for row in part] for name in seen}

    return list(seen), len(rows), read_rows


def _named_columns(
    roles: Dict[str, Any], role: str, names: List[str], most: int, longest: int
) -> Dict[str, str]:
    """A list of columns (each its own name) or a mapping name -> column."""
    given = roles[role]
    if given is None:
        return {}
    if isinstance(given, Mapping):
        named = {str(k): v for k, v in given.items()}
    elif isinstance(given, (str, bytes)):
        raise ValidationError(
            [(role, "must be a list of columns or a mapping name -> column")],
            event_type="model_call",
        )
    else:
        named = {str(c): c for c in given}
    if len(named) > most:
        raise ValidationError(
            [(role, f"names {len(named)} columns; at most {most}")],
            event_type="model_call",
        )
    for name, column in named.items():
        if column not in names:
            raise _not_in_data(role, column)
        if not (0 < len(name) <= longest and valid_text(name)):
            raise ValidationError(
                [(role, f"names must be text of 1 to {longest} characters")],
                event_type="model_call",
            )
    return named


class _Roles:
    """Which column plays which part, checked against the table's columns."""

    def __init__(self, names: List[str], **roles: Any) -> None:
        self.single: Dict[str, Optional[str]] = {}
        used: List[str] = []
        for role in (
            "prediction_column",
            "label_column",
            "score_column",
            "embedding_column",
            "request_id_column",
            "timestamp_column",
            "latency_column",
        ):
            column = roles[role]
            if column is not None and column not in names:
                raise _not_in_data(role, column)
            self.single[role] = column
            if column is not None:
                used.append(column)
        self.probabilities = _named_columns(
            roles, "probability_columns", names, MAX_CLASSES, MAX_LABEL_LENGTH
        )
        self.importances = _named_columns(
            roles, "feature_importance_columns", names, MAX_FEATURES, MAX_NAME_LENGTH
        )
        used += self.probabilities.values()
        used += self.importances.values()
        inputs = roles["input_columns"]
        if inputs is None:
            self.inputs = [n for n in names if n not in used]
        else:
            self.inputs = list(inputs)
            for column in self.inputs:
                if column not in names:
                    raise _not_in_data("input_columns", column)


def _plain_number(value: Any) -> bool:
    kind = type(value)
    return (kind is float and value - value == 0.0) or kind is int


def _checked_chunk(
    columns: Columns, roles: _Roles, start: int, count: int, dtype: EmbeddingDType
) -> Dict[str, List[Any]]:
    """The chunk's role values, checked and converted; raises for a bad cell."""
    out: Dict[str, List[Any]] = {}
    role = roles.single
    column = role["label_column"]
    if column is not None:
        values = columns[column]
        for i, v in enumerate(values):
            if v is None or (type(v) is float and v != v):
                values[i] = None
            elif (
                type(v) is not str
                or len(v) > MAX_LABEL_LENGTH
                or not (v.isascii() or valid_text(v))
            ):
                raise _fail(start + i, column, "must be text up to 1024 characters")
        out["prediction_label"] = values
    column = role["score_column"]
    if column is not None:
        values = columns[column]
        for i, v in enumerate(values):
            if not _plain_number(v):
                raise _fail(start + i, column, "must be a finite number")
        out["prediction_score"] = [float(v) for v in values]
    if roles.probabilities:
        maps: List[Dict[str, float]] = [{} for _ in range(count)]
        for label, column in roles.probabilities.items():
            for i, v in enumerate(columns[column]):
                if not (_plain_number(v) and 0 <= v <= 1):
                    raise _fail(start + i, column, "must be a probability, 0 to 1")
                maps[i][label] = float(v)
        out["class_probabilities"] = maps
    if roles.importances:
        importances: List[Dict[str, float]] = [{} for _ in range(count)]
        for feature, column in roles.importances.items():
            for i, v in enumerate(columns[column]):
                if not _plain_number(v):
                    raise _fail(start + i, column, "must be a finite number")
                importances[i][feature] = float(v)
        out["feature_importance"] = importances
    column = role["embedding_column"]
    if column is not None:
        packed: List[Optional[bytes]] = []
        for i, v in enumerate(columns[column]):
            try:
                vector = _vector(v)
                packed.append(None if vector is None else pack_vector(vector, dtype))
            except OverflowError:
                raise _fail(start + i, column, f"beyond the {dtype.value} range")
            except Exception as exc:
                reason = getattr(exc, "message", lambda: "is not a vector")
                raise _fail(start + i, column, str(reason())) from None
        out["embedding"] = packed
    column = role["request_id_column"]
    if column is not None:
        values = columns[column]
        for i, v in enumerate(values):
            if v is not None and not _name(v, MAX_ID_LENGTH):
                raise _fail(start + i, column, "must be text of 1 to 128 characters")
        out["request_id"] = values
    column = role["latency_column"]
    if column is not None:
        values = columns[column]
        for i, v in enumerate(values):
            if not (_plain_number(v) and v >= 0):
                raise _fail(start + i, column, "must be a finite number >= 0")
        out["latency_ms"] = [float(v) for v in values]
    column = role["timestamp_column"]
    if column is not None:
        times: List[Optional[Tuple[int, int]]] = []
        for i, v in enumerate(columns[column]):
            if v is None or (isinstance(v, dt.datetime) and v != v):  # NaT
                times.append(None)
                continue
            if not isinstance(v, dt.datetime) or v.utcoffset() is None:
                raise _fail(start + i, column, "must be a timezone-aware datetime")
            delta = v.astimezone(dt.timezone.utc) - datetime_of(0)
            seconds = delta.days * 86_400 + delta.seconds
            times.append((seconds, delta.microseconds * 1000))
        out["timestamp"] = times
    column = role["prediction_column"]
    if column is not None:
        out["prediction"] = [
            _json_cell(v, start + i, column) for i, v in enumerate(columns[column])
        ]
    return out


def _json_cell(value: Any, row: int, column: str) -> Any:
    kind = type(value)
    if kind is float:
        return (
            None
            if value != value
            else value if value - value == 0.0 else _bad(row, column)
        )
    if kind is int and not MIN_INT <= value <= MAX_INT:
        raise _fail(
            row,
            column,
            "integer out of range: JSON values must be " "-2**63 .. 2**64-1",
        )
    if kind is int or kind is str or kind is bool or value is None:
        return value
    try:
        return to_json_value(value)
    except JSONLikeError as exc:
        raise _fail(row, column, str(exc)) from None


def _bad(row: int, column: str) -> Any:
    raise _fail(row, column, "must be finite (infinity cannot be sent as JSON)")


_NUMBERS = {float, int, bool}


def plain_column(values: List[Any]) -> Optional[bool]:
    """True: finite numbers only (nothing for the denylist to look at);
    False: plain JSON scalars, text included; None: needs conversion."""
    kinds = set(map(type, values))
    if int in kinds:
        ints = values if kinds <= _NUMBERS else [v for v in values if type(v) is int]
        if not MIN_INT <= min(ints) <= max(ints) <= MAX_INT:
            return None  # to_json_value names the cell out of range
    if kinds <= _NUMBERS:
        if float not in kinds:
            return True
        total = sum(values)  # NaN or infinity anywhere makes it so
        if total - total == 0.0:
            return True
        if all(type(v) is not float or v - v == 0.0 for v in values):
            return True  # finite values whose sum overflowed
        return None
    if kinds <= _NUMBERS | {str}:
        return (
            False
            if not any(type(v) is float and v - v != 0.0 for v in values)
            else None
        )
    return None


def _input_columns(
    columns: Columns, names: List[str], start: int
) -> Tuple[List[List[Any]], List[Optional[bool]]]:
    """Each input column's values as JSON values (NaN is a missing value:
    null), and what :func:`plain_column` said of each."""
    converted = []
    plains = []
    for name in names:
        values = columns[name]
        plain = plain_column(values)
        plains.append(plain)
        if plain is None:
            converted.append(
                [_json_cell(v, start + i, name) for i, v in enumerate(values)]
            )
        else:
            converted.append(values)
    return converted, plains


def _inputs(
    columns: Columns, names: List[str], start: int
) -> Tuple[List[Dict[str, Any]], bool]:
    """Each row's input_data dict, and whether every value is a finite
    number (the denylist has nothing to look at but the column names)."""
    converted, plains = _input_columns(columns, names, start)
    numbers_only = all(plains)
    if not names:
        rows = len(next(iter(columns.values()), []))
        return [{} for _ in range(rows)], numbers_only
    return [dict(zip(names, row)) for row in zip(*converted)], numbers_only


# -- event size, checked before anything is recorded ---------------------------
#
# Every row's encoded size is bounded from above, a column at a time: a
# number takes at most 24 bytes as JSON (ints are in int64/uint64's range), a
# text at most 6 bytes a character (\u escapes) and its quotes, any other
# value its own JSON length. The data policy can make values longer: a
# ``hash`` writes 73 bytes ("sha256:<64 hex>" quoted) for a value, a
# ``mask`` or the denylist 6 ("****" quoted), so a value under it counts at
# least that, and a nested value ``_GROWTH`` times its JSON length (the
# shortest key and value a rule can replace, '"k":1', is 5 bytes). Only a row
# whose bound is over ``max_event_bytes`` is built and measured exactly.
_NUMBER_BYTES = 24  # "-2.2250738585072014e-308"
_FIELD_BYTES = 8  # a field's key and length
_TEXT_BYTES = 4  # UTF-8 bytes of one character, at most
_POLICY_BYTES = 80  # a hashed value and its field bytes
_MASK_BYTES = 6


def _cell_bounds(
    values: List[Any], plain: Optional[bool], floor: int, growth: int
) -> Tuple[int, Callable[[], List[int]]]:
    """The most bytes one cell of a column takes as JSON in the chunk, and
    (called only when needed) each row's bound."""
    if plain:  # numbers in JSON's int64/uint64 range or finite floats
        most = max(_NUMBER_BYTES, floor)
        return most, lambda: [most] * len(values)
    if plain is False:  # numbers and text, NaN among them (null)
        texts = [v for v in values if type(v) is str]
        longest = max(map(len, texts), default=0)
        most = max(_NUMBER_BYTES, 6 * longest + 2, floor)
        return most, lambda: [most] * len(values)
    # Converted values: their JSON, every row's together bounds each one.
    total = len(to_json(values)) * growth + floor

    def each() -> List[int]:
        return [len(to_json(v)) * growth + floor for v in values]

    return total, each


def _text_bounds(
    values: List[Optional[str]], floor: int
) -> Tuple[int, Callable[[], List[int]]]:
    longest = max(map(len, filter(None, values)), default=0)

    def each() -> List[int]:
        return [
            0 if v is None else max(_TEXT_BYTES * len(v), floor) + _FIELD_BYTES
            for v in values
        ]

    return max(_TEXT_BYTES * longest, floor) + _FIELD_BYTES, each


def _check_sizes(
    pipeline: Pipeline,
    base: int,
    count: int,
    converted: List[List[Any]],
    plains: List[Optional[bool]],
    names: List[str],
    values: Dict[str, List[Any]],
    exact: Callable[[int], None],
) -> None:
    """Calls ``exact(row)`` for each row of the chunk that may be over
    ``max_event_bytes`` by its bound (see above)."""
    rules = pipeline.policy.has_rules
    floor, growth = (_POLICY_BYTES, 16) if rules else (_MASK_BYTES, 2)
    # Same in every row: the event without its row values, the fields' keys
    # and lengths, two 8-byte numbers (score, latency), input_data's braces.
    fixed = base + _FIELD_BYTES * 12 + 2 * 9 + 2
    varying: List[Tuple[int, Callable[[], List[int]]]] = []
    for name, column, plain in zip(names, converted, plains):
        fixed += len(to_json(name)) * 2 + 2  # the key (or its masked form) : ,
        varying.append(_cell_bounds(column, plain, floor, growth))
    if "prediction" in values:
        varying.append(_cell_bounds(values["prediction"], None, floor, growth))
    sized = [values[f] for f in ("prediction_label", "request_id") if f in values]
    for texts in sized:
        varying.append(_text_bounds(texts, _POLICY_BYTES if rules else 0))
    for field in ("class_probabilities", "feature_importance"):
        if field in values:
            # The same names in every row: each a map entry (key, name, number).
            fixed += sum(
                _TEXT_BYTES * len(k) + 2 * _FIELD_BYTES + 9 for k in values[field][0]
            )
    if "embedding" in values:
        sizes = [0 if v is None else len(v) + _FIELD_BYTES for v in values["embedding"]]
        varying.append((max(sizes, default=0), lambda: sizes))
    limit = pipeline.encoder.max_event_bytes
    if fixed + sum(most for most, _ in varying) <= limit:
        return
    # Some rows may be over: each row's own bound, then its exact size.
    per_row = [fixed] * count
    for _, each in varying:
        per_row = [a + b for a, b in zip(per_row, each())]
    for index, size in enumerate(per_row):
        if size > limit:
            exact(index)


def log_predictions(
    pipeline: Pipeline,
    data: Any,
    model_name: str,
    model_version: Optional[str],
    tags: Optional[Mapping[str, str]],
    embedding_name: Optional[str] = None,
    **roles: Any,
) -> int:
    """See :meth:`vdt_ai.VDTClient.log_predictions`."""
    chunk_rows = CHUNK_ROWS
    names, total, read = table_reader(data)
    chosen = _Roles(names, **roles)
    if embedding_name is not None:
        if chosen.single["embedding_column"] is None:
            reason = "is given without an embedding_column"
        elif not _name(embedding_name, MAX_NAME_LENGTH):
            reason = "must be text of 1 to 256 characters, not blank"
        else:
            reason = ""
        if reason:
            raise ValidationError([("embedding_name", reason)], event_type="model_call")
    dtype = EmbeddingDType(pipeline.embedding_dtype)
    # The shared arguments, checked as one log_model_calls call would.
    common: Dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        common["model_version"] = model_version
    if tags is not None:
        common["tags"] = tags
    span = current_span_ids()  # the batch's span, when OpenTelemetry has one
    if span is not None:
        common["trace_id"], common["span_id"] = span
    checked = pipeline._checked(common, True) if pipeline.fast else None
    if embedding_name is not None and "vdt_" in embedding_name:
        checked = None  # an API key to mask: the reference path
    # Pass 1: every cell and every event's size, before anything is recorded.
    base = _base_size(pipeline, common)  # validates the shared arguments too
    if embedding_name is not None:
        base += max(_TEXT_BYTES * len(embedding_name), _POLICY_BYTES) + _FIELD_BYTES
    for start in range(0, total, chunk_rows):
        stop = min(total, start + chunk_rows)
        columns = read(start, stop)
        values = _checked_chunk(columns, chosen, start, stop - start, dtype)
        converted, plains = _input_columns(columns, chosen.inputs, start)
        del columns

        def exact(index: int, start: int = start) -> None:
            row = {k: v[index : index + 1] for k, v in values.items()}
            data = dict(zip(chosen.inputs, (c[index] for c in converted)))
            _exact_size(
                pipeline, common, row, data, dtype, embedding_name, start + index
            )

        _check_sizes(
            pipeline,
            base,
            stop - start,
            converted,
            plains,
            chosen.inputs,
            values,
            exact,
        )
    # Pass 2: write and send, a chunk at a time.
    sent = 0
    for start in range(0, total, chunk_rows):
        stop = min(total, start + chunk_rows)
        columns = read(start, stop)
        values = _checked_chunk(columns, chosen, start, stop - start, dtype)
        inputs, numbers_only = _inputs(columns, chosen.inputs, start)
        if checked is None:
            sent += _send_reference(
                pipeline, common, values, inputs, dtype, embedding_name, start
            )
        else:
            # Numbers need no denylist look, but secret-looking column names.
            plain = numbers_only and pipeline.policy.leaves_alone(
                dict.fromkeys(chosen.inputs)
            )
            sent += _send_fast(
                pipeline,
                checked,
                common,
                values,
                inputs,
                dtype,
                embedding_name,
                start,
                plain,
            )
    return sent


# What _rows gives after each row's input_data, in order.
_ROW_FIELDS = (
    "prediction",
    "latency_ms",
    "request_id",
    "prediction_label",
    "prediction_score",
    "class_probabilities",
    "embedding",
    "feature_importance",
    "timestamp",
)


def _rows(values: Dict[str, List[Any]], inputs: List[Dict[str, Any]]) -> Any:
    count = len(inputs)
    get = values.get
    empty = [None] * count
    return zip(inputs, *(get(field, empty) for field in _ROW_FIELDS))


def _send_fast(
    pipeline: Pipeline,
    checked: Any,
    common: Dict[str, Any],
    values: Dict[str, List[Any]],
    inputs: List[Dict[str, Any]],
    dtype: EmbeddingDType,
    embedding_name: Optional[str],
    start: int,
    inputs_plain: bool,
) -> int:
    envelope, name, version, status, _, _ = checked
    key = name.encode()
    leaves_alone = pipeline.policy.leaves_alone
    limit = pipeline.encoder.max_event_bytes
    event_ids, now_ns = reserve(len(inputs))
    seconds, micros = divmod(now_ns // 1000, 1_000_000)
    batch_time = stamp(bytes(16), seconds, micros * 1000)[len(EVENT_ID_PREFIX) + 16 :]
    sampling = pipeline.sample_below < SAMPLE_SPACE
    topic = pipeline.encoder.topics[EventType.MODEL_CALL]
    headers = pipeline.encoder.headers
    head = write_model_call(
        name, version, None, None, None, status, None, None, None, None, None, None
    )
    status_field = _STATUS[status]
    # The payload's key and length, then name and version, up to the status.
    head = head[: len(head) - len(status_field)]
    end = len(_MC_KEY)
    while head[end] & 0x80:
        end += 1
    head = head[end + 1 :]
    sent = 0
    for index, (row, event_id) in enumerate(zip(_rows(values, inputs), event_ids)):
        (
            data,
            prediction,
            latency,
            request_id,
            label,
            score,
            probs,
            vector,
            importance,
            when,
        ) = row
        if not (
            (inputs_plain or leaves_alone(data))
            and (prediction is None or leaves_alone(prediction))
            and (label is None or "vdt_" not in label)
            and (probs is None or not any("vdt_" in c for c in probs))
            and (importance is None or not any("vdt_" in f for f in importance))
        ):
            # The denylist or an API key has work to do: the reference path.
            sent += _send_reference(
                pipeline,
                common,
                {k: v[index : index + 1] for k, v in values.items()},
                [data],
                dtype,
                embedding_name,
                start + index,
            )
            continue
        if sampling and pipeline._sampled_out(event_id):
            continue
        # write_model_call's fields, in number order, then the typed ones.
        packed = to_json(data)
        size = len(packed)
        body = head + _INPUT + (_SMALL[size] if size < 0x80 else _varint(size)) + packed
        if prediction is not None:
            body += _delimited(_PREDICTION, to_json(prediction))
        if latency is not None:
            body += _LATENCY + _pack_double(latency)
        body += status_field
        if request_id is not None:
            body += _delimited(_REQUEST_ID, request_id.encode())
        if label is not None:
            body += _delimited(_LABEL, label.encode())
        if score is not None:
            body += _SCORE + _pack_double(score)
        if probs is not None or vector is not None or importance is not None:
            body += write_typed_fields(
                None, None, probs, vector, dtype, embedding_name, importance
            )
        body = _delimited(_MC_KEY, body)
        raw_id = event_id.to_bytes(16, "big")
        if when is None:
            stamped = EVENT_ID_PREFIX + raw_id + batch_time
        else:
            stamped = stamp(raw_id, *when)
        value = stamped + envelope + body
        if len(value) > limit:
            # Not reached: pass 1 measured every row that could be this large.
            raise ValidationError(
                [(f"data.{start + index}", f"the event is over {limit} bytes")],
                event_type="model_call",
            )
        record = Record(topic, key, value, headers(EventType.MODEL_CALL, raw_id))
        if pipeline.submit(record):
            sent += 1
    return sent


def _base_size(pipeline: Pipeline, common: Dict[str, Any]) -> int:
    """Bytes of an event with the shared arguments only (the policy applied),
    a timestamp's largest encoding included."""
    try:
        event, _ = pipeline._bulk_model(common)
        record = pipeline.encoder.encode(pipeline.policy.apply(event))
    except Exception as exc:
        raise in_item(exc, "", "model_call") from None
    return len(record.value) + 8


def _exact_size(
    pipeline: Pipeline,
    common: Dict[str, Any],
    values: Dict[str, List[Any]],
    data: Dict[str, Any],
    dtype: EmbeddingDType,
    embedding_name: Optional[str],
    row: int,
) -> None:
    """Builds one row's event the reference way, the data policy applied, and
    raises ValidationError naming the row when it is over ``max_event_bytes``
    (``before_send`` is not run: an edited event it makes too large is the
    hook's, dropped and counted when sent)."""
    (item,) = _items(values, [data], dtype, embedding_name)
    if "timestamp" not in item:  # the longest encoding of a timestamp
        item["timestamp"] = dt.datetime.now(dt.timezone.utc).replace(
            microsecond=999_999
        )
    try:
        event, _ = pipeline._bulk_model({**common, **item})
        pipeline.encoder.encode(pipeline.policy.apply(event))
    except Exception as exc:
        raise in_item(exc, f"data.{row}", "model_call") from None


def _items(
    values: Dict[str, List[Any]],
    inputs: List[Dict[str, Any]],
    dtype: EmbeddingDType,
    embedding_name: Optional[str],
) -> List[Dict[str, Any]]:
    """Rows as log_model_calls items."""
    items = []
    for data, *rest in _rows(values, inputs):
        item: Dict[str, Any] = {"input_data": data}
        item.update((k, v) for k, v in zip(_ROW_FIELDS, rest) if v is not None)
        vector, when = item.pop("embedding", None), item.pop("timestamp", None)
        if vector is not None:
            item["embedding"] = unpack_vector(vector, dtype)
            if embedding_name is not None:
                item["embedding_name"] = embedding_name
        if when is not None:
            item["timestamp"] = datetime_of(0) + dt.timedelta(
                seconds=when[0], microseconds=when[1] // 1000
            )
        items.append(item)
    return items


def _send_reference(
    pipeline: Pipeline,
    common: Dict[str, Any],
    values: Dict[str, List[Any]],
    inputs: List[Dict[str, Any]],
    dtype: EmbeddingDType,
    embedding_name: Optional[str],
    start: int,
) -> int:
    # Rows as log_model_calls items: validated again, the policy and
    # before_send applied, sampling honoured.
    items = _items(values, inputs, dtype, embedding_name)
    try:
        return len(pipeline.model_calls(items, common))
    except ValidationError as exc:
        errors = []
        for field, reason in exc.errors:
            parts = field.split(".", 2)
            if parts[0] == "calls" and len(parts) > 1 and parts[1].isdigit():
                row = f"data.{start + int(parts[1])}"
                field = row + ("." + parts[2] if len(parts) > 2 else "")
            errors.append((field, reason))
        raise ValidationError(errors, event_type="model_call") from None
