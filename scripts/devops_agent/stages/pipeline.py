"""`devops-agent run`: every implemented stage, in order, locally on one app directory.

Stages join the pipeline by appending (name, module) to STAGES; the module exposes
``pipeline_step(ctx: PipelineContext) -> Mapping[str, Any]`` and raises a DevopsAgentError to
stop the run (exit 2 for bad input, 1 for a failed stage or gate).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devops_agent.core.command import Context, add_app_options, argv_list, new_parser, run_command
from devops_agent.core.config import Config
from devops_agent.core.errors import DevopsAgentError
from devops_agent.core.gha import Actions, md_table

# The order of the pipeline. A stage runs when its module exists and has pipeline_step().
STAGES: tuple[tuple[str, str], ...] = (
    ("build", "devops_agent.stages.build"),
    ("scan", "devops_agent.stages.scan"),
    ("sbom", "devops_agent.stages.sbom"),
    ("sign", "devops_agent.stages.sign"),
    ("deploy-staging", "devops_agent.stages.deploy"),
    ("validate", "devops_agent.stages.validate"),
    ("promote", "devops_agent.stages.promote"),
)


def available_stages(stages: Sequence[tuple[str, str]] = STAGES) -> list[tuple[str, str]]:
    """The stages whose module is present in this build and joins the pipeline."""
    import importlib.util

    out = []
    for name, module_name in stages:
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        if hasattr(module, "pipeline_step"):
            out.append((name, module_name))
    return out


@dataclass
class PipelineContext:
    app_dir: Path
    config: Config
    actions: Actions
    run_id: str
    options: Mapping[str, Any] = field(default_factory=dict)
    results: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    failed_stage: str | None = None


@dataclass(frozen=True)
class StageRecord:
    name: str
    status: str  # passed | failed | not-run
    seconds: float
    detail: str = ""


def mermaid(records: Sequence[StageRecord]) -> str:
    """A left-to-right flowchart of the stages, coloured by status."""
    lines = ["```mermaid", "flowchart LR"]
    for i, r in enumerate(records):
        icon = {"passed": "✅", "failed": "❌"}.get(r.status, "⏭️")
        lines.append(f'  s{i}["{icon} {r.name}"]:::{r.status.replace("-", "")}')
        if i:
            lines.append(f"  s{i - 1} --> s{i}")
    lines += [
        "  classDef passed fill:#d4f8d4,stroke:#2da44e",
        "  classDef failed fill:#ffd8d3,stroke:#cf222e",
        "  classDef notrun fill:#eeeeee,stroke:#999999",
        "```",
    ]
    return "\n".join(lines) + "\n"


def render_run_summary(records: Sequence[StageRecord], app_name: str, run_id: str) -> str:
    failed = [r for r in records if r.status == "failed"]
    head = "❌ failed" if failed else "✅ passed"
    text = f"## devops-agent run — {app_name}: {head}\n\nRun `{run_id}`\n\n"
    text += mermaid(records) + "\n"
    rows = [[r.name, r.status, f"{r.seconds:.1f}s", r.detail] for r in records]
    text += md_table(["Stage", "Status", "Time", "Detail"], rows)
    return text


def run_pipeline(ctx: PipelineContext, stages: Sequence[tuple[str, str]] | None = None) -> list[StageRecord]:
    records: list[StageRecord] = []
    failure: DevopsAgentError | None = None
    for name, module_name in available_stages() if stages is None else stages:
        if failure is not None:
            records.append(StageRecord(name, "not-run", 0.0))
            continue
        started = time.monotonic()
        try:
            module = importlib.import_module(module_name)
            outcome = module.pipeline_step(ctx)
        except DevopsAgentError as exc:
            records.append(StageRecord(name, "failed", time.monotonic() - started, exc.cause.splitlines()[0]))
            ctx.failed_stage = name
            failure = exc
            continue
        ctx.results[name] = outcome
        records.append(
            StageRecord(name, "passed", time.monotonic() - started, str(outcome.get("detail", "")))
        )
    ctx.actions.summary(render_run_summary(records, ctx.config.app.name, ctx.run_id))
    if failure is not None:
        raise failure
    return records


def record_incident(ctx: PipelineContext, failed: bool) -> None:
    """Local incident lifecycle after a run: report the failed stage, or resolve on success.

    Never changes the run's outcome: a problem here is printed as a warning.
    """
    import importlib.util

    section = ctx.config.section("incidents")
    if not section.get("enabled", True) or importlib.util.find_spec("devops_agent.stages.incidents") is None:
        return
    from devops_agent.stages import incidents

    argv = ["report-failure" if failed else "resolve", "--app", str(ctx.app_dir)]
    if ctx.options.get("config"):
        argv += ["--config", str(ctx.options["config"])]
    env = {k: v for k, v in os.environ.items() if k not in {"GITHUB_ACTIONS", "GITHUB_REPOSITORY"}}
    env["DEVOPS_AGENT_PLATFORM"] = "local"
    if ctx.options.get("json"):
        # stdout carries only the run's JSON document: the incident report goes to stderr
        import contextlib

        with contextlib.redirect_stdout(sys.stderr):
            code = incidents.main(argv, env=env)
    else:
        code = incidents.main(argv, env=env)
    if code != 0:
        ctx.actions.warning(f"recording the local incident failed (exit {code}); the run result stands")


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        from devops_agent.core.state import StateStore
        from devops_agent.stages.build import load_for

        parser = new_parser("run", "Run the whole pipeline locally on an app directory.")
        add_app_options(parser)
        parser.add_argument(
            "--approve",
            action="store_true",
            help="approve production in this run (promote does not stop for `devops-agent approve --local`)",
        )
        parser.add_argument(
            "--no-install-tools",
            action="store_true",
            help="do not provision missing scanners (semgrep) into their own cached virtualenv",
        )
        parser.add_argument(
            "--no-incidents",
            action="store_true",
            help="do not record a local incident on failure (or resolve on success)",
        )
        args = parser.parse_args(argv_list(argv))
        app_dir, config = load_for(args.app, args.config)
        actions = Actions.from_env(stream=sys.stderr if args.json else None)
        with StateStore.for_app(app_dir) as store:
            run_id = store.start_run()
        ctx = PipelineContext(app_dir, config, actions, run_id, options=vars(args))
        try:
            records = run_pipeline(ctx)
        except DevopsAgentError:
            with StateStore.for_app(app_dir) as store:
                store.finish_run(run_id, "failure", {"stage": ctx.failed_stage or "pipeline"})
            if not args.no_incidents:
                record_incident(ctx, failed=True)
            raise
        with StateStore.for_app(app_dir) as store:
            store.finish_run(run_id, "success", {"stages": [r.name for r in records]})
        if not args.no_incidents:
            record_incident(ctx, failed=False)
        if args.json:
            Context(actions, app_dir).emit_json(
                {"run_id": run_id, "stages": [r.__dict__ for r in records], "results": ctx.results}
            )
        return 0

    return run_command(body)
