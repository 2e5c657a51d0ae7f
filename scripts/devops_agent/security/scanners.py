"""Scanner runners: bandit, semgrep, pip-audit (OSV, fail-closed), checkov, external SARIF.

Each scanner is planned from ``scan.<name>`` (pure :func:`plan_scan`), then run into a fresh
directory. A scanner is never skipped silently: it ends as ``ran``, ``failed`` (blocks the gate),
``disabled`` (by config, or nothing to scan) or ``not-installed`` (checkov on ``auto``), and the
summary lists every one with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devops_agent.core.errors import ConfigError
from devops_agent.security.policy import ScannerStatus
from devops_agent.security.sarif import empty_run, load_log
from devops_agent.security.severity import Severity, cvss_vector_score, from_score

SEMGREP_VERSION = "1.175.0"  # keep equal to .ci/setup.d/20-semgrep.sh
SEMGREP_ENV = "DEVOPS_AGENT_SEMGREP"
CHECKOV_ENV = "DEVOPS_AGENT_CHECKOV"
DEFAULT_OSV_QUERY_URL = "https://api.osv.dev/v1/query"
DEFAULT_CANARY = "jinja2==2.10"  # PYSEC-2019-217 / GHSA-462w-v97r-4m45: every OSV mirror knows it
DEFAULT_EXCLUDES = (".git", ".venv", "venv", ".tox", "node_modules", ".devops-agent", "build", "dist")
_TAIL = 1500


@dataclass(frozen=True)
class ScannerPlan:
    name: str
    action: str  # run | disabled | not-installed | missing
    reason: str = ""
    executable: str | None = None
    paths: tuple[str, ...] = (".",)
    rules: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    osv_url: str | None = None
    canary: str | None = None
    timeout: int = 15
    files: tuple[str, ...] = ()  # external SARIF files


@dataclass
class ScannerRun:
    """One scanner's outcome: its status and (when it ran) its SARIF log."""

    status: ScannerStatus
    log: dict[str, Any] | None = None
    raw_files: list[Path] = field(default_factory=list)


# -- locating tools ---------------------------------------------------------------------------


def checkout_root() -> Path:
    """The devops-agent source tree this package runs from (scripts/devops_agent/..)."""
    return Path(__file__).resolve().parents[3]


def find_tool(name: str, env_var: str, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(path, problem): an explicit env var wins (and must point at an executable), then PATH,
    then the tool's own virtualenv next to this checkout (``.venv-<name>/bin/<name>``, as
    ``.ci/setup.d`` makes it)."""
    explicit = env.get(env_var, "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return str(path), None
        return None, f"{env_var}={explicit} is not an executable file"
    found = shutil.which(name, path=env.get("PATH"))
    if found is None:
        local = checkout_root() / f".venv-{name}" / "bin" / name
        if local.is_file() and os.access(local, os.X_OK):
            found = str(local)
    return found, None


def semgrep_install_hint() -> str:
    return (
        f"install semgrep in its own virtualenv (its pins conflict with other tools): "
        f"`python3 -m venv .venv-semgrep && .venv-semgrep/bin/pip install semgrep=={SEMGREP_VERSION}` "
        f"(or run .ci/setup.d/20-semgrep.sh), then export {SEMGREP_ENV}=$PWD/.venv-semgrep/bin/semgrep; "
        "or set scan.semgrep.enabled: false to turn it off on purpose"
    )


def semgrep_venv_dir(env: Mapping[str, str]) -> Path:
    """Where ``--install-semgrep`` puts semgrep's own virtualenv (the runner's tool cache in CI)."""
    base = env.get("RUNNER_TOOL_CACHE") or env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "devops-agent" / f"semgrep-{SEMGREP_VERSION}"


def semgrep_lock() -> Path | None:
    """requirements/semgrep.lock of the checkout this code runs from (actions, source installs)."""
    lock = Path(__file__).resolve().parents[3] / "requirements" / "semgrep.lock"
    return lock if lock.is_file() else None


def install_semgrep_commands(venv: Path, python: str = sys.executable) -> list[list[str]]:
    """The commands that create semgrep's own virtualenv (pinned; its pins conflict with ours)."""
    return semgrep_install_plan(venv, python, semgrep_lock())


