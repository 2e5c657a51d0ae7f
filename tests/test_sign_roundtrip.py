"""sign stage: SLSA v1 provenance per digest as DSSE envelopes, a local key made safely on first
use, sign → verify round trip, GitHub identity and the attestations API (against a loopback fake)."""

from __future__ import annotations

import base64
import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from devops_agent.core.config import load_config
from devops_agent.core.errors import ConfigError, PlatformError
from devops_agent.stages import sign as sign_stage
from devops_agent.supplychain.identity import BUILD_TYPE, derive_identity, source_uri_from_remote
from devops_agent.supplychain.provenance import (
    SLSA_PROVENANCE_V1,
    Subject,
    provenance_statement,
    validate_statement,
)
from tests.fixtures.supplychain.helpers import (
    add_config,
    artifact,
    build_app,
    evidence_dir,
    isolate,
    prepared_app,
    read_json,
    sbom_app,
    sign_app,
    verify_app,
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch)


def _statement(envelope: dict[str, Any]) -> dict[str, Any]:
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    data: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return data


def test_sign_then_verify_round_trip(sample_app: Path) -> None:
    app = prepared_app(sample_app)
    path, sha256 = artifact(app)
    code, text = verify_app(app, "--artifact", str(path))
    assert code == 0, text
    code, text = verify_app(app, "--digest", f"sha256:{sha256}", "--json")
    assert code == 0, text
    report = json.loads(text[text.index("{\n") :])
    assert report["verified"] is True
    assert {c["check"] for c in report["checks"]} >= {
        "artifact-digest",
        "provenance-signature",
        "provenance-subject",
        "provenance-builder",
        "provenance-source",
        "provenance-workflow",
        "sbom-present",
        "sbom-signature",
        "sbom-subject",
    }
    code, _ = verify_app(app, "--digest", sha256)  # bare hex works too
    assert code == 0


def test_provenance_is_an_in_toto_v1_slsa_v1_statement(sample_app: Path) -> None:
    app = prepared_app(sample_app)
    _, sha256 = artifact(app)
    envelope = read_json(evidence_dir(app, sha256) / "provenance.dsse.json")
    assert envelope["signatures"]
    assert envelope["signatures"][0]["sig"]
    statement = _statement(envelope)
    assert validate_statement(statement) == []
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == SLSA_PROVENANCE_V1
    assert statement["subject"] == [{"name": "sample-app.pyz", "digest": {"sha256": sha256}}]
    build_def = statement["predicate"]["buildDefinition"]
    assert build_def["buildType"] == BUILD_TYPE
    assert build_def["externalParameters"]["workflowRef"] == "local"
    assert build_def["externalParameters"]["inputs"] == {"app": "sample-app"}
    assert build_def["resolvedDependencies"][0]["uri"] == "local://sample-app"
    run_details = statement["predicate"]["runDetails"]
    assert run_details["builder"]["id"] == "local://devops-agent"
    manifest_run = read_json(app / ".devops-agent" / "build-manifest.json")["run_id"]
    assert run_details["metadata"]["invocationId"] == f"local:{manifest_run}"
    sbom_statement = _statement(read_json(evidence_dir(app, sha256) / "sbom.dsse.json"))
    assert sbom_statement["predicateType"] == "https://cyclonedx.org/bom"
    assert sbom_statement["predicate"] == read_json(evidence_dir(app, sha256) / "sbom.cdx.json")


def test_key_is_generated_once_with_mode_0600_and_never_printed(sample_app: Path) -> None:
    build_app(sample_app)
    assert sbom_app(sample_app)[0] == 0
    code, text = sign_app(sample_app)
    assert code == 0, text
    key = sample_app / ".devops-agent" / "keys" / "signing.key"
    pub = sample_app / ".devops-agent" / "keys" / "signing.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    private_pem = key.read_text(encoding="utf-8")
    body = "".join(private_pem.strip().splitlines()[1:-1])
    assert "PRIVATE KEY" not in text
    assert body not in text
    assert "signing key created" in text
    first_key = key.read_bytes()
    code, text = sign_app(sample_app)  # re-run: same key, no new key notice
    assert code == 0, text
    assert key.read_bytes() == first_key
    assert "signing key created" not in text
    assert "PUBLIC KEY" in pub.read_text(encoding="utf-8")


def test_a_group_readable_key_is_refused(sample_app: Path) -> None:
    app = prepared_app(sample_app)
    key = app / ".devops-agent" / "keys" / "signing.key"
    key.chmod(0o644)
    code, text = sign_app(app)
    assert code == 2
    assert "chmod 600" in text


def test_signing_key_from_the_environment_is_used_and_masked(
    sample_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    monkeypatch.setenv("DEVOPS_AGENT_SIGNING_KEY", pem.decode())
    build_app(sample_app)
    assert sbom_app(sample_app)[0] == 0
    code, text = sign_app(sample_app)
    assert code == 0, text
    assert not (sample_app / ".devops-agent" / "keys" / "signing.key").exists()
    _, sha256 = artifact(sample_app)
    envelope = read_json(evidence_dir(sample_app, sha256) / "provenance.dsse.json")
    assert envelope["signatures"][0]["sig"]
    # verify trusts only configured public keys: none configured and no local key → fail closed
    code, text = verify_app(sample_app, "--digest", sha256)
    assert code == 1
    assert "no trusted public key" in text


def test_sign_needs_the_sbom_first(sample_app: Path) -> None:
    build_app(sample_app)
    code, text = sign_app(sample_app)
    assert code == 1
    assert "no SBOM is attached" in text
    assert "devops-agent sbom" in text


def test_dry_run_changes_nothing(sample_app: Path) -> None:
    build_app(sample_app)
    assert sbom_app(sample_app)[0] == 0
    code, text = sign_app(sample_app, "--dry-run")
    assert code == 0, text
    assert "would sign 1 subject" in text
    assert not (sample_app / ".devops-agent" / "keys").exists()


def test_sigstore_outside_github_actions_is_bad_input(sample_app: Path) -> None:
    build_app(sample_app)
    assert sbom_app(sample_app)[0] == 0
    code, text = sign_app(sample_app, "--method", "sigstore")
    assert code == 2
    assert "sign.method" in text


# -- identity in GitHub Actions (pure) ---------------------------------------------------------

GHA_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/shop",
    "GITHUB_WORKFLOW_REF": "acme/shop/.github/workflows/release.yml@refs/tags/v1.2.0",
    "GITHUB_RUN_ID": "4242",
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
    "DEVOPS_AGENT_INPUT_WORKFLOW_INPUTS": '{"environment": "staging"}',
}


