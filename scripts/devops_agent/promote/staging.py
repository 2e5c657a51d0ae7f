"""What "passed staging validation" means, and where the records come from.

The contract (documented in docs/promote.md; the deploy/validate stages write these records):

- **Local state store** (``deployments`` table, written by ``devops_agent.deploy.records``'s
  ``LocalRecorder``): a row with ``environment`` = the staging environment, ``digest`` = the
  digest's 64 hex characters, ``status = "success"``, ``details.validated = true`` and validation
  evidence in ``details`` — what ``devops-agent validate`` writes on success
  (``details.validation_seconds``, with the evidence file beside the driver state), or a
  ``details.validation`` / ``details.evidence`` / ``details.checks`` mapping.
- **GitHub Deployments** (written by ``PlatformRecorder`` in CI): a deployment to the staging
  environment whose ``payload.digest`` is ``sha256:<hex>`` and whose statuses contain ``success``
  — the validate stage sets ``success`` only after validation passed — with no ``failure`` or
  ``error`` after it. A later ``inactive`` (superseded by a newer deployment) keeps it valid.

Per digest the NEWEST concluded record decides: a re-deploy of the same digest that failed
validation revokes an older pass. Records still in progress are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from devops_agent.deploy.base import normalize_digest

#: Statuses of a deployment whose validation has not concluded yet.
IN_FLIGHT = frozenset({"queued", "pending", "in_progress", "waiting"})
#: Keys of ``details`` that carry validation evidence (first is what validate writes).
EVIDENCE_KEYS: tuple[str, ...] = ("validation", "validation_seconds", "evidence", "checks")


@dataclass(frozen=True)
class StagingRecord:
    """One deployment of a digest to the staging environment, from either source."""

    source: str  # "local" | "github"
    id: str
    environment: str
    digest: str  # 64 hex
    status: str  # current status (GitHub: the newest status)
    statuses: tuple[str, ...] = ()  # every status, oldest first
    validated: bool = False
    evidence: Mapping[str, Any] = field(default_factory=dict)
    version: str | None = None
    run_id: str | None = None
    commit: str | None = None
    url: str | None = None
    at: float = 0.0  # unix time of the last change

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "id": self.id,
            "environment": self.environment,
            "digest": f"sha256:{self.digest}",
            "status": self.status,
            "validated": self.validated,
            "version": self.version,
            "run_id": self.run_id,
            "commit": self.commit,
            "url": self.url,
            "at": datetime.fromtimestamp(self.at, tz=timezone.utc).isoformat() if self.at else None,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class StagingVerdict:
    passed: bool
    reason: str
    record: StagingRecord | None = None


def _passed_record(record: StagingRecord) -> tuple[bool, str]:
    if record.source == "github":
        states = list(record.statuses)
        if "success" not in states:
            return False, f"GitHub deployment {record.id} never reached success ({record.status})"
        last_success = len(states) - 1 - states[::-1].index("success")
        after = states[last_success + 1 :]
        bad = [s for s in after if s in {"failure", "error"}]
        if bad:
            return False, f"GitHub deployment {record.id} succeeded, then reported {bad[-1]}"
        return True, f"GitHub deployment {record.id} validated ({record.status})"
    if record.status != "success":
        return False, f"local deployment {record.id} is {record.status}"
    if not record.validated:
        return False, f"local deployment {record.id} succeeded but is not marked validated"
    if not record.evidence:
        return False, f"local deployment {record.id} has no validation evidence in its details"
    return True, f"local deployment {record.id} validated"


def staging_passed(records: Iterable[StagingRecord], digest: str, environment: str) -> StagingVerdict:
    """Did ``digest`` pass validation in ``environment``? Pure; see the module doc for the rules."""
    hexdigest = normalize_digest(digest)
    mine = sorted(
        (r for r in records if r.digest == hexdigest and r.environment == environment),
        key=lambda r: r.at,
        reverse=True,
    )
    concluded = [r for r in mine if r.status not in IN_FLIGHT]
    if not mine:
        return StagingVerdict(
            False, f"no deployment of sha256:{hexdigest[:12]}… to {environment} is recorded"
        )
    if not concluded:
        return StagingVerdict(
            False,
            f"the {environment} deployment of sha256:{hexdigest[:12]}… has not finished validation",
            mine[0],
        )
    newest = concluded[0]
    ok, why = _passed_record(newest)
    return StagingVerdict(ok, why, newest)


def describe_candidates(records: Sequence[StagingRecord], environment: str, limit: int = 5) -> str:
    """What staging does have (for the refusal message)."""
    mine = sorted((r for r in records if r.environment == environment), key=lambda r: r.at, reverse=True)
    if not mine:
        return f"nothing is recorded for {environment}"
    parts = []
    for r in mine[:limit]:
        validated = " (validated)" if r.validated else ""
        parts.append(
            " ".join(p for p in (f"sha256:{r.digest[:12]}…", r.version or "", r.status + validated) if p)
        )
    return "; ".join(parts)


def latest_passed(records: Sequence[StagingRecord], environment: str) -> StagingRecord | None:
    """The newest digest that passed ``environment`` (what `promote` promotes by default)."""
    for record in sorted(
        (r for r in records if r.environment == environment), key=lambda r: r.at, reverse=True
    ):
        if staging_passed(records, record.digest, environment).passed:
            return record
    return None


# -- sources -----------------------------------------------------------------------------------


def _evidence(details: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in EVIDENCE_KEYS:
        value = details.get(key)
        if value:
            return {key: value}
    return {}


def local_records(app_dir: Path, environment: str) -> list[StagingRecord]:
    """Deployments of ``environment`` in the app's state store (none when there is no store)."""
    from devops_agent.core.state import DB_NAME, StateStore, state_dir

    if not (state_dir(app_dir) / DB_NAME).exists():
        return []
    with StateStore.for_app(app_dir) as store:
        rows = store.deployments(environment, limit=1000)
    out = []
    for row in rows:
        details = dict(row.details)
        transitions = details.get("transitions") or []
        out.append(
            StagingRecord(
                source="local",
                id=str(row.id),
                environment=row.environment,
                digest=row.digest,
                status=row.status,
                statuses=tuple(str(t.get("status")) for t in transitions if isinstance(t, Mapping)),
                validated=bool(details.get("validated", False)),
                evidence=_evidence(details),
                version=row.version,
                run_id=row.run_id,
                commit=details.get("commit") or details.get("commit_sha"),
                url=details.get("url"),
                at=float(row.updated_at),
            )
        )
    return out