def semgrep_install_plan(venv: Path, python: str, lock: Path | None) -> list[list[str]]:
    """With the repository's lock file every package is hash-checked; an installed wheel without
    it falls back to the pinned version alone."""
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    target = ["--require-hashes", "-r", str(lock)] if lock else [f"semgrep=={SEMGREP_VERSION}"]
    return [[python, "-m", "venv", str(venv)], [*pip, *target]]


def ensure_semgrep(env: Mapping[str, str], run: Callable[[list[str]], int] | None = None) -> str:
    """Install semgrep into its own virtualenv unless it is already there; return the executable.

    Idempotent: an existing install of the pinned version is reused (``.complete`` marker).
    """
    venv = semgrep_venv_dir(env)
    exe = venv / "bin" / "semgrep"
    marker = venv / ".complete"
    if exe.is_file() and marker.is_file():
        return str(exe)
    runner = run or (lambda cmd: subprocess.run(cmd, check=False).returncode)
    for cmd in install_semgrep_commands(venv):
        code = runner(cmd)
        if code != 0:
            from devops_agent.core.errors import StageFailed

            raise StageFailed(
                f"installing semgrep=={SEMGREP_VERSION} into {venv} failed (exit {code})",
                f"check access to the package index, or install it yourself and set {SEMGREP_ENV}",
            )
    marker.write_text(SEMGREP_VERSION + "\n", encoding="utf-8")
    return str(exe)


def default_rules_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("devops_agent").joinpath("data").joinpath("scan").joinpath("semgrep")))


# -- plan (pure) --------------------------------------------------------------------------------


def _enabled(section: Mapping[str, Any], default: bool = True) -> Any:
    return section.get("enabled", default)


