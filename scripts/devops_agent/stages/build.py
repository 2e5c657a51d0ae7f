"""build stage: run build and test commands, digest artifacts, emit SLSA subjects.

parse (BuildInputs) → decide (plan_build: version, commands, image step) → act (execute_build).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from devops_agent.core.command import (
    Context,
    add_app_options,
    argv_list,
    new_parser,
    resolve_app_dir,
    run_command,
)
from devops_agent.core.config import Config, config_path_for, load_config
from devops_agent.core.errors import ConfigError, StageFailed
from devops_agent.core.gha import Actions, get_bool_input, get_input, md_table
from devops_agent.core.state import StateStore, state_dir
from devops_agent.core.versioning import derive_version, git_branch, git_commit, read_git_state

MANIFEST = "build-manifest.json"
_TAIL_LINES = 30


@dataclass(frozen=True)
class Step:
    kind: str  # build | test | image
    command: str


@dataclass(frozen=True)
class BuildPlan:
    version: str
    steps: tuple[Step, ...]
    artifact_globs: tuple[str, ...]
    timeout_seconds: int
    env: Mapping[str, str]
    image: str | None  # "<name>:<version>" when an image build is planned
    image_skipped_reason: str | None = None


@dataclass(frozen=True)
class Artifact:
    name: str
    path: str  # relative to the app directory
    sha256: str
    size: int

    def subject(self) -> dict[str, Any]:
        """in-toto / SLSA subject form."""
        return {"name": self.name, "digest": {"sha256": self.sha256}}


@dataclass(frozen=True)
class StepResult:
    step: Step
    exit_code: int
    seconds: float


@dataclass(frozen=True)
class BuildResult:
    run_id: str
    version: str
    commit: str | None
    artifacts: tuple[Artifact, ...]
    steps: tuple[StepResult, ...] = field(default_factory=tuple)
    image: Mapping[str, str] | None = None
    notes: tuple[str, ...] = ()

    def subjects(self) -> list[dict[str, Any]]:
        return [a.subject() for a in self.artifacts]

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "version": self.version,
            "commit": self.commit,
            "artifacts": [asdict(a) for a in self.artifacts],
            "subjects": self.subjects(),
            "image": dict(self.image) if self.image else None,
            "steps": [
                {
                    "kind": s.step.kind,
                    "command": s.step.command,
                    "exit_code": s.exit_code,
                    "seconds": round(s.seconds, 3),
                }
                for s in self.steps
            ],
            "notes": list(self.notes),
        }


# -- decide (pure) ---------------------------------------------------------------------------


def plan_build(
    config: Config, version: str, *, skip_tests: bool = False, buildah: str | None = None
) -> BuildPlan:
    build = config.build
    steps = [Step("build", c) for c in build.commands]
    if not skip_tests:
        steps += [Step("test", c) for c in build.test_commands]
    for pattern in build.artifacts:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise ConfigError(
                f"{pattern!r} leaves the app directory",
                "use a glob relative to the app directory, e.g. dist/*.whl",
                field="build.artifacts",
            )
    image = None
    skipped = None
    if build.image.enabled:
        name = build.image.name or f"localhost/{config.app.name}"
        if buildah is None:
            skipped = (
                "image build requested (build.image.enabled) but buildah is not installed; "
                "install buildah (e.g. `apt-get install buildah`) or set build.image.enabled: false"
            )
        else:
            image = f"{name}:{_tag_safe(version)}"
            steps.append(Step("image", image))
    return BuildPlan(
        version=version,
        steps=tuple(steps),
        artifact_globs=build.artifacts,
        timeout_seconds=build.timeout_minutes * 60,
        env=build.env,
        image=image,
        image_skipped_reason=skipped,
    )


def _tag_safe(version: str) -> str:
    """OCI tags allow [A-Za-z0-9_.-]; semver build metadata's '+' becomes '_'."""
    return version.replace("+", "_")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def collect_artifacts(app_dir: Path, globs: Sequence[str]) -> tuple[Artifact, ...]:
    """Digest every file the globs match; each glob must match something; names must be unique."""
    found: dict[Path, None] = {}
    for pattern in globs:
        matches = sorted(p for p in app_dir.glob(pattern) if p.is_file())
        if not matches:
            raise StageFailed(
                f"build.artifacts: {pattern!r} matched no file in {app_dir}",
                "check that the build commands write there, or fix the glob",
            )
        for m in matches:
            found.setdefault(m.resolve(), None)
    artifacts: list[Artifact] = []
    names: dict[str, str] = {}
    for path in found:
        rel = path.relative_to(app_dir).as_posix()
        if path.name in names:
            raise StageFailed(
                f"two artifacts share the name {path.name!r}: {names[path.name]} and {rel}",
                "narrow build.artifacts so each subject name is unique",
            )
        names[path.name] = rel
        artifacts.append(Artifact(path.name, rel, sha256_file(path), path.stat().st_size))
    return tuple(artifacts)


