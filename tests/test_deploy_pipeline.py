"""`devops-agent run` (build → deploy-staging → validate) and the deploy/validate/rollback/history
commands on the real sample-app."""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devops_agent.core.config import load_config
from devops_agent.core.errors import GateFailed
from devops_agent.core.gha import Actions
from devops_agent.core.state import StateStore
from devops_agent.deploy.base import DriverContext
from devops_agent.deploy.process import ProcessDriver
from devops_agent.deploy.settings import deploy_settings
from devops_agent.stages import deploy as deploy_stage
from devops_agent.stages import history as history_stage
from devops_agent.stages import rollback as rollback_stage
from devops_agent.stages import validate as validate_stage
from devops_agent.stages.pipeline import PipelineContext, available_stages, run_pipeline
from tests.fixtures.deploy.support import (
    build,
    free_ports,
    quiet_actions,
    set_source,
    set_version,
    wait_gone,
    write_config,
)

pytestmark = pytest.mark.slow
STAGES = [
    ("build", "devops_agent.stages.build"),
    ("deploy-staging", "devops_agent.stages.deploy"),
    ("validate", "devops_agent.stages.validate"),
]


@pytest.fixture
def app(sample_app: Path) -> Iterator[Path]:
    write_config(sample_app, ports=free_ports(2))
    settings = deploy_settings(load_config(sample_app / ".github/devops-agent.yml"))
    yield sample_app
    driver = ProcessDriver(DriverContext(sample_app, settings.environment, settings))
    pids = driver.running_pids()
    driver.stop()
    assert wait_gone(pids) == []


