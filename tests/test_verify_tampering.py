"""verify: every kind of tampering or missing evidence fails (exit 1 / GateFailed) and the message
names the check that failed; verify_for_deploy returns evidence only when everything checks out."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from devops_agent.core.config import load_config
from devops_agent.core.errors import GateFailed
from devops_agent.stages.verify import verify_for_deploy
from tests.fixtures.supplychain.helpers import (
    add_config,
    artifact,
    copy_app,
    evidence_dir,
    isolate,
    prepared_app,
    read_json,
    sign_app,
    verify_app,
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One built, SBOM'd and signed sample app; each test tampers with its own copy."""
    from tests.conftest import SAMPLE_APP

    mp = pytest.MonkeyPatch()
    isolate(mp)
    try:
        base = tmp_path_factory.mktemp("signed")
        app = base / "sample-app"
        shutil.copytree(
            SAMPLE_APP, app, ignore=shutil.ignore_patterns(".devops-agent", "dist", "__pycache__")
        )
        return prepared_app(app)
    finally:
        mp.undo()


@pytest.fixture
def app(template: Path, tmp_path: Path) -> Path:
    return copy_app(template, tmp_path / "sample-app")


def _failed(text: str) -> str:
    assert "verification of sha256:" in text, text
    return text


def _rewrite_payload(envelope_path: Path, change: Any) -> None:
    envelope = read_json(envelope_path)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    change(statement)
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    envelope_path.write_text(json.dumps(envelope), encoding="utf-8")


def test_untouched_evidence_verifies(app: Path) -> None:
    path, sha256 = artifact(app)
    assert verify_app(app, "--artifact", str(path))[0] == 0
    evidence = verify_for_deploy(app, load_config(app / ".github" / "devops-agent.yml"), f"sha256:{sha256}")
    assert evidence["verified"] is True
    assert evidence["digest"] == f"sha256:{sha256}"
    assert evidence["builder_id"] == "local://devops-agent"
    json.dumps(evidence)  # JSON-able


def test_changed_artifact_byte_fails_the_digest_check(app: Path) -> None:
    path, sha256 = artifact(app)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    code, text = verify_app(app, "--digest", f"sha256:{sha256}")
    assert code == 1
    assert "artifact-digest" in _failed(text)
    # by file: the changed bytes have a digest no evidence exists for
    code, text = verify_app(app, "--artifact", str(path))
    assert code == 1
    assert "provenance-present" in _failed(text)
    with pytest.raises(GateFailed, match="artifact-digest"):
        verify_for_deploy(app, load_config(app / ".github" / "devops-agent.yml"), sha256)


def test_edited_provenance_payload_fails_the_signature(app: Path) -> None:
    _, sha256 = artifact(app)

    def change(statement: dict[str, Any]) -> None:
        statement["predicate"]["runDetails"]["builder"]["id"] = "local://devops-agent"  # same value…
        statement["predicate"]["buildDefinition"]["externalParameters"]["inputs"]["app"] = "evil"

    _rewrite_payload(evidence_dir(app, sha256) / "provenance.dsse.json", change)
    code, text = verify_app(app, "--digest", sha256)
    assert code == 1
    assert "provenance-signature" in _failed(text)
    assert "not validly signed" in text


def test_swapped_provenance_of_another_artifact_fails_the_subject(app: Path, tmp_path: Path) -> None:
    """A correctly signed provenance — but for a different artifact — is moved next to ours."""
    other = copy_app(app, tmp_path / "other")
    (other / "src" / "sample_app" / "extra.py").write_text("VALUE = 1\n", encoding="utf-8")
    from tests.fixtures.supplychain.helpers import build_app, sbom_app

    build_app(other)
    assert sbom_app(other)[0] == 0
    assert sign_app(other)[0] == 0  # same key (copied), other digest
    _, other_sha = artifact(other)
    _, sha256 = artifact(app)
    assert other_sha != sha256
    shutil.copy(evidence_dir(other, other_sha) / "provenance.dsse.json", evidence_dir(app, sha256))
    code, text = verify_app(app, "--digest", sha256)
    assert code == 1
    assert "provenance-subject" in _failed(text)


def test_wrong_builder_fails(app: Path) -> None:
    _, sha256 = artifact(app)
    code, text = verify_app(
        app,
        "--digest",
        sha256,
        "--expected-builder-id",
        "https://github.com/acme/shop/.github/workflows/x.yml@main",
    )
    assert code == 1
    assert "provenance-builder" in _failed(text)
    # and provenance signed by another builder fails the default expectation
    add_config(app, "sign:\n  builder_id: https://ci.example/rogue-builder\n")
    assert sign_app(app)[0] == 0
    config_text = (app / ".github" / "devops-agent.yml").read_text(encoding="utf-8")
    (app / ".github" / "devops-agent.yml").write_text(
        config_text.replace("  builder_id: https://ci.example/rogue-builder\n", "  method: key\n"),
        encoding="utf-8",
    )
    code, text = verify_app(app, "--digest", sha256)
    assert code == 1
    assert "provenance-builder" in _failed(text)
    assert "https://ci.example/rogue-builder" in text


