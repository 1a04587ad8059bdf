"""The ``vdt-ai`` command line: configure, check, watch, replay, send.

Every line printed passes the secret redactor: an API key's secret never
reaches the terminal, whatever a library's error text holds. Colours appear
only on a terminal and never when ``NO_COLOR`` is set.
"""

import json
import os
import re
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple

import click
from pydantic import SecretStr

from . import _toml
from ._redact import redact
from ._version import __version__
from .codec import LOGGED_SUFFIXES, decode, topic_for
from .config import (
    SOURCE_DEFAULT,
    Settings,
    check_values,
    config_path,
    load_settings,
    read_toml,
)
from .exceptions import ConfigError, ValidationError, VDTError
from .models import EVENT_CLASSES, Event, EventType, build_event

EXIT_FAILURE = 1
EXIT_USAGE = 2
SECRET_SETTINGS = {"api_key"}
TYPE_NAMES = [t.value for t in EventType]


class State:
    """Global options shared by the commands."""

    def __init__(self, profile: Optional[str], config: Optional[str], verbose: int):
        self.profile = profile
        self.config = config
        self.verbose = verbose

    def settings(self, **overrides: Any) -> Settings:
        """Resolves settings with the global --profile/--config."""
        return load_settings(config_file=self.config, profile=self.profile, **overrides)


def _color() -> Optional[bool]:
    # None lets click decide (colour only on a terminal); NO_COLOR forces off.
    return False if os.environ.get("NO_COLOR") else None


def say(text: str = "", *, err: bool = False, fg: Optional[str] = None) -> None:
    """Prints one redacted line."""
    styled = click.style(redact(text), fg=fg) if fg else redact(text)
    click.echo(styled, err=err, color=_color())


def fail(message: str, code: int = EXIT_FAILURE) -> "click.exceptions.Exit":
    """Prints ``message`` to stderr and returns the exit to raise."""
    say(f"error: {message}", err=True, fg="red")
    return click.exceptions.Exit(code)


def _verbose(level: int) -> None:
    if level <= 0:
        return
    from loguru import logger

    from . import _log

    logger.remove()
    logger.add(sys.stderr, level="DEBUG" if level > 1 else "INFO", colorize=False)
    _log.configure("DEBUG" if level > 1 else "INFO")


_EXTRA_ARGUMENTS = re.compile(r"Got unexpected extra arguments? \((.*)\)", re.S)


def _redact_click_error(exc: click.ClickException) -> None:
    """Makes ``exc`` print only redacted text.

    Click's usage errors quote what was typed, and a misplaced API key is what
    was typed (``vdt-ai configure vdt_...``). Extra arguments are counted, not
    shown; every other message passes the redactor.
    """
    original = exc.format_message

    def format_message() -> str:
        text = original()
        match = _EXTRA_ARGUMENTS.search(text)
        if match is not None:
            count = len(match.group(1).split())
            text = (
                f"Got {count} unexpected extra argument{'s' if count > 1 else ''} "
                "(not shown: it may be a secret; options take a --name)"
            )
        return redact(text)

    exc.format_message = format_message  # type: ignore[method-assign]
    exc.message = redact(exc.message)  # type: ignore[misc]


class _RedactingGroup(click.Group):
    """The top-level group: every error leaves through the redactor, and the
    SDK's own errors (bad settings, bad input) print without a traceback."""

    def make_context(
        self,
        info_name: Optional[str],
        args: List[str],
        parent: Optional[click.Context] = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.ClickException as exc:
            _redact_click_error(exc)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            _redact_click_error(exc)
            raise
        except VDTError as exc:
            code = EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILURE
            raise fail(f"{type(exc).__name__}: {exc.message}", code) from None


@click.group(
    cls=_RedactingGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example: vdt-ai --profile prod test-connection --timeout 10",
)
@click.version_option(__version__, "--version", prog_name="vdt-ai")
@click.option("--profile", help="Config file profile ([profiles.NAME]).")
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    help="Config file path (default $VDT_AI_CONFIG or ~/.config/vdt-ai/config.toml).",
)
@click.option("-v", "--verbose", count=True, help="Show the SDK's logs (-vv: debug).")
@click.pass_context
def main(
    ctx: click.Context, profile: Optional[str], config: Optional[str], verbose: int
) -> None:
    """Configure, check and debug the vdt-ai SDK from a terminal."""
    ctx.obj = State(profile, config, verbose)
    _verbose(verbose)