def healthz(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as r:
            return r.status, json.loads(r.read())["version"]
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["version"]


def run(app: Path, tmp: Path, name: str) -> tuple[PipelineContext, Actions]:
    config = load_config(app / ".github" / "devops-agent.yml")
    actions = quiet_actions(tmp, name)
    with StateStore.for_app(app) as store:
        run_id = store.start_run()
    ctx = PipelineContext(app, config, actions, run_id)
    return ctx, actions


def test_deploy_and_validate_are_pipeline_stages() -> None:
    names = [name for name, _ in available_stages()]
    assert names.index("deploy-staging") < names.index("validate")
    assert {"build", "deploy-staging", "validate"} <= set(names)


def test_pipeline_deploys_validates_then_rolls_back_a_broken_release(app: Path, tmp_path: Path) -> None:
    set_version(app, "1.0.0")
    ctx, actions = run(app, tmp_path, "run1")
    records = run_pipeline(ctx, STAGES)
    assert [r.status for r in records] == ["passed", "passed", "passed"]
    url = ctx.results["deploy-staging"]["outcome"]["deployed"]["url"]
    assert healthz(url) == (200, "1.0.0")
    first_summary = "".join(actions.summary_parts)
    assert "Validate 1.0.0 in staging: ✅ passed" in first_summary

    # The second run ships a release whose /healthz fails.
    set_source(app, broken=True, marker="2")
    set_version(app, "2.0.0")
    ctx2, actions2 = run(app, tmp_path, "run2")
    with pytest.raises(GateFailed, match=r"rolled back to 1\.0\.0 .* in \d+\.\d+s"):
        run_pipeline(ctx2, STAGES)
    summary = "".join(actions2.summary_parts)
    assert "Time to restore:" in summary
    assert "↩️ failed — rolled back" in summary
    assert "| validate | failed |" in summary  # the run's own stage table
    # The previous release answers again on the URL that is live now.
    live = ProcessDriver(DriverContext(app, "staging", deploy_settings(ctx2.config))).current()
    assert live is not None
    assert healthz(str(live.url)) == (200, "1.0.0")
    assert actions2.outputs["result"] == "rolled-back"
    assert float(actions2.outputs["time-to-restore"]) > 0


def test_commands_end_to_end(
    app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "gh-output.txt"
    summary = tmp_path / "gh-summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    build(app, "1.0.0", actions=Actions.from_env(stream=io.StringIO()))
    assert deploy_stage.main(["--app", str(app), "--json"]) == 0
    deployed = json.loads(capsys.readouterr().out)
    assert deployed["outcome"]["action"] == "deployed"
    assert "environment<<" in output.read_text() or "environment=" in output.read_text()
    assert validate_stage.main(["--app", str(app)]) == 0
    build(app, "2.0.0", actions=Actions.from_env(stream=io.StringIO()))
    assert deploy_stage.main(["--app", str(app)]) == 0
    assert validate_stage.main(["--app", str(app)]) == 0
    capsys.readouterr()

    # Manual rollback: plan first (dry run changes nothing), then do it.
    assert rollback_stage.main(["--app", str(app), "--dry-run"]) == 0
    assert "2.0.0" in capsys.readouterr().out
    assert rollback_stage.main(["--app", str(app), "--environment", "production"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert rollback_stage.main(["--app", str(app), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["restored"] is True
    assert result["outcome"]["deployed"]["release"]["version"] == "1.0.0"
    assert result["revalidation"]["passed"] is True
    assert "Time to restore" in summary.read_text()

    assert history_stage.main(["--app", str(app), "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    versions = [(d["version"], d["status"]) for d in history["deployments"]]
    assert versions[0] == ("1.0.0", "success")  # newest first: the rollback
    assert ("2.0.0", "success") in versions
    assert history["deployments"][0]["ttr_seconds"] is not None
    assert history["file_rows"] == 5  # deployed + validated for each release, then the rollback
    assert history_stage.main(["--app", str(app)]) == 0
    assert "Deployment history of sample-app" in capsys.readouterr().out

    # --stop (no --environment): everything the driver started, in every environment, is gone.
    settings = deploy_settings(load_config(app / ".github" / "devops-agent.yml"))
    pids = ProcessDriver(DriverContext(app, "staging", settings)).running_pids()
    assert pids
    assert deploy_stage.main(["--app", str(app), "--stop"]) == 0
    assert "stopped: staging " in capsys.readouterr().out
    assert wait_gone(pids) == []


SUPPLY_CHAIN = [
    ("build", "devops_agent.stages.build"),
    ("sbom", "devops_agent.stages.sbom"),
    ("sign", "devops_agent.stages.sign"),
    ("deploy-staging", "devops_agent.stages.deploy"),
    ("validate", "devops_agent.stages.validate"),
]


def test_pipeline_verifies_signed_evidence_before_deploying(app: Path, tmp_path: Path) -> None:
    """deploy.verify: true (the default) with the real sbom + sign stages: verified, deployed,
    validated; then a broken start-up configuration of the same artifact rolls back."""
    pytest.importorskip("devops_agent.stages.sign", reason="the sign stage is not part of this build")
    ports = list(deploy_settings(load_config(app / ".github/devops-agent.yml")).process.ports)
    write_config(app, ports=ports, deploy={"verify": True})
    ctx, _ = run(app, tmp_path, "signed")
    records = run_pipeline(ctx, SUPPLY_CHAIN)
    assert [r.status for r in records] == ["passed"] * 5
    assert ctx.results["deploy-staging"]["verification"]["method"].startswith("devops-agent verify")

    write_config(
        app,
        ports=ports,
        deploy={
            "verify": True,
            "process": {
                "ports": ports,
                "command": "env RELEASE={artifact} python3 -m http.server {port} --bind {host}",
            },
        },
    )
    ctx2, actions2 = run(app, tmp_path, "switch")
    with pytest.raises(GateFailed, match="rolled back"):
        run_pipeline(ctx2, SUPPLY_CHAIN)
    assert "Time to restore:" in "".join(actions2.summary_parts)
    live = ProcessDriver(DriverContext(app, "staging", deploy_settings(ctx2.config))).current()
    assert live is not None
    assert healthz(str(live.url))[0] == 200
