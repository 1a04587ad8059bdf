"""Settings: keyword arguments > ``VDT_AI_*`` environment > config file > defaults.

The config file is TOML, at ``$VDT_AI_CONFIG``, else
``$XDG_CONFIG_HOME/vdt-ai/config.toml``, else ``~/.config/vdt-ai/config.toml``.
Settings sit at the top level; named profiles under ``[profiles.NAME]`` override
them when chosen by ``profile=`` or ``VDT_AI_PROFILE``::

    bootstrap_servers = "localhost:9092"
    environment = "staging"

    [profiles.prod]
    bootstrap_servers = "kafka-1.example.com:9094"
    security_protocol = "SASL_SSL"
    api_key = "vdt_..."

A bad value or an unknown key raises :class:`vdt_ai.ConfigError` naming the
setting and where it came from. ``VDT_AI_DISABLED=1`` is the same as
``enabled=False``.
"""

import json
import os
import re
import stat
import sys
import warnings
from pathlib import Path
from typing import (
    Any,
    Dict,
    Iterator,
    Literal,
    Mapping,
    Optional,
    Set,
    Tuple,
    Union,
)

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ._redact import API_KEY_PATTERN, mask_api_key, register_secret
from .exceptions import ConfigError, problems_from_pydantic

ENV_PREFIX = "VDT_AI_"
ENV_CONFIG_PATH = "VDT_AI_CONFIG"
ENV_PROFILE = "VDT_AI_PROFILE"
ENV_DISABLED = "VDT_AI_DISABLED"
# Variables that choose how settings are read rather than being settings.
_META_ENV = {ENV_CONFIG_PATH, ENV_PROFILE, ENV_DISABLED}

SOURCE_ARGUMENT = "argument"
SOURCE_DEFAULT = "default"

# Settings whose environment value is JSON rather than a plain string.
_TABLE_SETTINGS = {"tags", "data_policy"}
# Strict types: a boolean is not a number, bytes are not text.
_NUMBER_SETTINGS = (
    "delivery_timeout",
    "max_buffer_kbytes",
    "spool_max_bytes",
    "shutdown_timeout",
    "sample_rate",
    "max_event_bytes",
    "ledger_interval_s",
)
_TEXT_SETTINGS = (
    "api_key",
    "bootstrap_servers",
    "topic_prefix",
    "security_protocol",
    "sasl_mechanism",
    "ssl_ca_location",
    "ssl_certificate_location",
    "ssl_key_location",
    "service",
    "environment",
    "compression",
    "spool_dir",
    "log_level",
    "hash_salt",
    "embedding_dtype",
)
_TRUE_WORDS = {"1", "true", "yes", "on"}
_FALSE_WORDS = {"0", "false", "no", "off", ""}


def _user_dir(env_var: str, fallback: str) -> Path:
    base = os.environ.get(env_var)
    return Path(base) if base else Path.home() / fallback


def default_config_path() -> Path:
    """Where the config file is read from when ``VDT_AI_CONFIG`` is not set."""
    return _user_dir("XDG_CONFIG_HOME", ".config") / "vdt-ai" / "config.toml"


def default_spool_dir() -> Path:
    """The offline spool folder used when ``spool_dir`` is not set."""
    return _user_dir("XDG_DATA_HOME", ".local/share") / "vdt-ai" / "spool"


def _default_service() -> str:
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    name = os.path.splitext(program)[0]
    return name if name and name != "-c" else "python"


