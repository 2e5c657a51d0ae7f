"""Static rules for our workflow and action YAML (run by the test suite and .ci/run).

Each rule is a small function over one parsed file; ``check_paths`` runs them all. Usable by
callers too: ``python -m devops_agent.checks.workflow_rules FILE...`` (exit 1 on violations).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
VERSION_COMMENT_RE = re.compile(r"#\s*v\d")
SELF_PREFIX = "$/"
OWN_ACTIONS_DIR = "actions"


@dataclass(frozen=True)
class Violation:
    path: str
    rule: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: [{self.rule}] {self.message}"


@dataclass(frozen=True)
class YamlFile:
    path: str
    text: str
    doc: Mapping[Any, Any]
    kind: str  # workflow | action
    repo_root: Path | None = None

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def line_of(self, needle: str) -> int | None:
        for number, line in enumerate(self.lines, start=1):
            if needle in line:
                return number
        return None


def load(path: Path, repo_root: Path | None = None) -> YamlFile:
    import yaml

    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text) or {}
    if not isinstance(doc, Mapping):
        doc = {}
    kind = "action" if path.name in {"action.yml", "action.yaml"} else "workflow"
    return YamlFile(str(path), text, doc, kind, repo_root)


def triggers(doc: Mapping[Any, Any]) -> Mapping[str, Any]:
    """The ``on:`` block (pyyaml reads the key ``on`` as boolean True)."""
    value = doc.get("on", doc.get(True))
    if isinstance(value, str):
        return {value: {}}
    if isinstance(value, list):
        return {str(v): {} for v in value}
    return value if isinstance(value, Mapping) else {}


def steps(f: YamlFile) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, step) for every step of every job, or of a composite action."""
    if f.kind == "action":
        runs = f.doc.get("runs") or {}
        for index, step in enumerate(runs.get("steps") or []):
            if isinstance(step, Mapping):
                yield f"runs.steps[{index}]", step
        return
    for job_id, job in (f.doc.get("jobs") or {}).items():
        for index, step in enumerate((job or {}).get("steps") or []):
            if isinstance(step, Mapping):
                yield f"jobs.{job_id}.steps[{index}]", step


def step_name(where: str, step: Mapping[str, Any]) -> str:
    return f"{where} ({step['name']})" if step.get("name") else where


# -- rules -----------------------------------------------------------------------------------


def rule_top_permissions(f: YamlFile) -> Iterator[Violation]:
    if f.kind != "workflow":
        return
    if "permissions" not in f.doc or f.doc["permissions"] not in ({}, None):
        yield Violation(
            f.path,
            "top-permissions",
            "the workflow must start from `permissions: {}` and grant per job",
            f.line_of("permissions:"),
        )


def rule_job_permissions(f: YamlFile) -> Iterator[Violation]:
    if f.kind != "workflow":
        return
    for job_id, job in (f.doc.get("jobs") or {}).items():
        if not isinstance(job, Mapping) or "permissions" not in job:
            yield Violation(
                f.path,
                "job-permissions",
                f"job {job_id!r} must declare its own least-privilege `permissions:`",
                f.line_of(f"{job_id}:"),
            )


def _uses_values(f: YamlFile) -> Iterator[tuple[str, str]]:
    for where, step in steps(f):
        if isinstance(step.get("uses"), str):
            yield where, step["uses"]
    if f.kind == "workflow":
        for job_id, job in (f.doc.get("jobs") or {}).items():
            if isinstance(job, Mapping) and isinstance(job.get("uses"), str):
                yield f"jobs.{job_id}", job["uses"]


def rule_pinned(f: YamlFile) -> Iterator[Violation]:
    for where, uses in _uses_values(f):
        if uses.startswith(("./", SELF_PREFIX, "docker://")):
            continue
        ref = uses.rpartition("@")[2] if "@" in uses else ""
        line = f.line_of(uses)
        if not SHA_RE.match(ref):
            yield Violation(
                f.path,
                "pinned",
                f"{where}: third-party `{uses}` must be pinned to a full 40-hex commit SHA",
                line,
            )
            continue
        text = f.lines[line - 1] if line else ""
        if not VERSION_COMMENT_RE.search(text):
            yield Violation(
                f.path,
                "pinned",
                f"{where}: `{uses}` needs a `# vX.Y.Z` comment naming the pinned release",
                line,
            )


def rule_shell(f: YamlFile) -> Iterator[Violation]:
    for where, step in steps(f):
        if "run" in step and not step.get("shell"):
            yield Violation(
                f.path,
                "shell",
                f"{step_name(where, step)}: a `run:` step needs `shell:`",
                f.line_of(str(step.get("name", "run:"))),
            )


def rule_no_expression_in_run(f: YamlFile) -> Iterator[Violation]:
    for where, step in steps(f):
        if "${{" in str(step.get("run", "")):
            yield Violation(
                f.path,
                "no-expression-in-run",
                f"{step_name(where, step)}: `${{{{ }}}}` inside `run:` is a script-injection "
                "risk; pass the value through `env:`",
                f.line_of("${{"),
            )


