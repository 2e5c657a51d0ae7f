"""Keyless (Sigstore) verification, offline: what can run without Fulcio/Rekor/OIDC.

Signing needs GitHub's OIDC token and network access, so it runs only in the workflow; here we
check that verification uses the embedded production trust root offline, binds the expected
workflow identity, fails closed on foreign or malformed bundles and never downgrades to a key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from devops_agent.core.config import load_config
from devops_agent.core.errors import GateFailed
from devops_agent.supplychain.identity import derive_identity
from devops_agent.supplychain.signing import (
    GITHUB_OIDC_ISSUER,
    SigstoreIdentity,
    sigstore_identity_for,
    sigstore_verify,
)
from tests.fixtures.supplychain.helpers import artifact, evidence_dir, isolate, prepared_app, verify_app

STAGING_BUNDLE = Path(__file__).parent / "fixtures" / "supplychain" / "staging-dsse.sigstore.json"
GHA = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/shop",
    "GITHUB_WORKFLOW_REF": "acme/shop/.github/workflows/ci.yml@refs/heads/main",
    "GITHUB_RUN_ID": "1",
}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch)


def test_identity_binds_the_signing_workflow(sample_app: Path) -> None:
    assert sigstore_identity_for(GHA) == SigstoreIdentity(
        GITHUB_OIDC_ISSUER, "https://github.com/acme/shop/.github/workflows/ci.yml@refs/heads/main"
    )
    reusable = {
        **GHA,
        "DEVOPS_AGENT_INPUT_SIGNER_WORKFLOW": "org/devops-agent/.github/workflows/devsecops.yml@refs/tags/v1",
    }
    expected = "https://github.com/org/devops-agent/.github/workflows/devsecops.yml@refs/tags/v1"
    assert sigstore_identity_for(reusable).identity == expected
    config = load_config(sample_app / ".github" / "devops-agent.yml")
    identity = derive_identity(config, sample_app, reusable)
    assert identity.builder_id == expected  # provenance builder = the certified signer
    assert identity.workflow_ref == GHA["GITHUB_WORKFLOW_REF"]  # external parameter = the caller's run
    job_env = {
        **GHA,
        "DEVOPS_AGENT_SIGNER_WORKFLOW": "org/devops-agent/.github/workflows/devsecops.yml@refs/tags/v1",
    }
    assert sigstore_identity_for(job_env).identity == expected
    with pytest.raises(GateFailed, match="signer-workflow"):
        sigstore_identity_for({})


def test_a_real_bundle_from_another_trust_root_fails_closed() -> None:
    text = STAGING_BUNDLE.read_text(encoding="utf-8")
    assert json.loads(text)["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    with pytest.raises(GateFailed, match="Sigstore verification failed"):
        sigstore_verify(text, SigstoreIdentity("https://accounts.google.com", "someone@example.com"))


@pytest.mark.parametrize(
    "text", ["{}", "not json", json.dumps({"mediaType": "x", "verificationMaterial": {}})]
)
def test_malformed_bundles_fail_closed(text: str) -> None:
    with pytest.raises(GateFailed, match="Sigstore bundle"):
        sigstore_verify(text, SigstoreIdentity(GITHUB_OIDC_ISSUER, "https://github.com/a/b/x.yml@main"))


def test_verify_in_actions_prefers_sigstore_and_never_downgrades(
    sample_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = prepared_app(sample_app)  # key-signed evidence exists
    _, sha256 = artifact(app)
    for name, value in GHA.items():
        monkeypatch.setenv(name, value)
    # method sigstore: the valid key-signed DSSE does not count; the bundle is required
    (app / ".github" / "devops-agent.yml").write_text(
        (app / ".github" / "devops-agent.yml").read_text(encoding="utf-8") + "sign:\n  method: sigstore\n",
        encoding="utf-8",
    )
    code, text = verify_app(app, "--digest", sha256)
    assert code == 1
    assert "provenance-signature" in text
    assert "Sigstore bundle provenance.sigstore.json is missing" in text
    # a bundle that does not verify against the production root fails the check
    shutil.copy(STAGING_BUNDLE, evidence_dir(app, sha256) / "provenance.sigstore.json")
    code, text = verify_app(app, "--digest", sha256)
    assert code == 1
    assert "Sigstore verification failed" in text


def test_keyless_signing_without_an_oidc_credential_says_how_to_fix() -> None:
    from devops_agent.core.errors import StageFailed
    from devops_agent.supplychain.signing import sigstore_sign

    with pytest.raises(StageFailed, match="id-token: write"):
        sigstore_sign({"_type": "https://in-toto.io/Statement/v1"})
