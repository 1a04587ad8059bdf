"""What leaves the process: field rules, a secret-key denylist, ``before_send``.

Applied to every event after validation and sampling, before serialization:

1. ``data_policy`` rules, ``{"<field path>": "mask" | "hash" | "drop" | "keep"}``.
   A path starts with an event field (``input_data``, ``prediction``,
   ``actual``, ``metrics``, ``request_id``, ``error_message``, ``tags``...)
   and goes on through dict keys: ``"input_data.user.email"``. Lists are
   transparent: ``"input_data.items.sku"`` reaches the ``sku`` of every item.
   Data-quality column profiles are free-form too: ``"columns.min"`` and
   ``"columns.max"`` (and paths below them) apply to every column.
   ``mask`` writes ``"****"``; ``hash`` writes ``"sha256:<hex>"`` of the salted
   canonical JSON of the value (``hash_salt``; equal values hash equal, so
   joins still work); ``drop`` removes the key (a top-level field becomes
   ``None``); ``keep`` sends the value as it is, even past the denylist.
   The typed ML fields: ``prediction_label``, ``actual_label`` and
   ``embedding_name`` are text like ``request_id`` (mask, hash, drop).
   ``prediction_score``, ``actual_score`` and ``embedding`` are numbers: a
   rule may only ``drop`` them (dropping ``embedding`` drops its name too).
   ``class_probabilities`` and ``feature_importance`` map names to numbers: a
   rule may ``drop`` the whole map or one entry,
   ``"feature_importance.age"``.
2. The denylist: a key in any free-form value or in ``tags`` that looks like
   a secret has its value masked, unless a rule for that exact path says
   ``keep``; a column whose name looks like one has its ``min`` and ``max``
   masked; a data profile's column whose name looks like one loses its
   ``frequent`` and ``quantiles`` sketches and its ``min``/``max`` (they hold
   raw values; counts and the hashed distinct-count sketch stay). See
   :func:`is_sensitive_key` for the exact matching. Text anywhere
   in free-form values (dict keys included), tags, ``error_message``, the
   labels and the keys of ``class_probabilities`` and ``feature_importance``
   that holds a VDT API key has the key's secret masked (``vdt_<id>_****``).
   The denylist does not mask the numbers of ``class_probabilities`` or
   ``feature_importance`` under a secret-looking name (a feature called
   ``password_length`` has an importance, not a password; the value itself,
   in ``input_data``, is masked there): drop them with a rule if the names
   alone must not leave.
3. ``before_send(event) -> event | None``: the caller's last word. Returning
   ``None`` drops the event (counted ``filtered``). If it raises, returns
   something else, or returns an edited copy that fails validation or encoding
   (a copy is validated again), the event is dropped too (counted ``failed``,
   logged once, never raised): a failing scrubber must not let unscrubbed data
   out.
"""

import hashlib
import json
import re
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from ._jsonlike import MAX_DEPTH, MAX_INT, MIN_INT, valid_text
from ._redact import API_KEY_PATTERN, mask_api_key
from .models import DataProfile, DataQuality, Event, GroundTruth, ModelCall

MASK = "****"
ACTIONS = ("mask", "hash", "drop", "keep")

# The denylist. A key is split into lower-case words at separators and
# camelCase humps ("X-Auth-Token" -> x, auth, token; "apiKey" -> api, key) and
# also squashed to letters and digits ("X-Api-Key" -> "xapikey"). It is
# sensitive when:
# - its squashed form is one of DENYLIST_EXACT (a whole key such as "pin"), or
# - its squashed form contains one of DENYLIST_SUBSTRINGS, or
# - one of its words is in DENYLIST_WORDS, or
# - its last word is in DENYLIST_LAST_WORDS ("auth_token", but not
#   "token_count" or "prompt_tokens", which ML inputs hold).
DENYLIST_SUBSTRINGS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "apikey",
    "authorization",
    "cookie",
    "credential",
    "creditcard",
    "cardnumber",
    "privatekey",
    "accesskey",
    "signingkey",
    "encryptionkey",
    "accesstoken",
    "refreshtoken",
    "authtoken",
    "apitoken",
    "idtoken",
    "csrftoken",
    "xsrftoken",
    "sessionid",
    "sessionkey",
    "sessiontoken",
    "bearer",
)
DENYLIST_EXACT = frozenset(
    (
        "token",
        "auth",
        "session",
        "ssn",
        "cvv",
        "cvc",
        "pin",
        "otp",
        "iban",
        "setcookie",
        "jwt",
    )
)
DENYLIST_WORDS = frozenset(("pwd", "passcode", "credentials", "jwt", "otp", "ssn"))
DENYLIST_LAST_WORDS = frozenset(("token", "auth", "session", "sid"))
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