def test_wrong_source_fails(app: Path) -> None:
    _, sha256 = artifact(app)
    code, text = verify_app(
        app, "--digest", sha256, "--expected-source-uri", "git+https://github.com/acme/shop"
    )
    assert code == 1
    assert "provenance-source" in _failed(text)


def test_wrong_workflow_and_commit_fail(app: Path) -> None:
    _, sha256 = artifact(app)
    code, text = verify_app(
        app, "--digest", sha256, "--expected-workflow-ref", "acme/shop/.github/workflows/r.yml@main"
    )
    assert code == 1
    assert "provenance-workflow" in _failed(text)
    code, text = verify_app(app, "--digest", sha256, "--expected-commit", "f" * 40)
    assert code == 1
    assert "provenance-commit" in _failed(text)


def test_signature_by_another_key_fails(app: Path) -> None:
    _, sha256 = artifact(app)
    keys = app / ".devops-agent" / "keys"
    trusted = (keys / "signing.pub").read_bytes()
    shutil.rmtree(keys)
    assert sign_app(app)[0] == 0  # a fresh key signs
    (keys / "signing.pub").write_bytes(trusted)  # verify still trusts the original key only
    code, text = verify_app(app, "--digest", sha256)
    assert code == 1
    failed = _failed(text)
    assert "provenance-signature" in failed
    assert "sbom-signature" in failed


def test_missing_signature_fails_closed(app: Path) -> None:
    _, sha256 = artifact(app)
    (evidence_dir(app, sha256) / "provenance.dsse.json").unlink()
    code, text = verify_app(app, "--digest", sha256)
    assert code == 1
    assert "provenance-signature" in _failed(text)
    assert "missing" in text


def test_stripped_signatures_fail_closed(app: Path) -> None:
    _, sha256 = artifact(app)
    path = evidence_dir(app, sha256) / "provenance.dsse.json"
    envelope = read_json(path)
    envelope["signatures"] = []
    path.write_text(json.dumps(envelope), encoding="utf-8")
    code, text = verify_app(app, "--digest", sha256)
    assert code == 1
    assert "carries no signature" in _failed(text)


def test_missing_sbom_fails(app: Path) -> None:
    _, sha256 = artifact(app)
    (evidence_dir(app, sha256) / "sbom.dsse.json").unlink()
    code, text = verify_app(app, "--digest", sha256)
    assert code == 1
    assert "sbom-present" in _failed(text)
    with pytest.raises(GateFailed, match="sbom-present"):
        verify_for_deploy(app, load_config(app / ".github" / "devops-agent.yml"), sha256)


def test_sbom_statement_about_another_digest_fails(app: Path) -> None:
    _, sha256 = artifact(app)
    # re-sign a statement for a different subject with the trusted key: signature fine, subject wrong
    from devops_agent.supplychain.provenance import Subject, sbom_statement
    from devops_agent.supplychain.signing import load_or_create_key, sign_statement

    config = load_config(app / ".github" / "devops-agent.yml")
    key = load_or_create_key(app, config, {})
    bom = read_json(evidence_dir(app, sha256) / "sbom.cdx.json")
    envelope = sign_statement(sbom_statement([Subject("x", "0" * 64)], bom), key)
    (evidence_dir(app, sha256) / "sbom.dsse.json").write_text(json.dumps(envelope), encoding="utf-8")
    code, text = verify_app(app, "--digest", sha256)
    assert code == 1
    assert "sbom-subject" in _failed(text)


def test_no_evidence_at_all_fails_closed(app: Path) -> None:
    _, sha256 = artifact(app)
    shutil.rmtree(evidence_dir(app, sha256))
    code, text = verify_app(app, "--digest", sha256)
    assert code == 1
    assert "provenance-present" in _failed(text)
    assert "sbom-present" in text
    with pytest.raises(GateFailed):
        verify_for_deploy(app, load_config(app / ".github" / "devops-agent.yml"), sha256)


def test_unknown_digest_fails_closed(app: Path) -> None:
    code, text = verify_app(app, "--digest", "sha256:" + "1" * 64)
    assert code == 1
    assert "provenance-present" in _failed(text)


@pytest.mark.parametrize("digest", ["sha256:xyz", "md5:" + "a" * 32, "a" * 63])
def test_malformed_digest_is_bad_input(app: Path, digest: str) -> None:
    code, text = verify_app(app, "--digest", digest)
    assert code == 2
    assert "--digest" in text
    with pytest.raises(GateFailed):  # deploy callers get a gate failure, never a pass
        verify_for_deploy(app, load_config(app / ".github" / "devops-agent.yml"), digest)


def test_no_target_is_bad_input(app: Path) -> None:
    code, text = verify_app(app)
    assert code == 2
    assert "--artifact" in text


def test_verify_writes_outputs_and_summary(
    app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output, summary = tmp_path / "out.txt", tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    _, sha256 = artifact(app)
    (evidence_dir(app, sha256) / "sbom.dsse.json").unlink()
    assert verify_app(app, "--digest", sha256)[0] == 1
    assert "verified<<" in output.read_text(encoding="utf-8") or "verified=false" in output.read_text(
        encoding="utf-8"
    )
    text = summary.read_text(encoding="utf-8")
    assert "| sbom-present | ❌ |" in text
    assert "| provenance-signature | ✅ |" in text
