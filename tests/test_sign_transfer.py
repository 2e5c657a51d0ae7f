"""CI hand-over between jobs: the build job exports artifacts + manifest, the sbom and sign jobs
restore them with --build-dir (re-hashing every file) and the evidence verifies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devops_agent.stages import build
from tests.fixtures.supplychain.helpers import (
    SUPPLIER,
    add_config,
    artifact,
    isolate,
    run,
    sbom_app,
    sign_app,
    verify_app,
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch)


@pytest.fixture
def exported(sample_app: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(fresh checkout without build outputs, directory the build job exported)."""
    add_config(sample_app, f"sbom:\n  supplier: {SUPPLIER}\n")
    checkout = tmp_path / "checkout"
    shutil.copytree(sample_app, checkout)
    out = tmp_path / "build-export"
    code, text = run(build, "--app", str(sample_app), "--skip-tests", "--out", str(out))
    assert code == 0, text
    return checkout, out


def test_sbom_and_sign_in_later_jobs_from_the_exported_build(exported: tuple[Path, Path]) -> None:
    checkout, out = exported
    assert not (checkout / ".devops-agent" / "build-manifest.json").exists()
    code, text = sbom_app(checkout, "--build-dir", str(out))
    assert code == 0, text
    code, text = sign_app(checkout, "--build-dir", str(out))  # idempotent restore
    assert code == 0, text
    path, _ = artifact(checkout)
    assert verify_app(checkout, "--artifact", str(path))[0] == 0


def test_a_tampered_download_stops_the_stage(exported: tuple[Path, Path]) -> None:
    checkout, out = exported
    exported_file = next(p for p in out.iterdir() if p.suffix == ".pyz")
    exported_file.write_bytes(exported_file.read_bytes() + b"\0")
    code, text = sbom_app(checkout, "--build-dir", str(out))
    assert code == 1
    assert "is not what the build produced" in text
    assert not (checkout / ".devops-agent" / "build-manifest.json").exists()


def test_missing_manifest_is_bad_input(sample_app: Path, tmp_path: Path) -> None:
    code, text = sbom_app(sample_app, "--build-dir", str(tmp_path))
    assert code == 2
    assert "--build-dir" in text


def test_dry_run_plans_from_the_export_and_restores_nothing(exported: tuple[Path, Path]) -> None:
    checkout, out = exported
    code, text = sign_app(checkout, "--build-dir", str(out), "--dry-run")
    assert code == 0, text
    assert "would sign 1 subject" in text
    assert not (checkout / ".devops-agent").exists()