def test_github_identity_and_statement(sample_app: Path) -> None:
    config = load_config(sample_app / ".github" / "devops-agent.yml")
    identity = derive_identity(config, sample_app, GHA_ENV)
    assert (
        identity.builder_id == "https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.2.0"
    )
    assert identity.source_uri == "git+https://github.com/acme/shop"
    assert identity.invocation_id == "https://github.com/acme/shop/actions/runs/4242/attempts/2"
    statement = provenance_statement([Subject("a.whl", "b" * 64)], identity)
    assert validate_statement(statement) == []
    external = statement["predicate"]["buildDefinition"]["externalParameters"]
    assert external["workflow"] == {
        "ref": "refs/tags/v1.2.0",
        "repository": "git+https://github.com/acme/shop",
        "path": "acme/shop/.github/workflows/release.yml",
    }
    assert external["inputs"] == {"environment": "staging"}
    assert statement["predicate"]["buildDefinition"]["resolvedDependencies"] == [
        {"uri": "git+https://github.com/acme/shop", "digest": {"gitCommit": GHA_ENV["GITHUB_SHA"]}}
    ]


def test_bad_workflow_inputs_are_bad_input(sample_app: Path) -> None:
    config = load_config(sample_app / ".github" / "devops-agent.yml")
    with pytest.raises(ConfigError, match="workflow-inputs"):
        derive_identity(config, sample_app, {**GHA_ENV, "DEVOPS_AGENT_INPUT_WORKFLOW_INPUTS": "{nope"})


@pytest.mark.parametrize(
    ("remote", "uri"),
    [
        ("git@github.com:acme/shop.git", "git+https://github.com/acme/shop"),
        ("https://x-access-token:SECRET@github.com/acme/shop.git", "git+https://github.com/acme/shop"),
        ("https://gitlab.example/group/app", "git+https://gitlab.example/group/app"),
    ],
)
def test_source_uri_from_remote_strips_credentials(remote: str, uri: str) -> None:
    assert source_uri_from_remote(remote) == uri


def test_auto_method_resolves_by_environment() -> None:
    assert sign_stage.resolve_method("auto", {}) == "key"
    assert sign_stage.resolve_method("auto", {"GITHUB_ACTIONS": "true"}) == "sigstore"
    with pytest.raises(ConfigError):
        sign_stage.resolve_method("gpg", {})


# -- GitHub artifact attestations API (loopback fake) -------------------------------------------


class _AttestationsAPI(BaseHTTPRequestHandler):
    calls: ClassVar[list[dict[str, Any]]] = []
    status: ClassVar[int] = 201

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append({"path": self.path, "auth": self.headers["Authorization"], "body": body})
        payload = json.dumps({"id": 77} if self.status == 201 else {"message": "nope"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def attestations_api() -> Iterator[tuple[str, type[_AttestationsAPI]]]:
    handler = type("Handler", (_AttestationsAPI,), {"calls": [], "status": 201})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_bundle_is_uploaded_to_the_attestations_api(
    attestations_api: tuple[str, type[_AttestationsAPI]],
) -> None:
    url, handler = attestations_api
    env = {"GITHUB_TOKEN": "ghs_test", "GITHUB_REPOSITORY": "acme/shop", "GITHUB_API_URL": url}
    bundle = json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"})
    assert sign_stage.upload_attestation(bundle, env, timeout=5) == "77"
    assert handler.calls == [
        {
            "path": "/repos/acme/shop/attestations",
            "auth": "Bearer ghs_test",
            "body": {"bundle": {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}},
        }
    ]
    handler.status = 403
    with pytest.raises(PlatformError, match="HTTP 403"):
        sign_stage.upload_attestation(bundle, env, timeout=5)
    with pytest.raises(ConfigError):
        sign_stage.upload_attestation(bundle, {"GITHUB_API_URL": url}, timeout=5)


def test_spdx_only_sboms_are_signed_and_verified(sample_app: Path) -> None:
    add_config(sample_app, "sbom:\n  formats: [spdx]\n  supplier: Example Org\n")
    build_app(sample_app)
    assert sbom_app(sample_app)[0] == 0
    code, text = sign_app(sample_app)
    assert code == 0, text
    path, sha256 = artifact(sample_app)
    statement = _statement(read_json(evidence_dir(sample_app, sha256) / "sbom.dsse.json"))
    assert statement["predicateType"] == "https://spdx.dev/Document"
    assert statement["predicate"]["spdxVersion"] == "SPDX-2.3"
    code, text = verify_app(sample_app, "--artifact", str(path))
    assert code == 0, text
    assert "SPDX-2.3" in text
