"""SARIF 2.1.0 ingestion, normalisation and merging.

Real SARIF differs by tool (see shared/corpus/sarif): rules live in ``tool.driver.rules`` or in
``tool.extensions[n].rules`` (CodeQL, referenced by ``result.rule.toolComponent.index``), severity
lives in half a dozen places, ``level`` may be absent, fingerprints may be absent or say "requires
login". :func:`ingest` turns one log into :class:`Finding` objects with one severity scale and a
stable fingerprint, and records every value it could not interpret as an :class:`IngestNote`
instead of dropping it. Only structure that makes a log impossible to read (not JSON, no ``runs``,
a run without ``tool.driver``, a result that is not an object) is an error (:class:`MalformedSarif`,
exit 2).

The output side (:func:`merged_log`) keeps every input run as it was, adds our fingerprint
(``partialFingerprints["devopsAgent/v1"]``), our severity (``properties["devops-agent/severity"]``)
and SARIF ``suppressions``/``baselineState`` from the gate, so one file can go to code scanning.
The official schema (``data/scan/sarif-schema-2.1.0.json``, see PROVENANCE.md there) validates it
(:func:`schema_errors`).
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple
from urllib.parse import unquote

from devops_agent.core.errors import ConfigError
from devops_agent.security.severity import LEVELS, Severity, label_in_tags, parse_value, sentence_severity

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
FINGERPRINT_KEY = "devopsAgent/v1"
SEVERITY_PROPERTY = "devops-agent/severity"
TOOL_NAME = "devops-agent"

# driver names → the scanner ids used in config (scan.gate.scanners) and reports.
_ALIASES = {
    "semgrep-oss": "semgrep",
    "snykcode": "snyk-code",
    "snyk-infrastructure-as-code": "snyk-iac",
    "defsec": "tfsec",
    "codeql-command-line-toolchain": "codeql",
}
_NOT_FAILURES = {"pass", "notApplicable"}
_WS = re.compile(r"\s+")


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building large acyclic structures.

    Parsing a 100,000-result log allocates millions of dicts; the collector's repeated full passes
    over them cost 3-4x the parse itself (measured in benchmarks/bench_scan.py). Nothing we build
    here has reference cycles, so reference counting frees it all anyway.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class MalformedSarif(ConfigError):
    """A SARIF file we cannot read at all (exit 2: bad input, nothing decided)."""


@dataclass(frozen=True)
class IngestNote:
    """Something in an input we could not interpret, and what we did instead."""

    source: str  # file name (or "<memory>")
    where: str  # JSON path inside the log, e.g. runs[0].results[3]
    message: str

    def render(self) -> str:
        return f"{self.source}: {self.where}: {self.message}"


class Finding(NamedTuple):
    """One normalised result. A NamedTuple: immutable, and cheap to build 10^5 times."""

    scanner: str
    rule_id: str
    message: str
    path: str | None
    start_line: int | None
    severity: Severity
    severity_source: str
    fingerprint: str
    source: str
    rule_name: str | None = None
    help_uri: str | None = None
    end_line: int | None = None

    def location(self) -> str:
        if not self.path:
            return "(no file)"
        return f"{self.path}:{self.start_line}" if self.start_line else self.path

    def to_json(self) -> dict[str, Any]:
        return {
            "scanner": self.scanner,
            "rule": self.rule_id,
            "severity": self.severity.label,
            "severity_source": self.severity_source,
            "path": self.path,
            "line": self.start_line,
            "message": self.message,
            "fingerprint": self.fingerprint,
            "source": self.source,
        }


@dataclass
class IngestResult:
    """Findings of one or more logs; ``logs`` keeps the (annotated) documents for merging."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[IngestNote] = field(default_factory=list)
    logs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    not_failures: int = 0  # results with kind pass/notApplicable (counted, not findings)
    # the input result object behind each finding (same order), annotated after the gate decided
    results: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: IngestResult) -> None:
        self.findings.extend(other.findings)
        self.notes.extend(other.notes)
        self.logs.extend(other.logs)
        self.not_failures += other.not_failures
        self.results.extend(other.results)