def sha256sum_lines(artifacts: Sequence[Artifact]) -> str:
    """``sha256sum`` output, the format slsa-github-generator's base64-subjects expects."""
    return "".join(f"{a.sha256}  {a.name}\n" for a in artifacts)


def base64_subjects(artifacts: Sequence[Artifact]) -> str:
    return base64.b64encode(sha256sum_lines(artifacts).encode()).decode()


# -- act --------------------------------------------------------------------------------------


def _run_step(step: Step, plan: BuildPlan, app_dir: Path, actions: Actions) -> StepResult:
    env = dict(os.environ)
    env.update(plan.env)
    env["DEVOPS_AGENT_VERSION"] = plan.version
    started = time.monotonic()
    tail: list[str] = []
    with actions.group(f"{step.kind}: {step.command}"):
        try:
            proc = subprocess.Popen(
                ["bash", "-eo", "pipefail", "-c", step.command],
                cwd=app_dir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise StageFailed(
                f"cannot start {step.kind} command {step.command!r}: {exc}", "install bash or fix the command"
            ) from None
        assert proc.stdout is not None
        deadline = started + plan.timeout_seconds
        for line in proc.stdout:
            actions.info(line.rstrip("\n"))
            tail.append(line.rstrip("\n"))
            del tail[:-_TAIL_LINES]
            if time.monotonic() > deadline:
                proc.kill()
                break
        try:
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    seconds = time.monotonic() - started
    if seconds > plan.timeout_seconds:
        raise StageFailed(
            f"{step.kind} command timed out after {plan.timeout_seconds}s: {step.command}",
            "raise build.timeout_minutes or make the command faster",
        )
    if code != 0:
        excerpt = "\n".join(tail[-10:])
        raise StageFailed(
            f"{step.kind} command failed with exit code {code}: {step.command}\n{excerpt}",
            f"fix the {step.kind} failure above, or run it locally in the app directory",
        )
    return StepResult(step, code, seconds)


def _build_image(
    plan: BuildPlan, config: Config, app_dir: Path, buildah: str, actions: Actions
) -> dict[str, str]:
    assert plan.image is not None
    image_cfg = config.build.image
    out_dir = app_dir / "dist"
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"{config.app.name}-image.oci.tar"
    digest_file = state_dir(app_dir) / "image.digest"
    digest_file.parent.mkdir(parents=True, exist_ok=True)
    commands = [
        [
            buildah,
            "build",
            "--isolation",
            "chroot",
            "-f",
            image_cfg.containerfile,
            "-t",
            plan.image,
            image_cfg.context,
        ],
        [buildah, "push", "--digestfile", str(digest_file), plan.image, f"oci-archive:{archive}"],
    ]
    for argv in commands:
        with actions.group(" ".join(argv[:2]) + " " + plan.image):
            proc = subprocess.run(
                argv, cwd=app_dir, capture_output=True, text=True, timeout=plan.timeout_seconds, check=False
            )
            actions.info(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise StageFailed(
                f"buildah {argv[1]} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}",
                "check the Containerfile and that buildah can run here (rootless needs user namespaces)",
            )
    return {
        "name": plan.image,
        "digest": digest_file.read_text().strip(),
        "archive": archive.relative_to(app_dir).as_posix(),
    }


def execute_build(
    config: Config, app_dir: Path, actions: Actions, *, skip_tests: bool = False, run_id: str | None = None
) -> BuildResult:
    """Build, test, digest and record. Writes .devops-agent/build-manifest.json."""
    version = derive_version(config.build.version, read_git_state(app_dir))
    buildah = shutil.which("buildah")
    plan = plan_build(config, version, skip_tests=skip_tests, buildah=buildah)
    commit = git_commit(app_dir)
    with StateStore.for_app(app_dir) as store:
        run_id = store.start_run(
            version=version, commit_sha=commit, branch=git_branch(app_dir), run_id=run_id
        )
        store.set_run_version(run_id, version)
        results: list[StepResult] = []
        notes: list[str] = []
        image: dict[str, str] | None = None
        try:
            for step in plan.steps:
                if step.kind == "image":
                    assert buildah is not None
                    image = _build_image(plan, config, app_dir, buildah, actions)
                    continue
                results.append(_run_step(step, plan, app_dir, actions))
            if plan.image_skipped_reason:
                if config.build.image.required:
                    raise StageFailed(
                        plan.image_skipped_reason,
                        "install buildah on the runner or set build.image.required: false",
                    )
                actions.warning(plan.image_skipped_reason, title="image build skipped")
                notes.append(plan.image_skipped_reason)
            artifacts = collect_artifacts(app_dir, plan.artifact_globs)
        except BaseException:
            store.finish_run(run_id, "failure", {"stage": "build"})
            raise
        for a in artifacts:
            store.record_artifact(run_id, a.name, a.path, a.sha256, a.size)
    result = BuildResult(run_id, version, commit, artifacts, tuple(results), image, tuple(notes))
    manifest = state_dir(app_dir) / MANIFEST
    manifest.write_text(json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return result


def export_artifacts(result: BuildResult, app_dir: Path, out: Path) -> None:
    """Copy artifacts + manifest into ``out`` (what CI uploads), re-checking each digest."""
    out.mkdir(parents=True, exist_ok=True)
    for artifact in result.artifacts:
        target = out / artifact.name
        shutil.copyfile(app_dir / artifact.path, target)
        if sha256_file(target) != artifact.sha256:
            raise StageFailed(
                f"{artifact.name} changed while being copied to {out}",
                "make sure nothing writes to the artifacts after the build",
            )
    shutil.copyfile(state_dir(app_dir) / MANIFEST, out / MANIFEST)


def load_manifest(app_dir: Path) -> dict[str, Any]:
    """The last build's manifest, for later stages (sbom, sign, deploy)."""
    path = state_dir(app_dir) / MANIFEST
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StageFailed(
            f"no build found in {app_dir} ({path} is missing)", "run `devops-agent build --app DIR` first"
        ) from None
    return data


# -- report -----------------------------------------------------------------------------------


def render_summary(result: BuildResult, app_name: str) -> str:
    rows = [[f"`{a.name}`", f"`{a.sha256}`", _human(a.size)] for a in result.artifacts]
    if result.image:
        rows.append([f"`{result.image['name']}` (OCI image)", f"`{result.image['digest']}`", "—"])
    steps = [[s.step.kind, f"`{s.step.command}`", "✅ passed", f"{s.seconds:.1f}s"] for s in result.steps]
    text = f"## 🏗️ Build of {app_name} {result.version}\n\n"
    if result.commit:
        text += f"Commit `{result.commit[:12]}` · run `{result.run_id}`\n\n"
    if steps:
        text += md_table(["Step", "Command", "Result", "Time"], steps) + "\n"
    text += md_table(["Artifact", "SHA-256", "Size"], rows)
    for note in result.notes:
        text += f"\n> [!WARNING]\n> {note}\n"
    return text


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def publish(result: BuildResult, ctx: Context, app_name: str) -> None:
    actions = ctx.actions
    actions.set_output("version", result.version)
    actions.set_output("subjects", result.subjects())
    actions.set_output("digests", base64_subjects(result.artifacts))
    actions.set_output("artifacts", [asdict(a) for a in result.artifacts])
    actions.set_output("image-digest", result.image["digest"] if result.image else "")
    actions.set_output("run-id", result.run_id)
    actions.summary(render_summary(result, app_name))
    if ctx.json_output:
        ctx.emit_json(result.to_json())
    else:
        for a in result.artifacts:
            actions.info(f"sha256:{a.sha256}  {a.name}")


def load_for(app: str, config: str | None) -> tuple[Path, Config]:
    app_dir = resolve_app_dir(app)
    return app_dir, load_config(config_path_for(app_dir, config))


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        parser = new_parser("build", "Run the build and test commands, digest the artifacts.")
        add_app_options(parser)
        parser.add_argument(
            "--out",
            metavar="DIR",
            default=get_input("out", None) or None,
            help="copy the artifacts and build-manifest.json into DIR (action input `out`)",
        )
        parser.add_argument(
            "--skip-tests",
            action="store_true",
            default=get_bool_input("skip-tests", None, default=False),
            help="do not run build.test_commands (action input `skip-tests`)",
        )
        args = parser.parse_args(argv_list(argv))
        app_dir, config = load_for(args.app, args.config)
        # JSON goes to stdout alone; human logs then go to stderr.
        actions = Actions.from_env(stream=sys.stderr if args.json else None)
        ctx = Context(actions=actions, app_dir=app_dir, json_output=args.json)
        result = execute_build(config, app_dir, actions, skip_tests=args.skip_tests)
        if args.out:
            export_artifacts(result, app_dir, Path(args.out))
        publish(result, ctx, config.app.name)
        return 0

    return run_command(body)


def pipeline_step(ctx: Any) -> Mapping[str, Any]:
    """The build as the first stage of `devops-agent run`."""
    result = execute_build(ctx.config, ctx.app_dir, ctx.actions, run_id=ctx.run_id)
    publish(result, Context(ctx.actions, ctx.app_dir), ctx.config.app.name)
    data = result.to_json()
    data["detail"] = f"{result.version}: " + ", ".join(
        f"{a.name} sha256:{a.sha256[:12]}…" for a in result.artifacts
    )
    return data
