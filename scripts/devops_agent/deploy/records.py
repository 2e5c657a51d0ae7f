"""Deployment records with status transitions, behind one small interface.

- :class:`LocalRecorder` — the state store (``StateStore.record_deployment``, idempotent per
  environment + digest + run); used everywhere, and the only one on a workstation.
- :class:`PlatformRecorder` — GitHub Deployments + deployment statuses through
  :class:`devops_agent.core.platform.Platform` (``create_deployment`` with an idempotency key,
  ``create_deployment_status``); added in CI next to the local one (:class:`FanOut`).

Statuses follow GitHub's vocabulary: ``in_progress`` (deployed, waiting for validation),
``success`` (validated), ``failure`` (validation failed; rolled back), ``error`` (the deploy
operation itself failed), ``inactive`` (superseded). "Last good" = the newest validated release
of the environment other than the failing one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from devops_agent.core.state import DeploymentRecord, StateStore
from devops_agent.deploy.base import Release

STATUSES = ("queued", "pending", "in_progress", "success", "failure", "error", "inactive")


@dataclass(frozen=True)
class Transition:
    status: str
    description: str
    at: float
    url: str | None = None


@dataclass(frozen=True)
class DeploymentEntry:
    """One deployment of a release to an environment, as the recorders see it."""

    environment: str
    release: Release
    run_id: str | None
    status: str
    driver: str = ""
    url: str | None = None
    validated: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0
    ids: Mapping[str, Any] = field(default_factory=dict)  # recorder name → its id
    details: Mapping[str, Any] = field(default_factory=dict)
    transitions: tuple[Transition, ...] = ()


class DeploymentRecorder(Protocol):
    name: str

    def start(
        self, environment: str, release: Release, *, run_id: str | None, driver: str, description: str
    ) -> DeploymentEntry:
        """Create (or find again, on a re-run) the deployment and give it status ``in_progress``."""
        ...

    def transition(
        self,
        entry: DeploymentEntry,
        status: str,
        *,
        description: str,
        url: str | None = None,
        validated: bool | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> DeploymentEntry:
        """Add a status; ``details`` are merged into what is kept."""
        ...

    def last_good(self, environment: str, *, exclude: str | None = None) -> Release | None:
        """The newest validated release of ``environment`` whose digest is not ``exclude``."""
        ...

    def latest(self, environment: str) -> DeploymentEntry | None:
        """The newest deployment of ``environment`` (what validate validates)."""
        ...


# -- local -------------------------------------------------------------------------------------


class LocalRecorder:
    """The state store in ``<app>/.devops-agent/state.db``."""

    name = "local"

    def __init__(self, app_dir: Path, *, clock: Any = time.time) -> None:
        self.app_dir = app_dir
        self._clock = clock

    def _entry(self, rec: DeploymentRecord) -> DeploymentEntry:
        d = dict(rec.details)
        release = Release.from_json(
            {
                "digest": rec.digest,
                "version": rec.version or d.get("version"),
                "artifact": d.get("artifact"),
                "image": d.get("image"),
                "run_id": rec.run_id,
            }
        )
        transitions = tuple(
            Transition(t["status"], t.get("description", ""), float(t["at"]), t.get("url"))
            for t in d.get("transitions", [])
        )
        return DeploymentEntry(
            environment=rec.environment,
            release=release,
            run_id=rec.run_id,
            status=rec.status,
            driver=str(d.get("driver", "")),
            url=d.get("url"),
            validated=bool(d.get("validated", False)),
            created_at=rec.created_at,
            updated_at=rec.updated_at,
            ids={"local": rec.id},
            details=d,
            transitions=transitions,
        )

    def _find(
        self, store: StateStore, environment: str, digest: str, run_id: str | None
    ) -> DeploymentRecord | None:
        for rec in store.deployments(environment, limit=1000):
            if rec.digest == digest and rec.run_id == run_id:
                return rec
        return None

    def start(
        self, environment: str, release: Release, *, run_id: str | None, driver: str, description: str
    ) -> DeploymentEntry:
        with StateStore.for_app(self.app_dir) as store:
            existing = self._find(store, environment, release.digest, run_id)
            if existing is not None and existing.status == "success" and existing.details.get("validated"):
                return self._entry(existing)  # a re-run never downgrades a validated deployment
            details = dict(existing.details) if existing else {}
            details.update(
                {
                    "driver": driver,
                    "version": release.version,
                    "artifact": release.artifact,
                    "image": release.image,
                }
            )
            details.setdefault("transitions", [])
            details.setdefault("validated", False)
            details["transitions"] = [
                *details["transitions"],
                {"status": "in_progress", "description": description, "at": self._clock()},
            ]
            store.record_deployment(
                environment,
                release.digest,
                version=release.version,
                run_id=run_id,
                status="in_progress",
                details=details,
            )
            rec = self._find(store, environment, release.digest, run_id)
            assert rec is not None
            return self._entry(rec)

    def transition(
        self,
        entry: DeploymentEntry,
        status: str,
        *,
        description: str,
        url: str | None = None,
        validated: bool | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> DeploymentEntry:
        with StateStore.for_app(self.app_dir) as store:
            rec = self._find(store, entry.environment, entry.release.digest, entry.run_id)
            merged = dict(rec.details) if rec else dict(entry.details)
            merged.update(dict(details or {}))
            if url is not None:
                merged["url"] = url
            if validated is not None:
                merged["validated"] = validated
            transitions = list(merged.get("transitions", []))
            last = transitions[-1] if transitions else None
            if not last or last.get("status") != status or last.get("description") != description:
                transitions.append(
                    {"status": status, "description": description, "at": self._clock(), "url": url}
                )
            merged["transitions"] = transitions
            store.record_deployment(
                entry.environment,
                entry.release.digest,
                version=entry.release.version,
                run_id=entry.run_id,
                status=status,
                details=merged,
            )
            rec = self._find(store, entry.environment, entry.release.digest, entry.run_id)
            assert rec is not None
            return self._entry(rec)

    def entries(self, environment: str | None = None, limit: int = 100) -> list[DeploymentEntry]:
        with StateStore.for_app(self.app_dir) as store:
            return [self._entry(r) for r in store.deployments(environment, limit=limit)]

    def last_good(self, environment: str, *, exclude: str | None = None) -> Release | None:
        for entry in self.entries(environment, limit=1000):
            if entry.validated and entry.status == "success" and entry.release.digest != exclude:
                return entry.release
        return None

    def latest(self, environment: str) -> DeploymentEntry | None:
        entries = self.entries(environment, limit=1)
        return entries[0] if entries else None


# -- GitHub through the Platform interface ------------------------------------------------------


def deployment_key(environment: str, digest: str, run_id: str | None) -> str:
    return f"deploy:{environment}:sha256:{digest}:{run_id or 'manual'}"


class PlatformRecorder:
    """GitHub Deployments (and their statuses) via the Platform interface."""

    name = "platform"

    def __init__(self, platform: Any, *, ref: str, log_url: str = "") -> None:
        self.platform = platform  # devops_agent.core.platform.Platform
        self.ref = ref  # the commit sha being deployed (GITHUB_SHA in Actions)
        self.log_url = log_url

    def _payload(self, release: Release, driver: str) -> dict[str, Any]:
        return {"digest": release.ref, "version": release.version, "image": release.image, "driver": driver}

    def start(
        self, environment: str, release: Release, *, run_id: str | None, driver: str, description: str
    ) -> DeploymentEntry:
        deployment = self.platform.create_deployment(
            self.ref,
            environment,
            description=description[:140],
            payload=self._payload(release, driver),
            key=deployment_key(environment, release.digest, run_id),
        )
        statuses = self.platform.list_deployment_statuses(deployment.id)
        if statuses and statuses[0].state == "success":  # a re-run never downgrades a validated deployment
            return DeploymentEntry(
                environment,
                release,
                run_id,
                "success",
                driver,
                validated=True,
                ids={"platform": deployment.id},
            )
        self.platform.create_deployment_status(
            deployment.id, "in_progress", description=description[:140], log_url=self.log_url
        )
        return DeploymentEntry(
            environment, release, run_id, "in_progress", driver, ids={"platform": deployment.id}
        )

    def transition(
        self,
        entry: DeploymentEntry,
        status: str,
        *,
        description: str,
        url: str | None = None,
        validated: bool | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> DeploymentEntry:
        deployment_id = entry.ids.get("platform")
        if deployment_id is None:
            found = self.platform.list_deployments(environment=entry.environment)
            key = deployment_key(entry.environment, entry.release.digest, entry.run_id)
            match = next((d for d in found if d.key == key), None)
            if match is None:
                started = self.start(
                    entry.environment,
                    entry.release,
                    run_id=entry.run_id,
                    driver=entry.driver,
                    description=description,
                )
                deployment_id = started.ids["platform"]
            else:
                deployment_id = match.id
        self.platform.create_deployment_status(
            int(deployment_id),
            status,
            description=description[:140],
            environment_url=url or "",
            log_url=self.log_url,
        )
        ids = {**entry.ids, "platform": deployment_id}
        return DeploymentEntry(
            entry.environment,
            entry.release,
            entry.run_id,
            status,
            entry.driver,
            url or entry.url,
            entry.validated if validated is None else validated,
            entry.created_at,
            entry.updated_at,
            ids,
            entry.details,
        )

    def _release(self, deployment: Any) -> Release | None:
        payload = deployment.payload or {}
        if not payload.get("digest"):
            return None
        try:
            return Release.from_json(payload)
        except Exception:  # a foreign deployment with an odd payload: not ours
            return None

    def last_good(self, environment: str, *, exclude: str | None = None) -> Release | None:
        for deployment in self.platform.list_deployments(environment=environment, limit=50):
            release = self._release(deployment)
            if release is None or release.digest == exclude:
                continue
            states = [s.state for s in self.platform.list_deployment_statuses(deployment.id)]
            # success then inactive (superseded) still means it passed validation once.
            if "success" in states and "failure" not in states:
                return release
        return None

    def latest(self, environment: str) -> DeploymentEntry | None:
        for deployment in self.platform.list_deployments(environment=environment, limit=1):
            release = self._release(deployment)
            if release is None:
                return None
            statuses = self.platform.list_deployment_statuses(deployment.id)
            status = statuses[0].state if statuses else "pending"
            return DeploymentEntry(
                environment,
                release,
                None,
                status,
                str(deployment.payload.get("driver", "")),
                ids={"platform": deployment.id},
            )
        return None


class FanOut:
    """Records to every recorder; reads from the first that knows (platform before local in CI)."""

    name = "fan-out"

    def __init__(self, recorders: Sequence[DeploymentRecorder]) -> None:
        self.recorders = list(recorders)

    def start(
        self, environment: str, release: Release, *, run_id: str | None, driver: str, description: str
    ) -> DeploymentEntry:
        entries = [
            r.start(environment, release, run_id=run_id, driver=driver, description=description)
            for r in self.recorders
        ]
        return _merge(entries)

    def transition(
        self,
        entry: DeploymentEntry,
        status: str,
        *,
        description: str,
        url: str | None = None,
        validated: bool | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> DeploymentEntry:
        entries = [
            r.transition(
                entry, status, description=description, url=url, validated=validated, details=details
            )
            for r in self.recorders
        ]
        return _merge(entries)

    def last_good(self, environment: str, *, exclude: str | None = None) -> Release | None:
        for r in self.recorders:
            found = r.last_good(environment, exclude=exclude)
            if found is not None:
                return found
        return None

    def latest(self, environment: str) -> DeploymentEntry | None:
        for r in self.recorders:
            found = r.latest(environment)
            if found is not None:
                return found
        return None


def _merge(entries: Sequence[DeploymentEntry]) -> DeploymentEntry:
    first = next((e for e in entries if "local" in e.ids), entries[0])
    ids: dict[str, Any] = {}
    for e in entries:
        ids.update(e.ids)
    return DeploymentEntry(
        first.environment,
        first.release,
        first.run_id,
        first.status,
        first.driver,
        first.url,
        first.validated,
        first.created_at,
        first.updated_at,
        ids,
        first.details,
        first.transitions,
    )


def make_recorder(app_dir: Path, env: Mapping[str, str]) -> DeploymentRecorder:
    """Local store always; plus GitHub Deployments when the platform layer selects GitHub."""
    local = LocalRecorder(app_dir)
    try:
        from devops_agent.core.platform import PlatformSettings, get_platform
    except ImportError:  # pragma: no cover - the platform layer ships with the package
        return local
    settings = PlatformSettings.from_env(env, app_dir)
    if settings.kind != "github":
        return local
    sha = env.get("GITHUB_SHA", "")
    run_url = ""
    if env.get("GITHUB_RUN_ID"):
        run_url = f"{settings.server_url}/{settings.repo.full_name}/actions/runs/{env['GITHUB_RUN_ID']}"
    platform = get_platform(app_dir, env)
    return FanOut([PlatformRecorder(platform, ref=sha or "HEAD", log_url=run_url), local])
