"""gitops driver: real commits pushed to a local bare repository; rollback reverts the commit."""

from __future__ import annotations

import base64
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from devops_agent.core.config import load_config
from devops_agent.core.errors import ConfigError, StageFailed
from devops_agent.deploy import make_driver
from devops_agent.deploy.base import Driver, DriverContext, Release
from devops_agent.deploy.gitops import digest_in, git_env, image_name_of, update_manifest
from devops_agent.deploy.settings import GitopsSettings, deploy_settings
from devops_agent.stages.validate import ValidateInputs, execute_validate
from tests.fixtures.deploy.support import quiet_actions

pytestmark = pytest.mark.slow
IMAGE = "ghcr.io/org/sample-app"
V1 = Release("1" * 64, "1.0.0", image=IMAGE)
V2 = Release("2" * 64, "2.0.0", image=IMAGE)

KUSTOMIZATION = """\
# managed by the platform team
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml   # the app
images:
  - name: ghcr.io/org/sample-app
    newTag: "0.9.0"   # replaced by a digest on deploy
  - name: redis
    newTag: "7"
"""
VALUES = "replicaCount: 2\nimage:\n  repository: ghcr.io/org/sample-app\n  tag: ''\n"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: app
          image: ghcr.io/org/sample-app:0.9.0  # pinned by devops-agent
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.test",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare 'manifests' repository with one commit on main."""
    bare = tmp_path / "manifests.git"
    git(tmp_path, "init", "--bare", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", str(bare), str(seed))
    (seed / "apps/web").mkdir(parents=True)
    (seed / "apps/web/kustomization.yaml").write_text(KUSTOMIZATION)
    (seed / "apps/web/values.yaml").write_text(VALUES)
    (seed / "apps/web/deployment.yaml").write_text(DEPLOYMENT)
    git(seed, "add", ".")
    git(seed, "commit", "-m", "seed")
    git(seed, "push", "origin", "HEAD:main")
    return bare


def remote_file(bare: Path, path: str) -> str:
    return git(bare, "show", f"main:{path}")


def remote_log(bare: Path) -> list[str]:
    return git(bare, "log", "--format=%s", "main").splitlines()


def make(tmp_path: Path, gitops: dict[str, Any], **deploy: Any) -> Driver:
    app = tmp_path / "app"
    (app / ".github").mkdir(parents=True, exist_ok=True)
    config = {
        "version": 1,
        "app": {"name": "sample-app"},
        "build": {"artifacts": ["dist/*"]},
        "deploy": {"driver": "gitops", "image": IMAGE, "timeout_seconds": 60, "gitops": gitops, **deploy},
        "validate": {
            "checks": [{"name": "health", "path": "/healthz"}],
            "retries": 2,
            "backoff_seconds": 0.01,
        },
    }
    (app / ".github" / "devops-agent.yml").write_text(yaml.safe_dump(config))
    settings = deploy_settings(load_config(app / ".github" / "devops-agent.yml"))
    return make_driver(DriverContext(app, "staging", settings))


def test_kustomize_deploy_commits_pushes_and_rollback_reverts(tmp_path: Path, remote: Path) -> None:
    driver = make(
        tmp_path, {"repository": str(remote), "path": "apps/web/kustomization.yaml", "format": "kustomize"}
    )
    first = driver.deploy(V1)
    assert first.action == "deployed"
    text = remote_file(remote, "apps/web/kustomization.yaml")
    assert f"digest: sha256:{'1' * 64}" in text
    assert 'newTag: "0.9.0"' not in text  # a digest pins the image; the tag is dropped
    assert "# managed by the platform team" in text  # comments survive
    assert "# the app" in text
    assert 'newTag: "7"' in text  # other images untouched
    assert remote_log(remote) == ["deploy(staging): 1.0.0 sha256:111111111111", "seed"]
    body = git(remote, "log", "-1", "--format=%B", "main")
    assert f"Devops-Agent-Digest: sha256:{'1' * 64}" in body
    assert "Devops-Agent-Environment: staging" in body

    assert driver.deploy(V1).action == "unchanged"  # idempotent: no second commit
    assert len(remote_log(remote)) == 2

    driver.deploy(V2)
    current = driver.current()
    assert current is not None
    assert current.release.digest == V2.digest
    assert current.release.version == "2.0.0"

    rolled = driver.rollback(V1, failed=V2)
    assert rolled.action == "rolled-back"
    assert rolled.notes[0].startswith("reverted ")
    log = remote_log(remote)
    assert log[0] == 'Revert "deploy(staging): 2.0.0 sha256:222222222222"'
    assert digest_in(remote_file(remote, "apps/web/kustomization.yaml").split("digest: ")[1]) == V1.digest
    current = driver.current()
    assert current is not None
    assert current.release.digest == V1.digest


def test_rollback_writes_the_digest_when_the_deploy_commit_cannot_be_reverted(
    tmp_path: Path, remote: Path
) -> None:
    driver = make(
        tmp_path, {"repository": str(remote), "path": "apps/web/values.yaml", "format": "helm-values"}
    )
    driver.deploy(V1)
    driver.deploy(V2)
    # someone edits the same line by hand after our deploy: the revert would conflict
    work = tmp_path / "hand"
    git(tmp_path, "clone", str(remote), str(work))
    values = (work / "apps/web/values.yaml").read_text().replace("sha256:" + "2" * 64, "sha256:" + "9" * 64)
    (work / "apps/web/values.yaml").write_text(values)
    git(work, "commit", "-am", "hand edit")
    git(work, "push", "origin", "HEAD:main")
    rolled = driver.rollback(V1, failed=Release("9" * 64, "hand"))
    assert rolled.notes == ("wrote the last good digest (no revertable deploy commit)",)
    assert remote_log(remote)[0] == "rollback(staging): 1.0.0 sha256:111111111111"
    assert yaml.safe_load(remote_file(remote, "apps/web/values.yaml"))["image"]["digest"] == V1.ref


def test_push_rejected_once_is_retried(tmp_path: Path, remote: Path) -> None:
    hook = remote / "hooks" / "pre-receive"
    marker = tmp_path / "rejected-once"
    hook.write_text(f"#!/bin/sh\nif [ ! -e '{marker}' ]; then touch '{marker}'; echo busy >&2; exit 1; fi\n")
    hook.chmod(0o755)
    driver = make(
        tmp_path,
        {
            "repository": str(remote),
            "path": "apps/web/deployment.yaml",
            "format": "yaml",
            "key": "spec.template.spec.containers.0.image",
        },
    )
    driver.deploy(V1)
    assert marker.exists()
    text = remote_file(remote, "apps/web/deployment.yaml")
    # list indentation and the trailing comment survive the edit
    assert f"        - name: app\n          image: {IMAGE}@sha256:{'1' * 64} # pinned by devops-agent" in text


def test_health_command_failure_reverts_the_deploy(tmp_path: Path, remote: Path) -> None:
    driver = make(
        tmp_path,
        {
            "repository": str(remote),
            "path": "apps/web/values.yaml",
            "format": "helm-values",
            "health_command": 'test "$DEVOPS_AGENT_DIGEST" != "sha256:' + "2" * 64 + '"',
            "health_timeout_seconds": 1,
        },
    )
    driver.deploy(V1)
    with pytest.raises(StageFailed, match=r"never became healthy.*reverted"):
        driver.deploy(V2)
    assert yaml.safe_load(remote_file(remote, "apps/web/values.yaml"))["image"]["digest"] == V1.ref
    assert remote_log(remote)[0].startswith('Revert "deploy(staging): 2.0.0')


@pytest.fixture
def argo(remote: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A stand-in for the GitOps controller + the app: healthy iff the repository holds the good digest."""
    wanted: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            text = remote_file(remote, "apps/web/values.yaml")
            digest = (yaml.safe_load(text).get("image") or {}).get("digest")
            ok = digest == wanted.get("good")
            self.send_response(200 if ok else 503)
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}' if ok else b'{"status": "degraded"}')

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", wanted
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_validate_failure_reverts_through_gitops_and_revalidates(
    tmp_path: Path, remote: Path, argo: tuple[str, dict[str, str]]
) -> None:
    url, wanted = argo
    wanted["good"] = V1.ref
    gitops = {
        "repository": str(remote),
        "path": "apps/web/values.yaml",
        "format": "helm-values",
        "health_url": f"{url}/healthz",
        "health_timeout_seconds": 1,
    }
    driver = make(tmp_path, gitops, url=url)
    app = tmp_path / "app"
    config = load_config(app / ".github" / "devops-agent.yml")
    from devops_agent.deploy.records import LocalRecorder

    recorder = LocalRecorder(app)
    driver.deploy(V1)
    entry = recorder.start("staging", V1, run_id="r1", driver="gitops", description="deploy")
    recorder.transition(entry, "success", description="validated", validated=True)
    # v2 is healthy at the controller's first look (so the deploy passes), then degrades
    wanted["good"] = V2.ref
    driver.deploy(V2)
    recorder.start("staging", V2, run_id="r2", driver="gitops", description="deploy")
    wanted["good"] = V1.ref
    outcome = execute_validate(app, config, quiet_actions(tmp_path), ValidateInputs(), run_id="r2")
    assert outcome.result == "rolled-back"
    assert outcome.rollback is not None
    assert outcome.rollback.revalidation is not None
    assert outcome.rollback.revalidation.passed
    assert remote_log(remote)[0] == 'Revert "deploy(staging): 2.0.0 sha256:222222222222"'


def test_token_reaches_git_through_env_not_argv() -> None:
    cfg = GitopsSettings(
        repository="https://github.com/o/m.git", path="a.yaml", format="yaml", token_env="PUSH_TOKEN"
    )
    env = git_env(cfg, {"PUSH_TOKEN": "s3cr3t-token"})
    header = env["GIT_CONFIG_VALUE_0"]
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    assert base64.b64decode(header.split("Basic ")[1]).decode() == "x-access-token:s3cr3t-token"
    with pytest.raises(ConfigError, match="PUSH_TOKEN is empty"):
        git_env(cfg, {})


@pytest.mark.parametrize(
    ("fmt", "key", "text", "expected"),
    [
        ("helm-values", None, "image:\n  repository: x\n", {"image": {"repository": "x", "digest": V1.ref}}),
        ("helm-values", "app.image.sha", "", {"app": {"image": {"sha": V1.ref}}}),
        (
            "yaml",
            "spec.image",
            "spec:\n  image: ghcr.io/o/other:1.2\n",
            {"spec": {"image": f"{IMAGE}@{V1.ref}"}},
        ),
        (
            "kustomize",
            None,
            "resources: []\n",
            {"resources": [], "images": [{"name": IMAGE, "digest": V1.ref}]},
        ),
    ],
)
def test_update_manifest_formats(fmt: str, key: str | None, text: str, expected: dict[str, Any]) -> None:
    edit = update_manifest(text, fmt, key, V1, where="f.yaml")
    assert yaml.safe_load(edit.text) == expected


def test_update_manifest_errors() -> None:
    with pytest.raises(ConfigError, match=r"deploy\.gitops\.key"):
        update_manifest("a: 1\n", "yaml", None, V1, where="f")
    with pytest.raises(StageFailed, match=r"not found"):
        update_manifest("a: 1\n", "yaml", "b.c", V1, where="f")
    assert image_name_of("registry:5000/o/app:1.2@sha256:abc") == "registry:5000/o/app"
    assert image_name_of("app") == "app"
