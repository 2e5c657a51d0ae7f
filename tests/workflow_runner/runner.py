"""A local runner for our workflows: GitHub's own parser and expression evaluator (through a
Node bridge) plus a small executor that walks the job graph.

What it does faithfully: parsing/validation of the workflow (``@actions/workflow-parser``),
expression evaluation (``@actions/expressions``) including status functions, the implicit
``success() &&`` of ``if:`` conditions, ``needs`` ordering and results, skipped/failed
propagation, step/job/workflow outputs wiring, composite actions from this repository
(``$/actions/<stage>``) with their ``env:`` inputs, ``run:`` steps in bash with
GITHUB_OUTPUT/GITHUB_STEP_SUMMARY/GITHUB_ENV files, and ``environment:`` gates (approval callback).

What it simulates: third-party actions (checkout, setup-python, artifacts, SARIF upload,
attestations) through handlers given by the test; runners are this machine.

Static checks (``check_wiring``) fail on: unknown or cyclic ``needs``, ``needs.X`` used by a job
that does not need X, ``needs.X.outputs.Y`` / ``jobs.X.outputs.Y`` naming an output X does not
declare, ``steps.S.outputs.O`` naming a step that does not exist earlier in the job or an output
our composite action does not declare.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
STATUS_FUNCS = re.compile(r"\b(success|failure|always|cancelled)\s*\(")
NEEDS_REF = re.compile(r"\bneeds\.([A-Za-z_][A-Za-z0-9_-]*)(?:\.outputs\.([A-Za-z_][A-Za-z0-9_-]*))?")
JOBS_REF = re.compile(r"\bjobs\.([A-Za-z_][A-Za-z0-9_-]*)\.outputs\.([A-Za-z_][A-Za-z0-9_-]*)")
STEPS_REF = re.compile(r"\bsteps\.([A-Za-z_][A-Za-z0-9_-]*)\.outputs\.([A-Za-z_][A-Za-z0-9_-]*)")
SELF_PREFIX = "$/"


class WorkflowError(Exception):
    """The workflow is broken statically (it would not run, or would wire values wrongly)."""


class Bridge:
    """The Node process holding GitHub's parser and evaluator; JSON lines over pipes."""

    def __init__(self, timeout: float = 60.0) -> None:
        if not (HERE / "node_modules" / "@actions" / "expressions").is_dir():
            raise RuntimeError(
                "the workflow runner's Node packages are missing; run "
                "`npm ci --prefix tests/workflow_runner` (.ci/setup does it)"
            )
        self.timeout = timeout
        self._proc = subprocess.Popen(
            ["node", "--import", "./register.mjs", "bridge.mjs"],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)

    def request(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(payload) + "\n")
        self._proc.stdin.flush()
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            raise RuntimeError("the Node bridge did not answer in time") from None
        response: dict[str, Any] = json.loads(line)
        return response

    def parse(self, name: str, content: str) -> tuple[list[str], dict[str, Any] | None]:
        response = self.request({"op": "parse", "name": name, "content": content})
        if not response["ok"]:
            raise WorkflowError(response["error"])
        return list(response["errors"]), response["workflow"]

    def evaluate(self, expr: str, context: Mapping[str, Any], status: Mapping[str, bool]) -> Any:
        response = self.request({"op": "eval", "expr": expr, "context": context, "status": status})
        if not response["ok"]:
            raise WorkflowError(f"expression {expr!r}: {response['error']}")
        return response["value"]

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


# -- loading and static checks ------------------------------------------------------------------


@dataclass
class Workflow:
    path: Path
    raw: Mapping[str, Any]
    jobs: dict[str, dict[str, Any]]

    @property
    def on(self) -> Mapping[str, Any]:
        raw: Mapping[Any, Any] = self.raw
        value = raw.get("on", raw.get(True)) or {}
        return value if isinstance(value, Mapping) else {}

    def call_spec(self) -> Mapping[str, Any]:
        return self.on.get("workflow_call") or {}