@main.command(epilog="Example: vdt-ai version")
def version() -> None:
    """Print the SDK version."""
    say(f"vdt-ai {__version__}")


# -- configure ------------------------------------------------------------------

_CONFIGURE_OPTIONS = [
    ("bootstrap_servers", "Kafka brokers, host:port[,host:port]"),
    ("topic_prefix", "Topic prefix"),
    ("security_protocol", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
    ("sasl_mechanism", "SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN"),
    ("ssl_ca_location", "CA bundle file"),
    ("ssl_certificate_location", "Client certificate file"),
    ("ssl_key_location", "Client key file"),
    ("service", "Service name"),
    ("environment", "Environment name"),
    ("spool_dir", "Spool folder"),
]


def _configure_options(func: Any) -> Any:
    for name, help_text in reversed(_CONFIGURE_OPTIONS):
        func = click.option(f"--{name.replace('_', '-')}", name, help=help_text)(func)
    return func


@main.command(
    epilog=(
        "Example: vdt-ai configure --api-key vdt_abc123def456_... "
        "--bootstrap-servers kafka-1:9094 --security-protocol SASL_SSL"
    )
)
@click.option("--api-key", help="API key vdt_<key id>_<secret> (prompted, hidden).")
@click.option("--profile", "profile_option", help="Write to [profiles.NAME].")
@_configure_options
@click.pass_obj
def configure(
    state: State,
    /,
    api_key: Optional[str],
    profile_option: Optional[str],
    **given: Any,
) -> None:
    """Store the API key and settings in the config file (0600).

    Prompts only for what is missing, and only on a terminal (the key hidden).
    """
    profile = profile_option or state.profile
    path = config_path(state.config)
    document = _read_document(path)
    table: Dict[str, Any] = (
        document.setdefault("profiles", {}).setdefault(profile, {})
        if profile
        else document
    )
    interactive = _interactive()
    prompted = set()
    if api_key is None and "api_key" not in table and interactive:
        api_key = click.prompt(
            "API key", hide_input=True, default="", show_default=False
        )
        api_key = api_key or None
        prompted.add("api_key")
    if (
        given.get("bootstrap_servers") is None
        and "bootstrap_servers" not in table
        and interactive
    ):
        servers = click.prompt(
            "Kafka bootstrap servers (empty: offline mode)",
            default="",
            show_default=False,
        )
        given["bootstrap_servers"] = servers or None
        prompted.add("bootstrap_servers")
    updates = {k: v for k, v in given.items() if v is not None}
    if api_key is not None:
        updates["api_key"] = api_key
    merged = {**table, **updates}
    try:
        # What the file will hold, on its own; errors name the option a bad
        # value came from, or the file for what was already there.
        check_values(
            merged,
            str(path),
            {
                name: (
                    "the prompt" if name in prompted else "--" + name.replace("_", "-")
                )
                for name in updates
            },
        )
    except ConfigError as exc:
        raise fail(f"not saved: {exc.message}", EXIT_USAGE)
    table.update(updates)
    _write_document(path, document)
    where = f"[profiles.{profile}] in {path}" if profile else str(path)
    saved = ", ".join(
        f"{k}=" + (_masked_key(v) if k == "api_key" else str(v))
        for k, v in sorted(updates.items())
    )
    say(f"saved {saved or 'nothing new'} to {where}")


def _interactive() -> bool:
    """``True`` when a person can answer prompts (stdin is a terminal)."""
    return sys.stdin.isatty()


def _masked_key(key: str) -> str:
    parts = key.split("_")
    return f"vdt_{parts[1]}_****" if len(parts) >= 3 else "****"


def _read_document(path: Path) -> Dict[str, Any]:
    if not path.exists():
        return {}
    if not path.is_file():
        raise fail(f"cannot read {path}: not a file", EXIT_USAGE)
    try:
        return read_toml(path)
    except ConfigError as exc:
        raise fail(exc.message, EXIT_USAGE)


def _write_document(path: Path, document: Dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    text = _toml.dumps(document)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(str(temporary), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)  # atomic: never a half-written config
    os.chmod(path, 0o600)


# -- validate-config ------------------------------------------------------------


@main.command("validate-config", epilog="Example: vdt-ai validate-config --json")
@click.option("--profile", "profile_option", help="Profile to validate.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def validate_config(state: State, profile_option: Optional[str], as_json: bool) -> None:
    """Show every resolved setting and its source; exit 1 if any is invalid."""
    if profile_option:
        state.profile = profile_option
    try:
        settings = state.settings()
    except ConfigError as exc:
        if as_json:
            say(json.dumps({"valid": False, "problems": exc.problems}))
        else:
            say("configuration is invalid:", err=True, fg="red")
            for problem in exc.problems:
                say(f"  - {problem}", err=True)
        raise click.exceptions.Exit(EXIT_FAILURE)
    rows = _setting_rows(settings)
    if as_json:
        say(
            json.dumps(
                {
                    "valid": True,
                    "settings": {
                        name: {"value": value, "source": source}
                        for name, value, source in rows
                    },
                }
            )
        )
        return
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        dim = source == SOURCE_DEFAULT
        say(
            f"{name:<{width}}  {json.dumps(value):<40}  {source}",
            fg="bright_black" if dim else None,
        )
    say("configuration is valid", fg="green")


def _setting_rows(settings: Settings) -> List[Tuple[str, Any, str]]:
    rows = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if name == "api_key":
            value = _masked_key(value.get_secret_value()) if value is not None else None
        elif isinstance(value, SecretStr):
            value = "****"
        elif isinstance(value, Path):
            value = str(value)
        rows.append((name, value, settings.source_of(name)))
    return rows


# -- test-connection ------------------------------------------------------------


@main.command("test-connection", epilog="Example: vdt-ai test-connection --timeout 5")
@click.option(
    "--timeout", default=10.0, show_default=True, help="Seconds for the whole check."
)
@click.pass_obj
def test_connection(state: State, timeout: float) -> None:
    """Connect, authenticate, check topics, produce a probe and read it back."""
    from .kafka.check import check_connection

    settings = _settings_or_exit(state)
    say(
        f"checking {settings.bootstrap_servers or '(no brokers)'} "
        f"({settings.security_protocol}), timeout {timeout:g} s"
    )
    report = check_connection(settings, timeout)
    for step in report.steps:
        mark = "ok  " if step.ok else "FAIL"
        say(
            f"  {mark} {step.name:<30} {step.millis:8.1f} ms  {step.detail}",
            fg="green" if step.ok else "red",
        )
    if report.error is not None:
        raise fail(f"{type(report.error).__name__}: {report.error.message}")
    say("connection OK", fg="green")


def _settings_or_exit(state: State, **overrides: Any) -> Settings:
    try:
        return state.settings(**overrides)
    except ConfigError as exc:
        raise fail(f"invalid configuration: {exc.message}", EXIT_USAGE)


# -- tail -------------------------------------------------------------------------


@main.command(
    epilog="Example: vdt-ai tail --type model_call --model fraud -n 10 --json"
)
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice(TYPE_NAMES),
    help="Event type (repeatable; default all but sdk_report).",
)
@click.option("--model", help="Only events of this model name.")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest event.")
@click.option("-n", "count", type=int, help="Stop after N events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--timeout", type=float, help="Stop after S seconds without events.")
@click.pass_obj
def tail(
    state: State,
    types: Tuple[str, ...],
    model: Optional[str],
    from_beginning: bool,
    count: Optional[int],
    as_json: bool,
    timeout: Optional[float],
) -> None:
    """Consume, decode and print events as they arrive."""
    settings = _settings_or_exit(state)
    if settings.bootstrap_servers is None:
        raise fail("no bootstrap_servers configured", EXIT_USAGE)
    # The SDK's own reports only when asked for (--type sdk_report).
    topics = [topic_for(EventType(t), settings.topic_prefix) for t in types] or [
        f"{settings.topic_prefix}.{suffix}" for suffix in LOGGED_SUFFIXES
    ]
    shown = 0
    try:
        for event in _consume(
            settings, topics, from_beginning, timeout, verbose=state.verbose > 0
        ):
            if model is not None and getattr(event, "model_name", None) != model:
                continue
            say(_format_event(event, as_json))
            shown += 1
            if count is not None and shown >= count:
                break
    except KeyboardInterrupt:  # pragma: no cover - interactive
        pass


def _consume(
    settings: Settings,
    topics: List[str],
    from_beginning: bool,
    idle: Optional[float],
    verbose: bool = False,
) -> Iterator[Event]:
    """Yields decoded events; raises ``TransportError`` (or ``AuthenticationError``)
    with one readable diagnosis when the brokers cannot be reached or refuse us.

    librdkafka's own log lines reach stderr only with ``-v``.
    """
    from confluent_kafka import Consumer

    from .kafka.config import connection_config

    errors: List[Any] = []
    conf = connection_config(settings)
    conf.update(
        {
            "group.id": f"vdt-ai-tail-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 2000,
            "error_cb": errors.append,
        }
    )
    if not verbose:
        conf["logger"] = _silent_logger()
    _reach_brokers(settings, conf, errors, timeout=min(idle or 10.0, 10.0))
    consumer = Consumer(conf)
    consumer.subscribe(topics)
    last = time.monotonic()
    warned = False
    try:
        while idle is None or time.monotonic() - last < idle:
            message = consumer.poll(0.5)
            problem = _fatal_consumer_error(errors, settings)
            if problem is not None:
                raise problem
            if errors and not warned:
                warned = True  # an outage while tailing: librdkafka reconnects
                say(f"warning: {redact(errors[-1].str())} (retrying)", err=True)
            if message is None or message.error():
                continue
            last = time.monotonic()
            try:
                yield decode(message.value() or b"")
            except VDTError as exc:
                say(
                    f"skipped an undecodable record at {message.topic()}:"
                    f"{message.partition()}@{message.offset()}: {exc.message}",
                    err=True,
                )
    finally:
        consumer.close()


def _silent_logger() -> Any:
    """A logger that drops librdkafka's log lines (shown with ``-v``)."""
    import logging

    logger = logging.getLogger("vdt_ai.cli.librdkafka")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def _reach_brokers(
    settings: Settings, conf: Dict[str, Any], errors: List[Any], timeout: float
) -> None:
    """Fails fast, with the diagnosis ``test-connection`` gives, when no broker
    accepts a connection or the cluster refuses our credentials."""
    from confluent_kafka.admin import AdminClient

    from .kafka import check
    from .kafka.config import connection_config

    assert settings.bootstrap_servers is not None
    hosts = check._parse_servers(settings.bootstrap_servers)
    try:
        check._resolve(hosts)
        check._connect(hosts, timeout)
        admin_conf = connection_config(settings)
        admin_conf.update(error_cb=conf["error_cb"])
        if "logger" in conf:
            admin_conf["logger"] = conf["logger"]
        admin = AdminClient(admin_conf)
        deadline = time.monotonic() + timeout
        while True:
            try:
                admin.list_topics(timeout=0.5)
                break
            except Exception:
                admin.poll(0.1)
                if time.monotonic() >= deadline or any(
                    check._is_auth(e) or check._is_tls(e) for e in errors
                ):
                    raise check._Failed(
                        check._diagnose(errors, settings, "reading cluster metadata")
                    ) from None
    except check._Failed as failure:
        raise failure.error from None
    del errors[:]


def _fatal_consumer_error(errors: List[Any], settings: Settings) -> Optional[VDTError]:
    from .kafka import check

    if any(check._is_auth(e) or check._is_tls(e) for e in errors):
        return check._diagnose(errors, settings, "consuming")
    return None


def _format_event(event: Event, as_json: bool) -> str:
    data = event.model_dump(mode="json")
    if as_json:
        data["event_type"] = event.event_type.value
        return json.dumps(data, ensure_ascii=False)
    skip = {"event_id", "timestamp", "source", "tags", "trace_id", "span_id"}
    fields = " ".join(
        f"{k}={json.dumps(v, ensure_ascii=False)}"
        for k, v in data.items()
        if k not in skip and v not in (None, [], {})
    )
    when = event.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"{when} {event.event_type.value:<12} {fields}"


# -- spool status / sync ------------------------------------------------------------


@main.group(epilog="Example: vdt-ai spool status")
def spool() -> None:
    """Inspect the local spool of offline or undelivered events."""


@spool.command("status", epilog="Example: vdt-ai spool status")
@click.pass_obj
def spool_status(state: State) -> None:
    """Count, size, oldest event and any damaged, quarantined or foreign files."""
    from .codec import Record
    from .spool import summarize

    settings = _settings_or_exit(state)
    directory = settings.spool_dir.expanduser()
    oldest: List[Any] = []

    def note(record: Record) -> None:  # streamed: one record at a time
        try:
            stamp = decode(record.value).timestamp
        except VDTError:
            return
        if not oldest or stamp < oldest[0]:
            oldest[:] = [stamp]

    if not directory.exists():
        say(f"directory: {directory} (does not exist yet)")
        say("events:    0 (the folder is made when the first event is spooled)")
        return
    try:
        summary = summarize(directory, on_record=note)
    except OSError as exc:
        raise fail(f"cannot read spool {directory}: {exc.strerror or exc}")
    say(f"directory: {directory}")
    say(f"segments:  {summary.segments}")
    say(f"events:    {summary.records}")
    for topic, count in sorted(summary.records_by_topic.items()):
        say(f"  {topic}: {count}")
    say(f"bytes:     {summary.bytes}")
    say(f"oldest:    {oldest[0].isoformat() if oldest else '-'}")
    if summary.damaged_bytes:
        say(
            f"damaged:   {summary.damaged_bytes} unreadable bytes in "
            f"{len(summary.damaged_segments)} segment(s) (skipped; the segment "
            "goes to quarantine/ once its intact records are sent)",
            fg="yellow",
        )
    if summary.quarantined:
        say(
            f"quarantined: {len(summary.quarantined)} segment(s) with unreadable "
            "bytes, kept for inspection (never deleted by the SDK):",
            fg="yellow",
        )
        for path in summary.quarantined:
            say(f"  {path}")
    if summary.foreign:
        say(
            f"foreign:   {len(summary.foreign)} entries named *.vdtspool that are "
            "not spool segments (skipped, never deleted):",
            fg="yellow",
        )
        for path, why in summary.foreign:
            say(f"  {path} ({why})")


@main.command(epilog="Example: vdt-ai sync")
@click.pass_obj
def sync(state: State) -> None:
    """Send spooled events to Kafka; remove only what Kafka acked.

    Safe to interrupt and run again: a spool segment is deleted only after every
    event in it was acked (an interrupted segment may be sent twice).
    """
    from .kafka.transport import KafkaTransport
    from .spool import iter_records

    settings = _settings_or_exit(state, handle_sigterm=False)
    if settings.bootstrap_servers is None:
        raise fail("no bootstrap_servers configured: nowhere to sync to", EXIT_USAGE)
    directory = settings.spool_dir.expanduser()
    if not directory.exists():
        say(f"spool {directory} is empty (the folder does not exist yet)")
        return
    try:
        total = sum(1 for _ in iter_records(directory))
    except OSError as exc:
        raise fail(f"cannot read spool {directory}: {exc.strerror or exc}")
    if total == 0:
        say(f"spool {directory} is empty")
        return
    transport = KafkaTransport(settings, replay_in_background=False)
    try:
        with click.progressbar(length=total, label="syncing", file=sys.stderr) as bar:
            done = transport.replayer.run_once(progress=bar.update)
        left = sum(1 for _ in iter_records(directory))
    finally:
        transport.close(settings.shutdown_timeout)
    sent = transport._counters.snapshot().replayed
    if not done:
        raise fail(
            f"sent {sent} of {total}; {left} remain in {directory} "
            "(Kafka unreachable or refusing: see `vdt-ai test-connection`)"
        )
    say(f"sent {sent} events; spool {directory} is empty", fg="green")


# -- send -------------------------------------------------------------------------


class _InputFile(click.File):
    """``click.File`` that expands ``~`` (a quoted ``'~/x'`` reaches us as is)."""

    def convert(
        self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]
    ) -> Any:
        if isinstance(value, str) and value != "-":
            value = os.path.expanduser(value)
        return super().convert(value, param, ctx)


@main.command(epilog="Example: cat calls.jsonl | vdt-ai send --type model_call")
@click.option("--type", "event_type", required=True, type=click.Choice(TYPE_NAMES))
@click.argument("file", type=_InputFile("rb"), default="-")
@click.pass_obj
def send(state: State, event_type: str, file: BinaryIO) -> None:
    """Log events from JSON lines (a FILE or stdin), one event per line.

    Each line holds the event's fields, e.g. {"model_name": "m", "latency_ms": 3}.
    Bad lines are reported with their number and reason; the rest are sent, and
    the exit code is 1 when any line was bad.
    """
    cls = EVENT_CLASSES[EventType(event_type)]
    client = _client(state)
    good = bad = 0
    try:
        for number, raw in enumerate(file, start=1):
            reason = _send_line(client, cls, raw)
            if reason is None:
                good += 1
            elif reason:
                bad += 1
                say(f"line {number}: {reason}", err=True, fg="yellow")
    except OSError as exc:
        bad += 1
        say(f"error: cannot read the input: {exc.strerror or exc}", err=True)
    finally:
        client.close()  # flushes; what Kafka did not ack in time is spooled
    stats = client.stats()
    say(
        f"sent {good} events ({stats.delivered} delivered, {stats.spooled} kept in "
        f"the spool for `vdt-ai sync`); {bad} bad lines"
    )
    if bad:
        raise click.exceptions.Exit(EXIT_FAILURE)


def _client(state: State) -> Any:
    """A client from the global options; the offline notice as one plain line."""
    from .client import OfflineModeWarning, VDTClient

    try:
        with warnings.catch_warnings(record=True) as notices:
            warnings.simplefilter("always", OfflineModeWarning)
            client = VDTClient(config_file=state.config, profile=state.profile)
    except ConfigError as exc:
        raise fail(f"invalid configuration: {exc.message}", EXIT_USAGE)
    for notice in notices:  # one plain line, not a warning pointing into click
        if issubclass(notice.category, OfflineModeWarning):
            say(f"note: {notice.message}", err=True)
        else:
            warnings.warn_explicit(
                notice.message, notice.category, notice.filename, notice.lineno
            )
    return client


def _send_line(client: Any, cls: Any, raw: bytes) -> Optional[str]:
    """Logs one line; ``None`` when sent, ``""`` for a blank line, else why not.

    Whatever the line holds, the reason is one line of text, never a traceback.
    """
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (bad byte at column {exc.start + 1})"
    if not line.strip():
        return ""
    try:
        fields = json.loads(line)
    except ValueError as exc:  # JSONDecodeError, or an over-long integer
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        return f"not JSON: {detail}"
    except RecursionError:
        return "not JSON: nested too deeply"
    if not isinstance(fields, dict):
        return f"expected a JSON object, got {type(fields).__name__}"
    try:
        client.log_event(build_event(cls, fields))
    except ValidationError as exc:
        return exc.message
    return None


# -- profile ----------------------------------------------------------------------

PROFILE_FORMATS = (".csv", ".parquet", ".jsonl")


@main.command(
    "profile",
    epilog="Example: vdt-ai profile payments.parquet --dataset payments --print",
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", required=True, help="The dataset's name (the event key).")
@click.option(
    "--print",
    "print_only",
    is_flag=True,
    help="Print a summary table instead of sending the profile.",
)
@click.option(
    "--column",
    "columns",
    multiple=True,
    help="Profile only this column (repeat for several; default all).",
)
@click.pass_obj
def profile_command(
    state: State,
    file: Path,
    dataset: str,
    print_only: bool,
    columns: Tuple[str, ...],
) -> None:
    """Profile a CSV, Parquet or JSON-lines FILE and send the DataProfile.

    Needs `pip install 'vdt-ai[profiles]'` (CSV and Parquet also pandas or
    pyarrow). The file is read whole into memory. With --print nothing is
    sent: quantiles, null %, distinct estimates and top values are printed.
    """
    suffix = file.suffix.lower()
    if suffix not in PROFILE_FORMATS:
        raise fail(
            f"{file.name}: expected a {', '.join(PROFILE_FORMATS)} file", EXIT_USAGE
        )
    try:
        from .profiles import profile

        table = _read_table(file, suffix)
        built = profile(table, columns=columns or None, dataset_name=dataset)
    except ImportError as exc:
        raise fail(str(exc), EXIT_USAGE)
    except ValidationError as exc:
        # profile()'s hints name its keyword; here the option says the same.
        hint = exc.message.replace("with columns=", "with --column")
        raise fail(f"{file.name}: {hint}")
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read {file.name}: {exc}")
    if print_only:
        for line in profile_table(built):
            say(line)
        return
    client = _client(state)
    try:
        event_id = client.log_data_profile(dataset, built)
    except ValidationError as exc:
        raise fail(exc.message)
    finally:
        client.close()
    stats = client.stats()
    where = "delivered" if stats.delivered else "kept in the spool for `vdt-ai sync`"
    say(
        f"profile of {built.row_count} rows, {len(built.columns)} columns "
        f"({event_id}): {where}"
    )


def _read_table(file: Path, suffix: str) -> Any:
    if suffix == ".jsonl":
        rows = []
        with open(file, "rb") as lines:
            for number, raw in enumerate(lines, start=1):
                if raw.strip():
                    try:
                        row = json.loads(raw)
                    except ValueError as exc:
                        raise ValueError(f"line {number}: not JSON ({exc})") from None
                    if not isinstance(row, dict):
                        raise ValueError(f"line {number}: not a JSON object")
                    rows.append(row)
        return rows
    try:
        if suffix == ".parquet":
            import pyarrow.parquet

            return pyarrow.parquet.read_table(file)
        import pyarrow.csv

        # An empty field is a null, in text columns too (as pandas reads it).
        options = pyarrow.csv.ConvertOptions(strings_can_be_null=True)
        return pyarrow.csv.read_csv(file, convert_options=options)
    except ImportError:
        pass
    try:
        import pandas
    except ImportError:
        raise ImportError(
            f"reading {suffix} files needs pyarrow or pandas: pip install pyarrow"
        ) from None
    if suffix == ".parquet":
        return pandas.read_parquet(file)
    return pandas.read_csv(file)


def profile_table(built: Any) -> List[str]:
    """A profile as readable lines: one row per column."""
    import datasketches

    header = (
        f"{'column':<20} {'kind':<8} {'count':>9} {'null %':>6} {'distinct':>9} "
        f"{'min':>10} {'p25':>10} {'p50':>10} {'p75':>10} {'max':>10}  top values"
    )
    lines = [
        f"dataset {built.dataset_name}: {built.row_count} rows, "
        f"{len(built.columns)} columns",
        header,
    ]
    for name, c in built.columns.items():
        rows = c.count + c.null_count
        nulls = 100.0 * c.null_count / rows if rows else 0.0
        distinct = ""
        if c.distinct is not None:
            hll = datasketches.hll_sketch.deserialize(c.distinct)
            distinct = f"~{hll.get_estimate():.0f}"
        quartiles = ["", "", ""]
        if c.quantiles is not None and c.count:
            kll = datasketches.kll_doubles_sketch.deserialize(c.quantiles)
            quartiles = [_number(kll.get_quantile(q)) for q in (0.25, 0.5, 0.75)]
        top = ""
        if c.frequent is not None and c.count:
            sketch = datasketches.frequent_strings_sketch.deserialize(c.frequent)
            items = sketch.get_frequent_items(
                datasketches.frequent_items_error_type.NO_FALSE_POSITIVES
            )
            top = ", ".join(f"{item[0][:20]} ({item[1]})" for item in items[:3])
        low, high = _number(c.min), _number(c.max)
        if c.kind.value == "datetime":
            low, high = _day(c.min), _day(c.max)
        lines.append(
            f"{name[:20]:<20} {c.kind.value:<8} {c.count:>9} {nulls:>6.1f} "
            f"{distinct:>9} {low:>10} {quartiles[0]:>10} "
            f"{quartiles[1]:>10} {quartiles[2]:>10} {high:>10}  {top}"
        )
    return lines


def _number(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.4g}"


def _day(seconds: Optional[float]) -> str:
    if seconds is None:
        return ""
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d")
