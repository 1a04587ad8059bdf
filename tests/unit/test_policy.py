"""Data policy: rules, the denylist, before_send, sampling."""

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

import pytest

from vdt_ai import (
    ConfigError,
    Event,
    GroundTruth,
    JobRun,
    ModelCall,
    Stats,
    VDTClient,
    load_settings,
)
from vdt_ai.policy import MASK, DataPolicy, is_sensitive_key
from vdt_ai.testing import MemoryTransport

SALT = "pepper-pepper-pepper"


def salted(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(SALT.encode() + canonical.encode()).hexdigest()


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_password",
        "PASSWD",
        "client_secret",
        "token",
        "api_key",
        "X-Api-Key",
        "apikey",
        "Authorization",
        "cookie",
        "Set-Cookie",
        "ssn",
        "credit_card",
        "creditCardNumber",
        "private_key",
        "access_token",
        "refresh_token",
        "session_id",
        # issue 10: matched by normalised words, not only whole names
        "auth_token",
        "X-Auth-Token",
        "api_token",
        "csrf_token",
        "oauth_token",
        "passphrase",
        "pwd",
        "credentials",
        "session",
        "sessionToken",
        "apiKey",
        "x-csrf-token",
    ],
)
def test_denylisted_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "user_id",
        "tokens",
        "prompt_tokens",
        "email",
        "items",
        "author",
        "pinned",
        "token_count",
        "token_ids",
        "max_tokens",
        "session_length",
        "tokenizer",
        "monkey",
    ],
)
def test_ordinary_keys_pass(key: str) -> None:
    assert not is_sensitive_key(key)


def test_denylist_masks_everywhere_by_default(memory: MemoryTransport) -> None:
    client = VDTClient(transport=memory)
    client.log_model_call(
        "m",
        input_data={
            "user_id": 1,
            "password": "hunter2",
            "headers": {"Authorization": "Bearer abc", "accept": "json"},
            "rows": [{"ssn": "123-45-6789", "age": 40}, "plain"],
        },
        prediction={"token": "t", "score": 0.9},
        tags={"api_key": "k", "team": "search"},
    )
    client.log_ground_truth("r", actual={"cookie": "c", "label": 1})
    client.log_job_run("j", "succeeded", metrics={"secret": "s", "rows": 3})
    call, truth, job = memory.events
    assert isinstance(call, ModelCall)
    assert call.input_data == {
        "user_id": 1,
        "password": MASK,
        "headers": {"Authorization": MASK, "accept": "json"},
        "rows": [{"ssn": MASK, "age": 40}, "plain"],
    }
    assert call.prediction == {"token": MASK, "score": 0.9}
    assert call.tags == {"api_key": MASK, "team": "search"}
    assert isinstance(truth, GroundTruth) and truth.actual == {
        "cookie": MASK,
        "label": 1,
    }
    assert isinstance(job, JobRun) and job.metrics == {"secret": MASK, "rows": 3}
    raw = b"".join(r.value for r in memory.records)
    for secret in (b"hunter2", b"Bearer abc", b"123-45-6789"):
        assert secret not in raw


def test_rules_mask_hash_drop_keep(memory: MemoryTransport) -> None:
    client = VDTClient(
        transport=memory,
        data_policy={
            "input_data.email": "hash",
            "input_data.profile.name": "mask",
            "input_data.items.sku": "drop",
            "input_data.password": "keep",
            "prediction": "drop",
            "request_id": "hash",
            "error_message": "mask",
            "tags.user": "hash",
        },
        hash_salt=SALT,
    )
    client.log_model_call(
        "m",
        input_data={
            "email": "a@example.com",
            "profile": {"name": "Ann", "age": 3},
            "items": [{"sku": "x", "n": 1}, {"sku": "y", "n": 2}],
            "password": "visible-on-purpose",
        },
        prediction=[1, 2],
        request_id="req-9",
        error_message="boom for Ann",
        tags={"user": "ann"},
    )
    event = memory.events[0]
    assert isinstance(event, ModelCall)
    assert event.input_data == {
        "email": salted("a@example.com"),
        "profile": {"name": MASK, "age": 3},
        "items": [{"n": 1}, {"n": 2}],
        "password": "visible-on-purpose",
    }
    assert event.prediction is None
    assert event.request_id == salted("req-9")
    assert event.error_message == MASK
    assert event.tags == {"user": salted("ann")}