@dataclass(frozen=True)
class IngestOptions:
    unknown_severity: Severity = Severity.HIGH
    source_root: Path | None = None  # to read a source line when a result has no snippet
    path_prefix: str = ""  # prepended to relative uris (app dir inside the repository)
    scanner: str | None = None  # force the scanner id (our own runs)


def scanner_id(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-") or "unknown"
    return _ALIASES.get(slug, slug)


# -- reading ---------------------------------------------------------------------------------


def load_log(path: Path) -> dict[str, Any]:
    """Read and parse a SARIF file (UTF-8, BOM tolerated); MalformedSarif on anything unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MalformedSarif(
            f"SARIF file {path} does not exist", "pass the path of a SARIF file a scanner wrote"
        ) from None
    except OSError as exc:
        raise MalformedSarif(f"cannot read SARIF file {path}: {exc.strerror}", "check the path") from None
    return parse_log(raw, source=str(path))


def _loads(text: bytes | str) -> Any:
    """orjson when installed (the scan extra has it; ~25% faster on large logs), else json."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - the scan extra installs it
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # re-raise with the standard library's line/column message


def dumps_compact(doc: Any) -> bytes:
    """Compact JSON bytes (orjson when installed: ~10x faster on 10^5 results)."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - the scan extra installs it
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    return orjson.dumps(doc)


def parse_log(raw: bytes | str, *, source: str) -> dict[str, Any]:
    try:
        if isinstance(raw, bytes):
            raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
            raw.decode("utf-8")  # a clear error for non-UTF-8 input (parsers differ in wording)
        with paused_gc():
            data = _loads(raw)
    except UnicodeDecodeError as exc:
        raise MalformedSarif(
            f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})",
            "SARIF files are UTF-8 JSON; re-run the scanner with SARIF output",
        ) from None
    except json.JSONDecodeError as exc:
        raise MalformedSarif(
            f"{source}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})",
            "the file is truncated or not SARIF; re-run the scanner with SARIF output",
        ) from None
    check_structure(data, source)
    assert isinstance(data, dict)
    return data


def check_structure(data: Any, source: str) -> None:
    """The minimum we need to read a log; everything else is tolerated (and noted)."""

    def bad(where: str, what: str) -> MalformedSarif:
        return MalformedSarif(
            f"{source}: {where}: {what}",
            "this is not a SARIF 2.1.0 log (https://docs.oasis-open.org/sarif/sarif/v2.1.0/); "
            "re-run the scanner with SARIF output or remove the file from the gate's inputs",
        )

    if not isinstance(data, dict):
        raise bad("(top level)", f"expected a JSON object, got {type(data).__name__}")
    version = data.get("version")
    if version != SARIF_VERSION:
        raise bad("version", f"expected {SARIF_VERSION!r}, got {version!r}")
    runs = data.get("runs")
    if not isinstance(runs, list):
        raise bad("runs", f"expected a list of runs, got {type(runs).__name__}")
    for r, run in enumerate(runs):
        if not isinstance(run, dict):
            raise bad(f"runs[{r}]", "a run must be an object")
        tool = run.get("tool")
        driver = tool.get("driver") if isinstance(tool, dict) else None
        if not isinstance(driver, dict):
            raise bad(f"runs[{r}].tool.driver", "missing: a run must name the tool that produced it")
        results = run.get("results")
        if results is None:
            continue
        if not isinstance(results, list):
            raise bad(f"runs[{r}].results", f"expected a list, got {type(results).__name__}")
        for i, result in enumerate(results):
            if not isinstance(result, dict):
                raise bad(f"runs[{r}].results[{i}]", "a result must be an object")


# -- interpreting ----------------------------------------------------------------------------


class _RuleIndex:
    """Rule lookup for one run: by ruleIndex, by (toolComponent, index), by id."""

    def __init__(self, run: Mapping[str, Any]) -> None:
        tool = run["tool"]
        self.components: list[list[Any]] = [_as_list(tool["driver"].get("rules"))]
        self.names: dict[str, int] = {}
        for n, ext in enumerate(_as_list(tool.get("extensions")), start=1):
            rules = _as_list(ext.get("rules")) if isinstance(ext, dict) else []
            self.components.append(rules)
            if isinstance(ext, dict):
                for key in ("name", "guid"):
                    if isinstance(ext.get(key), str):
                        self.names[ext[key]] = n
        self.by_id: dict[str, Mapping[str, Any]] = {}
        for rules in self.components:
            for rule in rules:
                if isinstance(rule, dict) and isinstance(rule.get("id"), str):
                    self.by_id.setdefault(rule["id"], rule)

    def find(self, result: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, str | None]:
        """(rule, problem) — problem explains a reference that points nowhere."""
        problem = None
        ref = result.get("rule")
        if isinstance(ref, dict) and isinstance(ref.get("index"), int):
            comp = 0
            tc = ref.get("toolComponent")
            if isinstance(tc, dict):
                if isinstance(tc.get("index"), int):
                    comp = tc["index"] + 1
                else:
                    comp = self.names.get(str(tc.get("name")), self.names.get(str(tc.get("guid")), 0))
            rules = self.components[comp] if comp < len(self.components) else []
            if 0 <= ref["index"] < len(rules) and isinstance(rules[ref["index"]], dict):
                return rules[ref["index"]], None
            problem = f"rule.index {ref['index']} points outside the tool component's rules"
        index = result.get("ruleIndex")
        if isinstance(index, int) and index >= 0:
            rules = self.components[0]
            if index < len(rules) and isinstance(rules[index], dict):
                return rules[index], None
            problem = f"ruleIndex {index} points outside tool.driver.rules ({len(rules)} rules)"
        rule_id = _rule_id(result)
        if rule_id and rule_id in self.by_id:
            return self.by_id[rule_id], None
        return None, problem


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _rule_id(result: Mapping[str, Any]) -> str | None:
    rule_id = result.get("ruleId")
    if isinstance(rule_id, str) and rule_id:
        return rule_id
    ref = result.get("rule")
    if isinstance(ref, dict) and isinstance(ref.get("id"), str):
        return str(ref["id"])
    return None


def _text(message: Any) -> str:
    if isinstance(message, dict):
        text = message.get("text")
        if isinstance(text, str):
            return text
        markdown = message.get("markdown")
        if isinstance(markdown, str):
            return markdown
    return ""


def _props(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if obj is None:
        return {}
    props = obj.get("properties")
    return props if isinstance(props, dict) else {}


_SCORE_KEYS = ("security-severity", "cvssV3_baseScore", "cvssScore", "cvss_score", "cvss")
_LABEL_KEYS = ("issue_severity", "severity", "Severity")
_SEVERITY_KEYS = frozenset((*_SCORE_KEYS, *_LABEL_KEYS, "priorityScore"))
_UNKNOWN = "unknown (scan.gate.unknown_severity)"

# (severity or None, source, problems) derived from a rule alone; cached per rule object.
_RulePart = tuple["Severity | None", str, tuple[str, ...]]


def _props_severity(props: Mapping[str, Any], owner: str, problems: list[str]) -> tuple[Severity | None, str]:
    for keys, kind in ((_SCORE_KEYS, "score"), (_LABEL_KEYS, "label")):
        for key in keys:
            if key in props:
                where = f"{owner}.properties.{key}"
                try:
                    return parse_value(props[key], kind), where
                except ValueError as exc:
                    value = json.dumps(props[key])[:80]
                    problems.append(f"{where} = {value} is not a severity we understand ({exc})")
    return None, ""


def _rule_part(rule: Mapping[str, Any] | None) -> _RulePart:
    if rule is None:
        return None, "", ()
    problems: list[str] = []
    uprops = _props(rule)
    found, where = _props_severity(uprops, "rule", problems) if uprops else (None, "")
    if found is not None:
        return found, where, tuple(problems)
    tags = uprops.get("tags")
    if isinstance(tags, list):
        found, odd = label_in_tags(tags)
        if found is not None:
            return found, "rule.properties.tags", tuple(problems)
        if odd is not None:
            problems.append(
                f"rule.properties.tags has severity {odd!r}, which is not a severity we understand"
            )
    for key in ("shortDescription", "fullDescription"):
        found = sentence_severity(_text(rule.get(key)))
        if found is not None:
            return found, f"rule.{key}", tuple(problems)
    return None, "", tuple(problems)


def resolve_severity(
    result: Mapping[str, Any],
    rule: Mapping[str, Any] | None,
    unknown: Severity,
    cache: dict[int, _RulePart] | None = None,
) -> tuple[Severity, str, list[str]]:
    """(severity, where it came from, problems with values we could not interpret).

    Order: the result's own score/label properties, the rule's (score/label properties, severity
    tags, a "<severity> severity" description), the result's priorityScore, then the SARIF level
    (result, rule default, SARIF's default "warning"). A value that is present but unreadable makes
    the result fall back to ``unknown`` (fail safe) instead of to a weaker signal, and is reported.
    """
    problems: list[str] = []
    rprops = result.get("properties")
    has_props = isinstance(rprops, dict) and not _SEVERITY_KEYS.isdisjoint(rprops)
    if has_props:
        assert isinstance(rprops, dict)
        found, where = _props_severity(rprops, "result", problems)
        if found is not None:
            return found, where, problems
    if cache is not None and rule is not None:
        part = cache.get(id(rule))
        if part is None:
            part = cache[id(rule)] = _rule_part(rule)
    else:
        part = _rule_part(rule)
    problems.extend(part[2])
    if part[0] is not None:
        return part[0], part[1], problems
    if has_props and isinstance(rprops, dict) and "priorityScore" in rprops:
        try:
            found = parse_value(rprops["priorityScore"], "priority")
            return found, "result.properties.priorityScore", problems
        except ValueError as exc:
            problems.append(f"result.properties.priorityScore is not a severity we understand ({exc})")
    if problems:
        return unknown, _UNKNOWN, problems
    level = result.get("level")
    if level is not None:
        found = LEVELS.get(level) if isinstance(level, str) else None
        if found is not None:
            return found, "result.level", problems
        problems.append(f"result.level = {json.dumps(level)[:40]} is not a SARIF level")
        return unknown, _UNKNOWN, problems
    default = rule.get("defaultConfiguration") if rule is not None else None
    if isinstance(default, dict) and "level" in default:
        found = LEVELS.get(default["level"]) if isinstance(default["level"], str) else None
        if found is not None:
            return found, "rule.defaultConfiguration.level", problems
        problems.append(
            f"rule.defaultConfiguration.level = {json.dumps(default['level'])[:40]} is not a level"
        )
        return unknown, _UNKNOWN, problems
    # SARIF 3.27.10: no level anywhere means "warning".
    return LEVELS["warning"], "SARIF default level (warning)", problems


def _location(
    result: Mapping[str, Any],
) -> tuple[str | None, int | None, int | None, str | None, str | None]:
    """(uri, start line, end line, snippet text, uriBaseId) of the first physical location."""
    try:  # fast path: the shape nearly every tool writes
        phys = result["locations"][0]["physicalLocation"]
        art = phys["artifactLocation"]
        region = phys.get("region") or {}
        snip = region.get("snippet")
        start, end = region.get("startLine"), region.get("endLine")
        uri, base = art["uri"], art.get("uriBaseId")
        snippet = snip.get("text") if snip is not None else None
        if (
            type(uri) is str
            and (start is None or type(start) is int)
            and (end is None or type(end) is int)
            and (snippet is None or type(snippet) is str)
            and (base is None or type(base) is str)
        ):
            return uri, start, end, snippet, base
    except (KeyError, IndexError, TypeError, AttributeError):
        pass
    locations = result.get("locations")
    if not locations or not isinstance(locations, list):
        return None, None, None, None, None
    for loc in locations:
        phys = loc.get("physicalLocation") if isinstance(loc, dict) else None
        if not isinstance(phys, dict):
            continue
        art = phys.get("artifactLocation")
        uri = base = None
        if isinstance(art, dict):
            uri = art.get("uri")
            base = art.get("uriBaseId")
        region = phys.get("region")
        start = end = None
        snippet = None
        if isinstance(region, dict):
            start = region.get("startLine")
            end = region.get("endLine")
            snip = region.get("snippet")
            if isinstance(snip, dict):
                snippet = snip.get("text")
        return (
            uri if isinstance(uri, str) else None,
            start if type(start) is int else None,
            end if type(end) is int else None,
            snippet if isinstance(snippet, str) else None,
            base if isinstance(base, str) else None,
        )
    return None, None, None, None, None


def normalise_uri(uri: str | None, prefix: str = "") -> str | None:
    """A repository-relative POSIX path where possible (``file://`` and ``./`` removed)."""
    if not uri:
        return None
    text = uri
    if "%" in text:
        text = unquote(text)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if "\\" in text:
        text = text.replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    if prefix and not text.startswith("/") and "://" not in text:
        text = str(PurePosixPath(prefix) / text)
    return text


@lru_cache(maxsize=256)
def _file_lines(path: str) -> tuple[str, ...]:
    try:
        return tuple(Path(path).read_text(encoding="utf-8", errors="replace").splitlines())
    except OSError:
        return ()


def _squash(text: str) -> str:
    return " ".join(text.split())


def _anchor(
    result: Mapping[str, Any], path: str | None, line: int | None, snippet: str | None, root: Path | None
) -> str:
    """What identifies a finding independently of its line number."""
    partial = result.get("partialFingerprints")
    if partial and isinstance(partial, dict):
        value = partial.get("primaryLocationLineHash")
        if isinstance(value, str) and value:
            return "plh:" + value.split(":", 1)[0]
    if snippet and not snippet.isspace():
        return "snip:" + _squash(snippet)
    if root is not None and path and line:
        lines = _file_lines(str(root / path))
        if 0 < line <= len(lines) and lines[line - 1].strip():
            return "line:" + _squash(lines[line - 1])
    return "msg:" + _squash(_text(result.get("message")))


def ingest(data: dict[str, Any], *, source: str, options: IngestOptions | None = None) -> IngestResult:
    """Interpret one (structurally valid) SARIF log. ``data`` is kept (see :func:`annotate_results`)."""
    with paused_gc():
        return _ingest(data, source, options or IngestOptions())


_NO_PROBLEMS: tuple[str, ...] = ()
_URI_PREFIXES = ("file://", "./")
_EMPTY: Mapping[str, Any] = {}


def _ingest(data: dict[str, Any], source: str, options: IngestOptions) -> IngestResult:
    make_finding = Finding._make  # tuple.__new__ in C: measurably cheaper than Finding(...) x 10^5
    out = IngestResult()
    out.logs.append((source, data))
    notes = out.notes
    findings = out.findings
    results_out = out.results
    seen: dict[str, int] = {}
    sha256 = hashlib.sha256
    unknown = options.unknown_severity
    root = options.source_root
    prefix = options.path_prefix
    for r, run in enumerate(data["runs"]):
        driver = run["tool"]["driver"]
        tool_name = driver.get("name") if isinstance(driver.get("name"), str) else ""
        if not tool_name:
            notes.append(
                IngestNote(source, f"runs[{r}].tool.driver.name", "missing; scanner shown as 'unknown'")
            )
        scanner = options.scanner or scanner_id(tool_name or "unknown")
        rules = _RuleIndex(run)
        rule_cache: dict[int, _RulePart] = {}
        bases = run.get("originalUriBaseIds")
        known_bases = set(bases) if isinstance(bases, dict) else set()
        odd_bases: set[str] = set()
        outside = 0
        driver_rules = rules.components[0]
        n_driver_rules = len(driver_rules)
        rule_meta: dict[int, tuple[str | None, str | None]] = {}
        # The loop below runs 10^5 times on big logs: the common shapes are handled inline and
        # anything unusual goes through the general helpers (_location, _anchor, rules.find...).
        for i, result in enumerate(_as_list(run.get("results"))):
            if result.get("kind") in _NOT_FAILURES:
                out.not_failures += 1
                continue
            index = result.get("ruleIndex")
            if type(index) is int and 0 <= index < n_driver_rules and "rule" not in result:
                rule = driver_rules[index]
                if not isinstance(rule, dict):
                    rule, problem = rules.find(result)
                else:
                    problem = None
            else:
                rule, problem = rules.find(result)
            if problem:
                notes.append(IngestNote(source, f"runs[{r}].results[{i}]", problem))
            rule_id = result.get("ruleId")
            if not rule_id or not isinstance(rule_id, str):
                rule_id = _rule_id(result) or (
                    rule.get("id") if rule and isinstance(rule.get("id"), str) else None
                )
                if not rule_id:
                    notes.append(
                        IngestNote(
                            source,
                            f"runs[{r}].results[{i}]",
                            "no ruleId or rule reference; rule shown as '(none)'",
                        )
                    )
                    rule_id = "(none)"
            # fast path: no severity in the result's properties and a rule that settles it
            rprops = result.get("properties")
            part = rule_cache.get(id(rule)) if rule is not None else None
            problems: Sequence[str]
            if (
                part is not None
                and part[0] is not None
                and not part[2]
                and (not rprops or (isinstance(rprops, dict) and _SEVERITY_KEYS.isdisjoint(rprops)))
            ):
                severity, sev_source, problems = part[0], part[1], _NO_PROBLEMS
            else:
                severity, sev_source, problems = resolve_severity(result, rule, unknown, rule_cache)
            for text in problems:
                notes.append(
                    IngestNote(
                        source,
                        f"runs[{r}].results[{i}]",
                        f"{scanner} {rule_id}: {text}; treated as {severity.label} ({sev_source})",
                    )
                )
            try:  # the shape nearly every tool writes; _location handles the rest
                phys = result["locations"][0]["physicalLocation"]
                art = phys["artifactLocation"]
                uri, base = art["uri"], art.get("uriBaseId")
                region = phys.get("region") or _EMPTY
                start, end, snip = region.get("startLine"), region.get("endLine"), region.get("snippet")
                snippet = snip.get("text") if snip is not None else None
                if not (
                    type(uri) is str
                    and (start is None or type(start) is int)
                    and (end is None or type(end) is int)
                    and (snippet is None or type(snippet) is str)
                    and (base is None or type(base) is str)
                ):
                    uri, start, end, snippet, base = _location(result)
            except (KeyError, IndexError, TypeError, AttributeError):
                uri, start, end, snippet, base = _location(result)
            if base and base not in known_bases:
                odd_bases.add(base)
            if (
                uri
                and not prefix
                and "%" not in uri
                and "\\" not in uri
                and not uri.startswith(_URI_PREFIXES)
            ):
                path: str | None = uri
            else:
                path = normalise_uri(uri, prefix)
            if path and (path[0] == "/" or path.startswith("../") or "://" in path):
                outside += 1
            msg = result.get("message")
            message = msg.get("text") if type(msg) is dict else None
            if type(message) is not str or not message:
                message = _text(msg)
            if not message:
                message = _text(rule.get("shortDescription")) if rule else ""
                if not message:
                    notes.append(IngestNote(source, f"runs[{r}].results[{i}]", "result has no message text"))
            partial = result.get("partialFingerprints")
            ours = partial.get(FINGERPRINT_KEY) if partial and isinstance(partial, dict) else None
            if ours and isinstance(ours, str):
                fingerprint = ours
            else:
                if not partial and snippet and not snippet.isspace():
                    anchor = "snip:" + " ".join(snippet.split())
                else:
                    anchor = _anchor(result, path, start, snippet, root)
                key = f"{scanner}\x1f{rule_id}\x1f{path or ''}\x1f{anchor}"
                n = seen.get(key, 0)
                seen[key] = n + 1
                fingerprint = sha256(f"{key}\x1f{n}".encode()).hexdigest()[:32]
            if rule is None:
                rule_name = help_uri = None
            else:
                meta = rule_meta.get(id(rule))
                if meta is None:
                    name, helps = rule.get("name"), rule.get("helpUri")
                    meta = rule_meta[id(rule)] = (
                        name if isinstance(name, str) else None,
                        helps if isinstance(helps, str) else None,
                    )
                rule_name, help_uri = meta
            findings.append(
                make_finding(
                    (scanner, rule_id, message, path, start, severity, sev_source, fingerprint, source,
                     rule_name, help_uri, end)
                )
            )  # fmt: skip
            results_out.append(result)
        for base in sorted(odd_bases):
            notes.append(
                IngestNote(
                    source,
                    f"runs[{r}].originalUriBaseIds",
                    f"uriBaseId {base!r} is not defined by the run; its paths are taken as relative "
                    "to the repository root",
                )
            )
        if outside:
            notes.append(
                IngestNote(
                    source,
                    f"runs[{r}].results",
                    f"{outside} result(s) point outside the repository (absolute path, '..' or URL); "
                    "they are gated but get no file annotation",
                )
            )
    return out


def ingest_file(path: Path, options: IngestOptions | None = None) -> IngestResult:
    return ingest(load_log(path), source=str(path), options=options)


# -- writing ----------------------------------------------------------------------------------


def empty_run(tool: str, version: str | None = None, *, information_uri: str | None = None) -> dict[str, Any]:
    driver: dict[str, Any] = {"name": tool, "rules": []}
    if version:
        driver["version"] = version
    if information_uri:
        driver["informationUri"] = information_uri
    return {"tool": {"driver": driver}, "results": []}


def annotate_results(ingested: IngestResult, states: Mapping[str, tuple[str, str | None]]) -> None:
    """Write our fingerprint, severity and the gate's verdict into each input result.

    ``states``: fingerprint → (baselineState "new"/"unchanged", suppression justification or None).
    """
    for result, finding in zip(ingested.results, ingested.findings, strict=True):
        partial = result.get("partialFingerprints")
        if not isinstance(partial, dict):
            partial = {}
            result["partialFingerprints"] = partial
        partial[FINGERPRINT_KEY] = finding.fingerprint
        props = result.get("properties")
        if not isinstance(props, dict):
            props = {}
            result["properties"] = props
        props[SEVERITY_PROPERTY] = finding.severity.label
        state = states.get(finding.fingerprint)
        if state is None:
            continue
        baseline_state, justification = state
        result["baselineState"] = baseline_state
        if justification is not None:
            result["suppressions"] = [
                {"kind": "external", "status": "accepted", "justification": justification}
            ]


def merged_log(
    logs: Sequence[tuple[str, Mapping[str, Any]]], properties: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One SARIF log with every run of every input, in input order."""
    runs: list[Any] = []
    for _source, log in logs:
        runs.extend(log.get("runs") or [])
    out: dict[str, Any] = {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": runs}
    if properties:
        out["properties"] = dict(properties)
    return out


@lru_cache(maxsize=1)
def sarif_schema() -> Mapping[str, Any]:
    from importlib import resources

    text = (
        resources.files("devops_agent")
        .joinpath("data")
        .joinpath("scan")
        .joinpath("sarif-schema-2.1.0.json")
        .read_text(encoding="utf-8")
    )
    data: dict[str, Any] = json.loads(text)
    return data


def schema_errors(data: Any, limit: int = 20) -> list[str]:
    """Violations of the official SARIF 2.1.0 schema (empty = valid)."""
    from jsonschema import Draft4Validator

    validator = Draft4Validator(sarif_schema())
    out: list[str] = []
    for error in validator.iter_errors(data):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        out.append(f"{where.lstrip('.') or '(top level)'}: {error.message[:200]}")
        if len(out) >= limit:
            break
    return out


def iter_logs(paths: Sequence[Path]) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in paths:
        yield path, load_log(path)
