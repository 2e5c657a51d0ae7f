"""The process driver end to end on the real sample-app: blue/green, rollback, no leaks."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devops_agent.core.command import Context
from devops_agent.core.config import load_config
from devops_agent.core.errors import GateFailed, StageFailed
from devops_agent.core.state import StateStore
from devops_agent.deploy import make_driver
from devops_agent.deploy.base import DriverContext
from devops_agent.deploy.process import ProcessDriver
from devops_agent.deploy.settings import deploy_settings
from devops_agent.stages.deploy import DeployInputs, execute_deploy
from devops_agent.stages.history import read_rows
from devops_agent.stages.validate import ValidateInputs, ValidateOutcome, execute_validate, failure, publish
from tests.fixtures.deploy.support import (
    build,
    free_ports,
    quiet_actions,
    summary_text,
    wait_gone,
    write_config,
)

pytestmark = pytest.mark.slow


def get_json(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def port_closes(port: int, timeout: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return True
        time.sleep(0.05)
    return False


def driver_for(app: Path) -> ProcessDriver:
    config = load_config(app / ".github" / "devops-agent.yml")
    settings = deploy_settings(config)
    driver = make_driver(DriverContext(app, settings.environment, settings))
    assert isinstance(driver, ProcessDriver)
    return driver


@pytest.fixture
def app(sample_app: Path) -> Iterator[Path]:
    """The sample app with private ports; every process it started is stopped and checked gone."""
    write_config(sample_app, ports=free_ports(2))
    yield sample_app
    driver = driver_for(sample_app)
    pids = driver.running_pids()
    driver.stop()
    assert wait_gone(pids) == [], "the process driver leaked release processes"
    assert driver.running_pids() == []


def deploy(app: Path, tmp: Path, name: str) -> dict[str, Any]:
    config = load_config(app / ".github" / "devops-agent.yml")
    actions = quiet_actions(tmp, name)
    result = execute_deploy(app, config, actions, DeployInputs(), run_id=f"run-{name}")
    return result.to_json()


def validate_outcome(app: Path, tmp: Path, name: str) -> tuple[ValidateOutcome, str]:
    config = load_config(app / ".github" / "devops-agent.yml")
    actions = quiet_actions(tmp, name)
    outcome = execute_validate(app, config, actions, ValidateInputs(), run_id=f"run-{name}")
    publish(outcome, Context(actions, app))
    return outcome, summary_text(actions)


def validate(app: Path, tmp: Path, name: str) -> tuple[str, dict[str, Any], str]:
    outcome, summary = validate_outcome(app, tmp, name)
    return outcome.result, outcome.to_json(), summary


def test_blue_green_deploys_then_broken_release_rolls_back_to_previous(app: Path, tmp_path: Path) -> None:
    build(app, "1.0.0")
    d1 = deploy(app, tmp_path, "v1")
    url1 = d1["outcome"]["deployed"]["url"]
    assert validate(app, tmp_path, "v1-validate")[0] == "passed"
    assert get_json(f"{url1}/healthz") == (200, {"status": "ok", "version": "1.0.0"})

    build(app, "2.0.0")
    d2 = deploy(app, tmp_path, "v2")
    url2 = d2["outcome"]["deployed"]["url"]
    assert url2 != url1, "the new release must start on the idle slot"
    assert d2["outcome"]["previous"]["release"]["version"] == "1.0.0"
    # Blue/green: the previous release keeps running beside the new live one.
    assert get_json(f"{url1}/healthz")[0] == 200
    assert validate(app, tmp_path, "v2-validate")[0] == "passed"

    build(app, "3.0.0", broken=True)
    d3 = deploy(app, tmp_path, "v3")
    url3 = d3["outcome"]["deployed"]["url"]
    assert url3 == url1, "v3 replaces v1 on the idle slot; v2 stays warm"
    assert get_json(f"{url3}/healthz")[0] == 503
    result, data, summary = validate(app, tmp_path, "v3-validate")

    assert result == "rolled-back"
    rollback = data["rollback"]
    assert rollback["outcome"]["deployed"]["release"]["version"] == "2.0.0"
    assert rollback["revalidation"]["passed"] is True
    assert isinstance(data["time_to_restore_seconds"], float)
    # The previous release answers again, the broken one is gone.
    status, body = get_json(f"{url2}/healthz")
    assert (status, body["version"]) == (200, "2.0.0")
    live = driver_for(app).current()
    assert live is not None
    assert live.release.version == "2.0.0"
    assert live.url == url2
    # The broken release was sent SIGTERM at the switch and exits on its own (not on the TTR path).
    assert port_closes(int(str(url3).rsplit(":", 1)[1]))
    # The summary carries the evidence and the time to restore.
    assert "Time to restore" in summary
    assert "status 503, expected 200" in summary
    assert "rollback to 2.0.0" in summary
    # State store: v3 failed, v2 restored and validated with its TTR.
    with StateStore.for_app(app) as store:
        records = store.deployments("staging")
    by = {(r.version, r.run_id): r for r in records}
    assert by[("3.0.0", "run-v3")].status == "failure"
    restored = by[("2.0.0", "run-v3-validate")]
    assert restored.status == "success"
    assert restored.details["validated"] is True
    assert restored.details["rollback_of"].startswith("sha256:")
    assert restored.details["ttr_seconds"] == pytest.approx(data["time_to_restore_seconds"], abs=0.01)
    statuses = [t["status"] for t in by[("3.0.0", "run-v3")].details["transitions"]]
    assert statuses == ["in_progress", "in_progress", "failure"]
    # History file: one row per event, TTR on the rollback row.
    rows = read_rows(app / "docs" / "operations" / "deployment_history.md")
    statuses_in_file = [(r[2], r[4]) for r in rows]
    assert statuses_in_file == [
        ("1.0.0", "🚀 deployed"),
        ("1.0.0", "✅ validated"),
        ("2.0.0", "🚀 deployed"),
        ("2.0.0", "✅ validated"),
        ("3.0.0", "🚀 deployed"),
        ("3.0.0", "❌ failed"),
        ("2.0.0", "↩️ rolled back"),
    ]
    assert rows[-1][5].startswith("TTR ")
    # failure() is what the stage raises: exit 1 naming both releases and the TTR.
    outcome, _ = validate_outcome(app, tmp_path, "after")
    assert outcome.result == "passed", "validate re-run after the rollback validates the restored release"


def test_redeploying_the_same_digest_is_a_no_op(app: Path, tmp_path: Path) -> None:
    build(app, "1.0.0")
    first = deploy(app, tmp_path, "a")
    pid_before = driver_for(app).running_pids()
    again = deploy(app, tmp_path, "a")  # the same run re-executed
    assert first["outcome"]["action"] == "deployed"
    assert again["outcome"]["action"] == "unchanged"
    assert driver_for(app).running_pids() == pid_before
    assert validate(app, tmp_path, "a")[0] == "passed"
    deploy(app, tmp_path, "a")  # a re-run after validation keeps the validated status
    with StateStore.for_app(app) as store:
        records = store.deployments("staging")
    assert len(records) == 1
    assert records[0].status == "success"
    rows = read_rows(app / "docs" / "operations" / "deployment_history.md")
    # The third deploy is the same (environment, digest, status, run) row: not appended twice.
    assert [r[4] for r in rows] == ["🚀 deployed", "⏸️ unchanged", "✅ validated"]


def test_validate_fails_without_rollback_when_disabled(app: Path, tmp_path: Path) -> None:
    write_config(app, ports=list(driver_for(app).settings.ports), validate={"rollback": False})
    build(app, "1.0.0")
    deploy(app, tmp_path, "v1")
    assert validate(app, tmp_path, "v1")[0] == "passed"
    build(app, "2.0.0", broken=True)
    deploy(app, tmp_path, "v2")
    result, data, _ = validate(app, tmp_path, "v2")
    assert result == "failed"
    assert data["rollback"] is None
    live = driver_for(app).current()
    assert live is not None
    assert live.release.version == "2.0.0"


def test_first_release_broken_has_nothing_to_roll_back_to(app: Path, tmp_path: Path) -> None:
    build(app, "1.0.0", broken=True)
    deploy(app, tmp_path, "v1")
    outcome, summary = validate_outcome(app, tmp_path, "v1")
    assert outcome.result == "rollback-failed"
    assert outcome.rollback is not None
    assert "nothing to roll back to" in outcome.rollback.error
    error = failure(outcome)
    assert isinstance(error, GateFailed)
    assert error.exit_code == 1
    assert "rollback did not restore service" in error.cause
    assert "Rollback of staging failed" in summary


def test_cold_rollback_restarts_the_last_good_release_from_its_kept_copy(app: Path, tmp_path: Path) -> None:
    build(app, "1.0.0")
    deploy(app, tmp_path, "v1")
    assert validate(app, tmp_path, "v1")[0] == "passed"
    build(app, "2.0.0", broken=True)
    deploy(app, tmp_path, "v2")
    # The warm previous release dies (e.g. the machine rebooted): rollback must restart it.
    driver = driver_for(app)
    previous = driver.status().previous
    assert previous is not None
    import os
    import signal

    state = json.loads((driver.dir / "process.json").read_text())
    pid = state["slots"][previous.slot]["pid"]
    os.killpg(pid, signal.SIGKILL)
    assert wait_gone([pid]) == []
    # dist/ now holds v2: the restart must use the kept copy of v1, not the rebuilt file.
    result, data, _ = validate(app, tmp_path, "v2")
    assert result == "rolled-back"
    assert "restarted 1.0.0" in " ".join(data["rollback"]["notes"])
    live = driver_for(app).current()
    assert live is not None
    status, body = get_json(f"{live.url}/healthz")
    assert (status, body["version"]) == (200, "1.0.0")


def test_canary_takes_a_share_of_checks_then_is_promoted(app: Path, tmp_path: Path) -> None:
    ports = list(driver_for(app).settings.ports)
    write_config(app, ports=ports, validate={"canary": {"percent": 25, "rounds": 8}})
    build(app, "1.0.0")
    d1 = deploy(app, tmp_path, "v1")
    # Nothing is live yet: there is no stable release to compare with, so it is deployed fully.
    assert d1["outcome"]["action"] == "deployed"
    assert validate(app, tmp_path, "v1")[0] == "passed"
    build(app, "2.0.0")
    d2 = deploy(app, tmp_path, "v2")
    assert d2["outcome"]["action"] == "canary"
    stable = driver_for(app).current()
    assert stable is not None
    assert stable.release.version == "1.0.0"
    result, data, summary = validate(app, tmp_path, "v2")
    assert result == "passed"
    canary_checks = data["canary"]["checks"]
    targets = [c["attempts"][0]["target"] for c in canary_checks]
    assert targets.count("canary") == 2 * 2  # 25% of 8 rounds, 2 checks per round
    live = driver_for(app).current()
    assert live is not None
    assert live.release.version == "2.0.0"
    assert "Canary phase" in summary


def test_failed_canary_is_discarded_and_live_never_changes(app: Path, tmp_path: Path) -> None:
    ports = list(driver_for(app).settings.ports)
    write_config(app, ports=ports, validate={"canary": {"percent": 50, "rounds": 4}})
    build(app, "1.0.0")
    deploy(app, tmp_path, "v1")
    assert validate(app, tmp_path, "v1")[0] == "passed"
    live_before = driver_for(app).current()
    build(app, "2.0.0", broken=True)
    deploy(app, tmp_path, "v2")
    result, data, _ = validate(app, tmp_path, "v2")
    assert result == "rolled-back"
    assert "discarded the canary" in " ".join(data["rollback"]["notes"])
    live = driver_for(app).current()
    assert live is not None
    assert live_before is not None
    assert (live.release.version, live.url) == ("1.0.0", live_before.url)
    assert driver_for(app).status().canary is None


def test_release_that_exits_before_listening_fails_the_deploy_and_keeps_live(
    app: Path, tmp_path: Path
) -> None:
    build(app, "1.0.0")
    deploy(app, tmp_path, "v1")
    build(app, "2.0.0")
    server = app / "src" / "sample_app" / "server.py"
    server.write_text(server.read_text() + "\nraise SystemExit(3)\n")
    config = load_config(app / ".github" / "devops-agent.yml")
    from devops_agent.stages.build import execute_build

    execute_build(config, app, quiet_actions(tmp_path, "b"), skip_tests=True)
    with pytest.raises(StageFailed, match="exited with code 3 before listening"):
        execute_deploy(app, config, quiet_actions(tmp_path, "d"), DeployInputs(), run_id="r2")
    live = driver_for(app).current()
    assert live is not None
    assert live.release.version == "1.0.0"
    with StateStore.for_app(app) as store:
        statuses = {r.version: r.status for r in store.deployments("staging")}
    assert statuses["2.0.0"] == "error"


def test_port_held_by_a_foreign_process_is_refused(app: Path, tmp_path: Path) -> None:
    ports = driver_for(app).settings.ports
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", ports[0]))
    squatter.listen()
    try:
        build(app, "1.0.0")
        config = load_config(app / ".github" / "devops-agent.yml")
        with pytest.raises(StageFailed, match="already in use by a process devops-agent did not start"):
            execute_deploy(app, config, quiet_actions(tmp_path, "d"), DeployInputs(), run_id="r1")
    finally:
        squatter.close()
    assert driver_for(app).running_pids() == []


def test_a_config_switch_is_a_new_blue_green_deployment_and_rolls_back(app: Path, tmp_path: Path) -> None:
    """Same artifact, broken start-up configuration (e.g. a bad env switch): deployed beside the
    live release like any other change, fails validation, and the warm previous one is restored."""
    ports = list(driver_for(app).settings.ports)
    build(app, "1.0.0")
    deploy(app, tmp_path, "v1")
    assert validate(app, tmp_path, "v1")[0] == "passed"
    first = driver_for(app).current()
    assert first is not None
    url1 = first.url
    # The "switch": serve a directory listing instead of the app (no /healthz) — same digest.
    write_config(
        app,
        ports=ports,
        deploy={
            "process": {
                "ports": ports,
                "command": "env RELEASE={artifact} python3 -m http.server {port} --bind {host} --directory .",
                "ready_timeout_seconds": 20,
            }
        },
    )
    d2 = deploy(app, tmp_path, "v1-config")
    assert d2["outcome"]["action"] == "deployed", "a new configuration is not 'unchanged'"
    assert d2["outcome"]["deployed"]["url"] != url1
    result, data, _ = validate(app, tmp_path, "v1-config")
    assert result == "rolled-back"
    assert "status 404" in data["validation"]["reason"]
    live = driver_for(app).current()
    assert live is not None
    assert live.url == url1
    assert get_json(f"{url1}/healthz")[0] == 200