class Settings(BaseModel):
    """Every setting of the SDK, validated.

    Build it with :func:`load_settings` (or let :class:`vdt_ai.VDTClient` do it)
    so that the environment and the config file are read too.

    Attributes:
        api_key: ``vdt_<key id>_<secret>``; also the Kafka SASL credential.
        bootstrap_servers: ``host:port`` list, comma-separated. Unset means
            offline mode: events are kept in ``spool_dir``.
        topic_prefix: topics are ``<prefix>.model_calls`` and so on.
        security_protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
        sasl_mechanism: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN.
        ssl_ca_location: CA bundle that signs the brokers' certificates.
        ssl_certificate_location: client certificate for mutual TLS.
        ssl_key_location: the client certificate's private key.
        service: the sending service's name; defaults to the program's name.
        environment: e.g. ``production`` or ``staging``.
        compression: zstd, lz4, snappy, gzip or none.
        delivery_timeout: seconds Kafka may take to ack an event before it is
            spooled for a later retry.
        max_buffer_kbytes: memory cap of the in-process send queue.
        spool_dir: folder of the local spool (offline mode, outages).
        spool_max_bytes: disk cap of the spool; past it events are dropped and
            counted.
        shutdown_timeout: seconds ``close()`` and interpreter exit wait.
        sample_rate: fraction of events kept, 0.0 to 1.0.
        log_level: the SDK's own log level; unset keeps its logs off.
        enabled: ``False`` makes every call a no-op.
        max_event_bytes: largest encoded event accepted.
        tags: tags added to every event (an event's own tags win).
        handle_sigterm: on SIGTERM with no handler of the program's own,
            close clients (flush or spool) before the process dies.
        data_policy: field path -> ``mask``/``hash``/``drop``/``keep``, applied
            before events leave the process (see :mod:`vdt_ai.policy`).
        hash_salt: the salt of ``hash`` rules (required when one exists).
        embedding_dtype: how model-call embeddings are stored: ``float32``
            (4 bytes a value, the default) or ``float16`` (2 bytes, about 3
            significant digits, values within +-65504).
            ``VDT_AI_EMBEDDING_DTYPE``.
        ledger_interval_s: seconds between the delivery ledger's reports
            (``SdkReport`` events on ``<prefix>.sdk_reports``: the counts of
            accepted, delivered, spooled... events since the previous
            report, dropped and failed also by reason), sent when delivering
            to Kafka, and once more by
            ``close()``; ``0`` turns the ledger off. ``VDT_AI_LEDGER_INTERVAL_S``.
    """

    # A plain pydantic model: load_settings() reads the sources itself (to
    # know where each value came from), so pydantic-settings only added
    # import time (~30 ms, asyncio included) and nothing else.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
        validate_default=True,
    )

    api_key: Optional[SecretStr] = None
    bootstrap_servers: Optional[str] = None
    topic_prefix: str = Field(default="vdt", min_length=1, max_length=200)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    ssl_ca_location: Optional[str] = None
    ssl_certificate_location: Optional[str] = None
    ssl_key_location: Optional[str] = None
    service: str = Field(default_factory=_default_service, min_length=1, max_length=256)
    environment: str = Field(default="production", min_length=1, max_length=256)
    compression: Literal["zstd", "lz4", "snappy", "gzip", "none"] = "zstd"
    delivery_timeout: float = Field(default=120.0, gt=0, allow_inf_nan=False)
    max_buffer_kbytes: int = Field(default=32 * 1024, ge=64)
    spool_dir: Path = Field(default_factory=default_spool_dir)
    spool_max_bytes: int = Field(default=1024**3, ge=0)
    shutdown_timeout: float = Field(default=5.0, ge=0, allow_inf_nan=False)
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0, allow_inf_nan=False)
    log_level: Optional[
        Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]
    ] = None
    enabled: bool = True
    max_event_bytes: int = Field(default=1024 * 1024, ge=1024)
    tags: Dict[str, str] = Field(default_factory=dict)
    handle_sigterm: bool = True
    data_policy: Dict[str, Literal["mask", "hash", "drop", "keep"]] = Field(
        default_factory=dict
    )
    hash_salt: Optional[SecretStr] = None
    embedding_dtype: Literal["float32", "float16"] = "float32"
    ledger_interval_s: float = Field(default=60.0, ge=0, allow_inf_nan=False)

    _sources: Dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _names_any_case(cls, data: Any) -> Any:
        # Keyword names are matched without regard to case, as they were when
        # Settings was a pydantic-settings model (case_sensitive=False).
        if isinstance(data, dict) and any(
            type(name) is str and name not in cls.model_fields for name in data
        ):
            fields = cls.model_fields
            return {
                (
                    name.lower()
                    if type(name) is str
                    and name not in fields
                    and name.lower() in fields
                    else name
                ): value
                for name, value in data.items()
            }
        return data

    @field_validator(*_NUMBER_SETTINGS, mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any) -> Any:
        # Lax pydantic reads true as 1: in a config file that hides a typo.
        if isinstance(value, bool):
            raise PydanticCustomError("number_type", "must be a number, not a boolean")
        return value

    @field_validator(*_TEXT_SETTINGS, mode="before")
    @classmethod
    def _no_bytes_text(cls, value: Any) -> Any:
        if isinstance(value, (bytes, bytearray, memoryview)):
            raise PydanticCustomError("string_type", "must be text (str), not bytes")
        return value

    def __getstate__(self) -> Dict[Any, Any]:
        # Pickles travel (Spark, multiprocessing, caches): never with a secret.
        if self.api_key is not None or self.hash_salt is not None:
            raise TypeError(
                "vdt_ai.Settings holding an api_key or hash_salt cannot be pickled "
                "(it would carry the secret); give the other process its settings "
                "through VDT_AI_* variables or the config file"
            )
        return super().__getstate__()

    @field_validator("api_key")
    @classmethod
    def _check_api_key(cls, value: Optional[SecretStr]) -> Optional[SecretStr]:
        if value is None:
            return None
        key = value.get_secret_value()
        match = API_KEY_PATTERN.fullmatch(key)
        if match is None:
            # Never echo the key: it may be a real secret pasted in the wrong place.
            register_secret(key)
            raise PydanticCustomError(
                "api_key_format",
                (
                    "is empty"
                    if not key
                    else "is not a VDT API key: expected "
                    "vdt_<12 lowercase letters or digits>_<32 letters or digits>"
                ),
            )
        register_secret(key)
        register_secret(match.group(2))
        return value

    @field_validator("hash_salt")
    @classmethod
    def _check_salt(cls, value: Optional[SecretStr]) -> Optional[SecretStr]:
        if value is not None:
            if len(value.get_secret_value()) < 16:
                raise PydanticCustomError("hash_salt", "must be at least 16 characters")
            register_secret(value.get_secret_value())
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _check_topic_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", value):
            raise PydanticCustomError(
                "topic_prefix", "may hold only letters, digits, '.', '_' and '-'"
            )
        return value

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_servers(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        hosts = [part.strip() for part in value.split(",")]
        if not all(hosts):
            raise PydanticCustomError(
                "bootstrap_servers",
                "expected host:port[,host:port...], got an empty entry",
            )
        return ",".join(hosts)

    @model_validator(mode="after")
    def _check_security(self) -> "Settings":
        if self.security_protocol.startswith("SASL") and self.api_key is None:
            raise PydanticCustomError(
                "api_key_required",
                "security_protocol {protocol} needs an api_key (its id and secret "
                "are the SASL username and password)",
                {"protocol": self.security_protocol},
            )
        from .policy import validate_rules

        problems = validate_rules(self.data_policy, self.hash_salt is not None)
        if problems:
            raise PydanticCustomError(
                "data_policy",
                "{problems}",
                {"problems": "; ".join(problems), "field": "data_policy"},
            )
        if (self.ssl_certificate_location is None) != (self.ssl_key_location is None):
            raise PydanticCustomError(
                "ssl_pair",
                "ssl_certificate_location and ssl_key_location go together",
            )
        return self

    @property
    def api_key_id(self) -> Optional[str]:
        """The API key's public id, or ``None`` without a key."""
        if self.api_key is None:
            return None
        return self.api_key.get_secret_value().split("_")[1]

    @property
    def api_key_secret(self) -> Optional[str]:
        """The API key's secret part; only for the Kafka SASL password."""
        if self.api_key is None:
            return None
        return self.api_key.get_secret_value().split("_", 2)[2]

    @property
    def offline(self) -> bool:
        """``True`` when no brokers are configured: events go to the spool."""
        return self.bootstrap_servers is None

    def source_of(self, name: str) -> str:
        """Where setting ``name`` came from: ``argument``, a variable's name,
        the config file's path, or ``default``."""
        return self._sources.get(name, SOURCE_DEFAULT)

    def __repr_args__(self) -> Iterator[Tuple[Optional[str], Any]]:
        for name, value in super().__repr_args__():
            if name == "api_key" and value is not None:
                yield name, mask_api_key(self.api_key_id or "")
            else:
                yield name, value


def load_settings(
    *,
    config_file: Union[str, "os.PathLike[str]", None] = None,
    profile: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
    **overrides: Any,
) -> Settings:
    """Resolves settings from arguments, environment, config file and defaults.

    Args:
        config_file: the TOML file to read; default ``$VDT_AI_CONFIG`` or the
            user config dir. A missing default file is fine; a missing file
            named explicitly is an error.
        profile: the ``[profiles.NAME]`` table to apply; default
            ``$VDT_AI_PROFILE``.
        environ: the environment to read; default ``os.environ``.
        **overrides: settings given as arguments; they win over everything.

    Raises:
        ConfigError: a bad value or unknown key, naming setting and source.
    """
    env = os.environ if environ is None else environ
    known = set(Settings.model_fields)
    if config_file is not None and (
        isinstance(config_file, bytes)
        or not isinstance(config_file, (str, os.PathLike))
    ):
        raise ConfigError(
            "config_file must be a path (str or os.PathLike), not "
            f"{type(config_file).__name__}",
            setting="config_file",
            source=SOURCE_ARGUMENT,
        )
    if profile is not None and not isinstance(profile, str):
        raise ConfigError(
            f"profile must be a string, not {type(profile).__name__}",
            setting="profile",
            source=SOURCE_ARGUMENT,
        )

    for name in overrides:
        if name not in known:
            raise ConfigError(
                f"unknown setting {name!r} (from {SOURCE_ARGUMENT})",
                setting=name,
                source=SOURCE_ARGUMENT,
            )

    values: Dict[str, Any] = {}
    sources: Dict[str, str] = {}

    path, explicit = _config_path(config_file, env)
    chosen_profile = profile if profile is not None else env.get(ENV_PROFILE) or None
    for name, value in _read_file(path, explicit, chosen_profile, known).items():
        values[name] = value
        sources[name] = str(path)

    for name, (variable, value) in _read_env(env, known).items():
        values[name] = value
        sources[name] = variable

    for name, value in overrides.items():
        values[name] = value
        sources[name] = SOURCE_ARGUMENT

    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise _config_error(exc, sources) from None
    settings._sources = dict(sources)
    return settings


def check_values(
    values: Mapping[str, Any],
    source: str,
    sources: Optional[Mapping[str, str]] = None,
) -> Settings:
    """Validates ``values`` alone (no environment, no file) as if read from ``source``.

    Args:
        values: setting name to value.
        source: where the values come from, named in errors.
        sources: where some of them come from instead (e.g. a command-line
            option), by setting name; errors name the true source.

    Raises:
        ConfigError: an unknown key or a bad value, naming it and its source.
    """
    where = {name: (sources or {}).get(name, source) for name in values}
    known = set(Settings.model_fields)
    for name in values:
        if name not in known:
            raise ConfigError(
                f"unknown setting {name!r} (from {where[name]})",
                setting=name,
                source=where[name],
            )
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise _config_error(exc, where) from None


def config_path(
    config_file: Union[str, "os.PathLike[str]", None] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> Path:
    """The config file that :func:`load_settings` reads (and ``configure`` writes)."""
    return _config_path(config_file, os.environ if environ is None else environ)[0]


def _config_path(
    config_file: Union[str, "os.PathLike[str]", None], env: Mapping[str, str]
) -> Tuple[Path, bool]:
    if config_file is not None:
        return Path(config_file).expanduser(), True
    if env.get(ENV_CONFIG_PATH):
        return Path(env[ENV_CONFIG_PATH]).expanduser(), True
    return default_config_path(), False


def _read_file(
    path: Path, explicit: bool, profile: Optional[str], known: "set[str]"
) -> Dict[str, Any]:
    if path.exists() and not path.is_file():
        raise ConfigError(f"config file {path} is not a file", source=str(path))
    if not path.is_file():
        if explicit:
            raise ConfigError(f"config file {path} does not exist", source=str(path))
        if profile:
            raise ConfigError(
                f"profile {profile!r} chosen but there is no config file at {path}",
                setting="profile",
                source=str(path),
            )
        return {}
    _warn_if_shared(path)
    data = _parse_toml(path)
    profiles = data.pop("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(
            f"[profiles] in {path} must be a table",
            setting="profiles",
            source=str(path),
        )
    merged = dict(data)
    if profile:
        table = profiles.get(profile)
        if not isinstance(table, dict):
            names = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(
                f"profile {profile!r} not found in {path} (profiles: {names})",
                setting="profile",
                source=str(path),
            )
        merged.update(table)
    for name in merged:
        if name not in known:
            raise ConfigError(
                f"unknown setting {name!r} (from {path})",
                setting=name,
                source=str(path),
            )
    return merged


class ConfigPermissionWarning(UserWarning):
    """The config file (which may hold the API key) is readable by others."""


_warned_paths: Set[str] = set()


def _warn_if_shared(path: Path) -> None:
    if os.name != "posix":  # pragma: no cover
        return
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:  # pragma: no cover
        return
    if mode & 0o077 and str(path) not in _warned_paths:
        _warned_paths.add(str(path))
        warnings.warn(
            f"config file {path} is readable by group or others (mode "
            f"{mode:o}); it may hold the API key: chmod 600 {path}",
            ConfigPermissionWarning,
            stacklevel=4,
        )


def _parse_toml(path: Path) -> Dict[str, Any]:
    return read_toml(path)


def read_toml(path: Path) -> Dict[str, Any]:
    """The TOML document in ``path``.

    Raises:
        ConfigError: the file cannot be read, is not UTF-8 or not TOML; the
            message names the file and the reason, never its contents (it may
            hold the API key).
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.8-3.10
        import tomli as tomllib
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror or type(exc).__name__}",
            source=str(path),
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_at: Optional[int] = exc.start
    else:
        bad_at = None
    if bad_at is not None:
        # Raised outside the handler: the UnicodeDecodeError (whose repr holds
        # the file's bytes, key included) must not ride along as __context__.
        del raw
        raise ConfigError(
            f"config file {path} is not UTF-8 text (bad byte at offset {bad_at})",
            source=str(path),
        )
    try:
        data: Dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Its message gives line and column only, no text from the file.
        reason = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise ConfigError(
            f"{path} is not valid TOML: {reason}", source=str(path)
        ) from None
    return data


def _read_env(env: Mapping[str, str], known: "set[str]") -> Dict[str, Tuple[str, Any]]:
    found: Dict[str, Tuple[str, Any]] = {}
    for variable, raw in env.items():
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or upper in _META_ENV:
            continue
        name = upper[len(ENV_PREFIX) :].lower()
        if name not in known:
            raise ConfigError(
                f"unknown setting {name!r} (from environment variable {variable})",
                setting=name,
                source=variable,
            )
        found[name] = (variable, raw)
    for name, (variable, raw) in list(found.items()):
        if name in _TABLE_SETTINGS:
            found[name] = (variable, _parse_json_table(variable, raw))
    disabled = env.get(ENV_DISABLED)
    if disabled is not None:
        word = disabled.strip().lower()
        if word not in _TRUE_WORDS | _FALSE_WORDS:
            raise ConfigError(
                f"{ENV_DISABLED} must be 1/0, true/false, yes/no or on/off",
                setting="enabled",
                source=ENV_DISABLED,
            )
        if "enabled" not in found or word in _TRUE_WORDS:
            found["enabled"] = (ENV_DISABLED, word not in _TRUE_WORDS)
    return found


def _parse_json_table(variable: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ConfigError(
            f'{variable} must be a JSON object, e.g. \'{{"team": "search"}}\'',
            setting=variable[len(ENV_PREFIX) :].lower(),
            source=variable,
        ) from None


def _config_error(exc: ValidationError, sources: Mapping[str, str]) -> ConfigError:
    problems = []
    first_setting: Optional[str] = None
    for field, reason in problems_from_pydantic(exc, ""):
        if not field:
            problems.append(reason)
            continue
        setting = field.split(".", 1)[0]
        where = sources.get(setting, SOURCE_DEFAULT)
        problems.append(f"{field} (from {where}): {reason}")
        first_setting = first_setting or setting
    source = sources.get(first_setting) if first_setting else None
    return ConfigError(
        "invalid settings: " + "; ".join(problems),
        setting=first_setting,
        source=source,
        problems=problems,
    )
