"""Settings resolution: precedence, profiles, sources named in errors."""

from pathlib import Path
from typing import Any, Dict

import pytest

from vdt_ai import ConfigError, Settings, VDTError, load_settings
from vdt_ai.config import default_config_path, default_spool_dir

from ..conftest import API_KEY, KEY_ID


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    s = load_settings()
    assert s.bootstrap_servers is None and s.offline
    assert s.topic_prefix == "vdt"
    assert s.security_protocol == "PLAINTEXT"
    assert s.sasl_mechanism == "SCRAM-SHA-512"
    assert s.compression == "zstd"
    assert s.shutdown_timeout == 5.0
    assert s.sample_rate == 1.0
    assert s.enabled is True
    assert s.max_event_bytes == 1024 * 1024
    assert s.spool_dir == tmp_path / "data" / "vdt-ai" / "spool" == default_spool_dir()
    assert default_config_path() == tmp_path / "config" / "vdt-ai" / "config.toml"
    assert s.source_of("topic_prefix") == "default"


def test_precedence_argument_over_env_over_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write(
        default_config_path(),
        'topic_prefix = "file"\nenvironment = "file-env"\nservice = "file-svc"\n',
    )
    monkeypatch.setenv("VDT_AI_TOPIC_PREFIX", "env")
    monkeypatch.setenv("VDT_AI_ENVIRONMENT", "env-env")
    s = load_settings(topic_prefix="arg")
    assert s.topic_prefix == "arg" and s.source_of("topic_prefix") == "argument"
    assert s.environment == "env-env"
    assert s.source_of("environment") == "VDT_AI_ENVIRONMENT"
    assert s.service == "file-svc" and s.source_of("service") == str(cfg)


def test_profiles_override_top_level(monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        default_config_path(),
        'environment = "dev"\n[profiles.prod]\nenvironment = "prod"\n'
        'bootstrap_servers = "k1:9092, k2:9092"\n',
    )
    assert load_settings().environment == "dev"
    prod = load_settings(profile="prod")
    assert prod.environment == "prod"
    assert prod.bootstrap_servers == "k1:9092,k2:9092"
    monkeypatch.setenv("VDT_AI_PROFILE", "prod")
    assert load_settings().environment == "prod"


def test_missing_profile_is_named(tmp_path: Path) -> None:
    write(default_config_path(), "[profiles.a]\n")
    with pytest.raises(ConfigError) as info:
        load_settings(profile="b")
    assert "profile 'b' not found" in str(info.value) and "profiles: a" in str(
        info.value
    )
    (default_config_path()).unlink()
    with pytest.raises(ConfigError, match="no config file"):
        load_settings(profile="b")


def test_config_path_from_env_and_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    custom = write(tmp_path / "elsewhere.toml", 'environment = "custom"\n')
    monkeypatch.setenv("VDT_AI_CONFIG", str(custom))
    assert load_settings().environment == "custom"
    other = write(tmp_path / "other.toml", 'environment = "other"\n')
    assert load_settings(config_file=other).environment == "other"
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(config_file=tmp_path / "missing.toml")


