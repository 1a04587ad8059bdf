"""The API key never shows; the SDK's logs are off by default and redacted."""

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest
from loguru import logger

from vdt_ai import (
    ConfigError,
    OfflineModeWarning,
    VDTClient,
    VDTError,
    _log,
    load_settings,
)
from vdt_ai._redact import redact, register_secret
from vdt_ai.codec import Record
from vdt_ai.config import default_config_path
from vdt_ai.testing import MemoryTransport
from vdt_ai.transport import Counters, Transport

from ..conftest import API_KEY, KEY_ID, SECRET


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every loguru record, with its bound fields, as text."""
    sink = io.StringIO()
    handler = logger.add(sink, level="TRACE", format="{level} {message} {extra}")
    yield sink
    logger.remove(handler)
    logger.disable("vdt_ai")
    _log._state["min_level"] = 0
    _log._once_keys.clear()


class LeakyTransport(Transport):
    """A transport whose errors quote the key, as a careless library might."""

    def send(self, record: Record, counters: Counters) -> None:
        raise RuntimeError(f"SASL authentication failed for {API_KEY} ({SECRET})")

    def flush(self, timeout: Optional[float] = None) -> int:
        raise RuntimeError(f"flush: password={SECRET}")


def exercise(client: VDTClient, texts: List[str]) -> None:
    texts += [repr(client), str(client), repr(client.settings), str(client.settings)]
    texts.append(repr(client.settings.model_dump()))
    client.log_metric("m", 1.0)
    client.flush(0.1)
    try:
        client.log_model_call(model_name="", input_data={"k": API_KEY})
    except VDTError as exc:
        texts += [str(exc), repr(exc)]
    client.close()


def assert_no_secret(texts: List[str], captured: io.StringIO) -> None:
    everything = "\n".join(texts) + captured.getvalue()
    assert SECRET not in everything
    assert API_KEY not in everything


def test_key_from_argument_never_shows(captured: io.StringIO) -> None:
    texts: List[str] = []
    client = VDTClient(API_KEY, transport=LeakyTransport(), log_level="DEBUG")
    exercise(client, texts)
    assert f"vdt_{KEY_ID}_****" in repr(client)
    assert "SASL authentication failed" in captured.getvalue()  # logged, redacted
    assert client.stats().failed == 1
    assert_no_secret(texts, captured)


def test_key_from_environment_never_shows(
    captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VDT_AI_API_KEY", API_KEY)
    monkeypatch.setenv("VDT_AI_LOG_LEVEL", "TRACE")
    texts: List[str] = []
    client = VDTClient(transport=LeakyTransport())
    assert client.settings.source_of("api_key") == "VDT_AI_API_KEY"
    exercise(client, texts)
    monkeypatch.setenv("VDT_AI_SAMPLE_RATE", "9")  # an error while the key is set
    with pytest.raises(ConfigError) as info:
        VDTClient(transport=MemoryTransport())
    texts += [str(info.value), repr(info.value)]
    assert_no_secret(texts, captured)


def test_key_from_config_file_never_shows(captured: io.StringIO) -> None:
    path = default_config_path()
    path.parent.mkdir(parents=True)
    path.write_text(f'api_key = "{API_KEY}"\nlog_level = "DEBUG"\n')
    texts: List[str] = []
    client = VDTClient(transport=LeakyTransport())
    assert client.settings.source_of("api_key") == str(path)
    exercise(client, texts)
    assert_no_secret(texts, captured)


def test_malformed_secret_like_values_are_not_echoed(captured: io.StringIO) -> None:
    almost = "vdt_" + KEY_ID + "_" + SECRET[:-1]  # one character short
    with pytest.raises(ConfigError) as info:
        VDTClient(almost, transport=MemoryTransport())
    assert almost not in str(info.value) and SECRET[:-1] not in repr(info.value)


def test_logs_are_off_until_enabled(captured: io.StringIO) -> None:
    client = VDTClient(transport=LeakyTransport())
    client.log_metric("m", 1.0)
    client.close()
    assert "vdt_ai" not in captured.getvalue()
    assert "SASL" not in captured.getvalue()

    logger.enable("vdt_ai")
    _log._once_keys.clear()  # once-per-kind keys were used while disabled
    client = VDTClient(transport=LeakyTransport())
    client.log_metric("m", 1.0)
    client.close()
    assert "transport failed to take an event" in captured.getvalue()


def test_log_once_logs_a_kind_once(captured: io.StringIO) -> None:
    _log.configure("INFO")
    for _ in range(3):
        _log.log_once("kind-x", "WARNING", "only once", count=3)
    _log.debug("below the level")
    text = captured.getvalue()
    assert text.count("only once") == 1
    assert "'count': 3" in text
    assert "below the level" not in text


def test_redact_masks_registered_secrets_and_key_shapes() -> None:
    register_secret("hunter2-hunter2")
    register_secret("short")  # too short to mask safely: ignored
    text = redact(f"a={API_KEY} b=hunter2-hunter2 c=short")
    assert text == f"a=vdt_{KEY_ID}_**** b=**** c=short"


def test_import_stays_light_and_logs_nothing() -> None:
    code = (
        "import sys, vdt_ai\n"
        "heavy = [m for m in ('loguru', 'confluent_kafka', 'click', 'pyspark', "
        "'sklearn', 'tensorflow', 'torch') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDT_AI_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert out.stdout.strip() == ""
    assert out.stderr == ""


def test_user_enable_before_first_sdk_log_is_respected(tmp_path: Path) -> None:
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "import vdt_ai\n"
        "from loguru import logger\n"
        "logger.remove(); logger.add(sys.stdout, format='{message}')\n"
        "logger.enable('vdt_ai')\n"
        f"c = vdt_ai.VDTClient(spool_dir={str(tmp_path)!r})\n"
        "c.close()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDT_AI_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "offline mode" in out.stdout


def test_offline_notice_names_folder_without_secret(tmp_path: Path) -> None:
    with pytest.warns(OfflineModeWarning) as record:
        VDTClient(API_KEY, spool_dir=tmp_path / "s").close()
    message = str(record[0].message)
    assert str(tmp_path / "s") in message and SECRET not in message


def test_settings_dump_keeps_secret_masked() -> None:
    s = load_settings(api_key=API_KEY)
    assert SECRET not in str(s.model_dump())
    assert SECRET not in s.model_dump_json()


def _error_texts(call: Callable[[], object]) -> List[str]:
    with pytest.raises(VDTError) as caught:
        call()
    exc = caught.value
    texts = [str(exc), repr(exc), exc.message]
    texts += [part for error in getattr(exc, "errors", []) for part in error]
    return texts


def test_keys_and_column_names_in_error_paths_are_bounded_and_masked(
    captured: io.StringIO,
) -> None:
    # Class, feature, dict-key and column names are the caller's text and
    # show in field paths: an API key among them is masked (also when a path
    # is cut), a long one is cut, a line break is escaped.
    import pandas as pd

    client = VDTClient(transport=MemoryTransport(), handle_sigterm=False)
    long_name = "n" * 5000
    calls = [
        lambda: client.log_model_call(
            "m", {}, class_probabilities={API_KEY: 2.0, long_name: 0.5}
        ),
        lambda: client.log_model_call("m", {}, class_probabilities={long_name: 2.0}),
        lambda: client.log_model_call(
            "m", {}, feature_importance={API_KEY + "\nx" * 300: float("nan")}
        ),
        lambda: client.log_model_call("m", {API_KEY + "x" * 200: float("inf")}),
        lambda: client.log_model_call("m", {"a": {API_KEY * 20: float("inf")}}),
        lambda: client.log_model_call("m", {}, tags={API_KEY * 30: "v"}),
        lambda: client.log_predictions(
            pd.DataFrame({API_KEY: [0.5, 3.0]}),
            model_name="m",
            probability_columns=[API_KEY],
        ),
        lambda: client.log_predictions(
            [{"x": 1}], model_name="m", score_column=API_KEY + "\n" * 400
        ),
    ]
    for call in calls:
        texts = _error_texts(call)
        for text in texts:
            assert SECRET not in text and SECRET[:12] not in text
            assert SECRET[-12:] not in text
            assert "\n" not in text
            assert len(text) < 2000, text[:200]
        assert any(f"vdt_{KEY_ID}_****" in t or "…" in t for t in texts), texts
    # A before_send copy that fails validation is logged with its fields.
    logger.enable("vdt_ai")
    _log._once_keys.clear()
    client = VDTClient(
        transport=MemoryTransport(),
        handle_sigterm=False,
        before_send=lambda e: e.model_copy(
            update={"class_probabilities": {API_KEY + "\n" * 9: 5.0}}
        ),
    )
    client.log_model_call("m", {})
    logged = captured.getvalue()
    assert "class_probabilities.vdt_" in logged and "\\n" in logged
    assert SECRET not in logged