def plan_scan(
    scan: Mapping[str, Any],
    app_dir: Path,
    *,
    tools: Mapping[str, tuple[str | None, str | None]],
) -> list[ScannerPlan]:
    """Decide what runs. ``tools``: name → (path, problem) from :func:`find_tool`."""
    plans: list[ScannerPlan] = []

    bandit = scan.get("bandit") or {}
    if _enabled(bandit):
        plans.append(
            ScannerPlan(
                "bandit",
                "run",
                paths=tuple(bandit.get("paths") or (".",)),
                exclude=tuple(bandit.get("exclude") or ()) + DEFAULT_EXCLUDES,
            )
        )
    else:
        plans.append(ScannerPlan("bandit", "disabled", "scan.bandit.enabled is false"))

    semgrep = scan.get("semgrep") or {}
    if _enabled(semgrep):
        path, problem = tools.get("semgrep", (None, None))
        rules = tuple(semgrep.get("rules") or ())
        for rule in rules:
            if not (app_dir / rule).exists():
                raise ConfigError(
                    f"rule file or directory {rule!r} does not exist in {app_dir}",
                    "give local semgrep rule files relative to the app directory (no registry: runs offline)",
                    field="scan.semgrep.rules",
                )
        if path is None:
            why = problem or "semgrep is not installed (not on PATH)"
            plans.append(ScannerPlan("semgrep", "missing", f"{why}; {semgrep_install_hint()}"))
        else:
            plans.append(
                ScannerPlan(
                    "semgrep",
                    "run",
                    executable=path,
                    paths=tuple(semgrep.get("paths") or (".",)),
                    rules=rules or (str(default_rules_dir()),),
                    exclude=DEFAULT_EXCLUDES,
                )
            )
    else:
        plans.append(ScannerPlan("semgrep", "disabled", "scan.semgrep.enabled is false"))

    audit = scan.get("pip_audit") or {}
    if _enabled(audit):
        requirements = tuple(audit.get("requirements") or ())
        if not requirements and (app_dir / "requirements.txt").is_file():
            requirements = ("requirements.txt",)
        for req in requirements:
            if not (app_dir / req).is_file():
                raise ConfigError(
                    f"requirements file {req!r} does not exist in {app_dir}",
                    "list pinned requirement files relative to the app directory",
                    field="scan.pip_audit.requirements",
                )
        if not requirements:
            plans.append(
                ScannerPlan(
                    "pip-audit",
                    "disabled",
                    "nothing to audit: no scan.pip_audit.requirements and no requirements.txt",
                )
            )
        else:
            canary = audit.get("canary", DEFAULT_CANARY)
            plans.append(
                ScannerPlan(
                    "pip-audit",
                    "run",
                    requirements=requirements,
                    osv_url=str(audit.get("osv_url") or DEFAULT_OSV_QUERY_URL),
                    canary=str(canary) if canary else None,
                    timeout=int(audit.get("timeout", 15)),
                )
            )
    else:
        plans.append(ScannerPlan("pip-audit", "disabled", "scan.pip_audit.enabled is false"))

    checkov = scan.get("checkov") or {}
    mode = checkov.get("enabled", "auto")
    if mode is False:
        plans.append(ScannerPlan("checkov", "disabled", "scan.checkov.enabled is false"))
    else:
        path, problem = tools.get("checkov", (None, None))
        paths = tuple(checkov.get("paths") or (".",))
        if path is not None:
            # our own outputs are not IaC: the baseline's hex fingerprints even trip checkov's
            # high-entropy secret check
            baseline = (scan.get("gate") or {}).get("baseline")
            skip = DEFAULT_EXCLUDES + ((str(baseline),) if baseline else ())
            plans.append(ScannerPlan("checkov", "run", executable=path, paths=paths, exclude=skip))
        elif mode is True:
            why = problem or "checkov is not installed (not on PATH)"
            plans.append(
                ScannerPlan(
                    "checkov",
                    "missing",
                    f"{why}; install it (`pip install checkov` in its own virtualenv) and put it on "
                    f"PATH or set {CHECKOV_ENV}, or set scan.checkov.enabled: auto",
                )
            )
        else:
            plans.append(
                ScannerPlan(
                    "checkov",
                    "not-installed",
                    problem or "scan.checkov.enabled is auto and checkov is not installed: IaC not scanned",
                )
            )

    globs = tuple(scan.get("sarif") or ())
    if globs:
        files: list[str] = []
        for pattern in globs:
            matched = sorted(str(p.relative_to(app_dir)) for p in app_dir.glob(pattern) if p.is_file())
            files.extend(m for m in matched if m not in files)
        if files:
            plans.append(ScannerPlan("sarif", "run", files=tuple(files)))
        else:
            plans.append(
                ScannerPlan(
                    "sarif",
                    "missing",
                    f"no file matches scan.sarif {list(globs)} in {app_dir}: the container/other scanner "
                    "did not run or wrote elsewhere",
                )
            )
    return plans


# -- running --------------------------------------------------------------------------------


def _tail(text: str) -> str:
    text = text.strip()
    return text[-_TAIL:] if len(text) > _TAIL else text


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


def _run(
    cmd: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: int
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(cmd), cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )


def _read_sarif(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    return load_log(path)


def run_bandit(plan: ScannerPlan, app_dir: Path, work: Path, env: Mapping[str, str]) -> ScannerRun:
    out = work / "bandit.sarif"
    excludes = ",".join(f"./{e}" for e in plan.exclude)
    cmd = [sys.executable, "-m", "bandit", "-r", *plan.paths, "-f", "sarif", "-o", str(out), "-q"]
    cmd += ["-x", excludes, "--exit-zero"]
    started = time.monotonic()
    proc = _run(cmd, app_dir, env, 1800)
    seconds = time.monotonic() - started
    log = _read_sarif(out) if proc.returncode == 0 else None
    if log is None:
        detail = f"bandit exited {proc.returncode} without a SARIF report: {_last_line(proc.stderr)}"
        return ScannerRun(ScannerStatus("bandit", "failed", detail, seconds=seconds))
    return ScannerRun(ScannerStatus("bandit", "ran", "", _count(log), seconds), log, [out])


def run_semgrep(plan: ScannerPlan, app_dir: Path, work: Path, env: Mapping[str, str]) -> ScannerRun:
    assert plan.executable is not None
    out = work / "semgrep.sarif"
    cmd = [
        plan.executable,
        "scan",
        "--metrics=off",
        "--disable-version-check",
        "--sarif",
        "--output",
        str(out),
    ]
    cmd += ["--quiet", "--no-git-ignore"]
    for rule in plan.rules:
        cmd += ["--config", rule]
    for pattern in plan.exclude:
        cmd += ["--exclude", pattern]
    cmd += list(plan.paths)
    run_env = dict(env)
    run_env.update({"SEMGREP_ENABLE_VERSION_CHECK": "0", "SEMGREP_SEND_METRICS": "off"})
    run_env.setdefault("SEMGREP_SETTINGS_FILE", str(work / "semgrep-settings.yml"))
    started = time.monotonic()
    proc = _run(cmd, app_dir, run_env, 1800)
    seconds = time.monotonic() - started
    log = _read_sarif(out) if proc.returncode == 0 else None
    if log is None:
        cause = _last_line(proc.stderr or proc.stdout)
        detail = f"semgrep exited {proc.returncode} without a SARIF report: {cause}"
        return ScannerRun(ScannerStatus("semgrep", "failed", detail, seconds=seconds))
    strip_rule_prefixes(log, semgrep_rule_ids(app_dir, plan.rules))
    return ScannerRun(ScannerStatus("semgrep", "ran", "", _count(log), seconds), log, [out])


def semgrep_rule_ids(app_dir: Path, rules: Sequence[str]) -> set[str]:
    """The ``id`` of every rule in the local rule files/directories."""
    import yaml

    files: list[Path] = []
    for rule in rules:
        path = app_dir / rule
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in {".yml", ".yaml"})
        elif path.is_file():
            files.append(path)
    ids: set[str] = set()
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        for rule in (data or {}).get("rules") or [] if isinstance(data, dict) else []:
            if isinstance(rule, dict) and isinstance(rule.get("id"), str):
                ids.add(rule["id"])
    return ids


def strip_rule_prefixes(log: dict[str, Any], ids: set[str]) -> None:
    """semgrep prefixes local rule ids with the rule file's directory ("work.main....<id>"),
    which depends on where the rules are installed; put the ids back so fingerprints, baselines
    and suppressions stay stable."""

    def fix(value: Any) -> Any:
        if not isinstance(value, str) or value in ids:
            return value
        for rule_id in ids:
            if value.endswith("." + rule_id):
                return rule_id
        return value

    for run in log.get("runs") or []:
        for rule in run.get("tool", {}).get("driver", {}).get("rules") or []:
            if isinstance(rule, dict):
                old = rule.get("id")
                rule["id"] = fix(old)
                if rule.get("name") == old:
                    rule["name"] = rule["id"]
                short = rule.get("shortDescription")
                if isinstance(short, dict) and isinstance(short.get("text"), str) and old != rule["id"]:
                    short["text"] = short["text"].replace(str(old), rule["id"])
        for result in run.get("results") or []:
            if isinstance(result, dict):
                result["ruleId"] = fix(result.get("ruleId"))


