"""kubectl and helm drivers against stand-in executables (tests/fixtures/deploy/bin/).

There is no Kubernetes cluster where these tests run: the stand-ins record every argument list and
keep a revision history, so these tests prove the command protocol (what is run, in which order,
with which digest) and the rollback decisions — not a real rollout."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from devops_agent.core.config import load_config
from devops_agent.core.errors import ConfigError, StageFailed
from devops_agent.deploy import make_driver
from devops_agent.deploy.base import Driver, DriverContext, Release
from devops_agent.deploy.settings import deploy_settings
from tests.fixtures.deploy.support import STAND_INS

IMAGE = "ghcr.io/org/sample-app"
V1 = Release("1" * 64, "1.0.0", image=IMAGE)
V2 = Release("2" * 64, "2.0.0", image=IMAGE)
V3 = Release("3" * 64, "3.0.0", image=IMAGE)


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "cluster"
    monkeypatch.setenv("PATH", f"{STAND_INS}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DEVOPS_AGENT_FAKE_KUBE_DIR", str(state))
    return state


def make(tmp_path: Path, deploy: dict[str, Any]) -> Driver:
    app = tmp_path / "app"
    (app / ".github").mkdir(parents=True, exist_ok=True)
    (app / "k8s").mkdir(exist_ok=True)
    config = {
        "version": 1,
        "app": {"name": "sample-app"},
        "build": {"artifacts": ["dist/*"]},
        "deploy": {"image": IMAGE, "url": "https://staging.example.test", "timeout_seconds": 60, **deploy},
    }
    (app / ".github" / "devops-agent.yml").write_text(yaml.safe_dump(config))
    settings = deploy_settings(load_config(app / ".github" / "devops-agent.yml"))
    return make_driver(DriverContext(app, "staging", settings))


def calls(state: Path, tool: str) -> list[list[str]]:
    path = state / f"{tool}-calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


KUBECTL = {
    "driver": "kubectl",
    "kubectl": {
        "manifests": ["k8s/"],
        "deployment": "web",
        "namespace": "shop",
        "context": "staging-ctx",
        "container": "app",
        "rollout_timeout_seconds": 120,
    },
}
HELM = {
    "driver": "helm",
    "helm": {
        "release": "web",
        "chart": "charts/web",
        "namespace": "shop",
        "values": ["values-staging.yaml"],
        "timeout_seconds": 90,
    },
}


def test_kubectl_deploy_sends_the_digest_and_waits_for_the_rollout(tmp_path: Path, kube: Path) -> None:
    driver = make(tmp_path, KUBECTL)
    outcome = driver.deploy(V1)
    assert outcome.action == "deployed"
    base = ["--context", "staging-ctx", "--namespace", "shop"]
    got = calls(kube, "kubectl")
    assert got == [
        [*base, "get", "deployment/web", "-o", "jsonpath={.spec.template.spec.containers[*].image}"],
        [*base, "apply", "-f", "k8s/"],
        [*base, "set", "image", "deployment/web", f"app={IMAGE}@sha256:{'1' * 64}"],
        [
            *base,
            "annotate",
            "deployment/web",
            "--overwrite",
            f"kubernetes.io/change-cause=devops-agent deploy 1.0.0 sha256:{'1' * 64}",
        ],
        [*base, "rollout", "status", "deployment/web", "--timeout=120s"],
    ]
    current = driver.current()
    assert current is not None
    assert current.release.digest == V1.digest
    assert current.url == "https://staging.example.test"


def test_kubectl_same_digest_is_unchanged(tmp_path: Path, kube: Path) -> None:
    driver = make(tmp_path, KUBECTL)
    driver.deploy(V1)
    before = len(calls(kube, "kubectl"))
    assert driver.deploy(V1).action == "unchanged"
    assert [c[4] for c in calls(kube, "kubectl")[before:]] == ["get"]  # only looked, changed nothing


def test_kubectl_rollback_is_rollout_undo(tmp_path: Path, kube: Path) -> None:
    driver = make(tmp_path, KUBECTL)
    driver.deploy(V1)
    driver.deploy(V2)
    outcome = driver.rollback(V1, failed=V2)
    assert outcome.action == "rolled-back"
    assert outcome.deployed.release.digest == V1.digest
    verbs = [c[4:6] for c in calls(kube, "kubectl")]
    assert ["rollout", "undo"] in verbs
    assert ["set", "image"] not in verbs[verbs.index(["rollout", "undo"]) :]  # undo alone restored v1
    current = driver.current()
    assert current is not None
    assert current.release.digest == V1.digest


def test_kubectl_rollback_sets_the_last_good_digest_when_undo_is_not_it(tmp_path: Path, kube: Path) -> None:
    driver = make(tmp_path, KUBECTL)
    for release in (V1, V2, V3):
        driver.deploy(release)
    outcome = driver.rollback(V1, failed=V3)  # undo goes to v2, but v2 is not the last good one
    assert outcome.deployed.release.digest == V1.digest
    assert "set image to the last good digest" in " ".join(outcome.notes)
    current = driver.current()
    assert current is not None
    assert current.release.digest == V1.digest


def test_kubectl_failed_rollout_is_undone(
    tmp_path: Path, kube: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = make(tmp_path, KUBECTL)
    driver.deploy(V1)
    monkeypatch.setenv("DEVOPS_AGENT_FAKE_ROLLOUT_FAIL", "2222")
    with pytest.raises(StageFailed, match=r"did not roll out .* the rollout was undone"):
        driver.deploy(V2)
    current = driver.current()
    assert current is not None
    assert current.release.digest == V1.digest


def test_helm_upgrade_install_with_digest_then_rollback_to_the_good_revision(
    tmp_path: Path, kube: Path
) -> None:
    driver = make(tmp_path, HELM)
    driver.deploy(V1)
    driver.deploy(V2)
    driver.deploy(V3)
    upgrade = next(c for c in calls(kube, "helm") if c[0] == "upgrade")
    assert upgrade == [
        "upgrade",
        "--install",
        "web",
        "charts/web",
        "--namespace",
        "shop",
        "--values",
        "values-staging.yaml",
        "--set-string",
        f"image.digest=sha256:{'1' * 64}",
        "--description",
        f"devops-agent deploy 1.0.0 sha256:{'1' * 64}",
        "--wait",
        "--timeout",
        "90s",
    ]
    outcome = driver.rollback(V1, failed=V3)
    assert outcome.deployed.release.digest == V1.digest
    assert outcome.notes == ("helm rollback to revision 1",)
    rollback = [c for c in calls(kube, "helm") if c[0] == "rollback"]
    assert rollback == [["rollback", "web", "1", "--namespace", "shop", "--wait", "--timeout", "90s"]]
    status = driver.status()
    assert status.healthy is True
    assert status.live is not None
    assert status.live.release.digest == V1.digest
    assert driver.deploy(V1).action == "unchanged"


def test_helm_failed_upgrade_rolls_back_and_fails(
    tmp_path: Path, kube: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = make(tmp_path, HELM)
    driver.deploy(V1)
    monkeypatch.setenv("DEVOPS_AGENT_FAKE_HELM_FAIL", "2222")
    with pytest.raises(StageFailed, match="rolled back to the previous revision"):
        driver.deploy(V2)
    current = driver.current()
    assert current is not None
    assert current.release.digest == V1.digest


def test_image_drivers_need_an_image_name(tmp_path: Path, kube: Path) -> None:
    driver = make(tmp_path, KUBECTL)
    with pytest.raises(ConfigError, match=r"deploy\.image"):
        driver.deploy(Release("4" * 64, "4.0.0"))
    assert calls(kube, "kubectl") == []  # refused before running anything


def test_no_canary_on_cluster_drivers(tmp_path: Path, kube: Path) -> None:
    assert make(tmp_path, KUBECTL).supports_canary is False
    with pytest.raises(StageFailed, match="no canary"):
        make(tmp_path, HELM).deploy(V1, canary=True)
