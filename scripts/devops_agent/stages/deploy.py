"""deploy stage: verify the release, deploy it with the configured driver, record it.

parse (DeployInputs, settings) → decide (resolve_release, plan_deploy: pure) → act (verify →
record ``in_progress`` → driver.deploy → record, history row, outputs, summary).

Bad config or input exits 2 before anything is touched; a failed verification exits 1 with
nothing deployed; a failed deploy operation is recorded with status ``error`` and exits 1.
Re-running with the same digest changes nothing (the driver reports ``unchanged``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
from devops_agent.core.errors import ConfigError, DevopsAgentError
from devops_agent.core.gha import Actions, get_bool_input, get_input, md_table
from devops_agent.deploy import make_driver
from devops_agent.deploy.base import DeployOutcome, DriverContext, Release, normalize_digest
from devops_agent.deploy.settings import (
    DeploySettings,
    ValidateSettings,
    deploy_settings,
    history_settings,
    validate_settings,
)

IMAGE_DRIVERS = ("gitops", "kubectl", "helm")


@dataclass(frozen=True)
class DeployInputs:
    environment: str | None = None
    digest: str | None = None
    artifact: str | None = None
    version: str | None = None
    canary: bool | None = None  # None: from validate.canary
    dry_run: bool = False
    stop: bool = False


@dataclass(frozen=True)
class DeployPlan:
    environment: str
    driver: str
    release: Release
    canary: bool
    verify: bool
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "driver": self.driver,
            "release": self.release.to_json(),
            "canary": self.canary,
            "verify": self.verify,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class DeployResult:
    plan: DeployPlan
    outcome: DeployOutcome | None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    history_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_json(),
            "outcome": self.outcome.to_json() if self.outcome else None,
            "verification": {
                k: v for k, v in self.evidence.items() if k in {"method", "digest", "passed", "signer"}
            },
            "seconds": round(self.seconds, 3),
            "history_file": self.history_file,
        }


# -- decide (pure) ---------------------------------------------------------------------------


def _image_name(value: str | None) -> str | None:
    if not value:
        return None
    from devops_agent.deploy.gitops import image_name_of

    return image_name_of(value)


def resolve_release(
    app_dir: Path,
    settings: DeploySettings,
    manifest: Mapping[str, Any] | None,
    *,
    digest: str | None = None,
    artifact: str | None = None,
    version: str | None = None,
    run_id: str | None = None,
) -> Release:
    """Which release to deploy: an explicit digest/artifact, else the last build's artifact."""
    artifacts = [a for a in (manifest or {}).get("artifacts") or [] if isinstance(a, Mapping)]
    image = dict((manifest or {}).get("image") or {})
    image_name = settings.image or _image_name(image.get("name"))
    chosen: Mapping[str, Any] | None = None
    if digest:
        sha = normalize_digest(digest, field_name="--digest")
        chosen = next((a for a in artifacts if a.get("sha256") == sha), None)
    elif artifact:
        from devops_agent.stages.build import sha256_file

        path = Path(artifact)
        if not path.is_absolute():
            path = app_dir / path
        if not path.is_file():
            raise ConfigError(
                f"{artifact} is not a file", "pass the built artifact's path", field="--artifact"
            )
        sha = sha256_file(path)
    elif settings.driver in IMAGE_DRIVERS and image.get("digest"):
        sha = normalize_digest(str(image["digest"]), field_name="build manifest image.digest")
    else:
        if not artifacts:
            raise ConfigError(
                "nothing to deploy: no --digest/--artifact given and no build manifest in this app directory",
                "run `devops-agent build` first, or pass --digest sha256:… (action input `digest`)",
                field="--digest",
            )
        if settings.artifact:
            chosen = next((a for a in artifacts if a.get("name") == settings.artifact), None)
            if chosen is None:
                names = ", ".join(str(a.get("name")) for a in artifacts)
                raise ConfigError(
                    f"no artifact named {settings.artifact!r} in the last build (it has: {names})",
                    "set deploy.artifact to one of those names",
                    field="deploy.artifact",
                )
        else:
            chosen = artifacts[0]
        sha = normalize_digest(str(chosen["sha256"]))
    path_text: str | None = None
    if artifact:
        path_text = str(Path(artifact) if Path(artifact).is_absolute() else app_dir / artifact)
    elif chosen is not None and chosen.get("path"):
        path_text = str(app_dir / str(chosen["path"]))
    elif digest:
        from devops_agent.core.state import StateStore, state_dir

        if (state_dir(app_dir) / "state.db").exists():
            with StateStore.for_app(app_dir) as store:
                record = store.find_artifact(sha)
            if record is not None:
                path_text = str(app_dir / record.path)
    return Release(
        digest=sha,
        version=version or str((manifest or {}).get("version") or "unknown"),
        artifact=path_text,
        image=image_name,
        run_id=run_id,
    )


