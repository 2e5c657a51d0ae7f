"""verify stage: re-check an artifact's digest, signatures, provenance and SBOM before it ships.

``devops-agent verify --artifact FILE | --digest sha256:…`` and :func:`verify_for_deploy` (called by
deploy and promote) run the same checks and fail closed: missing evidence is a failed check.

parse (VerifyRequest) → gather evidence files → decide (each check pure over the loaded data) →
report (summary table, outputs, exit 1 naming every failed check).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from devops_agent.core.command import Context, add_app_options, argv_list, new_parser, run_command
from devops_agent.core.config import Config
from devops_agent.core.errors import ConfigError, GateFailed
from devops_agent.core.gha import Actions, get_input, md_table
from devops_agent.supplychain.identity import BuildIdentity, derive_identity
from devops_agent.supplychain.layout import EvidencePaths, attestations_root, normalize_digest
from devops_agent.supplychain.provenance import (
    CYCLONEDX_PREDICATE,
    SPDX_PREDICATE,
    Check,
    check_provenance,
    subject_digests,
    validate_statement,
)
from devops_agent.supplychain.signing import (
    Verified,
    sigstore_identity_for,
    sigstore_verify,
    trusted_keys,
    verify_envelope,
)


@dataclass(frozen=True)
class VerifyRequest:
    sha256: str
    expected: BuildIdentity
    evidence_root: Path
    artifact: Path | None = None  # the file whose bytes must hash to sha256 (None: digest only)
    artifact_source: str = ""  # where the artifact path came from (argument, build manifest, ...)
    expected_commit: str | None = None
    method: str = "auto"  # auto | key | sigstore | attestations


@dataclass(frozen=True)
class VerifyReport:
    sha256: str
    checks: tuple[Check, ...]
    evidence_dir: str
    signer: str | None = None
    statement: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def to_json(self) -> dict[str, Any]:
        predicate = self.statement.get("predicate") or {}
        run_details = predicate.get("runDetails") or {} if isinstance(predicate, Mapping) else {}
        build_def = predicate.get("buildDefinition") or {} if isinstance(predicate, Mapping) else {}
        return {
            "digest": f"sha256:{self.sha256}",
            "verified": self.passed,
            "checks": [c.to_json() for c in self.checks],
            "evidence_dir": self.evidence_dir,
            "signer": self.signer,
            "builder_id": (run_details.get("builder") or {}).get("id"),
            "invocation_id": (run_details.get("metadata") or {}).get("invocationId"),
            "source": [d.get("uri") for d in build_def.get("resolvedDependencies") or []],
        }


# -- gather + decide ---------------------------------------------------------------------------


def _read_json(path: Path) -> tuple[Any, str | None]:
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, "missing"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"unreadable ({type(exc).__name__})"


def check_artifact(path: Path | None, sha256: str, source: str) -> Check:
    from devops_agent.stages.build import sha256_file

    if path is None:
        return Check("artifact-digest", True, "no local file for this digest: checked by digest only")
    if not path.is_file():
        return Check("artifact-digest", False, f"artifact file {path} ({source}) is missing")
    actual = sha256_file(path)
    if actual != sha256:
        return Check(
            "artifact-digest", False, f"{path.name} hashes to sha256:{actual}, expected sha256:{sha256}"
        )
    return Check("artifact-digest", True, f"{path.name} hashes to sha256:{sha256}")


def _verify_signed(
    paths: tuple[Path, Path],
    kind: str,
    request: VerifyRequest,
    keys: Sequence[tuple[str, Any]],
    env: Mapping[str, str],
) -> tuple[Check, Verified | None]:
    """Signature check of the provenance or SBOM statement (key DSSE or Sigstore bundle)."""
    dsse_path, sigstore_path = paths
    use_sigstore = request.method in {"sigstore", "attestations"} or (
        request.method == "auto" and sigstore_path.exists()
    )
    name = f"{kind}-signature"
    try:
        if use_sigstore:
            if not sigstore_path.exists():
                return Check(name, False, f"{kind} Sigstore bundle {sigstore_path.name} is missing"), None
            verified = sigstore_verify(sigstore_path.read_text(encoding="utf-8"), sigstore_identity_for(env))
        else:
            envelope, problem = _read_json(dsse_path)
            if problem:
                return Check(name, False, f"{kind} envelope {dsse_path.name} is {problem}"), None
            verified = verify_envelope(envelope, keys, what=f"{kind} envelope")
    except GateFailed as exc:
        return Check(name, False, exc.cause.removeprefix("signature: ")), None
    return Check(name, True, f"signed by {verified.signer} ({verified.method})"), verified


def check_sbom_statement(statement: Mapping[str, Any], sha256: str) -> list[Check]:
    problems = validate_statement(statement)
    bom = statement.get("predicate") if isinstance(statement.get("predicate"), Mapping) else {}
    assert isinstance(bom, Mapping)
    kind = statement.get("predicateType")
    if kind == CYCLONEDX_PREDICATE and bom.get("bomFormat") == "CycloneDX":
        described = f"CycloneDX {bom.get('specVersion')}"
    elif kind == SPDX_PREDICATE and str(bom.get("spdxVersion", "")).startswith("SPDX-"):
        described = str(bom.get("spdxVersion"))
    else:
        described = ""
        problems = [*problems, f"predicate {kind!r} is not a CycloneDX or SPDX document"]
    in_subject = sha256 in subject_digests(statement)
    return [
        Check("sbom-format", not problems, "; ".join(problems) or described),
        Check(
            "sbom-subject",
            in_subject,
            f"sha256:{sha256} " + ("is the SBOM's subject" if in_subject else "is not the SBOM's subject"),
        ),
    ]


def evaluate(request: VerifyRequest, app_dir: Path, config: Config, env: Mapping[str, str]) -> VerifyReport:
    paths = EvidencePaths.for_digest(request.evidence_root, request.sha256)
    checks: list[Check] = [check_artifact(request.artifact, request.sha256, request.artifact_source)]
    keys = trusted_keys(app_dir, config) if request.method in {"auto", "key"} else []
    signer: str | None = None
    statement: Mapping[str, Any] = {}
    if not paths.dir.is_dir():
        checks.append(
            Check(
                "provenance-present",
                False,
                f"no evidence for sha256:{request.sha256} in {request.evidence_root}",
            )
        )
        checks.append(Check("sbom-present", False, "no SBOM attestation for this digest"))
        return VerifyReport(request.sha256, tuple(checks), str(paths.dir))
    sig, verified = _verify_signed(
        (paths.provenance_dsse, paths.provenance_sigstore), "provenance", request, keys, env
    )
    checks.append(sig)
    if verified is not None:
        signer = verified.signer
        statement = verified.statement
        checks.extend(
            check_provenance(
                statement, request.sha256, request.expected, expected_commit=request.expected_commit
            )
        )
    if not (paths.sbom_dsse.exists() or paths.sbom_sigstore.exists()):
        checks.append(
            Check(
                "sbom-present", False, f"no signed SBOM for sha256:{request.sha256} ({paths.sbom_dsse.name})"
            )
        )
    else:
        checks.append(Check("sbom-present", True, "signed SBOM attestation found"))
        sbom_sig, sbom_verified = _verify_signed(
            (paths.sbom_dsse, paths.sbom_sigstore), "sbom", request, keys, env
        )
        checks.append(sbom_sig)
        if sbom_verified is not None:
            checks.extend(check_sbom_statement(sbom_verified.statement, request.sha256))
    return VerifyReport(request.sha256, tuple(checks), str(paths.dir), signer, statement)


def artifact_for_digest(app_dir: Path, sha256: str) -> tuple[Path | None, str]:
    """The local file built with this digest (last build manifest, then the state store)."""
    from devops_agent.core.state import StateStore, state_dir
    from devops_agent.stages.build import MANIFEST

    manifest_path = state_dir(app_dir) / MANIFEST
    manifest, _ = _read_json(manifest_path)
    if isinstance(manifest, dict):
        for item in manifest.get("artifacts") or []:
            if isinstance(item, dict) and item.get("sha256") == sha256:
                return app_dir / str(item["path"]), "build manifest"
    if (state_dir(app_dir) / "state.db").exists():
        with StateStore.for_app(app_dir) as store:
            record = store.find_artifact(sha256)
        if record is not None:
            return app_dir / record.path, f"state store (run {record.run_id})"
    return None, ""


def build_request(
    app_dir: Path,
    config: Config,
    env: Mapping[str, str],
    *,
    digest: str | None = None,
    artifact: Path | None = None,
    evidence_root: Path | None = None,
    overrides: Mapping[str, str | None] | None = None,
) -> VerifyRequest:
    if not digest and artifact is None:
        raise ConfigError("give --artifact FILE or --digest sha256:…", "pass one of them", field="--digest")
    source = "--artifact"
    if digest:
        sha256 = normalize_digest(digest)
        if artifact is None:
            artifact, source = artifact_for_digest(app_dir, sha256)
    else:
        assert artifact is not None
        if not artifact.is_file():
            raise ConfigError(
                f"{artifact} is not a file", "pass the built artifact's path", field="--artifact"
            )
        from devops_agent.stages.build import sha256_file

        sha256 = sha256_file(artifact)
    expected = derive_identity(config, app_dir, env)
    overrides = overrides or {}
    if overrides.get("builder_id"):
        expected = replace(expected, builder_id=str(overrides["builder_id"]))
    if overrides.get("source_uri"):
        expected = replace(expected, source_uri=str(overrides["source_uri"]))
    if overrides.get("workflow_ref"):
        expected = replace(expected, workflow_ref=str(overrides["workflow_ref"]))
    method = str(config.section("sign").get("method") or "auto")
    if method == "auto" and env.get("GITHUB_ACTIONS") != "true":
        method = "key"
    return VerifyRequest(
        sha256=sha256,
        expected=expected,
        evidence_root=evidence_root or attestations_root(app_dir),
        artifact=artifact,
        artifact_source=source,
        expected_commit=overrides.get("commit") or None,
        method=method,
    )


def failure_message(report: VerifyReport) -> GateFailed:
    names = ", ".join(c.name for c in report.failed)
    details = "\n".join(f"  - {c.name}: {c.detail}" for c in report.failed)
    return GateFailed(
        f"verification of sha256:{report.sha256} failed ({names})\n{details}",
        "deploy only artifacts built, SBOM'd and signed by this pipeline: "
        "re-run `devops-agent build`, `sbom` and `sign`, and check the expected builder/source",
    )


def verify_for_deploy(app_dir: Path, config: Config, digest: str) -> Mapping[str, Any]:
    """Evidence (JSON-able) when ``digest`` checks out; raises GateFailed (fail closed) otherwise.

    Called by deploy and promote. ``digest`` is ``sha256:<hex>`` or bare hex.
    """
    env = dict(os.environ)
    try:
        request = build_request(app_dir, config, env, digest=digest)
    except ConfigError as exc:
        raise GateFailed(f"verify: {exc.cause}", exc.fix) from None
    report = evaluate(request, app_dir, config, env)
    if not report.passed:
        raise failure_message(report)
    return report.to_json()


# -- report / CLI --------------------------------------------------------------------------------


def render_summary(report: VerifyReport) -> str:
    head = "✅ verified" if report.passed else "❌ verification failed"
    rows = [[c.name, "✅" if c.ok else "❌", c.detail] for c in report.checks]
    return f"## 🔏 Verify sha256:{report.sha256[:16]}… — {head}\n\n" + md_table(
        ["Check", "Result", "Detail"], rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        from devops_agent.stages.build import load_for

        parser = new_parser("verify", "Verify an artifact's digest, signatures, SLSA provenance and SBOM.")
        add_app_options(parser)
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--artifact", metavar="FILE", default=get_input("artifact") or None)
        target.add_argument("--digest", metavar="sha256:HEX", default=get_input("digest") or None)
        parser.add_argument(
            "--evidence",
            metavar="DIR",
            default=get_input("evidence-dir") or None,
            help="attestations directory (default <app>/.devops-agent/attestations)",
        )
        parser.add_argument("--expected-builder-id", default=get_input("expected-builder-id") or None)
        parser.add_argument("--expected-source-uri", default=get_input("expected-source-uri") or None)
        parser.add_argument("--expected-workflow-ref", default=get_input("expected-workflow-ref") or None)
        parser.add_argument("--expected-commit", default=get_input("expected-commit") or None)
        args = parser.parse_args(argv_list(argv))
        if args.artifact and args.digest:
            raise ConfigError("give either --artifact or --digest, not both", "drop one", field="--digest")
        app_dir, config = load_for(args.app, args.config)
        actions = Actions.from_env(stream=sys.stderr if args.json else None)
        env = dict(os.environ)
        request = build_request(
            app_dir,
            config,
            env,
            digest=args.digest,
            artifact=Path(args.artifact).resolve() if args.artifact else None,
            evidence_root=Path(args.evidence).resolve() if args.evidence else None,
            overrides={
                "builder_id": args.expected_builder_id,
                "source_uri": args.expected_source_uri,
                "workflow_ref": args.expected_workflow_ref,
                "commit": args.expected_commit,
            },
        )
        report = evaluate(request, app_dir, config, env)
        actions.set_output("verified", report.passed)
        actions.set_output("digest", f"sha256:{report.sha256}")
        actions.set_output("evidence", report.to_json())
        actions.summary(render_summary(report))
        if args.json:
            Context(actions, app_dir).emit_json(report.to_json())
        if not report.passed:
            raise failure_message(report)
        return 0

    return run_command(body)