def _undescribed(section: Any) -> Iterator[str]:
    if isinstance(section, Mapping):
        for name, spec in section.items():
            if not isinstance(spec, Mapping) or not str(spec.get("description") or "").strip():
                yield str(name)


def rule_described(f: YamlFile) -> Iterator[Violation]:
    blocks: list[tuple[str, Any]] = []
    if f.kind == "action":
        blocks += [("inputs", f.doc.get("inputs")), ("outputs", f.doc.get("outputs"))]
    else:
        for trigger, spec in triggers(f.doc).items():
            if isinstance(spec, Mapping) and trigger in {"workflow_call", "workflow_dispatch"}:
                for key in ("inputs", "outputs", "secrets"):
                    blocks.append((f"on.{trigger}.{key}", spec.get(key)))
    for label, block in blocks:
        for name in _undescribed(block):
            yield Violation(f.path, "described", f"{label}.{name} needs a description", f.line_of(f"{name}:"))


def rule_checkout_credentials(f: YamlFile) -> Iterator[Violation]:
    for where, step in steps(f):
        uses = str(step.get("uses", ""))
        if uses.startswith("actions/checkout@"):
            with_ = step.get("with") or {}
            if str(with_.get("persist-credentials", "true")).lower() != "false":
                yield Violation(
                    f.path,
                    "checkout-credentials",
                    f"{step_name(where, step)}: set `persist-credentials: false`",
                    f.line_of(uses),
                )


def rule_own_actions(f: YamlFile) -> Iterator[Violation]:
    """Our actions resolve to this repository at the workflow's own commit: `$/actions/<name>`."""
    reusable = f.kind == "workflow" and "workflow_call" in triggers(f.doc)
    for where, uses in _uses_values(f):
        own_path: str | None = None
        if uses.startswith(SELF_PREFIX):
            own_path = uses[len(SELF_PREFIX) :]
        elif re.match(r"^[^/]+/devops-agent/", uses):
            yield Violation(
                f.path,
                "own-actions",
                f"{where}: `{uses}` pins our own action separately from the workflow; "
                f"use `$/{uses.split('/', 2)[2].split('@')[0]}` so it runs at the caller's "
                "pinned commit",
                f.line_of(uses),
            )
            continue
        elif uses.startswith("./actions/") and reusable:
            yield Violation(
                f.path,
                "own-actions",
                f"{where}: `{uses}` resolves against the CALLER's checkout in a reusable "
                f"workflow; use `$/{uses[2:]}`",
                f.line_of(uses),
            )
            continue
        if own_path is not None and f.repo_root is not None and own_path.endswith((".yml", ".yaml")):
            yield from _check_workflow_call(f, where, uses, f.repo_root / own_path)
        elif own_path is not None and f.repo_root is not None:
            target = f.repo_root / own_path
            if not ((target / "action.yml").is_file() or (target / "action.yaml").is_file()):
                yield Violation(
                    f.path,
                    "own-actions",
                    f"{where}: `{uses}` points at {own_path}, which has no action.yml",
                    f.line_of(uses),
                )


def _check_workflow_call(f: YamlFile, where: str, uses: str, target: Path) -> Iterator[Violation]:
    """A call of one of our reusable workflows: it exists and every `with:` key is an input."""
    if not target.is_file():
        yield Violation(f.path, "own-actions", f"{where}: `{uses}` does not exist", f.line_of(uses))
        return
    called = load(target)
    declared = (triggers(called.doc).get("workflow_call") or {}).get("inputs") or {}
    job = (f.doc.get("jobs") or {}).get(where.split(".", 1)[1]) or {}
    for key in job.get("with") or {}:
        if key not in declared:
            yield Violation(
                f.path, "own-actions", f"{where}: {target.name} has no input {key!r}", f.line_of(f"{key}:")
            )


RULES: tuple[Callable[[YamlFile], Iterator[Violation]], ...] = (
    rule_top_permissions,
    rule_job_permissions,
    rule_pinned,
    rule_shell,
    rule_no_expression_in_run,
    rule_described,
    rule_checkout_credentials,
    rule_own_actions,
)


def check_file(path: Path, repo_root: Path | None = None) -> list[Violation]:
    try:
        f = load(path, repo_root)
    except Exception as exc:  # a YAML error is itself a violation
        return [Violation(str(path), "parse", f"does not parse: {exc}")]
    out: list[Violation] = []
    for rule in RULES:
        out.extend(rule(f))
    return out


def repo_yaml_files(root: Path) -> list[Path]:
    files = [root / "action.yml"] if (root / "action.yml").is_file() else []
    files += sorted(root.glob("actions/*/action.yml"))
    files += sorted((root / ".github" / "workflows").glob("*.y*ml"))
    return files


def check_paths(paths: Sequence[Path], repo_root: Path | None = None) -> list[Violation]:
    return [v for p in paths for v in check_file(p, repo_root)]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    root = Path.cwd()
    paths = [Path(a) for a in args] or repo_yaml_files(root)
    violations = check_paths(paths, root)
    for v in violations:
        sys.stdout.write(f"{v}\n")
    sys.stdout.write(f"{len(paths)} file(s) checked, {len(violations)} violation(s)\n")
    return 1 if violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