def plan_deploy(
    settings: DeploySettings,
    vsettings: ValidateSettings,
    release: Release,
    *,
    environment: str | None,
    canary: bool | None,
    supports_canary: bool,
) -> DeployPlan:
    notes: list[str] = []
    env = environment or settings.environment
    if not env.strip():
        raise ConfigError("is empty", "name the environment, e.g. staging", field="environment")
    want_canary = bool(vsettings.canary_percent) if canary is None else canary
    if want_canary and not vsettings.canary_percent:
        raise ConfigError(
            "a canary deploy needs validate.canary.percent",
            "add validate.canary.percent (1-100) or drop --canary",
            field="validate.canary.percent",
        )
    if want_canary and not supports_canary:
        notes.append(
            f"the {settings.driver} driver has no canary: the release is deployed fully "
            "(validate.canary applies to the process driver)"
        )
        want_canary = False
    if settings.driver == "process" and not release.artifact:
        raise ConfigError(
            f"the process driver runs an artifact file and none is known for {release.ref}",
            "deploy from the build's app directory, or pass --artifact PATH",
            field="--artifact",
        )
    if settings.driver in IMAGE_DRIVERS:
        release.image_ref()  # raises ConfigError naming deploy.image when the image is unknown
    if not settings.verify:
        notes.append("deploy.verify is false: the artifact is NOT verified before deploying")
    return DeployPlan(env, settings.driver, release, want_canary, settings.verify, tuple(notes))


# -- act --------------------------------------------------------------------------------------


def driver_context(
    app_dir: Path,
    settings: DeploySettings,
    environment: str,
    actions: Actions,
    env: Mapping[str, str] | None = None,
) -> DriverContext:
    env = dict(os.environ if env is None else env)
    secrets: list[str] = []
    if settings.gitops and settings.gitops.token_env and env.get(settings.gitops.token_env):
        secrets.append(env[settings.gitops.token_env])
        actions.mask(env[settings.gitops.token_env])
    return DriverContext(app_dir, environment, settings, env, log=actions.info, secrets=tuple(secrets))


def _manifest(app_dir: Path) -> dict[str, Any] | None:
    from devops_agent.core.state import state_dir
    from devops_agent.stages.build import MANIFEST, load_manifest

    return load_manifest(app_dir) if (state_dir(app_dir) / MANIFEST).exists() else None


def build_output_dir(app_dir: Path, artifact: str | None) -> Path | None:
    """``--artifact DIR``: the build's exported output (artifacts + build-manifest.json)."""
    if not artifact:
        return None
    path = Path(artifact) if Path(artifact).is_absolute() else app_dir / artifact
    return path if path.is_dir() else None


def _read_out_manifest(out_dir: Path) -> dict[str, Any]:
    import json

    from devops_agent.stages.build import MANIFEST

    try:
        data: dict[str, Any] = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{out_dir} is a directory without a readable {MANIFEST} ({exc})",
            "pass the build's output directory (action build, input `out`) or one artifact file",
            field="--artifact",
        ) from None
    return data