def test_unknown_keys_name_their_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(bootstrap_server="x:1")
    assert info.value.setting == "bootstrap_server"
    assert info.value.source == "argument"

    monkeypatch.setenv("VDT_AI_TOPICPREFIX", "x")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.source == "VDT_AI_TOPICPREFIX"
    assert "topicprefix" in str(info.value)
    monkeypatch.delenv("VDT_AI_TOPICPREFIX")

    cfg = write(default_config_path(), "[profiles.p]\nnope = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(profile="p")
    assert info.value.setting == "nope" and info.value.source == str(cfg)


def test_bad_values_name_setting_and_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VDT_AI_SAMPLE_RATE", "2")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.setting == "sample_rate"
    assert info.value.source == "VDT_AI_SAMPLE_RATE"
    assert "sample_rate (from VDT_AI_SAMPLE_RATE)" in str(info.value)
    monkeypatch.delenv("VDT_AI_SAMPLE_RATE")

    cfg = write(default_config_path(), 'shutdown_timeout = "soon"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.source == str(cfg)
    cfg.unlink()

    for kwargs in (
        {"security_protocol": "TLS"},
        {"compression": "brotli"},
        {"topic_prefix": "bad prefix"},
        {"bootstrap_servers": "a:1,,b:2"},
        {"max_buffer_kbytes": 1},
        {"delivery_timeout": 0},
        {"log_level": "LOUD"},
    ):
        with pytest.raises(ConfigError) as info:
            load_settings(**kwargs)
        assert info.value.setting == next(iter(kwargs))
        assert info.value.source == "argument"


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    cfg = write(default_config_path(), "this is = not toml =\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(cfg) in str(info.value) and "not valid TOML" in str(info.value)
    write(default_config_path(), "profiles = 3\n")
    with pytest.raises(ConfigError, match="must be a table"):
        load_settings()


def test_tags_from_env_are_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VDT_AI_TAGS", '{"team": "search"}')
    assert load_settings().tags == {"team": "search"}
    monkeypatch.setenv("VDT_AI_TAGS", "team=search")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.source == "VDT_AI_TAGS"


@pytest.mark.parametrize("word,enabled", [("1", False), ("true", False), ("0", True)])
def test_disabled_variable(
    monkeypatch: pytest.MonkeyPatch, word: str, enabled: bool
) -> None:
    monkeypatch.setenv("VDT_AI_DISABLED", word)
    s = load_settings()
    assert s.enabled is enabled
    assert s.source_of("enabled") == "VDT_AI_DISABLED"


def test_disabled_variable_wins_over_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VDT_AI_ENABLED", "true")
    monkeypatch.setenv("VDT_AI_DISABLED", "1")
    assert load_settings().enabled is False
    monkeypatch.setenv("VDT_AI_DISABLED", "maybe")
    with pytest.raises(ConfigError, match="VDT_AI_DISABLED"):
        load_settings()


def test_api_key_is_parsed_and_masked() -> None:
    s = load_settings(api_key=API_KEY)
    assert s.api_key_id == KEY_ID
    assert s.api_key_secret == API_KEY.split("_", 2)[2]
    assert f"vdt_{KEY_ID}_****" in repr(s)
    assert load_settings().api_key_id is None and load_settings().api_key_secret is None


@pytest.mark.parametrize(
    "key",
    [
        "",
        "not-a-key",
        "vdt_SHORT_abc",
        "vdt_ABCDEFGHIJKL_" + "a" * 32,  # upper-case id
        "vdt_abcdefghijkl_" + "a" * 31,  # short secret
        "vdt_abcdefghijkl_" + "a" * 32 + "x",  # long secret
        " vdt_abcdefghijkl_" + "a" * 32,
    ],
)
def test_malformed_api_keys_are_refused_without_echo(key: str) -> None:
    with pytest.raises(VDTError) as info:
        load_settings(api_key=key)
    assert isinstance(info.value, ConfigError)
    assert info.value.setting == "api_key"
    if key:
        assert key not in str(info.value)
        assert key.strip() not in repr(info.value)


def test_sasl_needs_a_key_and_tls_pairs_go_together() -> None:
    with pytest.raises(ConfigError, match="needs an api_key"):
        load_settings(security_protocol="SASL_SSL")
    assert load_settings(security_protocol="SASL_SSL", api_key=API_KEY)
    with pytest.raises(ConfigError, match="go together"):
        load_settings(ssl_certificate_location="/c.pem")


def test_config_file_readable_by_others_warns_once() -> None:
    from vdt_ai.config import ConfigPermissionWarning, _warned_paths

    path = write(default_config_path(), 'environment = "x"\n')
    path.chmod(0o644)
    _warned_paths.discard(str(path))
    with pytest.warns(ConfigPermissionWarning, match="chmod 600"):
        load_settings()
    load_settings()  # once per file: no second warning (warnings are errors here)
    path.chmod(0o600)


def test_settings_is_frozen() -> None:
    s = load_settings()
    with pytest.raises(Exception):
        s.topic_prefix = "x"  # type: ignore[misc]
    assert isinstance(s, Settings)


# -- issue 10: strict types, unreadable files, secrets never pickled ----------


@pytest.mark.parametrize(
    "values",
    [
        {"sample_rate": True},
        {"shutdown_timeout": False},
        {"max_event_bytes": True},
        {"service": b"svc"},
        {"api_key": API_KEY.encode()},
    ],
    ids=["sample_rate", "shutdown_timeout", "max_event_bytes", "service", "api_key"],
)
def test_booleans_are_not_numbers_and_bytes_are_not_text(
    values: Dict[str, Any],
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**values)
    assert info.value.setting == next(iter(values))


def test_a_boolean_number_in_the_config_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("sample_rate = true\n")
    with pytest.raises(ConfigError, match="sample_rate") as info:
        load_settings(config_file=path)
    assert info.value.source == str(path)


def test_a_non_utf8_config_file_is_a_config_error_without_contents(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b'api_key = "' + API_KEY.encode() + b'"\n\xff\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config_file=path)
    text = repr(info.value) + str(info.value) + repr(info.value.__context__)
    assert "not UTF-8" in text and str(path) in text
    assert "S3cret" not in text and KEY_ID not in text
    assert info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.parametrize("config_file", [123, b"/tmp/c.toml", ["c.toml"]])
def test_config_file_of_a_wrong_type_is_a_config_error(config_file: object) -> None:
    with pytest.raises(ConfigError, match="config_file must be a path"):
        load_settings(config_file=config_file)  # type: ignore[arg-type]
    from vdt_ai import VDTClient

    with pytest.raises(ConfigError):
        VDTClient(config_file=config_file)


def test_settings_holding_a_secret_refuse_to_pickle() -> None:
    import copy
    import pickle

    settings = load_settings(api_key=API_KEY)
    with pytest.raises(TypeError) as info:
        pickle.dumps(settings)
    assert "S3cret" not in str(info.value)
    assert copy.deepcopy(settings).api_key == settings.api_key  # copies still work
    plain = load_settings(environment="dev")
    assert pickle.loads(pickle.dumps(plain)).environment == "dev"


def test_keyword_names_ignore_case() -> None:
    # As when Settings was a pydantic-settings model (case_sensitive=False).
    assert Settings(**{"TOPIC_PREFIX": "upper"}).topic_prefix == "upper"
    with pytest.raises(Exception):
        Settings(**{"no_such_setting": 1})