def platform_records(platform: Any, environment: str, *, digest: str | None = None) -> list[StagingRecord]:
    """GitHub deployments of ``environment`` carrying a digest payload (ours), with statuses."""
    out = []
    wanted = normalize_digest(digest) if digest else None
    for deployment in platform.list_deployments(environment=environment, limit=100):
        payload = deployment.payload or {}
        if isinstance(payload, str):  # GitHub returns a string payload for non-JSON payloads
            try:
                payload = json.loads(payload)
            except ValueError:
                continue
        raw = payload.get("digest") if isinstance(payload, Mapping) else None
        if not raw:
            continue
        try:
            hexdigest = normalize_digest(str(raw))
        except Exception:  # noqa: S112 - a foreign deployment: not ours
            continue
        if wanted and hexdigest != wanted:
            continue
        statuses = platform.list_deployment_statuses(deployment.id)  # newest first
        states = tuple(s.state for s in reversed(statuses))
        success = next((s for s in statuses if s.state == "success"), None)
        evidence: dict[str, Any] = {}
        if success is not None:
            evidence = {
                "status": "success",
                "description": success.description,
                "environment_url": success.environment_url,
                "log_url": success.log_url,
                "at": success.created_at.isoformat(),
            }
        newest = statuses[0] if statuses else None
        out.append(
            StagingRecord(
                source="github",
                id=str(deployment.id),
                environment=deployment.environment,
                digest=hexdigest,
                status=newest.state if newest else "pending",
                statuses=states,
                validated=success is not None,
                evidence=evidence,
                version=str(payload.get("version") or "") or None,
                commit=deployment.sha,
                url=(success.environment_url if success else None) or None,
                at=(newest.created_at if newest else deployment.updated_at).timestamp(),
            )
        )
    return out