def adopt_build_output(app_dir: Path, out_dir: Path) -> list[str]:
    """Restore a build exported by another job into ``app_dir``: every artifact at its manifest
    path (digest re-checked) and the manifest in the state directory, so verification and the
    drivers see exactly what the build produced. Returns what was copied."""
    import shutil

    from devops_agent.core.errors import GateFailed
    from devops_agent.core.state import state_dir
    from devops_agent.stages.build import MANIFEST, sha256_file

    manifest = _read_out_manifest(out_dir)
    copied: list[str] = []
    for item in manifest.get("artifacts") or []:
        source = out_dir / str(item["name"])
        if not source.is_file() or sha256_file(source) != item["sha256"]:
            raise GateFailed(
                f"{source} is missing or does not hash to the build's sha256:{str(item['sha256'])[:12]}…",
                "download the build output of this run unchanged",
            )
        target = app_dir / str(item["path"])
        if not target.is_file() or sha256_file(target) != item["sha256"]:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            copied.append(str(item["path"]))
    state = state_dir(app_dir)
    state.mkdir(parents=True, exist_ok=True)
    if (
        not (state / MANIFEST).exists()
        or (state / MANIFEST).read_bytes() != (out_dir / MANIFEST).read_bytes()
    ):
        shutil.copyfile(out_dir / MANIFEST, state / MANIFEST)
        copied.append(f"{state.name}/{MANIFEST}")
    return copied


def prepare(
    app_dir: Path, config: Config, inputs: DeployInputs, *, run_id: str | None
) -> tuple[DeploySettings, DeployPlan]:
    """Everything that can fail as bad input, before anything is touched."""
    settings = deploy_settings(config)
    vsettings = validate_settings(config)
    history_settings(config)
    manifest = _manifest(app_dir)
    artifact = inputs.artifact
    out_dir = build_output_dir(app_dir, artifact)
    if out_dir is not None:
        manifest = _read_out_manifest(out_dir)
        artifact = None
    release = resolve_release(
        app_dir,
        settings,
        manifest,
        digest=inputs.digest,
        artifact=artifact,
        version=inputs.version,
        run_id=run_id,
    )
    from devops_agent.deploy import DRIVER_CLASSES

    supports = settings.driver == "process"  # the only driver with a canary mode
    assert settings.driver in DRIVER_CLASSES
    plan = plan_deploy(
        settings,
        vsettings,
        release,
        environment=inputs.environment,
        canary=inputs.canary,
        supports_canary=supports,
    )
    return settings, plan


def execute_deploy(
    app_dir: Path,
    config: Config,
    actions: Actions,
    inputs: DeployInputs,
    *,
    run_id: str | None,
    env: Mapping[str, str] | None = None,
) -> DeployResult:
    import time

    from devops_agent.deploy.records import make_recorder
    from devops_agent.deploy.verifying import verify_release
    from devops_agent.stages.history import HistoryRow, append_history, seconds_text, utc_now

    env = dict(os.environ if env is None else env)
    settings, plan = prepare(app_dir, config, inputs, run_id=run_id)
    for note in plan.notes:
        actions.warning(note, title="deploy")
    if inputs.dry_run:
        return DeployResult(plan, None)
    out_dir = build_output_dir(app_dir, inputs.artifact)
    if out_dir is not None:
        for restored in adopt_build_output(app_dir, out_dir):
            actions.info(f"restored {restored} from the build output {out_dir}")
    driver = make_driver(driver_context(app_dir, settings, plan.environment, actions, env))
    release = plan.release
    with actions.group(f"verify {release.ref}"):
        evidence = verify_release(app_dir, config, release, enabled=plan.verify)
        actions.info(f"verification: {evidence.get('method')}")
    recorder = make_recorder(app_dir, env)
    entry = recorder.start(
        plan.environment,
        release,
        run_id=run_id,
        driver=plan.driver,
        description=f"deploying {release.version} ({release.short}) with {plan.driver}",
    )
    hsettings = history_settings(config)
    started = time.monotonic()
    try:
        with actions.group(f"deploy {release.version} to {plan.environment} ({plan.driver})"):
            outcome = driver.deploy(release, canary=plan.canary)
    except DevopsAgentError as exc:
        recorder.transition(entry, "error", description=exc.cause.splitlines()[0][:140])
        append_history(
            app_dir,
            hsettings,
            [
                HistoryRow(
                    utc_now(),
                    plan.environment,
                    release.version,
                    release.ref,
                    "deploy-failed",
                    seconds_text(time.monotonic() - started),
                    run_id or "",
                    exc.cause.splitlines()[0][:120],
                )
            ],
        )
        raise
    seconds = time.monotonic() - started
    url = outcome.deployed.url
    if not (outcome.action == "unchanged" and entry.validated):
        description = (
            f"canary on {url}; awaiting validation"
            if outcome.action == "canary"
            else "deployed; awaiting validation"
        )
        recorder.transition(
            entry,
            "in_progress",
            description=description,
            url=url,
            details={
                "action": outcome.action,
                "slot": outcome.deployed.slot,
                "verification": evidence.get("method"),
                "canary": outcome.action == "canary",
            },
        )
    path = append_history(
        app_dir,
        hsettings,
        [
            HistoryRow(
                utc_now(),
                plan.environment,
                release.version,
                release.ref,
                "unchanged" if outcome.action == "unchanged" else "deployed",
                seconds_text(seconds),
                run_id or "",
                f"{plan.driver}"
                + (f" {outcome.deployed.slot}" if outcome.deployed.slot else "")
                + (" canary" if outcome.action == "canary" else ""),
            )
        ],
    )
    return DeployResult(plan, outcome, evidence, seconds, str(path) if path else None)


