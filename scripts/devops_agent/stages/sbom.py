"""sbom stage: CycloneDX 1.6 and SPDX 2.3 SBOMs of the built application, validated and attached
to the artifact digests of the last build.

parse (SbomInputs) → decide (plan_sbom: sources, identity, formats — pure) → act (inventory from the
real lockfile/environment/artifacts, render, validate with the official validators, NTIA findings,
write ``<out>/sbom.cdx.json`` + ``<out>/sbom.spdx.json`` and a copy per artifact digest).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devops_agent.core.command import Context, add_app_options, argv_list, new_parser, run_command
from devops_agent.core.config import Config
from devops_agent.core.errors import ConfigError, GateFailed, StageFailed
from devops_agent.core.gha import Actions, get_bool_input, get_input, get_multiline_input, md_table
from devops_agent.core.state import state_dir
from devops_agent.supplychain.layout import SBOM_CDX, SBOM_SPDX, attestations_root, evidence_for
from devops_agent.supplychain.ntia import Finding

DEFAULT_OUT = "sbom"  # under <app>/.devops-agent/
DEFAULT_AUTHOR = "devops-agent"


@dataclass(frozen=True)
class SbomInputs:
    out: str | None = None
    requirements: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    supplier: str | None = None
    fail_on_ntia: bool | None = None

    @classmethod
    def from_args(cls, args: Any) -> SbomInputs:
        return cls(
            out=args.out,
            requirements=tuple(args.requirements or ()),
            environments=tuple(args.site_packages or ()),
            supplier=args.supplier,
            fail_on_ntia=args.fail_on_ntia,
        )


@dataclass(frozen=True)
class ArtifactPlan:
    name: str
    path: Path
    sha256: str


@dataclass(frozen=True)
class ImagePlan:
    name: str
    sha256: str | None
    archive: Path | None


@dataclass(frozen=True)
class SbomPlan:
    app_name: str
    version: str
    supplier: str | None
    author: str
    formats: tuple[str, ...]
    requirements: tuple[Path, ...]
    environments: tuple[Path, ...]
    artifacts: tuple[ArtifactPlan, ...]
    out_dir: Path
    fail_on_ntia: bool
    image: ImagePlan | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


# -- decide (pure) ---------------------------------------------------------------------------------


def owner_from_source(source_uri: str) -> str | None:
    """``git+https://github.com/org/repo`` → ``org``."""
    parts = source_uri.removeprefix("git+").split("://", 1)[-1].split("/")
    return parts[1] if len(parts) >= 3 and parts[1] else None


def plan_sbom(
    config: Config,
    manifest: Mapping[str, Any],
    app_dir: Path,
    inputs: SbomInputs,
    env: Mapping[str, str],
    *,
    source_uri: str = "",
) -> SbomPlan:
    section = config.section("sbom")
    notes: list[str] = []

    def under_app(values: Sequence[str], what: str) -> tuple[Path, ...]:
        out = []
        for value in values:
            path = Path(value) if Path(value).is_absolute() else app_dir / value
            if not path.exists():
                raise ConfigError(
                    f"{value!r} does not exist", f"fix the path (relative to {app_dir.name}/)", field=what
                )
            out.append(path)
        return tuple(out)

    req_values = inputs.requirements or tuple(section.get("requirements") or ())
    env_values = inputs.environments or tuple(section.get("environments") or ())
    requirements = under_app(req_values, "sbom.requirements")
    environments = under_app(env_values, "sbom.environments")
    if not requirements and not environments:
        default = app_dir / "requirements.txt"
        if default.is_file():
            requirements = (default,)
            notes.append(
                "components from requirements.txt (set sbom.requirements / sbom.environments to change)"
            )
        else:
            notes.append(
                "no requirements file or environment configured: only the app and its artifacts are listed"
            )
    supplier = (
        inputs.supplier
        or section.get("supplier")
        or env.get("GITHUB_REPOSITORY_OWNER")
        or owner_from_source(source_uri)
        or None
    )
    artifacts = []
    for item in manifest.get("artifacts") or []:
        artifacts.append(ArtifactPlan(str(item["name"]), app_dir / str(item["path"]), str(item["sha256"])))
    if not artifacts:
        raise StageFailed("the build manifest lists no artifact", "run `devops-agent build` first")
    out = Path(inputs.out) if inputs.out else state_dir(app_dir) / DEFAULT_OUT
    fail = (
        inputs.fail_on_ntia if inputs.fail_on_ntia is not None else bool(section.get("fail_on_ntia", False))
    )
    image = None
    raw_image = manifest.get("image")
    if isinstance(raw_image, Mapping) and raw_image.get("name"):
        digest = str(raw_image.get("digest") or "").removeprefix("sha256:")
        archive = str(raw_image.get("archive") or "")
        image = ImagePlan(
            str(raw_image["name"]),
            digest if len(digest) == 64 else None,
            (app_dir / archive) if archive else None,
        )
    return SbomPlan(
        app_name=config.app.name,
        version=str(manifest.get("version") or "0.0.0"),
        supplier=str(supplier) if supplier else None,
        author=str(section.get("author") or DEFAULT_AUTHOR),
        formats=tuple(section.get("formats") or ("cyclonedx", "spdx")),
        requirements=requirements,
        environments=environments,
        artifacts=tuple(artifacts),
        out_dir=out if out.is_absolute() else Path.cwd() / out,
        fail_on_ntia=fail,
        image=image,
        notes=tuple(notes),
    )