def run_checkov(plan: ScannerPlan, app_dir: Path, work: Path, env: Mapping[str, str]) -> ScannerRun:
    assert plan.executable is not None
    runs: list[Any] = []
    started = time.monotonic()
    files: list[Path] = []
    for n, target in enumerate(plan.paths):
        outdir = work / f"checkov-{n}"
        cmd = [plan.executable, "-d", ".", "-o", "sarif", "--output-file-path", str(outdir)]
        cmd += ["--quiet", "--soft-fail", "--skip-download", "--compact"]
        for skipped in plan.exclude:
            cmd += ["--skip-path", re.escape(skipped)]
        proc = _run(cmd, app_dir / target, env, 1800)
        out = outdir / "results_sarif.sarif"
        log = _read_sarif(out) if proc.returncode == 0 else None
        if log is None:
            detail = f"checkov exited {proc.returncode} without a SARIF report: {_last_line(proc.stderr)}"
            return ScannerRun(ScannerStatus("checkov", "failed", detail, seconds=time.monotonic() - started))
        prefix = "" if target in {".", ""} else target.rstrip("/") + "/"
        for run in log.get("runs") or []:
            for result in run.get("results") or []:
                _prefix_locations(result, prefix)
            runs.append(run)
        files.append(out)
    log = {"version": "2.1.0", "runs": runs}
    return ScannerRun(
        ScannerStatus("checkov", "ran", "", _count(log), time.monotonic() - started), log, files
    )


def _prefix_locations(result: dict[str, Any], prefix: str) -> None:
    if not prefix:
        return
    for loc in result.get("locations") or []:
        art = (loc.get("physicalLocation") or {}).get("artifactLocation")
        if isinstance(art, dict) and isinstance(art.get("uri"), str) and not art["uri"].startswith("/"):
            art["uri"] = prefix + art["uri"].lstrip("./")


def _count(log: Mapping[str, Any]) -> int:
    return sum(len(run.get("results") or []) for run in log.get("runs") or [])


# -- pip-audit ---------------------------------------------------------------------------------


_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s;#\\]+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(app_dir: Path, files: Sequence[str]) -> dict[tuple[str, str], tuple[str, int]]:
    """(canonical name, version) → (file, line) of each ``name==version`` pin."""
    found: dict[tuple[str, str], tuple[str, int]] = {}
    for rel in files:
        for number, line in enumerate((app_dir / rel).read_text(encoding="utf-8").splitlines(), start=1):
            match = _REQ.match(line)
            if match:
                found.setdefault((_canonical(match.group(1)), match.group(2)), (rel, number))
    return found


@dataclass(frozen=True)
class Advisory:
    score: float | None
    severity: Severity | None
    source: str


Fetch = Callable[[str], "dict[str, Any] | None"]


def osv_fetcher(query_url: str, timeout: int) -> Fetch:
    """GET <base>/vulns/<id> next to the configured /query URL (None on 404 or any failure)."""
    import requests

    base = query_url[: -len("/query")] if query_url.endswith("/query") else query_url.rstrip("/")
    session = requests.Session()

    def fetch(vuln_id: str) -> dict[str, Any] | None:
        try:
            response = session.get(f"{base}/vulns/{vuln_id}", timeout=timeout)
            if response.status_code != 200:
                return None
            data = response.json()
        except (requests.RequestException, ValueError):
            return None
        return data if isinstance(data, dict) else None

    return fetch


def advisory_severity(record: Mapping[str, Any]) -> Advisory | None:
    """Severity of an OSV record: a CVSS vector (v4 > v3 > v2), else database_specific.severity."""
    best: tuple[int, float] | None = None
    for item in record.get("severity") or []:
        if not isinstance(item, dict):
            continue
        rank = {"CVSS_V4": 3, "CVSS_V3": 2, "CVSS_V2": 1}.get(str(item.get("type")), 0)
        if not rank:
            continue
        try:
            score = cvss_vector_score(str(item.get("score", "")))
        except ValueError:
            continue
        if best is None or rank > best[0]:
            best = (rank, score)
    if best is not None:
        return Advisory(best[1], from_score(best[1]), f"OSV {record.get('id')} CVSS")
    label = (record.get("database_specific") or {}).get("severity")
    if isinstance(label, str):
        mapping = {"CRITICAL": Severity.CRITICAL, "HIGH": Severity.HIGH, "MODERATE": Severity.MEDIUM}
        mapping["MEDIUM"] = Severity.MEDIUM
        mapping["LOW"] = Severity.LOW
        if label.upper() in mapping:
            return Advisory(
                None, mapping[label.upper()], f"OSV {record.get('id')} database_specific.severity"
            )
    return None