# -- report -----------------------------------------------------------------------------------


def render_summary(result: DeployResult) -> str:
    plan = result.plan
    r = plan.release
    if result.outcome is None:
        head = f"## 🧪 Deploy plan (dry run): {r.version} → {plan.environment}\n\n"
        rows = [
            ["Driver", plan.driver],
            ["Digest", f"`{r.ref}`"],
            ["Artifact", f"`{r.artifact}`" if r.artifact else "—"],
            ["Image", f"`{r.image_ref()}`" if r.image else "—"],
            ["Verify first", "yes" if plan.verify else "**no** (deploy.verify: false)"],
            ["Canary", "yes" if plan.canary else "no"],
        ]
        return head + md_table(["", ""], rows) + "".join(f"\n> [!NOTE]\n> {n}\n" for n in plan.notes)
    o = result.outcome
    icon = "⏸️" if o.action == "unchanged" else "🚀"
    head = f"## {icon} Deploy {r.version} → {plan.environment}: {o.action}\n\n"
    rows = [
        ["Driver", plan.driver + (f" ({o.deployed.slot} slot)" if o.deployed.slot else "")],
        ["Digest", f"`{r.ref}`"],
        ["URL", o.deployed.url or "—"],
        [
            "Previous release",
            f"{o.previous.release.version} `{o.previous.release.short}`" if o.previous else "—",
        ],
        ["Verification", str(result.evidence.get("method", "—"))],
        ["Time", f"{result.seconds:.2f}s"],
    ]
    text = head + md_table(["", ""], rows)
    for note in (*plan.notes, *o.notes):
        text += f"\n> [!NOTE]\n> {note}\n"
    return text


def publish(result: DeployResult, ctx: Context) -> None:
    a = ctx.actions
    r = result.plan.release
    a.set_output("environment", result.plan.environment)
    a.set_output("digest", r.ref)
    a.set_output("version", r.version)
    a.set_output("driver", result.plan.driver)
    a.set_output("action", result.outcome.action if result.outcome else "planned")
    a.set_output("url", (result.outcome.deployed.url or "") if result.outcome else "")
    a.summary(render_summary(result))
    if ctx.json_output:
        ctx.emit_json(result.to_json())


