"""The full local flow on the real sample-app: `devops-agent run` (build → sbom → sign → staging
deploy → validate → promote) stops before production; `approve --local` promotes, deploys and
validates production; `run --approve` promotes without stopping; `reject --local` stops it.
Everything lands in the deployment history (state store + history file)."""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devops_agent.core.config import load_config
from devops_agent.core.gha import Actions
from devops_agent.core.state import StateStore
from devops_agent.deploy.base import DriverContext
from devops_agent.deploy.process import ProcessDriver
from devops_agent.deploy.settings import deploy_settings
from devops_agent.promote.settings import production_config
from devops_agent.stages import review
from devops_agent.stages.pipeline import PipelineContext, available_stages, run_pipeline
from tests.fixtures.deploy.support import free_ports, set_source, wait_gone
from tests.fixtures.promote.support import call, call_json
from tests.fixtures.supplychain.helpers import SUPPLIER, isolate

pytestmark = pytest.mark.slow
NAMES = ("build", "sbom", "sign", "deploy-staging", "validate", "promote")


@pytest.fixture
def app(sample_app: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    isolate(monkeypatch)
    monkeypatch.setenv("DEVOPS_AGENT_APPROVER", "alice")
    ports = free_ports(4)
    config = {
        "version": 1,
        "app": {"name": "sample-app"},
        "build": {
            "version": "1.0.0",
            "commands": ["python3 package.py dist/sample-app.pyz"],
            "artifacts": ["dist/*.pyz"],
        },
        "sbom": {"supplier": SUPPLIER},
        "deploy": {
            "driver": "process",
            "process": {"ports": ports[:2], "ready_timeout_seconds": 20, "stop_timeout_seconds": 5},
        },
        "validate": {
            "checks": [{"name": "health", "path": "/healthz", "json": {"status": "ok"}}],
            "retries": 3,
            "backoff_seconds": 0.05,
            "timeout_seconds": 30,
        },
        "promote": {"environment": "production", "deploy": {"process": {"ports": ports[2:]}}},
    }
    path = sample_app / ".github" / "devops-agent.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    yield sample_app
    loaded = load_config(path)
    pids: list[int] = []
    for cfg in (loaded, production_config(loaded)):
        settings = deploy_settings(cfg)
        driver = ProcessDriver(DriverContext(sample_app, settings.environment, settings))
        pids += driver.running_pids()
        driver.stop()
    assert wait_gone(pids) == []


def run(app: Path, *, approve: bool = False) -> PipelineContext:
    config = load_config(app / ".github" / "devops-agent.yml")
    with StateStore.for_app(app) as store:
        run_id = store.start_run()
    actions = Actions.from_env({}, stream=io.StringIO())
    ctx = PipelineContext(app, config, actions, run_id, options={"approve": approve})
    stages = [(n, m) for n, m in available_stages() if n in NAMES]
    assert [n for n, _ in stages] == list(NAMES)
    records = run_pipeline(ctx, stages)
    assert [r.status for r in records] == ["passed"] * len(NAMES), [(r.name, r.detail) for r in records]
    with StateStore.for_app(app) as store:
        store.finish_run(run_id, "success")
    return ctx


def healthz(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as r:
        data: dict[str, Any] = json.loads(r.read())
        return data


def production(app: Path) -> list[Any]:
    with StateStore.for_app(app) as store:
        return store.deployments("production")


def set_version(app: Path, version: str) -> None:
    path = app / ".github" / "devops-agent.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["build"]["version"] = version
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    set_source(app, broken=False, marker=version)


def test_run_waits_then_approve_promotes_then_run_approve_and_reject(app: Path) -> None:
    # 1. run: staging deployed and validated, production waits
    ctx = run(app)
    waiting = ctx.results["promote"]
    assert waiting["status"] == "waiting"
    assert "devops-agent approve --local" in waiting["approve_command"]
    assert "waiting for approval" in "".join(ctx.actions.summary_parts)
    (row,) = production(app)
    assert row.status == "pending"
    assert row.details["approval"]["state"] == "waiting"
    code, pending = call_json(review.main, "pending", "--local", "--app", str(app))
    assert [p["run"] for p in pending["pending"]] == [waiting["approval_run"]]

    # 2. approve --local: production deployed + validated, recorded with the change record
    code, result = call_json(
        review.main,
        "approve",
        "--local",
        "--app",
        str(app),
        "--run",
        str(waiting["approval_run"]),
        "--comment",
        "staging green, change record reviewed",
    )
    assert code == 0
    assert result["status"] == "promoted"
    assert healthz(result["url"])["version"] == "1.0.0"
    staging_url = ctx.results["deploy-staging"]["outcome"]["deployed"]["url"]
    assert result["url"] != staging_url
    assert healthz(staging_url)["version"] == "1.0.0"  # staging still serves
    promoted = [r for r in production(app) if r.status == "success"]
    assert len(promoted) == 1
    details = promoted[0].details
    assert details["validated"] is True
    assert details["approval"]["by"] == "alice"
    assert details["approval"]["comment"] == "staging green, change record reviewed"
    assert details["change_record"]["approver"] == "alice"
    assert "verify" in details["change_record"]["verification"]
    with StateStore.for_app(app) as store:
        assert store.get_run(ctx.run_id).status == "success"  # type: ignore[union-attr]
    assert call_json(review.main, "pending", "--local", "--app", str(app))[1]["pending"] == []
    history = (app / "docs" / "operations" / "deployment_history.md").read_text(encoding="utf-8")
    for needle in (
        "| staging |",
        "validated",
        "awaiting-approval",
        "| approved |",
        "| production |",
        "| promoted |",
    ):
        assert needle in history, needle

    # 3. run --approve: a new release goes all the way without stopping
    set_version(app, "1.1.0")
    ctx2 = run(app, approve=True)
    assert ctx2.results["promote"]["status"] == "promoted"
    assert healthz(ctx2.results["promote"]["url"])["version"] == "1.1.0"
    assert ctx2.results["promote"]["change_record"]["previous"]["version"] == "1.0.0"

    # 4. a rejected release never reaches production
    set_version(app, "1.2.0")
    ctx3 = run(app)
    approval_run = ctx3.results["promote"]["approval_run"]
    code, _ = call(
        review.main,
        "reject",
        "--local",
        "--app",
        str(app),
        "--run",
        str(approval_run),
        "--comment",
        "not now",
    )
    assert code == 0
    assert healthz(ctx2.results["promote"]["url"])["version"] == "1.1.0"
    with StateStore.for_app(app) as store:
        assert store.get_run(ctx3.run_id).status == "failure"  # type: ignore[union-attr]
    rejected = [r for r in production(app) if (r.details.get("approval") or {}).get("state") == "rejected"]
    assert len(rejected) == 1
    assert rejected[0].version == "1.2.0"
    # approving what was rejected is impossible: nothing waits any more
    assert (
        call(
            review.main,
            "approve",
            "--local",
            "--app",
            str(app),
            "--run",
            str(approval_run),
            "--comment",
            "oops",
        )[0]
        == 1
    )


def test_approve_local_needs_a_comment_and_a_waiting_run(app: Path) -> None:
    assert call(review.main, "approve", "--local", "--app", str(app), "--comment", "")[0] == 2
    assert call(review.main, "approve", "--local", "--app", str(app), "--comment", "nothing waits")[0] == 1