def load_workflow(bridge: Bridge, path: Path, content: str | None = None) -> Workflow:
    text = path.read_text() if content is None else content
    errors, parsed = bridge.parse(path.name, text)
    if errors or parsed is None:
        raise WorkflowError(f"{path.name}: " + "; ".join(errors or ["does not parse"]))
    raw = yaml.safe_load(text)
    jobs = {job["id"]: job for job in parsed["jobs"]}
    # The converter keeps no `with:`/`shell:`/`working-directory:`; take them from the YAML.
    for job_id, job in jobs.items():
        raw_steps = (raw.get("jobs", {}).get(job_id) or {}).get("steps") or []
        for step, raw_step in zip(job.get("steps") or [], raw_steps, strict=True):
            step["with"] = raw_step.get("with")
            step["shell"] = raw_step.get("shell")
            step["working-directory"] = raw_step.get("working-directory")
    return Workflow(path, raw, jobs)


def expressions(value: Any) -> list[str]:
    """Every expression string inside a converted token tree."""
    if isinstance(value, dict):
        if set(value) == {"$expr"}:
            return [value["$expr"]]
        return [e for v in value.values() for e in expressions(v)]
    if isinstance(value, list):
        return [e for v in value for e in expressions(v)]
    return []


def raw_expressions(text: str) -> list[str]:
    return re.findall(r"\$\{\{(.*?)\}\}", text, re.S)


def action_outputs(uses: str) -> set[str] | None:
    """Declared outputs of one of our composite actions (None for third-party actions)."""
    if not uses.startswith(SELF_PREFIX):
        return None
    spec = yaml.safe_load((REPO_ROOT / uses[len(SELF_PREFIX) :] / "action.yml").read_text())
    return set((spec.get("outputs") or {}).keys())