# Event fields holding free-form values; tags are str -> str.
_FREE_FORM = {"input_data", "prediction", "actual", "metrics"}
# Top-level string fields a rule may mask or hash, and those it may also drop.
_TEXT_FIELDS = {
    "model_name",
    "model_version",
    "request_id",
    "error_type",
    "error_message",
    "trace_id",
    "span_id",
    "dataset_name",
    "name",
    "run_id",
    "job_name",
    "prediction_label",
    "actual_label",
    "embedding_name",
}
_DROPPABLE = {"model_version", "request_id", "error_type", "error_message"} | {
    "trace_id",
    "span_id",
    "prediction_label",
    "actual_label",
    "embedding_name",
}
# Typed numeric fields: a rule may drop them (or keep: nothing to do).
_NUMBER_FIELDS = {"prediction_score", "actual_score", "embedding"}
# name -> number maps: a rule may drop the map or one entry.
_NUMBER_MAPS = ("class_probabilities", "feature_importance")
_NUMERIC = _NUMBER_FIELDS | set(_NUMBER_MAPS)
# The labels whose text is checked for API keys, by event class.
_LABELS: Dict[type, Tuple[str, ...]] = {
    ModelCall: ("prediction_label", "embedding_name"),
    GroundTruth: ("actual_label",),
}
_NORMALISE = re.compile(r"[^a-z0-9]")
_CONTAINERS = (dict, list)
_NO_RULES: Dict[Tuple[str, ...], str] = {}

BeforeSend = Callable[[Event], Optional[Event]]


def _mask_keys(text: str) -> str:
    return API_KEY_PATTERN.sub(lambda m: mask_api_key(m.group(1)), text)


def is_sensitive_key(key: str) -> bool:
    """``True`` when ``key`` names a value the denylist masks.

    Matching ignores case, separators (``-``, ``_``, ``.``, spaces) and
    prefixes such as ``x-``: ``password``, ``X-Auth-Token``, ``api_token``,
    ``csrf_token``, ``oauth_token``, ``passphrase``, ``pwd``,
    ``credentials``, ``session``, ``private_key`` and ``apiKey`` match;
    ``prompt_tokens``, ``token_count`` and ``session_length`` do not.
    """
    name = _NORMALISE.sub("", key.lower())
    if name in DENYLIST_EXACT or any(part in name for part in DENYLIST_SUBSTRINGS):
        return True
    words = [word.lower() for word in _WORDS.findall(key)]
    if not words:
        return False
    return words[-1] in DENYLIST_LAST_WORDS or any(
        word in DENYLIST_WORDS for word in words
    )


def known_fields() -> Iterable[str]:
    """The event fields a rule may start with."""
    return sorted(_FREE_FORM | _TEXT_FIELDS | _NUMERIC | {"tags", "columns"})


def validate_rules(rules: Mapping[str, str], has_salt: bool) -> List[str]:
    """Problems with a ``data_policy`` (empty when it is fine)."""
    problems = []
    fields = set(known_fields())
    for path, action in rules.items():
        head, _, rest = path.partition(".")
        if not path or any(not part for part in path.split(".")):
            problems.append(f"rule {path!r}: empty path segment")
        elif head not in fields:
            problems.append(
                f"rule {path!r}: {head!r} is not a field rules apply to "
                f"(one of {', '.join(sorted(fields))})"
            )
        elif head in _NUMERIC and action not in ("drop", "keep"):
            problems.append(
                f"rule {path!r}: {head} holds numbers; a rule may only drop "
                "(or keep) it"
            )
        elif head in _NUMBER_FIELDS and rest:
            problems.append(f"rule {path!r}: {head} has no sub-fields")
        elif head in _TEXT_FIELDS and rest:
            problems.append(f"rule {path!r}: {head} is text, it has no sub-fields")
        elif head in _TEXT_FIELDS and action == "drop" and head not in _DROPPABLE:
            problems.append(f"rule {path!r}: {head} is required; mask or hash it")
        elif head == "tags" and not rest:
            problems.append(f"rule {path!r}: name a tag, e.g. 'tags.user'")
        elif head == "columns" and rest.split(".")[0] not in ("min", "max"):
            problems.append(
                f"rule {path!r}: column rules name min or max, e.g. 'columns.min'"
            )
        if action not in ACTIONS:
            problems.append(
                f"rule {path!r}: action must be one of {', '.join(ACTIONS)}"
            )
        if action == "hash" and not has_salt:
            problems.append(
                f"rule {path!r}: 'hash' needs hash_salt (unsalted hashes of emails "
                "or ids can be reversed by guessing)"
            )
    return problems