def sbom_timestamp(env: Mapping[str, str]) -> dt.datetime:
    """SOURCE_DATE_EPOCH (reproducible builds) or now, in UTC, whole seconds."""
    epoch = env.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        if not epoch.isdigit():
            raise ConfigError(
                f"{epoch!r} is not a Unix timestamp", "set an integer", field="SOURCE_DATE_EPOCH"
            )
        return dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc)
    return dt.datetime.now(tz=dt.timezone.utc).replace(microsecond=0)


# -- act -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SbomResult:
    files: Mapping[str, str]  # format → path
    components: int
    findings: tuple[Finding, ...]
    attached: tuple[str, ...]  # sha256 digests the SBOM was attached to
    notes: tuple[str, ...]
    plan: SbomPlan

    def to_json(self) -> dict[str, Any]:
        return {
            "files": dict(self.files),
            "components": self.components,
            "ntia_findings": [f.to_json() for f in self.findings],
            "attached": [f"sha256:{d}" for d in self.attached],
            "notes": list(self.notes),
            "supplier": self.plan.supplier,
            "version": self.plan.version,
        }


@dataclass(frozen=True)
class _CdxJob:
    inventory: Any
    author: str
    timestamp: dt.datetime
    serial: uuid.UUID

    def run(self) -> tuple[str, list[str]]:
        from devops_agent.supplychain.cdx import render_cyclonedx, validate_cyclonedx

        text = render_cyclonedx(
            self.inventory, author=self.author, timestamp=self.timestamp, serial=self.serial
        )
        return text, validate_cyclonedx(text)


_PARALLEL_MIN_COMPONENTS = 150
_FORKED_JOB: _CdxJob | None = None


def _run_forked_job() -> tuple[str, list[str]]:
    assert _FORKED_JOB is not None
    return _FORKED_JOB.run()