def test_equal_values_hash_equal_and_salt_matters() -> None:
    one = DataPolicy({"input_data.id": "hash"}, SALT)
    other = DataPolicy({"input_data.id": "hash"}, SALT + "x")
    a = one.apply(ModelCall(model_name="m", input_data={"id": 7}))
    b = one.apply(ModelCall(model_name="m", input_data={"id": 7}))
    c = other.apply(ModelCall(model_name="m", input_data={"id": 7}))
    assert isinstance(a, ModelCall) and isinstance(b, ModelCall)
    assert isinstance(c, ModelCall)
    assert a.input_data == b.input_data != c.input_data


def test_unchanged_events_are_not_copied() -> None:
    policy = DataPolicy()
    event = ModelCall(model_name="m", input_data={"user_id": 1}, prediction=[1, [2]])
    assert policy.apply(event) is event
    raw = DataPolicy(denylist=False).apply(
        ModelCall(model_name="m", input_data={"password": "x"})
    )
    assert isinstance(raw, ModelCall) and raw.input_data == {"password": "x"}


def test_whole_field_rules() -> None:
    policy = DataPolicy(
        {"input_data": "mask", "prediction": "keep", "actual": "hash"}, SALT
    )
    event = policy.apply(
        ModelCall(model_name="m", input_data={"a": 1}, prediction={"token": "t"})
    )
    assert isinstance(event, ModelCall)
    assert event.input_data == MASK
    assert event.prediction == {"token": "t"}  # keep wins over the denylist
    truth = policy.apply(GroundTruth(request_id="r", actual=[1, 2]))
    assert isinstance(truth, GroundTruth) and truth.actual == salted([1, 2])


