"""command driver: the user's deploy/rollback/status commands, the digest in their environment."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from devops_agent.core.config import load_config
from devops_agent.core.errors import GateFailed, StageFailed
from devops_agent.core.gha import Actions
from devops_agent.core.state import StateStore
from devops_agent.deploy import make_driver
from devops_agent.deploy.base import Driver, DriverContext, Release
from devops_agent.deploy.settings import deploy_settings
from devops_agent.stages.build import execute_build
from devops_agent.stages.deploy import DeployInputs, execute_deploy
from tests.fixtures.deploy.support import quiet_actions, write_config

V1 = Release("1" * 64, "1.0.0", artifact="/srv/v1.pyz")
V2 = Release("2" * 64, "2.0.0", artifact="/srv/v2.pyz")

DEPLOY = (
    'printf "%s\\n" "deploy $DEVOPS_AGENT_DIGEST $DEVOPS_AGENT_VERSION $DEVOPS_AGENT_ENVIRONMENT '
    '$DEVOPS_AGENT_ARTIFACT" >> calls.log'
)
ROLLBACK = 'printf "%s\\n" "rollback $DEVOPS_AGENT_DIGEST from $DEVOPS_AGENT_FAILED_DIGEST" >> calls.log'
STATUS = 'tail -1 calls.log | grep -q "^deploy\\|^rollback"'


def make(app: Path, command: dict[str, Any]) -> Driver:
    (app / ".github").mkdir(parents=True, exist_ok=True)
    config = {
        "version": 1,
        "app": {"name": "sample-app"},
        "build": {"artifacts": ["dist/*"]},
        "deploy": {
            "driver": "command",
            "url": "https://staging.example.test",
            "timeout_seconds": 5,
            "command": command,
        },
    }
    (app / ".github" / "devops-agent.yml").write_text(yaml.safe_dump(config))
    settings = deploy_settings(load_config(app / ".github" / "devops-agent.yml"))
    return make_driver(DriverContext(app, "staging", settings))


def calls(app: Path) -> list[str]:
    return (app / "calls.log").read_text().splitlines()


def test_deploy_passes_the_release_in_env_and_is_idempotent(tmp_path: Path) -> None:
    driver = make(tmp_path, {"deploy": DEPLOY, "rollback": ROLLBACK, "status": STATUS})
    assert driver.current() is None
    outcome = driver.deploy(V1)
    assert outcome.action == "deployed"
    assert outcome.deployed.url == "https://staging.example.test"
    assert calls(tmp_path) == [f"deploy sha256:{'1' * 64} 1.0.0 staging /srv/v1.pyz"]
    assert driver.deploy(V1).action == "unchanged"
    assert len(calls(tmp_path)) == 1  # the command did not run again
    driver.deploy(V2)
    status = driver.status()
    assert status.healthy is True
    assert status.live is not None
    assert status.live.release.digest == V2.digest
    assert status.previous is not None
    assert status.previous.release.digest == V1.digest


def test_rollback_runs_the_rollback_command_with_both_digests(tmp_path: Path) -> None:
    driver = make(tmp_path, {"deploy": DEPLOY, "rollback": ROLLBACK})
    driver.deploy(V1)
    driver.deploy(V2)
    outcome = driver.rollback(None)  # the driver's own previous release
    assert outcome.deployed.release.digest == V1.digest
    assert calls(tmp_path)[-1] == f"rollback sha256:{'1' * 64} from sha256:{'2' * 64}"
    current = driver.current()
    assert current is not None
    assert current.release.digest == V1.digest
    with pytest.raises(StageFailed, match="nothing to roll back to"):
        driver.rollback(None)  # no previous after a rollback


def test_failing_or_hanging_commands_fail_with_their_output(tmp_path: Path) -> None:
    driver = make(tmp_path, {"deploy": "echo 'quota exceeded' >&2; exit 4", "rollback": "sleep 30"})
    with pytest.raises(StageFailed, match=r"(?s)failed with exit code 4.*quota exceeded"):
        driver.deploy(V1)
    assert driver.current() is None
    with pytest.raises(StageFailed, match="timed out"):
        driver.rollback(V1)


def test_deploy_stage_with_the_command_driver_records_error_on_failure(
    sample_app: Path, tmp_path: Path
) -> None:
    write_config(
        sample_app,
        ports=[1, 2],
        deploy={
            "driver": "command",
            "url": "https://staging.example.test",
            "command": {"deploy": "exit 9", "rollback": "true"},
        },
    )
    config = load_config(sample_app / ".github" / "devops-agent.yml")
    execute_build(config, sample_app, Actions.from_env(stream=io.StringIO()), skip_tests=True)
    with pytest.raises(StageFailed, match="exit code 9"):
        execute_deploy(sample_app, config, quiet_actions(tmp_path), DeployInputs(), run_id="r1")
    with StateStore.for_app(sample_app) as store:
        [record] = store.deployments("staging")
    assert record.status == "error"
    assert [t["status"] for t in record.details["transitions"]] == ["in_progress", "error"]
    history = (sample_app / "docs/operations/deployment_history.md").read_text()
    assert "❌ deploy failed" in history


def test_deploy_stage_outputs(sample_app: Path, tmp_path: Path) -> None:
    write_config(
        sample_app,
        ports=[1, 2],
        deploy={
            "driver": "command",
            "url": "https://staging.example.test",
            "command": {"deploy": DEPLOY, "rollback": ROLLBACK},
        },
    )
    config = load_config(sample_app / ".github" / "devops-agent.yml")
    execute_build(config, sample_app, Actions.from_env(stream=io.StringIO()), skip_tests=True)
    from devops_agent.core.command import Context
    from devops_agent.stages.deploy import publish

    actions = quiet_actions(tmp_path)
    result = execute_deploy(sample_app, config, actions, DeployInputs(), run_id="r1")
    publish(result, Context(actions, sample_app))
    assert actions.outputs["action"] == "deployed"
    assert actions.outputs["url"] == "https://staging.example.test"
    assert actions.outputs["digest"] == result.plan.release.ref
    written = (tmp_path / "actions-output.txt").read_text()
    assert "digest" in written
    assert result.plan.release.ref in written
    data = json.loads(json.dumps(result.to_json()))
    assert data["plan"]["driver"] == "command"


def test_deploy_from_a_build_output_directory_restores_it(sample_app: Path, tmp_path: Path) -> None:
    """CI: deploy runs in another job than build; `artifact` is the build's exported output."""
    from devops_agent.stages.build import export_artifacts

    write_config(
        sample_app,
        ports=[1, 2],
        deploy={
            "driver": "command",
            "url": "https://staging.example.test",
            "command": {"deploy": DEPLOY, "rollback": ROLLBACK},
        },
    )
    config = load_config(sample_app / ".github" / "devops-agent.yml")
    built = execute_build(config, sample_app, Actions.from_env(stream=io.StringIO()), skip_tests=True)
    out = tmp_path / "downloaded"
    export_artifacts(built, sample_app, out)
    # a fresh checkout: no dist/, no local state
    import shutil

    shutil.rmtree(sample_app / "dist")
    shutil.rmtree(sample_app / ".devops-agent")
    result = execute_deploy(
        sample_app, config, quiet_actions(tmp_path), DeployInputs(artifact=str(out)), run_id="9"
    )
    assert result.plan.release.digest == built.artifacts[0].sha256
    assert (sample_app / built.artifacts[0].path).is_file()
    assert calls(sample_app)[0].startswith(f"deploy sha256:{built.artifacts[0].sha256} 1.0.0 staging ")
    # a tampered download is refused before anything is deployed
    (out / built.artifacts[0].name).write_bytes(b"tampered")
    with pytest.raises(GateFailed, match="does not hash to the build's"):
        execute_deploy(
            sample_app, config, quiet_actions(tmp_path), DeployInputs(artifact=str(out)), run_id="10"
        )
    assert len(calls(sample_app)) == 1