def enrich(vuln: Mapping[str, Any], fetch: Fetch) -> Advisory | None:
    """Find a severity for a pip-audit vulnerability through its id, then its aliases."""
    for vuln_id in [vuln.get("id"), *(vuln.get("aliases") or [])]:
        if not isinstance(vuln_id, str) or not vuln_id:
            continue
        record = fetch(vuln_id)
        if record is None:
            continue
        found = advisory_severity(record)
        if found is not None:
            return found
    return None


def pip_audit_to_sarif(
    report: Mapping[str, Any],
    pins: Mapping[tuple[str, str], tuple[str, int]],
    fetch: Fetch,
    canary: tuple[str, str] | None,
) -> dict[str, Any]:
    run = empty_run("pip-audit", information_uri="https://pypi.org/project/pip-audit/")
    rules: dict[str, dict[str, Any]] = {}
    for dep in report.get("dependencies") or []:
        name, version = str(dep.get("name", "")), str(dep.get("version", ""))
        if canary and (_canonical(name), version) == canary:
            continue
        where = pins.get((_canonical(name), version))
        for vuln in dep.get("vulns") or []:
            vuln_id = str(vuln.get("id"))
            advisory = enrich(vuln, fetch)
            props: dict[str, Any] = {"tags": ["security", "dependency", "pypi"]}
            level = "warning"
            if advisory is not None and advisory.score is not None:
                props["security-severity"] = f"{advisory.score:.1f}"
            elif advisory is not None and advisory.severity is not None:
                props["severity"] = advisory.severity.label
            else:
                props["severity"] = "unknown"  # the gate applies scan.gate.unknown_severity and says so
            if advisory is not None and advisory.severity is not None:
                level = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning"}.get(
                    advisory.severity, "note"
                )
            if vuln_id not in rules:
                description = str(vuln.get("description") or vuln_id).strip()
                rules[vuln_id] = {
                    "id": vuln_id,
                    "shortDescription": {
                        "text": description.splitlines()[0][:200] if description else vuln_id
                    },
                    "fullDescription": {"text": description[:2000] or vuln_id},
                    "helpUri": f"https://osv.dev/vulnerability/{vuln_id}",
                    "properties": {k: v for k, v in props.items() if v != "unknown"},
                }
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            text = f"{name} {version} is affected by {vuln_id}" + (f" ({aliases})" if aliases else "")
            text += f"; fixed in: {fixes}"
            result: dict[str, Any] = {
                "ruleId": vuln_id,
                "level": level,
                "message": {"text": text},
                "properties": dict(props),
            }
            if where:
                result["locations"] = [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": where[0]},
                            "region": {"startLine": where[1], "snippet": {"text": f"{name}=={version}"}},
                        }
                    }
                ]
            run["results"].append(result)
    run["tool"]["driver"]["rules"] = list(rules.values())
    return {"version": "2.1.0", "runs": [run]}