def stop_environment(app_dir: Path, config: Config, environment: str | None, actions: Actions) -> list[str]:
    """Stop what the process driver started: in ``environment``, or (None) in every environment
    that has process-driver state in this app directory (e.g. staging and production)."""
    from devops_agent.core.state import state_dir
    from devops_agent.deploy.process import STATE_FILE, ProcessDriver

    settings = deploy_settings(config)
    if environment is not None:
        names = [environment]
    else:
        root = state_dir(app_dir) / "deploy"
        names = sorted(p.parent.name for p in root.glob(f"*/{STATE_FILE}")) if root.is_dir() else []
    stopped: list[str] = []
    for name in names:
        driver = ProcessDriver(driver_context(app_dir, settings, name, actions))
        stopped += [f"{name} {item}" for item in driver.stop()]
    return stopped


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        from devops_agent.stages.build import load_for

        parser = new_parser("deploy", "Verify a release and deploy it with the configured driver.")
        add_app_options(parser)
        add_dry_run(parser)
        parser.add_argument(
            "--environment",
            default=get_input("environment", None) or None,
            help="environment (action input `environment`; default deploy.environment)",
        )
        parser.add_argument(
            "--digest",
            default=get_input("digest", None) or None,
            help="sha256 of the artifact/image to deploy (action input `digest`; default: last build)",
        )
        parser.add_argument(
            "--artifact",
            default=get_input("artifact", None) or None,
            help="path of the artifact file (action input `artifact`)",
        )
        parser.add_argument(
            "--version",
            dest="release_version",
            default=get_input("version", None) or None,
            help="version label (action input `version`; default: the build's)",
        )
        canary = get_input("canary", None)
        parser.add_argument(
            "--canary",
            action="store_true",
            default=get_bool_input("canary", None, default=False) if canary else None,
            help="start the release as a canary (process driver; needs validate.canary.percent)",
        )
        parser.add_argument(
            "--stop",
            action="store_true",
            help="stop every release the process driver started (in --environment, default: all), then exit",
        )
        args = parser.parse_args(argv_list(argv))
        app_dir, config = load_for(args.app, args.config)
        from devops_agent.promote.settings import config_for_environment

        config = config_for_environment(config, args.environment)  # production: promote.deploy
        actions = Actions.from_env(stream=sys.stderr if args.json else None)
        ctx = Context(actions=actions, app_dir=app_dir, json_output=args.json)
        if args.stop:
            stopped = stop_environment(app_dir, config, args.environment, actions)
            actions.info("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
            if args.json:
                ctx.emit_json({"stopped": stopped})
            return 0
        run_id = os.environ.get("GITHUB_RUN_ID") or None
        inputs = DeployInputs(
            environment=args.environment,
            digest=args.digest,
            artifact=args.artifact,
            version=args.release_version,
            canary=args.canary,
            dry_run=args.dry_run,
        )
        result = execute_deploy(app_dir, config, actions, inputs, run_id=run_id or _local_run_id(app_dir))
        publish(result, ctx)
        return 0

    return run_command(body)


def _local_run_id(app_dir: Path) -> str | None:
    """The run of the last build (so deploy + validate of one build share a run id)."""
    manifest = _manifest(app_dir)
    return str(manifest.get("run_id")) if manifest and manifest.get("run_id") else None


def pipeline_step(ctx: Any) -> Mapping[str, Any]:
    """deploy-staging in `devops-agent run`: the build's artifact to deploy.environment."""
    build = ctx.results.get("build") or {}
    settings = deploy_settings(ctx.config)
    inputs = DeployInputs()
    if (
        build.get("artifacts")
        and not settings.artifact
        and not (settings.driver in IMAGE_DRIVERS and build.get("image"))
    ):
        first = build["artifacts"][0]
        inputs = DeployInputs(digest=f"sha256:{first['sha256']}", version=build.get("version"))
    result = execute_deploy(ctx.app_dir, ctx.config, ctx.actions, inputs, run_id=ctx.run_id)
    publish(result, Context(ctx.actions, ctx.app_dir))
    data = result.to_json()
    o = result.outcome
    assert o is not None
    where = o.deployed.url or result.plan.driver
    data["detail"] = f"{result.plan.release.version} → {result.plan.environment} ({o.action}, {where})"
    return data
