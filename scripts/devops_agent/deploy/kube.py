"""`kubectl` and `helm` drivers.

kubectl: ``apply -f`` the manifests, ``set image`` to ``<image>@sha256:<digest>``, record the
change cause, ``rollout status``; rollback is ``rollout undo`` (then, if the undone revision is
not the last good digest, ``set image`` to it). helm: ``upgrade --install --wait`` with the digest
in ``image_key``; rollback is ``helm rollback`` to the newest revision that carried the last good
digest. A rollout that does not become ready is undone before the error is raised.

No cluster exists where this project's tests run: they put stand-in ``kubectl``/``helm``
executables on PATH that record their arguments and keep a revision history
(tests/fixtures/deploy/bin/), so what is proven is the command protocol, not a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from devops_agent.core.errors import StageFailed
from devops_agent.deploy import shell
from devops_agent.deploy.base import Deployed, DeployOutcome, DriverContext, DriverStatus, Release
from devops_agent.deploy.gitops import digest_in
from devops_agent.deploy.settings import HelmSettings, KubectlSettings


class _Cli:
    """Shared: run the tool with a deadline, log the argv, fail with the output tail."""

    tool = ""

    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx

    def _base(self) -> list[str]:
        raise NotImplementedError

    def _run(self, *args: str, check: bool = True, timeout: float | None = None) -> shell.Completed:
        argv = [*self._base(), *args]
        self.ctx.log("$ " + " ".join(argv))
        result = shell.run(argv, cwd=self.ctx.app_dir, timeout=timeout or self.ctx.settings.timeout_seconds)
        if check:
            shell.require_ok(
                result, f"{self.tool} {args[0]}", f"check the {self.tool} output above and the cluster access"
            )
        return result

    def _known(self, digest: str | None) -> Release | None:
        if digest is None:
            return None
        return Release(digest, "unknown", image=self.ctx.settings.image)

    def promote_canary(self) -> DeployOutcome:
        raise StageFailed(
            f"the {self.tool} driver has no canary", "use Argo Rollouts/Flagger, or remove validate.canary"
        )

    def stop(self) -> list[str]:
        return []


class KubectlDriver(_Cli):
    name = "kubectl"
    supports_canary = False
    tool = "kubectl"

    def __init__(self, ctx: DriverContext) -> None:
        super().__init__(ctx)
        if ctx.settings.kubectl is None:
            raise StageFailed("deploy.kubectl is missing", "add deploy.kubectl.manifests and deployment")
        self.cfg: KubectlSettings = ctx.settings.kubectl

    def _base(self) -> list[str]:
        argv = ["kubectl"]
        if self.cfg.context:
            argv += ["--context", self.cfg.context]
        if self.cfg.namespace:
            argv += ["--namespace", self.cfg.namespace]
        return argv

    @property
    def _target(self) -> str:
        return f"deployment/{self.cfg.deployment}"

    def _image_now(self) -> str | None:
        result = self._run(
            "get", self._target, "-o", "jsonpath={.spec.template.spec.containers[*].image}", check=False
        )
        return result.output.strip() or None if result.ok else None

    def _rollout_status(self) -> shell.Completed:
        return self._run(
            "rollout",
            "status",
            self._target,
            f"--timeout={self.cfg.rollout_timeout_seconds}s",
            check=False,
            timeout=self.cfg.rollout_timeout_seconds + 30,
        )

    def _set_image(self, release: Release, action: str) -> None:
        self._run("set", "image", self._target, f"{self.cfg.container}={release.image_ref()}")
        self._run(
            "annotate",
            self._target,
            "--overwrite",
            f"kubernetes.io/change-cause=devops-agent {action} {release.version} {release.ref}",
        )

    def deploy(self, release: Release, *, canary: bool = False) -> DeployOutcome:
        if canary:
            return self.promote_canary()
        image_ref = release.image_ref()
        before = self._image_now()
        if digest_in(before) == release.digest:
            return DeployOutcome(
                Deployed(release, self.ctx.settings.url, None, image_ref), False, "unchanged"
            )
        for manifest in self.cfg.manifests:
            self._run("apply", "-f", manifest)
        self._set_image(release, "deploy")
        status = self._rollout_status()
        if not status.ok:
            self._run("rollout", "undo", self._target, check=False)
            raise StageFailed(
                f"{self._target} did not roll out {image_ref}: {status.tail(5)}; the rollout was undone",
                "inspect the pods (kubectl describe) and fix the release",
            )
        prev = self._known(digest_in(before))
        return DeployOutcome(
            Deployed(release, self.ctx.settings.url, None, image_ref),
            changed=True,
            action="deployed",
            previous=Deployed(prev, self.ctx.settings.url) if prev else None,
        )

    def rollback(self, target: Release | None, *, failed: Release | None = None) -> DeployOutcome:
        before = self._known(digest_in(self._image_now()))
        self._run("rollout", "undo", self._target)
        notes = ["kubectl rollout undo"]
        now = digest_in(self._image_now())
        if target is not None and now != target.digest:
            self._set_image(target, "rollback")
            notes.append(f"set image to the last good digest {target.short}")
            now = target.digest
        status = self._rollout_status()
        shell.require_ok(status, f"rollout status of {self._target} after rollback", "inspect the cluster")
        restored = target if target is not None else self._known(now)
        if restored is None:
            raise StageFailed(f"{self._target} has no image after rollback", "inspect the cluster")
        return DeployOutcome(
            Deployed(restored, self.ctx.settings.url),
            changed=True,
            action="rolled-back",
            previous=Deployed(before, self.ctx.settings.url) if before else None,
            notes=tuple(notes),
        )

    def current(self) -> Deployed | None:
        release = self._known(digest_in(self._image_now()))
        return Deployed(release, self.ctx.settings.url) if release else None

    def status(self) -> DriverStatus:
        live = self.current()
        result = self._run("rollout", "status", self._target, "--timeout=10s", check=False, timeout=40)
        return DriverStatus(self.name, live, None, None, result.ok, result.tail(3))


class HelmDriver(_Cli):
    name = "helm"
    supports_canary = False
    tool = "helm"

    def __init__(self, ctx: DriverContext) -> None:
        super().__init__(ctx)
        if ctx.settings.helm is None:
            raise StageFailed("deploy.helm is missing", "add deploy.helm.release and chart")
        self.cfg: HelmSettings = ctx.settings.helm

    def _base(self) -> list[str]:
        return ["helm"]

    def _ns(self) -> list[str]:
        return ["--namespace", self.cfg.namespace] if self.cfg.namespace else []

    def _wait(self) -> list[str]:
        return ["--wait", "--timeout", f"{self.cfg.timeout_seconds}s"]

    def _values(self) -> dict[str, Any]:
        result = self._run("get", "values", self.cfg.release, *self._ns(), "--output", "json", check=False)
        if not result.ok:
            return {}
        try:
            data = json.loads(result.output or "{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _digest_now(self) -> str | None:
        node: Any = self._values()
        for part in self.cfg.image_key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return digest_in(str(node)) if node is not None else None

    def _history(self) -> list[dict[str, Any]]:
        result = self._run("history", self.cfg.release, *self._ns(), "--output", "json", check=False)
        try:
            data = json.loads(result.output or "[]") if result.ok else []
        except ValueError:
            return []
        return [r for r in data if isinstance(r, dict)]

    def _timeout(self) -> float:
        return float(self.cfg.timeout_seconds + 60)

    def deploy(self, release: Release, *, canary: bool = False) -> DeployOutcome:
        if canary:
            return self.promote_canary()
        before = self._digest_now()
        if before == release.digest:
            return DeployOutcome(Deployed(release, self.ctx.settings.url), False, "unchanged")
        argv: list[str] = ["upgrade", "--install", self.cfg.release, self.cfg.chart, *self._ns()]
        for values in self.cfg.values:
            argv += ["--values", values]
        argv += ["--set-string", f"{self.cfg.image_key}={release.ref}"]
        argv += ["--description", f"devops-agent deploy {release.version} {release.ref}", *self._wait()]
        result = self._run(*argv, check=False, timeout=self._timeout())
        if not result.ok:
            if before is not None:
                self._run(
                    "rollback",
                    self.cfg.release,
                    *self._ns(),
                    *self._wait(),
                    check=False,
                    timeout=self._timeout(),
                )
            raise StageFailed(
                f"helm upgrade of {self.cfg.release} to {release.short} failed: {result.tail(5)}"
                + ("; rolled back to the previous revision" if before is not None else ""),
                "inspect the release (helm status, kubectl describe) and fix the chart or the image",
            )
        prev = self._known(before)
        return DeployOutcome(
            Deployed(release, self.ctx.settings.url),
            changed=True,
            action="deployed",
            previous=Deployed(prev, self.ctx.settings.url) if prev else None,
        )

    def _revision_for(self, digest: str, history: Sequence[dict[str, Any]]) -> int | None:
        for entry in sorted(history, key=lambda r: int(r.get("revision", 0)), reverse=True):
            if f"sha256:{digest}" in str(entry.get("description", "")):
                return int(entry["revision"])
        return None

    def rollback(self, target: Release | None, *, failed: Release | None = None) -> DeployOutcome:
        before = self._known(self._digest_now())
        argv = ["rollback", self.cfg.release]
        notes: list[str] = []
        if target is not None:
            revision = self._revision_for(target.digest, self._history())
            if revision is not None:
                argv.append(str(revision))
                notes.append(f"helm rollback to revision {revision}")
        if not notes:
            notes.append("helm rollback to the previous revision")
        self._run(*argv, *self._ns(), *self._wait(), timeout=self._timeout())
        now = self._digest_now()
        restored = target if target is not None and now == target.digest else self._known(now)
        if restored is None:
            raise StageFailed(
                f"helm release {self.cfg.release} has no digest after rollback", "inspect the release"
            )
        return DeployOutcome(
            Deployed(restored, self.ctx.settings.url),
            changed=True,
            action="rolled-back",
            previous=Deployed(before, self.ctx.settings.url) if before else None,
            notes=tuple(notes),
        )

    def current(self) -> Deployed | None:
        release = self._known(self._digest_now())
        return Deployed(release, self.ctx.settings.url) if release else None

    def status(self) -> DriverStatus:
        result = self._run("status", self.cfg.release, *self._ns(), "--output", "json", check=False)
        healthy: bool | None = None
        detail = result.tail(3)
        if result.ok:
            try:
                info = json.loads(result.output).get("info", {})
                healthy = info.get("status") == "deployed"
                detail = f"helm status: {info.get('status')}"
            except (ValueError, AttributeError):
                healthy = None
        return DriverStatus(self.name, self.current(), None, None, healthy, detail)
