"""`command` driver: the user's own deploy / rollback / status shell commands.

Each command runs with ``bash -eo pipefail`` in the app directory and sees the release in its
environment: DEVOPS_AGENT_DIGEST (``sha256:<hex>``), DEVOPS_AGENT_VERSION,
DEVOPS_AGENT_ENVIRONMENT, DEVOPS_AGENT_ARTIFACT, DEVOPS_AGENT_IMAGE; the rollback command also
gets DEVOPS_AGENT_FAILED_DIGEST. What is live is remembered in
``.devops-agent/deploy/<env>/command.json`` so a re-run of the same digest changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from devops_agent.core.errors import StageFailed
from devops_agent.deploy import shell
from devops_agent.deploy.base import Deployed, DeployOutcome, DriverContext, DriverStatus, Release

STATE_FILE = "command.json"


class CommandDriver:
    name = "command"
    supports_canary = False

    def __init__(self, ctx: DriverContext) -> None:
        if ctx.settings.command is None:  # settings builder guarantees it; keep a clear error
            raise StageFailed("deploy.command is missing", "add deploy.command.deploy and .rollback")
        self.ctx = ctx
        self.cfg = ctx.settings.command
        self.path = ctx.state_dir / STATE_FILE

    def _load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
            return data
        except FileNotFoundError:
            return {"live": None, "previous": None}

    def _save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def _deployed(self, raw: dict[str, Any] | None, detail: str = "") -> Deployed | None:
        if not raw:
            return None
        return Deployed(Release.from_json(raw), self.ctx.settings.url, None, detail)

    def _run(self, what: str, command: str, env: dict[str, str]) -> shell.Completed:
        self.ctx.log(f"{what}: {command}")
        result = shell.shell(
            command, cwd=self.ctx.app_dir, env=env, timeout=self.ctx.settings.timeout_seconds
        )
        if result.output.strip():
            self.ctx.log(result.tail(40))
        return shell.require_ok(
            result,
            f"deploy.command.{what} ({command!r})",
            f"fix the {what} command; it ran in {self.ctx.app_dir}",
        )

    def deploy(self, release: Release, *, canary: bool = False) -> DeployOutcome:
        if canary:
            raise StageFailed(
                "the command driver has no canary", "remove validate.canary or use the process driver"
            )
        data = self._load()
        live = self._deployed(data.get("live"))
        if live is not None and live.release.digest == release.digest:
            return DeployOutcome(live, changed=False, action="unchanged")
        self._run("deploy", self.cfg.deploy, release.env(self.ctx.environment))
        data = {"live": release.to_json(), "previous": data.get("live")}
        self._save(data)
        deployed = self._deployed(data["live"])
        assert deployed is not None
        return DeployOutcome(deployed, changed=True, action="deployed", previous=live)

    def rollback(self, target: Release | None, *, failed: Release | None = None) -> DeployOutcome:
        data = self._load()
        if target is None:
            if not data.get("previous"):
                raise StageFailed(
                    "nothing to roll back to: no previous release is recorded",
                    "pass --to DIGEST for the release to restore",
                )
            target = Release.from_json(data["previous"])
        failed_deployed = self._deployed(data.get("live"))
        env = target.env(self.ctx.environment)
        failed_release = failed or (failed_deployed.release if failed_deployed else None)
        env["DEVOPS_AGENT_FAILED_DIGEST"] = failed_release.ref if failed_release else ""
        self._run("rollback", self.cfg.rollback, env)
        self._save({"live": target.to_json(), "previous": None})
        deployed = self._deployed(target.to_json())
        assert deployed is not None
        return DeployOutcome(deployed, changed=True, action="rolled-back", previous=failed_deployed)

    def current(self) -> Deployed | None:
        return self._deployed(self._load().get("live"))

    def status(self) -> DriverStatus:
        data = self._load()
        live = self._deployed(data.get("live"))
        healthy: bool | None = None
        detail = "no status command configured"
        if self.cfg.status:
            env = live.release.env(self.ctx.environment) if live else {}
            result = shell.shell(
                self.cfg.status, cwd=self.ctx.app_dir, env=env, timeout=self.ctx.settings.timeout_seconds
            )
            healthy = result.ok
            detail = result.tail(5) or f"exit code {result.exit_code}"
        return DriverStatus(self.name, live, self._deployed(data.get("previous")), None, healthy, detail)

    def promote_canary(self) -> DeployOutcome:
        raise StageFailed("the command driver has no canary", "remove validate.canary")

    def stop(self) -> list[str]:
        return []
