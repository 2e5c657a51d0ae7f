"""The driver contract: what every deployment driver does, and the values it exchanges.

A driver deploys a :class:`Release` (an artifact identified by its sha256 digest) to one
environment, reports what is live (:meth:`Driver.current`, :meth:`Driver.status`) and rolls back
to an earlier release. Drivers keep no secrets and print nothing themselves: they report through
:class:`DriverContext.log` so the stage decides what reaches the job log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from devops_agent.core.errors import ConfigError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def normalize_digest(value: str, *, field_name: str = "digest") -> str:
    """``sha256:<hex>`` or ``<hex>`` → ``<hex>`` (lower case); anything else is bad input."""
    text = value.strip().lower()
    if text.startswith("sha256:"):
        text = text[len("sha256:") :]
    if not _HEX64.match(text):
        raise ConfigError(
            f"{value!r} is not a sha256 digest",
            "give 64 hex characters, optionally prefixed with sha256: (the build's `digests` output)",
            field=field_name,
        )
    return text


@dataclass(frozen=True)
class Release:
    """One deployable release: the artifact digest is its identity."""

    digest: str  # 64 hex characters, no prefix
    version: str
    artifact: str | None = None  # absolute path of the artifact file, when there is one
    image: str | None = None  # image repository (no tag/digest) for image-based drivers
    run_id: str | None = None

    @property
    def ref(self) -> str:
        return f"sha256:{self.digest}"

    @property
    def short(self) -> str:
        return self.digest[:12]

    def image_ref(self) -> str:
        """``<image>@sha256:<digest>`` (image drivers deploy by digest, never by tag)."""
        if not self.image:
            raise ConfigError(
                "an image-based driver needs the image repository",
                "set deploy.image (e.g. ghcr.io/org/app) or build an OCI image (build.image.enabled)",
                field="deploy.image",
            )
        return f"{self.image}@{self.ref}"

    def env(self, environment: str) -> dict[str, str]:
        """What user commands see: DEVOPS_AGENT_DIGEST and friends."""
        out = {
            "DEVOPS_AGENT_DIGEST": self.ref,
            "DEVOPS_AGENT_VERSION": self.version,
            "DEVOPS_AGENT_ENVIRONMENT": environment,
            "DEVOPS_AGENT_ARTIFACT": self.artifact or "",
            "DEVOPS_AGENT_IMAGE": self.image_ref() if self.image else "",
        }
        if self.run_id:
            out["DEVOPS_AGENT_RUN_ID"] = self.run_id
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.ref,
            "version": self.version,
            "artifact": self.artifact,
            "image": self.image,
            "run_id": self.run_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Release:
        return cls(
            digest=normalize_digest(str(data["digest"])),
            version=str(data.get("version") or "unknown"),
            artifact=data.get("artifact"),
            image=data.get("image"),
            run_id=data.get("run_id"),
        )

    def with_run(self, run_id: str | None) -> Release:
        return replace(self, run_id=run_id)


@dataclass(frozen=True)
class Deployed:
    """A release running somewhere, with where to reach it (when the driver knows)."""

    release: Release
    url: str | None = None
    slot: str | None = None  # process driver: blue | green
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release.to_json(), "url": self.url, "slot": self.slot, "detail": self.detail}


@dataclass(frozen=True)
class DeployOutcome:
    """What a deploy or rollback did."""

    deployed: Deployed
    changed: bool  # False when the release was already live (idempotent re-run)
    action: str  # deployed | unchanged | canary | rolled-back | promoted
    previous: Deployed | None = None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "deployed": self.deployed.to_json(),
            "changed": self.changed,
            "action": self.action,
            "previous": self.previous.to_json() if self.previous else None,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class DriverStatus:
    """The driver's view of the environment."""

    driver: str
    live: Deployed | None
    previous: Deployed | None = None
    canary: Deployed | None = None
    healthy: bool | None = None  # None: the driver cannot tell
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "driver": self.driver,
            "live": self.live.to_json() if self.live else None,
            "previous": self.previous.to_json() if self.previous else None,
            "canary": self.canary.to_json() if self.canary else None,
            "healthy": self.healthy,
            "detail": self.detail,
        }


def _no_log(message: str) -> None:
    """Default sink of DriverContext.log: drop the message."""


@dataclass(frozen=True)
class DriverContext:
    """What a driver needs from its caller."""

    app_dir: Path
    environment: str
    settings: Any  # DeploySettings (typed as Any to avoid an import cycle)
    env: Mapping[str, str] = field(default_factory=dict)
    log: Callable[[str], None] = _no_log
    secrets: tuple[str, ...] = ()  # values a driver must never log (already masked by the stage)

    @property
    def state_dir(self) -> Path:
        from devops_agent.core.state import state_dir

        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.environment)
        return state_dir(self.app_dir) / "deploy" / safe


@runtime_checkable
class Driver(Protocol):
    """The contract every driver implements (tests/test_deploy_contract.py checks it)."""

    name: str
    supports_canary: bool

    def deploy(self, release: Release, *, canary: bool = False) -> DeployOutcome:
        """Deploy ``release``; with ``canary`` (when supported) start it beside the live one."""
        ...

    def current(self) -> Deployed | None:
        """The live release, or None when nothing is deployed."""
        ...

    def rollback(self, target: Release | None, *, failed: Release | None = None) -> DeployOutcome:
        """Make ``target`` (the last good release; None: the driver's own previous) live again."""
        ...

    def status(self) -> DriverStatus:
        """What is live, what is kept for rollback, whether it is healthy (when known)."""
        ...

    def promote_canary(self) -> DeployOutcome:
        """Make the canary the live release (drivers without canary raise StageFailed)."""
        ...

    def stop(self) -> list[str]:
        """Stop what this driver started locally (process driver); others return []."""
        ...
