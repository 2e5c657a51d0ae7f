"""cleanup: stale branches and tags, old workflow artifacts and caches, registry images.

parse (CleanupInputs + the policy file) → collect listings (collect.py) → decide (planner.py,
pure) → act (act.py, only with ``--execute``) → one report (JSON file + job summary).

Dry-run is the default: without ``--execute`` (action input ``dry-run: "false"``) no write
request is sent. Exit codes: 0 done (or planned), 1 a deletion failed or the plan exceeds
``deletions.max_deletions``, 2 bad input (nothing changed).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from devops_agent.cleanup.act import Outcome, TagDeleter, execute
from devops_agent.cleanup.collect import (
    GitTags,
    ManifestSource,
    RegistryManifests,
    collect_artifacts,
    collect_branches,
    collect_caches,
    collect_package,
    deployed_digests,
    deployed_shas,
    package_ref,
)
from devops_agent.cleanup.model import Plan, TargetPlan
from devops_agent.cleanup.planner import plan_artifacts, plan_branches, plan_caches, plan_package, plan_tags
from devops_agent.cleanup.policy import TARGETS, CleanupPolicy, load_policy
from devops_agent.cleanup.report import build_report, human_bytes, render_markdown
from devops_agent.core.command import argv_list, new_parser, resolve_app_dir, run_command
from devops_agent.core.errors import ConfigError, GateFailed
from devops_agent.core.gha import Actions, get_bool_input, get_input
from devops_agent.core.platform import TOKEN_ENV_VARS, Platform, PlatformSettings, Repository
from devops_agent.core.state import STATE_DIR

REPORT_NAME = "cleanup-report.json"


@dataclass(frozen=True)
class CleanupInputs:
    policy_path: Path
    targets: tuple[str, ...] | None  # None: every target the policy enables
    execute: bool
    json_output: bool
    app_dir: Path
    report_path: Path
    local_images: bool = False
    git_dir: Path | None = None


def parse_targets(value: str) -> tuple[str, ...] | None:
    names = [t.strip() for t in value.replace(",", " ").split() if t.strip()]
    if not names or names == ["all"]:
        return None
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise ConfigError(
            f"unknown target(s) {', '.join(unknown)}",
            f"use a comma-separated subset of: {', '.join(TARGETS)} (or `all`)",
            field="--targets",
        )
    return tuple(dict.fromkeys(names))


def select_targets(policy: CleanupPolicy, requested: tuple[str, ...] | None) -> tuple[str, ...]:
    enabled = policy.enabled_targets()
    if requested is None:
        return enabled
    missing = [t for t in requested if t not in enabled]
    if missing:
        raise ConfigError(
            f"target(s) {', '.join(missing)} requested but not enabled in {policy.source}",
            "add (or enable) their section in the cleanup policy, or drop them from --targets",
            field="--targets",
        )
    return requested


# ------------------------------------------------------------------------------------------------
# Collect + plan (reads only)
# ------------------------------------------------------------------------------------------------


@dataclass
class Janitor:
    """Everything one cleanup run reads from and writes to; tests build it on fakes."""

    policy: CleanupPolicy
    platform: Platform | None
    app_dir: Path | None = None
    manifests: ManifestSource | None = None
    tags: GitTags | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    _repository: Repository | None = field(default=None, init=False, repr=False)

    def repository(self) -> Repository:
        if self._repository is None:
            assert self.platform is not None
            self._repository = self.platform.get_repository()
        return self._repository

    def plan(self, targets: Sequence[str], now: datetime) -> Plan:
        policy = self.policy
        out: list[TargetPlan] = []
        platform = self.platform
        if "branches" in targets and policy.branches and platform is not None:
            snapshot = collect_branches(platform, self.repository(), policy.branches)
            out.append(plan_branches(snapshot, policy.branches, now))
        if "tags" in targets and policy.tags:
            if self.tags is None:
                raise ConfigError(
                    "tag cleanup needs a git checkout",
                    "pass --git-dir DIR (a clone with its tags)",
                    field="--git-dir",
                )
            out.append(plan_tags(self.tags.list(), policy.tags, now, protected=self._tags_on_deployed()))
        if "artifacts" in targets and policy.artifacts and platform is not None:
            run = self.env.get("GITHUB_RUN_ID", "")
            snapshot_a = collect_artifacts(
                platform, policy.artifacts, now, current_run=int(run) if run.isdigit() else None
            )
            out.append(plan_artifacts(snapshot_a, policy.artifacts, now))
        if "caches" in targets and policy.caches and platform is not None:
            refs = [self.env.get("GITHUB_REF", "")]
            out.append(plan_caches(collect_caches(platform, active_refs=refs), policy.caches, now))
        if "packages" in targets and platform is not None:
            packages = [p for p in policy.packages if p.enabled]
            deployed = deployed_digests(platform, self.app_dir) if packages else frozenset()
            for package in packages:
                if package.owner and package.owner_kind:
                    ref = package_ref(package, package.owner, package.owner_kind)
                else:
                    repo = self.repository()
                    ref = package_ref(package, repo.full_name.split("/")[0], repo.owner_kind)
                snapshot_p = collect_package(platform, package, ref, self.manifests)
                out.append(plan_package(snapshot_p, package, deployed, now))
        return Plan(tuple(out), now)

    def _tags_on_deployed(self) -> set[str]:
        assert self.tags is not None
        shas = deployed_shas(self.platform)
        return {t.name for t in self.tags.list() if t.sha in shas}

    def act(self, plan: Plan, actions: Actions | None = None) -> tuple[Outcome, ...]:
        deletions = plan.deletions
        limit = self.policy.deletions.max_deletions
        if len(deletions) > limit:
            raise GateFailed(
                f"the plan deletes {len(deletions)} items, more than deletions.max_deletions ({limit}); "
                "nothing was deleted",
                "check the plan (run without --execute), then fix the policy or raise "
                "deletions.max_deletions",
            )

        def progress(outcome: Outcome) -> None:
            if actions is not None and outcome.status == "failed":
                actions.warning(
                    f"could not delete {outcome.deletion.target} {outcome.deletion.name}: {outcome.error}"
                )

        tags: TagDeleter | None = self.tags
        return execute(deletions, self.platform, tags=tags, progress=progress)


def request_counts(janitor: Janitor) -> dict[str, int]:
    out: dict[str, int] = {}
    if janitor.platform is not None:
        stats = janitor.platform.stats()
        out.update({"api": stats.requests, "api_writes": stats.writes, "api_retries": stats.retries})
    if isinstance(janitor.manifests, RegistryManifests):
        out["registry"] = janitor.manifests.requests
    return out


# ------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------


def make_platform(policy: CleanupPolicy, app_dir: Path, env: Mapping[str, str]) -> Platform:
    settings = PlatformSettings.from_env(env, app_dir)
    if settings.kind == "github":
        from devops_agent.platform.github import GitHubPlatform
        from devops_agent.platform.retry import RetryPolicy

        return GitHubPlatform.from_settings(
            settings, RetryPolicy(write_interval=policy.deletions.write_interval)
        )
    from devops_agent.core.platform import get_platform

    return get_platform(app_dir, env)


def registry_access(platform: Platform, env: Mapping[str, str], actions: Actions) -> RegistryManifests:
    token = env.get("DEVOPS_AGENT_REGISTRY_TOKEN") or next(
        (env[n] for n in TOKEN_ENV_VARS if env.get(n)), None
    )
    if token:
        actions.mask(token)
    user = env.get("DEVOPS_AGENT_REGISTRY_USER") or env.get("GITHUB_ACTOR") or "devops-agent"
    # GHCR is the default registry only on GitHub; locally each package names its registry.
    default = "ghcr.io" if platform.kind == "github" else None
    return RegistryManifests(username=user if token else None, password=token, default_registry=default)


def parse_inputs(argv: Sequence[str] | None, env: Mapping[str, str]) -> CleanupInputs:
    parser = new_parser("cleanup", "Plan (and with --execute, perform) the cleanup a policy file describes.")
    parser.add_argument(
        "--policy",
        metavar="FILE",
        default=get_input("policy", env) or None,
        help="cleanup policy (action input `policy`; default: the config's cleanup.policy, "
        "else .github/cleanup-policy.yml)",
    )
    parser.add_argument(
        "--targets",
        default=get_input("targets", env, default="all"),
        help=f"comma-separated subset of {', '.join(TARGETS)} (action input `targets`; default: all enabled)",
    )
    parser.add_argument(
        "--execute",
        action="store_true",
        default=not get_bool_input("dry-run", env, default=True),
        help='delete for real (action input `dry-run: "false"`); the default is a dry run',
    )
    parser.add_argument(
        "--app",
        metavar="DIR",
        default=get_input("app-dir", env, default="."),
        help="application directory (state store, default report location)",
    )
    parser.add_argument(
        "--report",
        metavar="FILE",
        default=get_input("report", env) or None,
        help=f"write the JSON report here (default <app>/{STATE_DIR}/{REPORT_NAME})",
    )
    parser.add_argument(
        "--git-dir",
        metavar="DIR",
        default=get_input("git-dir", env) or None,
        help="git checkout for tag cleanup (default: the app directory)",
    )
    parser.add_argument(
        "--local-images",
        action="store_true",
        default=get_bool_input("local-images", env, default=False),
        help="also prune local Docker/podman images (self-hosted runners; action input `local-images`)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=get_bool_input("json", env, default=False),
        help="print the report as JSON on stdout",
    )
    args = parser.parse_args(argv_list(argv))
    app_dir = resolve_app_dir(args.app)
    policy_path = Path(args.policy) if args.policy else _policy_from_config(app_dir)
    if not policy_path.is_absolute() and not policy_path.exists():
        policy_path = app_dir / policy_path
    return CleanupInputs(
        policy_path=policy_path,
        targets=parse_targets(args.targets),
        execute=bool(args.execute),
        json_output=bool(args.json),
        app_dir=app_dir,
        report_path=Path(args.report) if args.report else app_dir / STATE_DIR / REPORT_NAME,
        local_images=bool(args.local_images),
        git_dir=Path(args.git_dir) if args.git_dir else None,
    )


def _policy_from_config(app_dir: Path) -> Path:
    from devops_agent.core.config import config_path_for, load_config

    config_file = config_path_for(app_dir, None)
    if config_file.is_file():
        value = load_config(config_file).section("cleanup").get("policy")
        if value:
            return app_dir / str(value)
    return app_dir / ".github" / "cleanup-policy.yml"


def run(
    inputs: CleanupInputs, actions: Actions, env: Mapping[str, str], *, now: datetime | None = None
) -> int:
    policy = load_policy(inputs.policy_path)
    targets = select_targets(policy, inputs.targets)
    now = now or datetime.now(timezone.utc)
    needs_platform = any(t in targets for t in ("branches", "artifacts", "caches", "packages"))
    platform = make_platform(policy, inputs.app_dir, env) if needs_platform else None
    try:
        manifests = (
            registry_access(platform, env, actions)
            if platform is not None and "packages" in targets
            else None
        )
        tags = (
            GitTags(inputs.git_dir or inputs.app_dir, policy.tags.remote)
            if "tags" in targets and policy.tags
            else None
        )
        janitor = Janitor(policy, platform, inputs.app_dir, manifests, tags, env)
        with actions.group(f"plan: {', '.join(targets) or 'nothing enabled'}"):
            plan = janitor.plan(targets, now)
            for deletion in plan.deletions:
                verb = "delete" if inputs.execute else "would delete"
                actions.info(f"{verb} {deletion.target} {deletion.name}: {deletion.reason}")
        for target in plan.targets:
            if target.skipped:
                actions.warning(f"cleanup left {target.scope} alone: {target.skipped}")
        outcomes: tuple[Outcome, ...] = ()
        if inputs.execute and plan.deletions:
            with actions.group(f"delete {len(plan.deletions)} item(s)"):
                outcomes = janitor.act(plan, actions)
        report = build_report(plan, outcomes, executed=inputs.execute, requests=request_counts(janitor))
    finally:
        if platform is not None:
            platform.close()
    if inputs.local_images:
        from devops_agent.cleanup.local_images import prune_local_images

        report["local_images"] = prune_local_images(
            policy.local_images, execute=inputs.execute, actions=actions
        )
    inputs.report_path.parent.mkdir(parents=True, exist_ok=True)
    inputs.report_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    actions.summary(render_markdown(report))
    totals = report["totals"]
    actions.set_output("planned", int(totals.get("planned", 0)))
    actions.set_output("deleted", int(totals.get("deleted", 0)))
    actions.set_output("bytes-freed", int(totals.get("bytes_freed", 0)))
    actions.set_output("report", str(inputs.report_path))
    if inputs.json_output:
        sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    else:
        actions.info(
            f"cleanup {report['mode']}: {totals.get('planned', 0)} planned, "
            f"{totals.get('deleted', 0)} deleted, "
            f"{human_bytes(int(totals.get('bytes_freed', 0)))} freed; report {inputs.report_path}"
        )
    failed = int(totals.get("failed", 0)) + int(totals.get("not-attempted", 0))
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None) -> int:
    environ: Mapping[str, str] = dict(os.environ) if env is None else env

    def body() -> int:
        inputs = parse_inputs(argv, environ)
        actions = Actions.from_env(environ, stream=sys.stderr if inputs.json_output else None)
        return run(inputs, actions, environ)

    return run_command(body)