def run_pip_audit(
    plan: ScannerPlan,
    app_dir: Path,
    work: Path,
    env: Mapping[str, str],
    fetch: Fetch | None = None,
) -> ScannerRun:
    """pip-audit against OSV, failing closed: no fresh report, no canary hit → failed (blocks)."""
    assert plan.osv_url is not None
    listed = [
        line
        for req in plan.requirements
        for line in (app_dir / req).read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not listed:  # e.g. a stdlib-only app: nothing to ask the vulnerability source about
        detail = f"no requirements listed in {', '.join(plan.requirements)}: nothing to audit"
        return ScannerRun(ScannerStatus("pip-audit", "ran", detail), {"version": "2.1.0", "runs": []}, [])
    out = work / "pip-audit.json"
    if out.exists():
        out.unlink()
    cmd = [sys.executable, "-m", "pip_audit"]
    for req in plan.requirements:
        cmd += ["-r", str(app_dir / req)]
    canary: tuple[str, str] | None = None
    if plan.canary:
        match = _REQ.match(plan.canary)
        if not match:
            raise ConfigError(
                f"{plan.canary!r} is not a `name==version` pin",
                'give a pin with known advisories, e.g. jinja2==2.10, or "" to disable the canary',
                field="scan.pip_audit.canary",
            )
        canary = (_canonical(match.group(1)), match.group(2))
        canary_file = work / "canary-requirements.txt"
        canary_file.write_text(plan.canary + "\n", encoding="utf-8")
        cmd += ["-r", str(canary_file)]
    cmd += ["--no-deps", "--disable-pip", "--strict", "-s", "osv", "--osv-url", plan.osv_url]
    cmd += ["-f", "json", "-o", str(out), "--progress-spinner", "off", "--timeout", str(plan.timeout)]
    cmd += ["--cache-dir", str(work / "pip-audit-cache")]
    started = time.monotonic()
    try:
        proc = _run(cmd, app_dir, env, max(120, plan.timeout * 20))
    except subprocess.TimeoutExpired:
        return ScannerRun(
            ScannerStatus(
                "pip-audit",
                "failed",
                f"pip-audit did not finish querying {plan.osv_url}; dependencies are NOT known to be safe",
                seconds=time.monotonic() - started,
            )
        )
    seconds = time.monotonic() - started
    try:
        report = json.loads(out.read_text(encoding="utf-8"))
        if not isinstance(report, dict) or not isinstance(report.get("dependencies"), list):
            raise ValueError("no dependencies list")
    except (OSError, ValueError) as exc:
        cause = _last_line(proc.stderr)
        detail = (
            f"the vulnerability source {plan.osv_url} could not be queried (pip-audit exited "
            f"{proc.returncode}, no report: {cause or exc}). This is NOT 'no vulnerabilities': the "
            "dependency audit fails closed; check network access to the OSV service or "
            "scan.pip_audit.osv_url"
        )
        return ScannerRun(ScannerStatus("pip-audit", "failed", detail, seconds=seconds), None, [])
    if canary is not None:
        hit = any(
            (_canonical(str(d.get("name", ""))), str(d.get("version", ""))) == canary and d.get("vulns")
            for d in report["dependencies"]
        )
        if not hit:
            detail = (
                f"the vulnerability source {plan.osv_url} answered but reported nothing for the canary "
                f"{plan.canary}, which has published advisories: its database looks empty or it is not "
                "an OSV service, so 'no vulnerabilities' cannot be trusted (fails closed)"
            )
            return ScannerRun(ScannerStatus("pip-audit", "failed", detail, seconds=seconds), None, [out])
    fetch = fetch or osv_fetcher(plan.osv_url, plan.timeout)
    log = pip_audit_to_sarif(report, requirement_lines(app_dir, plan.requirements), fetch, canary)
    sarif_path = work / "pip-audit.sarif"
    sarif_path.write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
    status = ScannerStatus(
        "pip-audit", "ran", f"{len(report['dependencies'])} pinned package(s)", _count(log), seconds
    )
    return ScannerRun(status, log, [out, sarif_path])


def run_external(plan: ScannerPlan, app_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """Load the configured SARIF files (MalformedSarif → exit 2: bad input)."""
    return [(rel, load_log(app_dir / rel)) for rel in plan.files]


def not_run(plan: ScannerPlan) -> ScannerRun:
    status = "failed" if plan.action == "missing" else plan.action
    return ScannerRun(ScannerStatus(plan.name, status, plan.reason))
