"""sign stage: SLSA v1 provenance and the SBOM as signed in-toto statements, per artifact digest.

parse (SignInputs) → decide (plan_sign: subjects, identity, method — pure) → act (statement per
digest, DSSE-signed with the local key or Sigstore keyless; optional upload to GitHub's artifact
attestations API) → report.

Methods (``sign.method`` / ``--method``):
  key           DSSE envelope signed with an ed25519/ECDSA key (generated into .devops-agent/keys/
                on first use, or the PEM in $DEVOPS_AGENT_SIGNING_KEY); works offline.
  sigstore      keyless: Fulcio certificate for the workflow's OIDC identity, Rekor-logged bundle.
  attestations  sigstore, and each bundle also stored with GitHub's attestations API
                (``gh attestation verify`` finds it). Not on GHES.
  auto          sigstore inside GitHub Actions, key elsewhere.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devops_agent.core.command import (
    Context,
    add_app_options,
    add_dry_run,
    argv_list,
    new_parser,
    run_command,
)
from devops_agent.core.config import Config
from devops_agent.core.errors import ConfigError, PlatformError, StageFailed
from devops_agent.core.gha import Actions, get_input, md_table
from devops_agent.supplychain.identity import BuildIdentity, derive_identity
from devops_agent.supplychain.layout import EvidencePaths, attestations_root
from devops_agent.supplychain.provenance import (
    CYCLONEDX_PREDICATE,
    SPDX_PREDICATE,
    Subject,
    provenance_statement,
    sbom_statement,
    validate_statement,
)

METHODS = ("auto", "key", "sigstore", "attestations")


@dataclass(frozen=True)
class SignInputs:
    method: str | None = None
    out: str | None = None
    dry_run: bool = False


@dataclass(frozen=True)
class SignPlan:
    method: str  # key | sigstore | attestations (auto resolved)
    identity: BuildIdentity
    subjects: tuple[Subject, ...]
    evidence_root: Path
    out_dir: Path | None


# -- decide (pure) ---------------------------------------------------------------------------------


def resolve_method(configured: str, env: Mapping[str, str]) -> str:
    if configured not in METHODS:
        raise ConfigError(
            f"{configured!r} is not a signing method",
            f"use one of: {', '.join(METHODS)}",
            field="sign.method",
        )
    in_gha = env.get("GITHUB_ACTIONS") == "true"
    if configured == "auto":
        return "sigstore" if in_gha else "key"
    if configured in {"sigstore", "attestations"} and not in_gha:
        raise ConfigError(
            f"{configured} signing needs GitHub Actions' OIDC identity",
            "use sign.method: key (or auto) outside GitHub Actions",
            field="sign.method",
        )
    return configured


def subjects_from_manifest(manifest: Mapping[str, Any]) -> tuple[Subject, ...]:
    subjects = [Subject(str(a["name"]), str(a["sha256"])) for a in manifest.get("artifacts") or []]
    image = manifest.get("image")
    if isinstance(image, Mapping) and str(image.get("digest") or "").startswith("sha256:"):
        subjects.append(Subject(str(image.get("name")), str(image["digest"]).removeprefix("sha256:")))
    if not subjects:
        raise StageFailed("the build manifest lists no artifact to sign", "run `devops-agent build` first")
    return tuple(subjects)


def plan_sign(
    config: Config,
    manifest: Mapping[str, Any],
    identity: BuildIdentity,
    inputs: SignInputs,
    env: Mapping[str, str],
    *,
    evidence_root: Path,
) -> SignPlan:
    configured = inputs.method or str(config.section("sign").get("method") or "auto")
    return SignPlan(
        method=resolve_method(configured, env),
        identity=identity,
        subjects=subjects_from_manifest(manifest),
        evidence_root=evidence_root,
        out_dir=Path(inputs.out).resolve() if inputs.out else None,
    )


# -- act -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedSubject:
    subject: Subject
    provenance: str  # file path
    sbom: str
    signer: str


@dataclass(frozen=True)
class SignResult:
    plan: SignPlan
    signed: tuple[SignedSubject, ...]
    key_created: bool
    public_key: str  # PEM (public; empty for sigstore)
    attestation_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.plan.method,
            "builder_id": self.plan.identity.builder_id,
            "source_uri": self.plan.identity.source_uri,
            "workflow_ref": self.plan.identity.workflow_ref,
            "invocation_id": self.plan.identity.invocation_id,
            "signed": [
                {
                    "name": s.subject.name,
                    "digest": f"sha256:{s.subject.sha256}",
                    "provenance": s.provenance,
                    "sbom": s.sbom,
                    "signer": s.signer,
                }
                for s in self.signed
            ],
            "key_created": self.key_created,
            "attestation_ids": list(self.attestation_ids),
        }


def _write_json(path: Path, data: Mapping[str, Any] | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = data if isinstance(data, str) else json.dumps(data, indent=2, sort_keys=True) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def load_sbom(paths: EvidencePaths) -> tuple[str, Mapping[str, Any]]:
    """(predicate type, document) of the SBOM attached to this digest by the sbom stage: CycloneDX
    when written, else SPDX. Fails closed when neither is there."""
    for path, predicate_type in ((paths.sbom_cdx, CYCLONEDX_PREDICATE), (paths.sbom_spdx, SPDX_PREDICATE)):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, json.JSONDecodeError) as exc:
            raise StageFailed(f"cannot read {path}: {exc}", "re-run `devops-agent sbom`") from None
        if not isinstance(data, dict):
            raise StageFailed(f"{path} is not an SBOM document", "re-run `devops-agent sbom`")
        return predicate_type, data
    raise StageFailed(
        f"no SBOM is attached to sha256:{paths.sha256} "
        f"({paths.sbom_cdx.name} / {paths.sbom_spdx.name} missing in {paths.dir})",
        "run `devops-agent sbom` after the build and before signing",
    )


def upload_attestation(bundle_json: str, env: Mapping[str, str], *, timeout: float = 30.0) -> str:
    """POST a Sigstore bundle to GitHub's artifact attestations API; returns the attestation id."""
    import requests

    token = env.get("GITHUB_TOKEN", "")
    repo = env.get("GITHUB_REPOSITORY", "")
    api = env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    if not token or not repo:
        raise ConfigError(
            "GITHUB_TOKEN and GITHUB_REPOSITORY are needed to store attestations",
            "pass `GITHUB_TOKEN: ${{ github.token }}` in env and grant `attestations: write`",
            field="sign.method",
        )
    try:
        response = requests.post(
            f"{api}/repos/{repo}/attestations",
            json={"bundle": json.loads(bundle_json)},
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise PlatformError(f"attestations API unreachable: {type(exc).__name__}", "retry the job") from None
    if response.status_code not in {200, 201}:
        hint = (
            "grant the job `permissions: attestations: write`"
            if response.status_code in {401, 403}
            else (
                "artifact attestations are not available here (GHES, or a private repo on a plan "
                "without them): use sign.method: sigstore"
            )
        )
        raise PlatformError(f"attestations API answered HTTP {response.status_code}", hint)
    return str(response.json().get("id", ""))


def execute_sign(
    plan: SignPlan, app_dir: Path, config: Config, env: Mapping[str, str], actions: Actions
) -> SignResult:
    from devops_agent.supplychain.signing import load_or_create_key, sign_statement, sigstore_sign

    key = None
    if plan.method == "key":
        key = load_or_create_key(app_dir, config, env, mask=actions.mask)
        if key.created:
            actions.notice(
                f"generated a new ed25519 signing key (key id {key.keyid[:16]}…); the public key is "
                f"{key.source.removesuffix('.key')}.pub — keep the private key out of version control",
                title="signing key created",
            )
    finished = dt.datetime.now(tz=dt.timezone.utc)
    signed: list[SignedSubject] = []
    attestation_ids: list[str] = []
    for subject in plan.subjects:
        paths = EvidencePaths.for_digest(plan.evidence_root, subject.sha256)
        predicate_type, bom = load_sbom(paths)
        statements = {
            "provenance": provenance_statement([subject], plan.identity, finished=finished),
            "sbom": sbom_statement([subject], bom, predicate_type=predicate_type),
        }
        for kind, statement in statements.items():
            problems = validate_statement(statement)
            if problems:
                raise StageFailed(
                    f"the {kind} statement is invalid: {'; '.join(problems)}", "report this bug"
                )
        signer = ""
        for kind, statement in statements.items():
            if key is not None:
                envelope = sign_statement(statement, key)
                target = paths.provenance_dsse if kind == "provenance" else paths.sbom_dsse
                _write_json(target, envelope)
                signer = key.keyid
            else:
                bundle = sigstore_sign(statement)
                target = paths.provenance_sigstore if kind == "provenance" else paths.sbom_sigstore
                _write_json(target, bundle)
                signer = "sigstore"
                if plan.method == "attestations":
                    attestation_ids.append(upload_attestation(bundle, env))
            if plan.out_dir is not None:
                suffix = ".intoto.jsonl" if key is not None else ".sigstore.json"
                _write_json(
                    plan.out_dir / f"{subject.name}.{kind}{suffix}", target.read_text(encoding="utf-8")
                )
        signed.append(
            SignedSubject(
                subject,
                str(paths.provenance_dsse if key else paths.provenance_sigstore),
                str(paths.sbom_dsse if key else paths.sbom_sigstore),
                signer,
            )
        )
    public = key.public_pem.decode() if key is not None else ""
    return SignResult(plan, tuple(signed), bool(key and key.created), public, tuple(attestation_ids))


# -- report ----------------------------------------------------------------------------------------


def render_summary(result: SignResult) -> str:
    ident = result.plan.identity
    text = f"## 🔏 Signed provenance ({result.plan.method})\n\n"
    text += md_table(
        ["Field", "Value"],
        [
            ["Builder", f"`{ident.builder_id}`"],
            ["Build type", f"`{ident.build_type}`"],
            ["Source", f"`{ident.source_uri}`" + (f" @ `{ident.commit[:12]}`" if ident.commit else "")],
            ["Workflow", f"`{ident.workflow_ref}`"],
            ["Invocation", f"`{ident.invocation_id or '—'}`"],
        ],
    )
    rows = [
        [
            f"`{s.subject.name}`",
            f"`sha256:{s.subject.sha256[:16]}…`",
            "SLSA v1 + CycloneDX",
            f"`{s.signer[:16]}`",
        ]
        for s in result.signed
    ]
    text += "\n" + md_table(["Subject", "Digest", "Statements", "Signer"], rows)
    text += "\n```mermaid\nflowchart LR\n  src[source] --> b[builder] --> a[artifact digest]\n"
    text += "  sbom[SBOM] --> a\n  a --> p[signed provenance] --> v{verify before deploy}\n```\n"
    return text


def publish(result: SignResult, ctx: Context) -> None:
    actions = ctx.actions
    actions.set_output("method", result.plan.method)
    actions.set_output("attestations-dir", str(result.plan.evidence_root))
    actions.set_output(
        "signed", [{"name": s.subject.name, "digest": f"sha256:{s.subject.sha256}"} for s in result.signed]
    )
    actions.set_output("public-key", result.public_key)
    actions.summary(render_summary(result))
    if ctx.json_output:
        ctx.emit_json(result.to_json())


def prepare(
    app_dir: Path,
    config: Config,
    inputs: SignInputs,
    env: Mapping[str, str],
    run_id: str | None = None,
    *,
    manifest: Mapping[str, Any] | None = None,
) -> SignPlan:
    from devops_agent.stages.build import load_manifest

    manifest = manifest if manifest is not None else load_manifest(app_dir)
    identity = derive_identity(
        config, app_dir, env, commit=manifest.get("commit") or None, run_id=run_id or manifest.get("run_id")
    )
    return plan_sign(config, manifest, identity, inputs, env, evidence_root=attestations_root(app_dir))


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        from devops_agent.stages.build import load_for

        parser = new_parser(
            "sign", "Write SLSA v1 provenance + SBOM attestations per artifact digest and sign them."
        )
        add_app_options(parser)
        add_dry_run(parser)
        parser.add_argument(
            "--method",
            choices=METHODS,
            default=get_input("method") or None,
            help="signing method (overrides sign.method; default auto)",
        )
        parser.add_argument(
            "--out",
            metavar="DIR",
            default=get_input("out") or None,
            help="also copy the signed statements here (for upload-artifact)",
        )
        parser.add_argument(
            "--build-dir",
            metavar="DIR",
            default=get_input("build-dir") or None,
            help="restore the build exported by `devops-agent build --out DIR` (CI: the downloaded artifact)",
        )
        args = parser.parse_args(argv_list(argv))
        app_dir, config = load_for(args.app, args.config)
        actions = Actions.from_env(stream=sys.stderr if args.json else None)
        ctx = Context(actions=actions, app_dir=app_dir, json_output=args.json)
        env = dict(os.environ)
        manifest = None
        if args.build_dir:
            from devops_agent.supplychain.transfer import import_build, read_exported_manifest

            if args.dry_run:  # plan from the export, restore nothing
                manifest = read_exported_manifest(Path(args.build_dir))
            else:
                manifest = import_build(app_dir, Path(args.build_dir))
        plan = prepare(
            app_dir, config, SignInputs(args.method, args.out, args.dry_run), env, manifest=manifest
        )
        if args.dry_run:
            actions.info(f"would sign {len(plan.subjects)} subject(s) with method {plan.method}:")
            for s in plan.subjects:
                actions.info(f"  sha256:{s.sha256}  {s.name}")
            if args.json:
                ctx.emit_json(
                    {"dry_run": True, "method": plan.method, "subjects": [s.to_json() for s in plan.subjects]}
                )
            return 0
        publish(execute_sign(plan, app_dir, config, env, actions), ctx)
        return 0

    return run_command(body)


def pipeline_step(ctx: Any) -> Mapping[str, Any]:
    """Sign, then verify each signed digest (as deploy will) — as a stage of `devops-agent run`."""
    from devops_agent.stages.verify import verify_for_deploy

    env = dict(os.environ)
    plan = prepare(ctx.app_dir, ctx.config, SignInputs(), env, run_id=ctx.run_id)
    result = execute_sign(plan, ctx.app_dir, ctx.config, env, ctx.actions)
    publish(result, Context(ctx.actions, ctx.app_dir))
    verified = [
        verify_for_deploy(ctx.app_dir, ctx.config, f"sha256:{s.subject.sha256}") for s in result.signed
    ]
    data = result.to_json()
    data["verified"] = verified
    data["detail"] = f"{len(result.signed)} subject(s) signed ({result.plan.method}) and verified"
    return data
