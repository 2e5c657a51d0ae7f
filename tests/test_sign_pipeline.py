"""`devops-agent run` includes sbom and sign (which verifies what it signed) for the sample app."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from devops_agent.core.config import load_config
from devops_agent.core.gha import Actions
from devops_agent.stages.pipeline import PipelineContext, available_stages, run_pipeline
from tests.fixtures.supplychain.helpers import SUPPLIER, add_config, artifact, evidence_dir, isolate


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch)


def test_sbom_and_sign_join_the_pipeline() -> None:
    names = [name for name, _ in available_stages()]
    assert names.index("build") < names.index("sbom") < names.index("sign")


def test_run_builds_sboms_signs_and_verifies_the_sample_app(sample_app: Path) -> None:
    add_config(sample_app, f"sbom:\n  supplier: {SUPPLIER}\n")
    config = load_config(sample_app / ".github" / "devops-agent.yml")
    stream = io.StringIO()
    ctx = PipelineContext(sample_app, config, Actions.from_env({}, stream=stream), run_id="local-test-run")
    stages = [(n, m) for n, m in available_stages() if n in {"build", "sbom", "sign"}]
    records = run_pipeline(ctx, stages)
    assert [(r.name, r.status) for r in records] == [
        ("build", "passed"),
        ("sbom", "passed"),
        ("sign", "passed"),
    ]
    _, sha256 = artifact(sample_app)
    assert ctx.results["sbom"]["ntia_findings"] == []
    verified = ctx.results["sign"]["verified"]
    assert [v["digest"] for v in verified] == [f"sha256:{sha256}"]
    assert all(v["verified"] for v in verified)
    assert "signed (key) and verified" in ctx.results["sign"]["detail"]
    for name in ("sbom.cdx.json", "sbom.spdx.json", "provenance.dsse.json", "sbom.dsse.json"):
        assert (evidence_dir(sample_app, sha256) / name).is_file()