def topological_order(jobs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(job_id: str, trail: tuple[str, ...]) -> None:
        if state.get(job_id) == 2:
            return
        if state.get(job_id) == 1:
            raise WorkflowError(f"needs cycle: {' -> '.join((*trail, job_id))}")
        state[job_id] = 1
        for need in jobs[job_id]["needs"]:
            if need not in jobs:
                raise WorkflowError(f"job {job_id!r} needs unknown job {need!r}")
            visit(need, (*trail, job_id))
        state[job_id] = 2
        order.append(job_id)

    for job_id in jobs:
        visit(job_id, ())
    return order


def check_wiring(wf: Workflow) -> None:
    """Raise WorkflowError on any broken needs/outputs reference."""
    topological_order(wf.jobs)
    problems: list[str] = []
    for job_id, job in wf.jobs.items():
        job_exprs = [
            job["if"],
            *expressions(job.get("outputs")),
            *expressions(job.get("env")),
            *expressions(job.get("environment")),
            *expressions(job.get("concurrency")),
            *expressions(job.get("with")),
        ]
        step_ids: dict[str, set[str] | None] = {}
        for step in job.get("steps") or []:
            step_exprs = [
                step["if"],
                *expressions(step.get("env")),
                *raw_expressions(json.dumps(step.get("with") or {})),
                *expressions(step.get("run")),
                *expressions(step.get("name")),
            ]
            for expr in step_exprs:
                for step_ref, output in STEPS_REF.findall(expr):
                    if step_ref not in step_ids:
                        problems.append(f"job {job_id!r}: steps.{step_ref} is not an earlier step")
                    elif step_ids[step_ref] is not None and output not in (step_ids[step_ref] or set()):
                        problems.append(f"job {job_id!r}: step {step_ref!r} has no output {output!r}")
            job_exprs += step_exprs
            if not step["id"].startswith("__"):
                step_ids[step["id"]] = action_outputs(step["uses"]) if step.get("uses") else None
        for expr in expressions(job.get("outputs")):
            for step_ref, output in STEPS_REF.findall(expr):
                if step_ref not in step_ids:
                    problems.append(f"job {job_id!r} outputs: no step with id {step_ref!r}")
                elif step_ids[step_ref] is not None and output not in (step_ids[step_ref] or set()):
                    problems.append(f"job {job_id!r} outputs: step {step_ref!r} has no output {output!r}")
        for expr in job_exprs:
            for need, output in NEEDS_REF.findall(expr):
                if need not in job["needs"]:
                    problems.append(f"job {job_id!r} uses needs.{need} but does not need it")
                elif output and output not in (wf.jobs[need].get("outputs") or {}):
                    problems.append(f"job {job_id!r}: job {need!r} has no output {output!r}")
    for name, spec in (wf.call_spec().get("outputs") or {}).items():
        for expr in raw_expressions(str((spec or {}).get("value", ""))):
            for job_ref, output in JOBS_REF.findall(expr):
                if job_ref not in wf.jobs:
                    problems.append(f"workflow output {name!r}: no job {job_ref!r}")
                elif output not in (wf.jobs[job_ref].get("outputs") or {}):
                    problems.append(f"workflow output {name!r}: job {job_ref!r} has no output {output!r}")
    if problems:
        raise WorkflowError("; ".join(problems))


# -- execution ------------------------------------------------------------------------------------


@dataclass
class StepRun:
    id: str
    name: str
    outcome: str  # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    log: str = ""


@dataclass
class JobRun:
    id: str
    result: str  # success | failure | skipped | cancelled
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[StepRun] = field(default_factory=list)
    summary: str = ""
    reason: str = ""


@dataclass
class RunResult:
    jobs: dict[str, JobRun]
    outputs: dict[str, Any]

    def result(self, job_id: str) -> str:
        return self.jobs[job_id].result

    def log(self) -> str:
        return "\n".join(f"[{j.id}/{s.id}] {s.outcome}\n{s.log}" for j in self.jobs.values() for s in j.steps)


Handler = Callable[["StepContext"], Mapping[str, str]]


@dataclass
class StepContext:
    """What a third-party action handler gets: evaluated `with:` values, workspace, run dirs."""

    uses: str
    with_: Mapping[str, Any]
    workspace: Path
    temp: Path
    env: Mapping[str, str]


def parse_kv_file(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT / GITHUB_ENV format: name=value lines and name<<DELIM heredocs."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            i += 1
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            out[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        i += 1
    return out


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


class LocalWorkflowRun:
    def __init__(
        self,
        bridge: Bridge,
        workflow: Workflow,
        *,
        workspace: Path,
        temp: Path,
        inputs: Mapping[str, Any] | None = None,
        github: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        handlers: Mapping[str, Handler] | None = None,
        approve: Callable[[str, str], bool] | None = None,
        step_timeout: float = 600.0,
        runners: Path | None = None,
        only: set[str] | None = None,
    ) -> None:
        """``runners``: give every job its own persistent runner directory (``<runners>/<job>``)
        whose workspace ``actions/checkout`` refreshes from ``workspace`` (the repository, as
        checkout with ``clean: false`` on a self-hosted runner); files a job writes are then only
        seen by other jobs through artifacts. Without it, all jobs share ``workspace``.
        ``only``: run just these jobs; the others count as skipped (a test convenience)."""
        self.bridge = bridge
        self.wf = workflow
        self.workspace = workspace
        self.temp = temp
        self.inputs = self._inputs(inputs or {})
        self.github = {
            "event_name": "workflow_call",
            "run_id": "1",
            "run_attempt": "1",
            "repository": "octo/app",
            "sha": "0" * 40,
            "ref": "refs/heads/main",
            "server_url": "https://github.com",
            "api_url": "https://api.github.com",
            "workflow_ref": "octo/app/.github/workflows/pipeline.yml@refs/heads/main",
            "token": "",
            "workspace": str(workspace),
            **(github or {}),
        }
        self.secrets = dict(secrets or {})
        self.base_env = dict(env or {})
        self.handlers = dict(handlers or {})
        self.approve = approve
        self.step_timeout = step_timeout
        self.runners = runners
        self.only = only
        self.source = workspace
        if runners is not None:
            self.handlers.setdefault("actions/checkout", self._checkout)

    def _inputs(self, given: Mapping[str, Any]) -> dict[str, Any]:
        spec = self.wf.call_spec().get("inputs") or {}
        unknown = set(given) - set(spec)
        if unknown:
            raise WorkflowError(f"unknown workflow inputs: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name, definition in spec.items():
            if name in given:
                values[name] = given[name]
            elif definition.get("required"):
                raise WorkflowError(f"input {name!r} is required")
            else:
                values[name] = definition.get("default", "" if definition.get("type") == "string" else None)
        return values

    # -- evaluation ------------------------------------------------------------------------------
    def eval(self, value: Any, context: Mapping[str, Any], status: Mapping[str, bool] | None = None) -> Any:
        if isinstance(value, dict) and set(value) == {"$expr"}:
            return self.bridge.evaluate(value["$expr"], context, status or {"success": True, "always": True})
        if isinstance(value, dict):
            return {k: self.eval(v, context, status) for k, v in value.items()}
        if isinstance(value, list):
            return [self.eval(v, context, status) for v in value]
        return value

    def eval_condition(self, expr: str, context: Mapping[str, Any], status: Mapping[str, bool]) -> bool:
        if not STATUS_FUNCS.search(expr):
            expr = f"success() && ({expr})"
        value = self.bridge.evaluate(expr, context, status)
        return bool(value) and value not in ("", 0)

    def eval_raw(self, text: str, context: Mapping[str, Any]) -> str:
        """Substitute ${{ }} in a raw YAML string (composite actions are not parsed by the bridge)."""

        def replace(match: re.Match[str]) -> str:
            return _stringify(self.bridge.evaluate(match.group(1).strip(), context, {"success": True}))

        return re.sub(r"\$\{\{(.*?)\}\}", replace, text, flags=re.S)

    # -- run -------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        check_wiring(self.wf)
        results: dict[str, JobRun] = {}
        for job_id in topological_order(self.wf.jobs):
            results[job_id] = self.run_job(job_id, results)
        context = {
            "jobs": {j: {"result": r.result, "outputs": r.outputs} for j, r in results.items()},
            "inputs": self.inputs,
            "github": self.github,
        }
        outputs = {}
        for name, spec in (self.wf.call_spec().get("outputs") or {}).items():
            outputs[name] = self.eval_raw(str(spec.get("value", "")), context)
        return RunResult(results, outputs)

    def _job_context(self, status: str) -> dict[str, str]:
        ref = str(
            self.github.get(
                "job_workflow_ref", "org/devops-agent/.github/workflows/devsecops.yml@refs/tags/v1"
            )
        )
        return {
            "status": status,
            "workflow_ref": ref,
            "workflow_repository": ref.split("/.github/", maxsplit=1)[0],
            "workflow_sha": "1" * 40,
            "workflow_file_path": ".github/workflows/devsecops.yml",
        }

    def _checkout(self, ctx: StepContext) -> Mapping[str, str]:
        """actions/checkout with clean: false: tracked files refreshed, other files kept."""
        shutil.copytree(
            self.source,
            self.workspace,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(".devops-agent", "dist", "__pycache__"),
        )
        return {}

    def _ancestors(self, job_id: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.wf.jobs[job_id]["needs"])
        while stack:
            need = stack.pop()
            if need not in seen:
                seen.add(need)
                stack.extend(self.wf.jobs[need]["needs"])
        return seen

    def run_job(self, job_id: str, done: Mapping[str, JobRun]) -> JobRun:
        job = self.wf.jobs[job_id]
        ancestors = self._ancestors(job_id)
        failed = any(done[a].result in {"failure", "cancelled"} for a in ancestors)
        direct_ok = all(done[n].result == "success" for n in job["needs"])
        status = {"success": not failed and direct_ok, "failure": failed, "always": True, "cancelled": False}
        context: dict[str, Any] = {
            "github": self.github,
            "inputs": self.inputs,
            "secrets": self.secrets,
            "vars": {},
            "needs": {n: {"result": done[n].result, "outputs": done[n].outputs} for n in job["needs"]},
            "runner": {"temp": str(self.temp), "os": "Linux", "arch": "X64"},
            "matrix": {},
            "strategy": {},
            "job": self._job_context("success"),
        }
        if self.only is not None and job_id not in self.only:
            return JobRun(job_id, "skipped", reason="not selected (only=...)")
        if not self.eval_condition(job["if"], context, status):
            return JobRun(job_id, "skipped")
        if self.runners is not None:
            runner_dir = self.runners / job_id
            self.workspace = runner_dir / "work"
            self.temp = runner_dir / "temp"
            if self.temp.exists():
                shutil.rmtree(self.temp)
            self.workspace.mkdir(parents=True, exist_ok=True)
            self.temp.mkdir(parents=True)
            context["runner"] = {**context["runner"], "temp": str(self.temp)}
            context["github"] = {**context["github"], "workspace": str(self.workspace)}
        if job["type"] != "job":
            raise WorkflowError(f"job {job_id!r}: nested reusable workflows are not run locally")
        environment = job.get("environment")
        if isinstance(environment, dict) and "name" in environment:  # url is evaluated after the steps
            environment = environment["name"]
        env_name = self.eval(environment, context)
        if env_name and self.approve is not None and not self.approve(str(env_name), job_id):
            return JobRun(job_id, "failure", reason=f"deployment to {env_name!r} was rejected")
        job_env = {k: _stringify(v) for k, v in (self.eval(job.get("env"), context) or {}).items()}
        run = JobRun(job_id, "success")
        steps_ctx: dict[str, Any] = {}
        job_dir = self.temp / f"job-{job_id}"
        job_dir.mkdir(parents=True, exist_ok=True)
        summary = job_dir / "summary.md"
        summary.touch()
        dynamic_env: dict[str, str] = {}
        for index, step in enumerate(job["steps"]):
            step_status = {
                "success": run.result == "success",
                "failure": run.result == "failure",
                "always": True,
                "cancelled": False,
            }
            step_context = {
                **context,
                "steps": steps_ctx,
                "env": {**job_env, **dynamic_env},
                "job": self._job_context(run.result),
            }
            name = _stringify(self.eval(step.get("name"), step_context)) or step.get("uses") or "run"
            if not self.eval_condition(step["if"], step_context, step_status):
                record = StepRun(step["id"], name, "skipped")
            else:
                env = {
                    **job_env,
                    **dynamic_env,
                    **{k: _stringify(v) for k, v in (self.eval(step.get("env"), step_context) or {}).items()},
                }
                record = self.run_step(step, index, name, env, step_context, job_dir, summary, dynamic_env)
                if record.outcome == "failure" and not step.get("continue-on-error"):
                    run.result = "failure"
            run.steps.append(record)
            steps_ctx[step["id"]] = {
                "outcome": record.outcome,
                "conclusion": record.outcome,
                "outputs": record.outputs,
            }
        run.summary = summary.read_text()
        out_context = {**context, "steps": steps_ctx}
        run.outputs = {
            k: _stringify(v) for k, v in (self.eval(job.get("outputs"), out_context) or {}).items()
        }
        return run

    def _process_env(self, env: Mapping[str, str], files: Mapping[str, Path]) -> dict[str, str]:
        keep = {
            k: v
            for k, v in os.environ.items()
            if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT"}
        }
        return {
            **keep,
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_REPOSITORY": str(self.github["repository"]),
            "GITHUB_RUN_ID": str(self.github["run_id"]),
            "GITHUB_RUN_ATTEMPT": str(self.github["run_attempt"]),
            "GITHUB_SHA": str(self.github["sha"]),
            "GITHUB_REF": str(self.github["ref"]),
            "GITHUB_SERVER_URL": str(self.github["server_url"]),
            "GITHUB_EVENT_NAME": str(self.github["event_name"]),
            "GITHUB_REF_NAME": str(self.github["ref"]).rsplit("/", 1)[-1],
            "GITHUB_WORKFLOW_REF": str(self.github.get("workflow_ref", "")),
            "GITHUB_API_URL": str(self.github.get("api_url", "https://api.github.com")),
            **{k: str(v) for k, v in self.github.items() if k.isupper()},
            **self.base_env,
            **{f"GITHUB_{k.upper()}": str(p) for k, p in files.items()},
            **env,
        }

    def _bash(
        self, script: str, env: Mapping[str, str], cwd: Path, files: Mapping[str, Path]
    ) -> tuple[int, str]:
        path = files["output"].parent / "script.sh"
        path.write_text(script)
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)],
            cwd=cwd,
            env=self._process_env(env, files),
            capture_output=True,
            text=True,
            timeout=self.step_timeout,
            check=False,
        )
        return proc.returncode, proc.stdout + proc.stderr

    def _step_files(self, job_dir: Path, index: int, summary: Path) -> dict[str, Path]:
        step_dir = job_dir / f"step-{index}"
        if step_dir.exists():
            shutil.rmtree(step_dir)
        step_dir.mkdir()
        files = {
            "output": step_dir / "output",
            "env": step_dir / "env",
            "path": step_dir / "path",
            "step_summary": summary,
        }
        for key in ("output", "env", "path"):
            files[key].touch()
        return files

    def run_step(
        self,
        step: Mapping[str, Any],
        index: int,
        name: str,
        env: Mapping[str, str],
        context: Mapping[str, Any],
        job_dir: Path,
        summary: Path,
        dynamic_env: dict[str, str],
    ) -> StepRun:
        files = self._step_files(job_dir, index, summary)
        if step.get("run") is not None:
            script = _stringify(self.eval(step["run"], context))
            code, log = self._bash(script, env, self.workspace, files)
            outputs = parse_kv_file(files["output"].read_text())
            dynamic_env.update(parse_kv_file(files["env"].read_text()))
            return StepRun(step["id"], name, "success" if code == 0 else "failure", outputs, log)
        uses = str(step["uses"])
        with_ = {k: self.eval_raw(_stringify(v), context) for k, v in (step.get("with") or {}).items()}
        if uses.startswith(SELF_PREFIX):
            return self.run_composite(step["id"], name, uses, with_, env, context, job_dir, index, summary)
        action = uses.split("@", 1)[0]
        handler = self.handlers.get(action)
        if handler is None:
            raise WorkflowError(f"no local handler for third-party action {action!r} (step {name!r})")
        try:
            outputs = dict(handler(StepContext(uses, with_, self.workspace, self.temp, env)))
        except Exception as exc:  # a simulated action failing is a step failure
            return StepRun(step["id"], name, "failure", {}, f"{type(exc).__name__}: {exc}")
        return StepRun(step["id"], name, "success", outputs, "")

    def run_composite(
        self,
        step_id: str,
        name: str,
        uses: str,
        with_: Mapping[str, Any],
        env: Mapping[str, str],
        context: Mapping[str, Any],
        job_dir: Path,
        index: int,
        summary: Path,
    ) -> StepRun:
        action_dir = REPO_ROOT / uses[len(SELF_PREFIX) :]
        spec = yaml.safe_load((action_dir / "action.yml").read_text())
        declared = spec.get("inputs") or {}
        unknown = set(with_) - set(declared)
        if unknown:
            raise WorkflowError(f"step {name!r}: {uses} has no input(s) {sorted(unknown)}")
        inputs = {}
        for key, definition in declared.items():
            if key in with_:
                inputs[key] = _stringify(with_[key])
            elif definition.get("required"):
                raise WorkflowError(f"step {name!r}: {uses} input {key!r} is required")
            else:  # defaults may hold expressions, e.g. ${{ github.token }}
                inputs[key] = self.eval_raw(_stringify(definition.get("default", "")), context)
        inner_steps: dict[str, Any] = {}
        log = []
        outcome = "success"
        for inner_index, inner in enumerate(spec["runs"]["steps"]):
            ctx = {**context, "inputs": inputs, "steps": inner_steps}
            condition = inner.get("if")
            if condition is not None:
                cond = condition.strip()
                if cond.startswith("${{") and cond.endswith("}}"):
                    cond = cond[3:-2].strip()
                if not self.eval_condition(
                    cond,
                    ctx,
                    {"success": outcome == "success", "failure": outcome == "failure", "always": True},
                ):
                    continue
            elif outcome != "success":
                continue
            inner_env = {k: self.eval_raw(str(v), ctx) for k, v in (inner.get("env") or {}).items()}
            files = self._step_files(job_dir, index * 100 + inner_index + 1, summary)
            if "run" in inner:
                env_all = {**env, **inner_env, "GITHUB_ACTION_PATH": str(action_dir)}
                code, text = self._bash(inner["run"], env_all, self.workspace, files)
                log.append(text)
                outputs = parse_kv_file(files["output"].read_text())
                if code != 0:
                    outcome = "failure"
            else:
                target = str(inner["uses"])
                handler = self.handlers.get(target.split("@", 1)[0])
                if handler is None:
                    raise WorkflowError(f"no local handler for {target!r} inside {uses}")
                inner_with = {k: self.eval_raw(str(v), ctx) for k, v in (inner.get("with") or {}).items()}
                outputs = dict(handler(StepContext(target, inner_with, self.workspace, self.temp, env)))
            if inner.get("id"):
                inner_steps[inner["id"]] = {"outputs": outputs, "outcome": outcome}
        ctx = {**context, "inputs": inputs, "steps": inner_steps}
        outputs = {
            k: self.eval_raw(str(v.get("value", "")), ctx) for k, v in (spec.get("outputs") or {}).items()
        }
        return StepRun(step_id, name, outcome, outputs, "\n".join(log))


def python_env() -> dict[str, str]:
    """Env that makes scripts/run-stage use this interpreter's environment (no install)."""
    return {"DEVOPS_AGENT_VENV": sys.prefix}
