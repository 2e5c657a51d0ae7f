"""in-toto Statement v1 with a SLSA Provenance v1 predicate, and the checks verify applies to one.

Statements are plain dicts (the JSON that gets signed); ``validate_statement`` runs them through
the in-toto attestation framework's own validators (``in_toto_attestation``): the Statement and
ResourceDescriptor rules, and the SLSA v1 predicate parsed into its protobuf message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devops_agent.supplychain.identity import BuildIdentity

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
CYCLONEDX_PREDICATE = "https://cyclonedx.org/bom"
SPDX_PREDICATE = "https://spdx.dev/Document"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


@dataclass(frozen=True)
class Subject:
    name: str
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "digest": {"sha256": self.sha256}}


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def provenance_statement(
    subjects: Sequence[Subject],
    identity: BuildIdentity,
    *,
    started: dt.datetime | None = None,
    finished: dt.datetime | None = None,
    byproducts: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A SLSA v1 provenance statement for ``subjects`` (pure)."""
    source: dict[str, Any] = {"uri": identity.source_uri}
    if identity.commit:
        source["digest"] = {"gitCommit": identity.commit}
    workflow: dict[str, Any] = {"ref": identity.workflow_ref, "repository": identity.source_uri}
    if "@" in identity.workflow_ref:
        path, ref = identity.workflow_ref.split("@", 1)
        workflow = {"ref": ref, "repository": identity.source_uri, "path": path}
    metadata: dict[str, Any] = {}
    if identity.invocation_id:
        metadata["invocationId"] = identity.invocation_id
    if started:
        metadata["startedOn"] = _iso(started)
    if finished:
        metadata["finishedOn"] = _iso(finished)
    run_details: dict[str, Any] = {"builder": {"id": identity.builder_id}, "metadata": metadata}
    if byproducts:
        run_details["byproducts"] = [dict(b) for b in byproducts]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [s.to_json() for s in subjects],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": identity.build_type,
                "externalParameters": {
                    "workflow": workflow,
                    "workflowRef": identity.workflow_ref,
                    "inputs": dict(identity.inputs),
                },
                "internalParameters": {"tool": "devops-agent"},
                "resolvedDependencies": [source],
            },
            "runDetails": run_details,
        },
    }


def sbom_statement(
    subjects: Sequence[Subject], bom: Mapping[str, Any], *, predicate_type: str = CYCLONEDX_PREDICATE
) -> dict[str, Any]:
    """An in-toto statement whose predicate is the SBOM (CycloneDX or SPDX, as actions/attest-sbom does)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [s.to_json() for s in subjects],
        "predicateType": predicate_type,
        "predicate": dict(bom),
    }


def validate_statement(statement: Mapping[str, Any]) -> list[str]:
    """Problems found by the in-toto attestation validators (empty = valid)."""
    from google.protobuf import json_format  # type: ignore[import-untyped,unused-ignore]
    from in_toto_attestation.v1.statement import Statement  # type: ignore[import-untyped,unused-ignore]

    problems: list[str] = []
    try:
        from in_toto_attestation.v1 import statement_pb2  # type: ignore[import-untyped,unused-ignore]

        pb = json_format.ParseDict(dict(statement), statement_pb2.Statement())
        Statement.copy_from_pb(pb).validate()
    except (json_format.ParseError, ValueError, TypeError) as exc:
        problems.append(f"not a valid in-toto Statement v1: {exc}")
        return problems
    if statement.get("predicateType") == SLSA_PROVENANCE_V1:
        from in_toto_attestation.predicates.provenance.v1 import (  # type: ignore[import-untyped,unused-ignore]
            provenance_pb2,
        )

        try:
            prov = json_format.ParseDict(dict(statement["predicate"]), provenance_pb2.Provenance())
        except json_format.ParseError as exc:
            return [f"not a valid SLSA v1 provenance predicate: {exc}"]
        if not prov.build_definition.build_type:
            problems.append("SLSA provenance: buildDefinition.buildType is empty")
        if not prov.run_details.builder.id:
            problems.append("SLSA provenance: runDetails.builder.id is empty")
    return problems


# -- checks applied by verify (pure) --------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


def subject_digests(statement: Mapping[str, Any]) -> set[str]:
    out: set[str] = set()
    for subject in statement.get("subject") or []:
        if isinstance(subject, Mapping):
            value = (subject.get("digest") or {}).get("sha256")
            if isinstance(value, str):
                out.add(value.lower())
    return out


def check_provenance(
    statement: Mapping[str, Any], sha256: str, expected: BuildIdentity, *, expected_commit: str | None = None
) -> list[Check]:
    """Subject, predicate type, builder, build type, source and workflow against expectations."""
    checks: list[Check] = []
    problems = validate_statement(statement)
    checks.append(Check("provenance-format", not problems, "; ".join(problems) or "in-toto v1 + SLSA v1"))
    is_slsa = statement.get("predicateType") == SLSA_PROVENANCE_V1
    checks.append(
        Check(
            "provenance-type",
            is_slsa,
            f"predicateType {statement.get('predicateType')!r}"
            + ("" if is_slsa else f", expected {SLSA_PROVENANCE_V1!r}"),
        )
    )
    in_subject = sha256 in subject_digests(statement)
    checks.append(
        Check(
            "provenance-subject",
            in_subject,
            f"sha256:{sha256} is "
            + ("a subject" if in_subject else f"not among the subjects {sorted(subject_digests(statement))}"),
        )
    )
    predicate = statement.get("predicate") if isinstance(statement.get("predicate"), Mapping) else {}
    assert isinstance(predicate, Mapping)
    build_def = predicate.get("buildDefinition") or {}
    run_details = predicate.get("runDetails") or {}
    builder = str((run_details.get("builder") or {}).get("id", ""))
    checks.append(_equal("provenance-builder", builder, expected.builder_id, "builder id"))
    checks.append(
        _equal(
            "provenance-build-type", str(build_def.get("buildType", "")), expected.build_type, "build type"
        )
    )
    deps = [d for d in build_def.get("resolvedDependencies") or [] if isinstance(d, Mapping)]
    uris = [str(d.get("uri", "")) for d in deps]
    source_ok = expected.source_uri in uris
    checks.append(
        Check(
            "provenance-source",
            source_ok,
            f"source {uris[0] if uris else '(none)'!r}"
            + ("" if source_ok else f", expected {expected.source_uri!r}"),
        )
    )
    external = build_def.get("externalParameters") or {}
    workflow_ref = str(external.get("workflowRef", ""))
    checks.append(_equal("provenance-workflow", workflow_ref, expected.workflow_ref, "workflow ref"))
    if expected_commit:
        commits = {str((d.get("digest") or {}).get("gitCommit", "")) for d in deps}
        ok = expected_commit in commits
        checks.append(
            Check(
                "provenance-commit",
                ok,
                f"commit {expected_commit}" + (" recorded" if ok else f" not in {sorted(commits)}"),
            )
        )
    return checks


def _equal(name: str, actual: str, expected: str, what: str) -> Check:
    if actual == expected:
        return Check(name, True, f"{what} {actual!r}")
    return Check(name, False, f"{what} {actual!r}, expected {expected!r}")