class DataPolicy:
    """Applies ``data_policy`` rules and the denylist to events.

    Args:
        rules: field path -> action.
        salt: the ``hash_salt`` for ``hash`` rules.
        denylist: mask secret-looking keys (default ``True``).
    """

    def __init__(
        self,
        rules: Optional[Mapping[str, str]] = None,
        salt: Optional[str] = None,
        denylist: bool = True,
    ) -> None:
        self._salt = (salt or "").encode()
        self._denylist = denylist
        # {first segment: {remaining path tuple: action}}
        self._rules: Dict[str, Dict[Tuple[str, ...], str]] = {}
        for path, action in (rules or {}).items():
            head, *rest = path.split(".")
            self._rules.setdefault(head, {})[tuple(rest)] = action
        self._sensitive_cache: Dict[str, bool] = {}
        self._plain_keys: Set[str] = set()
        # "columns.min.x" -> {"min": {("x",): action}}
        self._column_rules: Dict[str, Dict[Tuple[str, ...], str]] = {}
        for sub, action in self._rules.get("columns", _NO_RULES).items():
            if sub:
                self._column_rules.setdefault(sub[0], {})[sub[1:]] = action
        self._plans: Dict[type, Tuple[List[Tuple[str, str]], List[str]]] = {}

    def apply(self, event: Event) -> Event:
        """``event`` with the rules and denylist applied (the same object when
        nothing changed)."""
        cls = type(event)
        plan = self._plans.get(cls)
        if plan is None:
            plan = self._plan(cls)
        text_rules, free_form = plan
        updates: Optional[Dict[str, Any]] = None
        for name, action in text_rules:
            value = getattr(event, name)
            if value is not None:
                updates = updates or {}
                updates[name] = None if action == "drop" else self._act(action, value)
        message = getattr(event, "error_message", None)
        if (
            message is not None
            and "vdt_" in message
            and "error_message" not in (updates or {})
        ):
            masked = _mask_keys(message)
            if masked != message:
                updates = updates or {}
                updates["error_message"] = masked
        for name in free_form:
            value = getattr(event, name)
            if value is None or (
                type(value) not in _CONTAINERS
                and name not in self._rules
                and not (type(value) is str and "vdt_" in value)
            ):
                continue
            new = self._field(name, value)
            if new is not value:
                updates = updates or {}
                updates[name] = new
        # Only DataQuality has columns; getattr with a default on a pydantic
        # model that lacks the field costs an exception (microseconds).
        columns = event.columns if cls is DataQuality else None  # type: ignore
        if columns:
            new_columns = self._columns(columns)
            if new_columns is not columns:
                updates = updates or {}
                updates["columns"] = new_columns
        if cls is DataProfile and self._denylist:
            profiled = self._profile_columns(event.columns)  # type: ignore
            if profiled is not None:
                updates = updates or {}
                updates["columns"] = profiled
        if cls in _LABELS:
            updates = self._typed(event, cls, updates)
        if event.tags:
            tags = self._walk(event.tags, (), self._rules.get("tags", _NO_RULES))
            if tags is not event.tags:
                updates = updates or {}
                updates["tags"] = tags
        return event.model_copy(update=updates) if updates else event

    @property
    def has_rules(self) -> bool:
        """``True`` when ``data_policy`` rules are configured."""
        return bool(self._rules)

    def leaves_alone(self, value: Any, depth: int = 0) -> bool:
        """``True`` when ``value`` is plain JSON already (exact types, valid
        text, finite numbers, int64/uint64 range) that the denylist would not
        change: no secret-looking dict key and no text holding ``vdt_``.

        The client's fast path sends such a value as it is; anything else
        takes the reference path (conversion, then :meth:`apply`). Meant for
        a policy without rules (see :attr:`has_rules`).
        """
        kind = type(value)
        if kind is dict:
            if depth >= MAX_DEPTH:
                return False
            plain_keys = self._plain_keys
            for key, item in value.items():
                if (type(key) is not str or key not in plain_keys) and (
                    not self._plain_key(key)
                ):
                    return False
                # Scalars checked in line: most values are flat.
                kind = type(item)
                if kind is int:
                    if not MIN_INT <= item <= MAX_INT:
                        return False
                elif kind is str:
                    if "vdt_" in item or not (item.isascii() or valid_text(item)):
                        return False
                elif kind is float:
                    if item - item != 0.0:
                        return False
                elif not (
                    kind is bool or item is None or self.leaves_alone(item, depth + 1)
                ):
                    return False
            return True
        if kind is list:
            if depth >= MAX_DEPTH:
                return False
            for item in value:
                kind = type(item)
                if kind is int:
                    if not MIN_INT <= item <= MAX_INT:
                        return False
                elif kind is float:
                    if item - item != 0.0:
                        return False
                elif not (
                    kind is bool or item is None or self.leaves_alone(item, depth + 1)
                ):
                    return False
            return True
        if kind is str:
            return "vdt_" not in value and (value.isascii() or valid_text(value))
        if kind is int:
            return MIN_INT <= value <= MAX_INT  # type: ignore[no-any-return]
        if kind is float:
            return value - value == 0.0  # type: ignore[no-any-return]
        return kind is bool or value is None

    # -- internals ----------------------------------------------------------------

    def _typed(
        self, event: Any, cls: type, updates: Optional[Dict[str, Any]]
    ) -> Optional[Dict[str, Any]]:
        # The typed ML fields: API keys in labels, drop rules on numbers,
        # entry rules and API keys in the keys of the number maps.
        for name in _LABELS[cls]:
            value = getattr(event, name)
            if value is not None and "vdt_" in value and name not in (updates or {}):
                masked = _mask_keys(value)
                if masked != value:
                    updates = updates or {}
                    updates[name] = masked
        fields = cls.model_fields  # type: ignore[attr-defined]
        for name, rules in self._rules.items():
            if (
                name in _NUMERIC
                and name in fields
                and rules.get(()) == "drop"
                and getattr(event, name) is not None
            ):
                updates = updates or {}
                updates[name] = None
                if name == "embedding":
                    updates["embedding_name"] = None
                    updates["embedding_dtype"] = None
        if cls is ModelCall:
            for name in _NUMBER_MAPS:
                value = getattr(event, name)
                if value is None or name in (updates or {}):
                    continue
                new = self._number_map(value, self._rules.get(name, _NO_RULES))
                if new is not value:
                    updates = updates or {}
                    updates[name] = new
        return updates

    def _number_map(
        self, value: Dict[str, float], rules: Dict[Tuple[str, ...], str]
    ) -> Optional[Dict[str, float]]:
        # Entries dropped by "<map>.<name>" rules (a name may hold dots);
        # API keys in names masked. The same dict when nothing changes.
        dropped = {
            ".".join(sub)
            for sub, action in rules.items()
            if sub and action == "drop" and ".".join(sub) in value
        }
        if not dropped and not any("vdt_" in name for name in value):
            return value
        new = {
            _mask_keys(name) if "vdt_" in name else name: number
            for name, number in value.items()
            if name not in dropped
        }
        return new or None

    def _plan(self, cls: type) -> Tuple[List[Tuple[str, str]], List[str]]:
        fields = cls.model_fields  # type: ignore[attr-defined]
        text_rules = [
            (name, rules[()])
            for name, rules in self._rules.items()
            if name in fields
            and name in _TEXT_FIELDS
            and rules.get((), "keep") != "keep"
        ]
        free_form = [name for name in sorted(_FREE_FORM) if name in fields]
        self._plans[cls] = (text_rules, free_form)
        return text_rules, free_form

    def _profile_columns(self, columns: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        # A secret-looking column's sketches of raw values do not leave.
        raw = ("frequent", "quantiles", "min", "max")
        changed: Optional[Dict[str, Any]] = None
        for name, column in columns.items():
            if self._sensitive(name) and any(
                getattr(column, part) is not None for part in raw
            ):
                changed = changed if changed is not None else dict(columns)
                changed[name] = column.model_copy(update={part: None for part in raw})
        return changed

    def _columns(self, columns: List[Any]) -> List[Any]:
        # Column min/max are free-form values: the same rules, the denylist on
        # their keys, and on the column's name (a "password" column's min is a
        # password).
        copied: Optional[List[Any]] = None
        for index, column in enumerate(columns):
            changes: Dict[str, Any] = {}
            secret_name = self._denylist and self._sensitive(column.name)
            for part in ("min", "max"):
                value = getattr(column, part)
                if value is None:
                    continue
                rules = self._column_rules.get(part, _NO_RULES)
                action = rules.get(())
                if action is None and secret_name:
                    action = "mask"
                if action == "keep":
                    continue
                if action is not None:
                    new = None if action == "drop" else self._act(action, value)
                else:
                    new = self._walk(value, (), rules)
                if new is not value:
                    changes[part] = new
            if changes:
                if copied is None:
                    copied = list(columns)
                copied[index] = column.model_copy(update=changes)
        return columns if copied is None else copied

    def _field(self, name: str, value: Any) -> Any:
        rules = self._rules.get(name, _NO_RULES)
        action = rules.get(())
        if action is not None:
            if action == "keep":
                return value
            return None if action == "drop" else self._act(action, value)
        if not rules and not self._denylist:
            return value
        return self._walk(value, (), rules)

    def _walk(
        self, value: Any, path: Tuple[str, ...], rules: Dict[Tuple[str, ...], str]
    ) -> Any:
        # Copy-on-write: containers are copied only where something changes.
        if type(value) is dict:
            changed: Optional[Dict[str, Any]] = None
            cache = self._sensitive_cache
            for key, item in value.items():
                child = path + (key,) if rules else path
                action = rules.get(child) if rules else None
                if action is None and self._denylist:
                    sensitive = cache.get(key)
                    if sensitive is None:
                        sensitive = self._sensitive(key)
                    if sensitive:
                        action = "mask"
                new = item
                if action is not None:
                    if action == "keep":
                        new = item
                    elif action == "drop":
                        if changed is None:
                            changed = dict(value)
                        del changed[key]
                        continue
                    else:
                        new = self._act(action, item)
                elif type(item) in _CONTAINERS:
                    new = self._walk(item, child, rules)
                elif type(item) is str and "vdt_" in item:
                    new = _mask_keys(item)
                    if new == item:
                        new = item
                # An API key used as a key is masked like one used as a value.
                new_key = _mask_keys(key) if "vdt_" in key else key
                if new is not item or new_key != key:
                    if changed is None:
                        changed = dict(value)
                    if new_key != key:
                        del changed[key]
                    changed[new_key] = new
            return value if changed is None else changed
        if type(value) is list:
            copied: Optional[List[Any]] = None
            for index, item in enumerate(value):
                if type(item) in _CONTAINERS or (type(item) is str and "vdt_" in item):
                    new = (
                        self._walk(item, path, rules)
                        if type(item) in _CONTAINERS
                        else _mask_keys(item)
                    )
                    if new is not item and new != item:
                        if copied is None:
                            copied = list(value)
                        copied[index] = new
            return value if copied is None else copied
        if type(value) is str and "vdt_" in value:
            return _mask_keys(value)
        return value

    def _plain_key(self, key: Any) -> bool:
        # A dict key leaves_alone() accepts: text the denylist leaves alone.
        # Remembered (bounded), since the same keys come back call after call.
        if type(key) is not str or "vdt_" in key or not valid_text(key):
            return False
        if self._denylist and self._sensitive(key):
            return False
        if len(self._plain_keys) < 10_000:
            self._plain_keys.add(key)
        return True

    def _sensitive(self, key: str) -> bool:
        known = self._sensitive_cache.get(key)
        if known is None:
            known = is_sensitive_key(key)
            if len(self._sensitive_cache) < 10_000:
                self._sensitive_cache[key] = known
        return known

    def _act(self, action: str, value: Any) -> Any:
        if action == "mask":
            return MASK
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(self._salt + canonical.encode()).hexdigest()
        return f"sha256:{digest}"