def _start_cdx(job: _CdxJob) -> Any:
    """Render + validate CycloneDX in a forked process while this one does SPDX (large inventories
    only; the two official validators are pure Python and each takes most of a second at ~500
    components). The job reaches the child through fork's copy of memory, not pickling.
    Returns None (run it inline) where fork is unavailable or not worth it."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _FORKED_JOB
    if len(job.inventory.components) < _PARALLEL_MIN_COMPONENTS or sys.platform != "linux":
        return None
    if os.cpu_count() in (None, 1):
        return None
    _FORKED_JOB = job
    try:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
        return pool, pool.submit(_run_forked_job)
    except OSError:
        return None
    finally:
        _FORKED_JOB = None


def _finish_cdx(pending: Any, job: _CdxJob) -> tuple[str, list[str]]:
    from concurrent.futures.process import BrokenProcessPool

    pool, future = pending
    try:
        result: tuple[str, list[str]] = future.result()
        return result
    except BrokenProcessPool:  # the child died (e.g. killed): do the work here instead
        return job.run()
    finally:
        pool.shutdown(wait=True)


def generate(plan: SbomPlan, env: Mapping[str, str]) -> tuple[dict[str, str], Any, list[str]]:
    """Inventory + rendered documents ({format: text}); raises StageFailed if a validator rejects one."""
    from devops_agent.supplychain.cdx import serial_for
    from devops_agent.supplychain.inventory import ArtifactRef, Component, ImageRef, build_inventory
    from devops_agent.supplychain.spdx import render_spdx, validate_spdx

    notes = list(plan.notes)
    app = Component(
        ref=f"pkg:generic/{plan.app_name}@{plan.version}",
        name=plan.app_name,
        version=plan.version,
        kind="application",
        supplier=plan.supplier,
        purl=f"pkg:generic/{plan.app_name}@{plan.version}",
        source="config app.name + build manifest version",
    )
    image_ref = None
    if plan.image:
        from devops_agent.supplychain.image import ImageContents, inspect_image

        if plan.image.archive is not None:
            contents = inspect_image(plan.image.archive)
        else:
            contents = ImageContents((), (), "the build recorded no image archive: digest only", False)
        notes.append(contents.note)
        image_ref = ImageRef(plan.image.name, plan.image.sha256, contents)
    inventory = build_inventory(
        app,
        requirements=plan.requirements,
        environments=plan.environments,
        artifacts=[ArtifactRef(a.name, a.path, a.sha256) for a in plan.artifacts],
        image=image_ref,
    )
    notes.extend(inventory.notes)
    timestamp = sbom_timestamp(env)
    digests = [a.sha256 for a in plan.artifacts]
    serial = serial_for(inventory, digests)
    docs: dict[str, str] = {}
    job = _CdxJob(inventory, plan.author, timestamp, serial)
    pending = None
    if "cyclonedx" in plan.formats:
        pending = _start_cdx(job) if "spdx" in plan.formats else None
        if pending is None:
            docs["cyclonedx"], cdx_errors = job.run()
    if "spdx" in plan.formats:
        namespace = f"https://spdx.org/spdxdocs/{plan.app_name}-{plan.version}-{serial}"
        docs["spdx"] = render_spdx(inventory, author=plan.author, timestamp=timestamp, namespace=namespace)
        errors = validate_spdx(docs["spdx"])
        if errors:
            raise StageFailed(
                "the generated SPDX SBOM fails spdx-tools' SPDX 2.3 validation:\n  "
                + "\n  ".join(errors[:10]),
                "this is a devops-agent bug: please report it with the SBOM inputs",
            )
    if pending is not None:
        docs["cyclonedx"], cdx_errors = _finish_cdx(pending, job)
    if "cyclonedx" in docs and cdx_errors:
        raise StageFailed(
            "the generated CycloneDX SBOM fails the CycloneDX 1.6 schema:\n  " + "\n  ".join(cdx_errors[:10]),
            "this is a devops-agent bug: please report it with the SBOM inputs",
        )
    return docs, inventory, notes


def ntia_findings(docs: Mapping[str, str]) -> list[Finding]:
    from devops_agent.supplychain.ntia import check_cyclonedx, check_spdx

    out: list[Finding] = []
    if "cyclonedx" in docs:
        out.extend(check_cyclonedx(json.loads(docs["cyclonedx"])))
    if "spdx" in docs:
        out.extend(check_spdx(json.loads(docs["spdx"])))
    return out


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def execute_sbom(plan: SbomPlan, app_dir: Path, env: Mapping[str, str]) -> SbomResult:
    docs, inventory, notes = generate(plan, env)
    findings = ntia_findings(docs)
    names = {"cyclonedx": SBOM_CDX, "spdx": SBOM_SPDX}
    files: dict[str, str] = {}
    for fmt, text in docs.items():
        target = plan.out_dir / names[fmt]
        _write_atomic(target, text)
        files[fmt] = str(target)
    attached = []
    root = attestations_root(app_dir)
    for art in plan.artifacts:
        evidence = evidence_for(app_dir, art.sha256, root=root)
        for fmt, text in docs.items():
            _write_atomic(evidence.dir / names[fmt], text)
        attached.append(art.sha256)
    if plan.image and plan.image.sha256:
        evidence = evidence_for(app_dir, plan.image.sha256, root=root)
        for fmt, text in docs.items():
            _write_atomic(evidence.dir / names[fmt], text)
        attached.append(plan.image.sha256)
    return SbomResult(
        files, len(inventory.components) + 1, tuple(findings), tuple(attached), tuple(notes), plan
    )


# -- report ----------------------------------------------------------------------------------------


def render_summary(result: SbomResult) -> str:
    plan = result.plan
    head = "⚠️ NTIA findings" if result.findings else "✅ valid, NTIA minimum elements present"
    text = f"## 📦 SBOM of {plan.app_name} {plan.version} — {head}\n\n"
    rows = [[fmt, f"`{Path(path).name}`", "✅ valid"] for fmt, path in result.files.items()]
    text += md_table(["Format", "File", "Official validator"], rows) + "\n"
    text += (
        f"{result.components} components · attached to "
        + ", ".join(f"`sha256:{d[:12]}…`" for d in result.attached)
        + "\n"
    )
    if result.findings:
        rows = [[f.format, f.element, f"`{f.component}`", f.message] for f in result.findings[:50]]
        text += "\n### NTIA minimum elements\n\n" + md_table(
            ["Format", "Element", "Component", "Finding"], rows
        )
        if len(result.findings) > 50:
            text += f"\n…and {len(result.findings) - 50} more (see the JSON output)\n"
    for note in result.notes:
        text += f"\n> [!NOTE]\n> {note}\n"
    return text


def publish(result: SbomResult, ctx: Context) -> None:
    actions = ctx.actions
    for finding in result.findings[:20]:
        actions.warning(
            f"{finding.component}: {finding.message}", title=f"NTIA {finding.element} ({finding.format})"
        )
    actions.set_output("cyclonedx", result.files.get("cyclonedx", ""))
    actions.set_output("spdx", result.files.get("spdx", ""))
    actions.set_output("ntia-findings", len(result.findings))
    actions.set_output("components", result.components)
    actions.summary(render_summary(result))
    if ctx.json_output:
        ctx.emit_json(result.to_json())


def gate(result: SbomResult) -> None:
    if result.findings and result.plan.fail_on_ntia:
        elements = sorted({f.element for f in result.findings})
        raise GateFailed(
            f"the SBOM misses NTIA minimum elements ({', '.join(elements)}): "
            f"{len(result.findings)} finding(s)",
            "set sbom.supplier, pin versions in the lock file, "
            "or set sbom.fail_on_ntia: false to only report",
        )


def run(app_dir: Path, config: Config, inputs: SbomInputs, env: Mapping[str, str]) -> SbomResult:
    from devops_agent.stages.build import load_manifest
    from devops_agent.supplychain.identity import derive_identity

    manifest = load_manifest(app_dir)
    try:  # only a fallback for the supplier: an incomplete Actions environment must not block SBOMs
        source_uri = derive_identity(config, app_dir, env).source_uri
    except ConfigError:
        source_uri = ""
    plan = plan_sbom(config, manifest, app_dir, inputs, env, source_uri=source_uri)
    return execute_sbom(plan, app_dir, env)


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        from devops_agent.stages.build import load_for

        parser = new_parser("sbom", "Write validated CycloneDX and SPDX SBOMs of the last build.")
        add_app_options(parser)
        parser.add_argument(
            "--out",
            metavar="DIR",
            default=get_input("out") or None,
            help="directory for sbom.cdx.json and sbom.spdx.json (default <app>/.devops-agent/sbom)",
        )
        parser.add_argument(
            "--requirements",
            metavar="FILE",
            action="append",
            default=get_multiline_input("requirements") or None,
            help="lock/requirements file (repeatable; overrides sbom.requirements)",
        )
        parser.add_argument(
            "--site-packages",
            metavar="DIR",
            action="append",
            default=get_multiline_input("site-packages") or None,
            help="installed environment to inventory (repeatable; overrides sbom.environments)",
        )
        parser.add_argument(
            "--supplier",
            default=get_input("supplier") or None,
            help="supplier of the application (overrides sbom.supplier)",
        )
        parser.add_argument(
            "--build-dir",
            metavar="DIR",
            default=get_input("build-dir") or None,
            help="restore the build exported by `devops-agent build --out DIR` (CI: the downloaded artifact)",
        )
        fail_default = get_input("fail-on-ntia")
        parser.add_argument(
            "--fail-on-ntia",
            action=argparse.BooleanOptionalAction,
            default=get_bool_input("fail-on-ntia", default=False) if fail_default else None,
            help="exit 1 when NTIA minimum elements are missing (overrides sbom.fail_on_ntia)",
        )
        args = parser.parse_args(argv_list(argv))
        app_dir, config = load_for(args.app, args.config)
        actions = Actions.from_env(stream=sys.stderr if args.json else None)
        ctx = Context(actions=actions, app_dir=app_dir, json_output=args.json)
        if args.build_dir:
            from devops_agent.supplychain.transfer import import_build

            import_build(app_dir, Path(args.build_dir))
        result = run(app_dir, config, SbomInputs.from_args(args), dict(os.environ))
        publish(result, ctx)
        gate(result)
        return 0

    return run_command(body)


def pipeline_step(ctx: Any) -> Mapping[str, Any]:
    """SBOMs as a stage of `devops-agent run` (after build)."""
    env = dict(os.environ)
    result = run(ctx.app_dir, ctx.config, SbomInputs(), env)
    publish(result, Context(ctx.actions, ctx.app_dir))
    gate(result)
    data = result.to_json()
    data["detail"] = f"{result.components} components, {len(result.findings)} NTIA findings"
    return data
