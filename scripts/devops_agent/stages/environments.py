"""environments apply FILE: make the repository's environments match a YAML file.

parse (YAML → schema → desired environments; exit 2 on any problem, nothing changed) → check the
token (an admin token; never GITHUB_TOKEN) → resolve reviewer names to ids → diff each
environment against GitHub (pure) → ``--dry-run`` prints the diff; otherwise every environment
that differs is PUT with ALL its protection fields (GitHub resets the fields a PUT omits), then
read back and compared again. A second apply finds nothing to change and sends no write.
Environments that exist but are not in the file are listed and left alone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from devops_agent.core.command import (
    Context,
    add_app_options,
    add_dry_run,
    argv_list,
    new_parser,
    resolve_app_dir,
    run_command,
)
from devops_agent.core.errors import ConfigError, PlatformError
from devops_agent.core.gha import Actions, get_bool_input, get_input, md_table
from devops_agent.core.platform import EnvironmentSpec, Platform, Reviewer, ReviewerType
from devops_agent.promote.envfile import (
    DesiredEnvironment,
    EnvironmentDiff,
    diff_environment,
    load_file,
    render_diff,
    resolve,
)


def plan_apply(
    platform: Platform, desired: Sequence[DesiredEnvironment]
) -> tuple[dict[str, EnvironmentSpec], list[EnvironmentDiff], list[str]]:
    """Specs, their diffs against the platform, and the environments the file does not manage."""

    def lookup(type_: ReviewerType, name: str) -> Reviewer:
        if platform.kind == "local":  # locally, naming a reviewer registers it
            from devops_agent.platform.local import LocalPlatform

            assert isinstance(platform, LocalPlatform)
            return platform.record_reviewer(type_, name)
        return platform.resolve_reviewer(type_, name)

    specs = resolve(desired, lookup)
    existing = {e.name: e for e in platform.list_environments()}
    diffs = [
        diff_environment(existing[name].spec() if name in existing else None, spec)
        for name, spec in specs.items()
    ]
    unmanaged = sorted(set(existing) - set(specs))
    return specs, diffs, unmanaged


def check_supported(platform: Platform, specs: Mapping[str, EnvironmentSpec]) -> None:
    """Refuse (exit 2, before any write) what the GitHub backend cannot set."""
    if platform.kind != "github":
        return
    for name, spec in specs.items():
        if not spec.can_admins_bypass:
            raise ConfigError(
                "can_admins_bypass: false cannot be set through GitHub's documented REST API",
                "untick 'Allow administrators to bypass configured protection rules' in the environment's "
                "settings page and keep can_admins_bypass: true (or leave it out) in the file",
                field=f"environments.{name}.can_admins_bypass",
            )


def apply(
    platform: Platform, specs: Mapping[str, EnvironmentSpec], diffs: Sequence[EnvironmentDiff]
) -> list[str]:
    """PUT every environment that differs; read back and fail when GitHub did not take it."""
    applied = []
    for d in diffs:
        if not d.changed:
            continue
        result = platform.put_environment(specs[d.name])
        again = diff_environment(result.spec(), specs[d.name])
        if again.changed:
            fields = ", ".join(c.field for c in again.changes)
            raise PlatformError(
                f"environment {d.name} still differs after the update ({fields})",
                "check the token's permissions (Administration: write) and the repository plan "
                "(required reviewers on private repositories need GitHub Team/Enterprise)",
            )
        applied.append(d.name)
    return applied


def render_summary(
    diffs: Sequence[EnvironmentDiff], unmanaged: Sequence[str], *, dry_run: bool, target: str
) -> str:
    head = "🔍 environments apply --dry-run" if dry_run else "🛡️ environments apply"
    changed = [d for d in diffs if d.changed]
    verdict = f"{len(changed)} to change" if dry_run else f"{len(changed)} changed"
    rows = []
    for d in diffs:
        if not d.changed:
            rows.append([d.name, "unchanged", "", "", ""])
        for c in d.changes:
            rows.append([d.name, d.action, c.field, c.before, c.after])
    rows += [[name, "not in file (left as is)", "", "", ""] for name in unmanaged]
    return f"## {head} — {target}: {verdict}\n\n" + md_table(
        ["Environment", "Action", "Field", "Before", "After"], rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        parser = new_parser("environments", "Make repository environments match a YAML file (admin token).")
        parser.add_argument(
            "action", choices=["apply"], help="apply: create/update environments to match FILE"
        )
        parser.add_argument(
            "file",
            metavar="FILE",
            nargs="?",
            default=get_input("file") or None,
            help="environments YAML (action input `file`)",
        )
        add_app_options(parser)
        add_dry_run(parser)
        parser.add_argument(
            "--app-token",
            action="store_true",
            default=get_bool_input("app-token", None, default=False),
            help="the ghs_ token in use is a GitHub App installation token with Administration: write "
            "(not the workflow's GITHUB_TOKEN)",
        )
        args = parser.parse_args(argv_list(argv))
        if not args.file:
            raise ConfigError(
                "is required", "pass the YAML file: devops-agent environments apply FILE", field="FILE"
            )
        app_dir = resolve_app_dir(args.app)
        env = dict(os.environ)
        actions = Actions.from_env(stream=sys.stderr if args.json else None)
        from devops_agent.core.platform import PlatformSettings, get_platform

        settings = PlatformSettings.from_env(env, app_dir)
        if settings.kind == "github":
            from devops_agent.promote.tokens import require_admin_token

            require_admin_token(env, app_token=args.app_token)
        desired = load_file(Path(args.file), owner=settings.repo.owner)
        with get_platform(app_dir, env) as platform:
            specs, diffs, unmanaged = plan_apply(platform, desired)
            check_supported(platform, specs)
            target = (
                platform.repo.full_name if platform.kind == "github" else f"local state store ({app_dir})"
            )
            if args.dry_run:
                sys.stdout.write(render_diff(diffs, unmanaged)) if not args.json else None
                applied: list[str] = []
            else:
                applied = apply(platform, specs, diffs)
                if not args.json:
                    actions.info(render_diff(diffs, unmanaged).rstrip("\n"))
        actions.summary(render_summary(diffs, unmanaged, dry_run=args.dry_run, target=target))
        changed = [d.name for d in diffs if d.changed]
        actions.set_output("changed", changed)
        actions.set_output("applied", applied)
        if args.json:
            payload: dict[str, Any] = {
                "dry_run": args.dry_run,
                "target": target,
                "environments": [d.to_json() for d in diffs],
                "unmanaged": unmanaged,
                "applied": applied,
            }
            Context(actions, app_dir).emit_json(payload)
        return 0

    return run_command(body)