@pytest.mark.parametrize(
    "rules,salt,words",
    [
        ({"input_data.email": "hash"}, None, "needs hash_salt"),
        ({"user.email": "mask"}, None, "not a field rules apply to"),
        ({"model_name": "drop"}, None, "required"),
        ({"request_id.x": "mask"}, None, "no sub-fields"),
        ({"tags": "mask"}, None, "name a tag"),
        ({"input_data..x": "mask"}, None, "empty path segment"),
        ({"input_data.x": "shred"}, None, "'mask', 'hash', 'drop' or 'keep'"),
        ({}, "short", "at least 16 characters"),
    ],
)
def test_bad_policies_are_config_errors(
    rules: Any, salt: Optional[str], words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(data_policy=rules, hash_salt=salt)
    assert words in str(info.value)
    assert info.value.setting in ("data_policy", "hash_salt")


def test_policy_from_environment_and_salt_never_shown(
    monkeypatch: pytest.MonkeyPatch, memory: MemoryTransport
) -> None:
    monkeypatch.setenv("VDT_AI_DATA_POLICY", '{"input_data.email": "hash"}')
    monkeypatch.setenv("VDT_AI_HASH_SALT", SALT)
    client = VDTClient(transport=memory)
    assert client.settings.data_policy == {"input_data.email": "hash"}
    assert SALT not in repr(client.settings) and SALT not in repr(client)
    client.log_model_call("m", input_data={"email": "x@y.z"})
    event = memory.events[0]
    assert isinstance(event, ModelCall)
    assert event.input_data == {"email": salted("x@y.z")}


def test_before_send_edits_drops_and_fails_closed(memory: MemoryTransport) -> None:
    def scrub(event: Event) -> Optional[Event]:
        if isinstance(event, ModelCall) and event.model_name == "skip":
            return None
        if isinstance(event, ModelCall) and event.model_name == "boom":
            raise RuntimeError("scrubber bug")
        if isinstance(event, ModelCall) and event.model_name == "weird":
            return "not an event"  # type: ignore[return-value]
        return event.model_copy(update={"tags": {**event.tags, "scrubbed": "yes"}})

    client = VDTClient(transport=memory, before_send=scrub)
    assert client.log_model_call("keep", input_data={"password": "p"}) is not None
    assert client.log_model_call("skip") is None
    assert client.log_model_call("boom") is None
    assert client.log_model_call("weird") is None
    (sent,) = memory.events
    assert sent.tags == {"scrubbed": "yes"}
    assert sent.input_data == {"password": MASK}  # type: ignore[attr-defined]
    assert client.stats() == Stats(accepted=1, delivered=1, filtered=1, failed=2)


def test_sampled_out_events_are_counted_never_spooled(tmp_path: Path) -> None:
    with pytest.warns(Warning):
        client = VDTClient(spool_dir=tmp_path / "s", sample_rate=0.0)
    assert client.log_metric("m", 1.0) is None
    client.close()
    assert client.stats() == Stats(sampled_out=1)
    spool = tmp_path / "s"
    assert not spool.exists() or not list(spool.iterdir())


def test_log_metrics_with_before_send_keeps_atomic_validation(
    memory: MemoryTransport,
) -> None:
    client = VDTClient(
        transport=memory,
        before_send=lambda e: None if getattr(e, "name", "") == "drop" else e,
    )
    ids = client.log_metrics({"keep": 1.0, "drop": 2.0})
    assert len(ids) == 1 and len(memory) == 1
    assert client.stats().filtered == 1


def test_api_keys_inside_free_text_are_masked(memory: MemoryTransport) -> None:
    from ..conftest import API_KEY, KEY_ID, SECRET

    client = VDTClient(transport=memory)
    client.log_model_call(
        "m",
        input_data={"note": f"key={API_KEY}", "list": [f"x {API_KEY}", 1]},
        prediction=f"p {API_KEY}",
        error_message=f"failed with {API_KEY}",
    )
    event = memory.events[0]
    assert isinstance(event, ModelCall)
    assert event.input_data == {
        "note": f"key=vdt_{KEY_ID}_****",
        "list": [f"x vdt_{KEY_ID}_****", 1],
    }
    assert event.prediction == f"p vdt_{KEY_ID}_****"
    assert event.error_message == f"failed with vdt_{KEY_ID}_****"
    assert SECRET.encode() not in memory.records[0].value


KEY = "vdt_k3yid0000abc_S3cretS3cretS3cretS3cretS3cret99"


def test_column_min_max_get_the_denylist_rules_and_key_masking() -> None:
    memory = MemoryTransport()
    client = VDTClient(
        transport=memory,
        data_policy={"columns.max.email": "drop"},
    )
    client.log_data_quality(
        "d",
        2,
        columns=[
            {"name": "profile", "min": {"password": "s3cr3t", "n": 1}, "max": KEY},
            {"name": "user_password", "min": "aaa", "max": "zzz"},
            {"name": "c", "min": {"email": "a@b"}, "max": {"email": "a@b", "n": 2}},
        ],
    )
    (event,) = memory.events
    first, secret_column, third = event.columns  # type: ignore[attr-defined]
    assert first.min == {"password": MASK, "n": 1}
    assert first.max == "vdt_k3yid0000abc_****"
    assert (secret_column.min, secret_column.max) == (MASK, MASK)
    assert third.min == {"email": "a@b"} and third.max == {"n": 2}
    client.close()


def test_column_rules_must_name_min_or_max() -> None:
    with pytest.raises(ConfigError, match="columns.name"):
        load_settings(data_policy={"columns.name": "mask"})


def test_an_api_key_used_as_a_dict_key_or_tag_key_is_masked() -> None:
    memory = MemoryTransport()
    client = VDTClient(transport=memory)
    client.log_model_call(
        "m", {KEY: 1, "nested": [{KEY: {"ok": True}}]}, tags={KEY: "v"}
    )
    (event,) = memory.events
    assert event.input_data == {  # type: ignore[attr-defined]
        "vdt_k3yid0000abc_****": 1,
        "nested": [{"vdt_k3yid0000abc_****": {"ok": True}}],
    }
    assert event.tags == {"vdt_k3yid0000abc_****": "v"}
    assert "S3cret" not in memory.records[0].value.decode("latin1")
    client.close()
