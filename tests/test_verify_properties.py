"""Properties of the verify building blocks: digest normalisation and DSSE envelopes."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devops_agent.core.config import load_config
from devops_agent.core.errors import ConfigError, GateFailed
from devops_agent.supplychain.layout import normalize_digest
from devops_agent.supplychain.signing import LoadedKey, load_or_create_key, sign_statement, verify_envelope

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.binary(min_size=32, max_size=32), st.booleans(), st.booleans())
def test_digest_forms_normalise_to_lower_hex(raw: bytes, prefixed: bool, upper: bool) -> None:
    hexdigest = raw.hex()
    text = hexdigest.upper() if upper else hexdigest
    if prefixed:
        text = "sha256:" + text
    assert normalize_digest(f"  {text} ") == hexdigest


@given(st.text(max_size=80))
def test_anything_else_is_bad_input(text: str) -> None:
    stripped = text.strip().lower().removeprefix("sha256:")
    if re.fullmatch(r"[0-9a-f]{64}", stripped):
        return
    with pytest.raises(ConfigError):
        normalize_digest(text)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedKey, list[tuple[str, Any]]]:
    from devops_agent.supplychain.signing import public_key_from_pem

    app = tmp_path_factory.mktemp("app")
    (app / ".github").mkdir()
    (app / ".github" / "devops-agent.yml").write_text(
        "version: 1\napp: {name: p}\nbuild: {artifacts: [x]}\n", encoding="utf-8"
    )
    loaded = load_or_create_key(app, load_config(app / ".github" / "devops-agent.yml"), {})
    return loaded, [("test", public_key_from_pem(loaded.public_pem, "test"))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    predicate=st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=5),
    flip=st.integers(0, 10**6),
)
def test_dsse_round_trip_and_any_payload_change_is_caught(
    key: tuple[LoadedKey, list[tuple[str, Any]]], predicate: dict[str, Any], flip: int
) -> None:
    loaded, trusted = key
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [],
        "predicateType": "x",
        "predicate": predicate,
    }
    envelope = sign_statement(statement, loaded)
    assert verify_envelope(envelope, trusted, what="test").statement == json.loads(json.dumps(statement))
    payload = bytearray(base64.b64decode(envelope["payload"]))
    payload[flip % len(payload)] ^= 0x20
    tampered = {**envelope, "payload": base64.b64encode(bytes(payload)).decode()}
    with pytest.raises(GateFailed, match="not validly signed"):
        verify_envelope(tampered, trusted, what="test")


def test_no_trusted_key_fails_closed(key: tuple[LoadedKey, list[tuple[str, Any]]], tmp_path: Path) -> None:
    loaded, _ = key
    envelope = sign_statement({"_type": "x"}, loaded)
    with pytest.raises(GateFailed, match="no trusted public key"):
        verify_envelope(envelope, [], what="test")
