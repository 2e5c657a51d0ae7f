#!/usr/bin/env python3
"""Regenerate ``openapi/api.github.com.trimmed.json`` from GitHub's official OpenAPI description.

The source is the npm package ``@octokit/openapi`` (``generated/api.github.com.json``: GitHub's
REST description with Octokit's extensions). We keep only the operations listed in OPERATIONS
(the ones devops-agent calls and the fake server models) and the components they reference,
without examples, so the copy stays small enough to commit and load fast.

Usage (needs npm; the package registry must be reachable):

    python3 tests/fakes/github/regenerate_openapi.py [--version 23.0.2] [--source FILE]

``--source`` trims an already downloaded ``api.github.com.json`` instead of running npm.
Bump ``--version`` deliberately and re-run the platform tests (``pytest tests/test_platform_*``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PACKAGE = "@octokit/openapi"
DEFAULT_VERSION = "23.0.2"
HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "openapi" / "api.github.com.trimmed.json"

#: (method, path) of every operation devops-agent uses. Keep in sync with the fake's routes
#: (tests/test_platform_openapi.py checks that every route is in this list and vice versa).
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("get", "/repos/{owner}/{repo}"),
    ("get", "/repos/{owner}/{repo}/branches"),
    ("get", "/repos/{owner}/{repo}/branches/{branch}"),
    ("get", "/repos/{owner}/{repo}/branches/{branch}/protection"),
    ("delete", "/repos/{owner}/{repo}/git/refs/{ref}"),
    ("get", "/repos/{owner}/{repo}/pulls"),
    ("get", "/repos/{owner}/{repo}/issues"),
    ("post", "/repos/{owner}/{repo}/issues"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}"),
    ("patch", "/repos/{owner}/{repo}/issues/{issue_number}"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/labels"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("get", "/repos/{owner}/{repo}/labels"),
    ("post", "/repos/{owner}/{repo}/labels"),
    ("get", "/repos/{owner}/{repo}/labels/{name}"),
    ("get", "/repos/{owner}/{repo}/deployments"),
    ("post", "/repos/{owner}/{repo}/deployments"),
    ("get", "/repos/{owner}/{repo}/deployments/{deployment_id}"),
    ("get", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"),
    ("post", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"),
    ("get", "/repos/{owner}/{repo}/environments"),
    ("get", "/repos/{owner}/{repo}/environments/{environment_name}"),
    ("put", "/repos/{owner}/{repo}/environments/{environment_name}"),
    ("get", "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies"),
    ("post", "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies"),
    (
        "delete",
        "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies/{branch_policy_id}",
    ),
    ("get", "/users/{username}"),
    ("get", "/orgs/{org}/teams/{team_slug}"),
    ("get", "/repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments"),
    ("post", "/repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments"),
    ("get", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs"),
    ("get", "/repos/{owner}/{repo}/actions/runs/{run_id}"),
    ("get", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs"),
    ("get", "/repos/{owner}/{repo}/actions/artifacts"),
    ("delete", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}"),
    ("get", "/repos/{owner}/{repo}/actions/caches"),
    ("delete", "/repos/{owner}/{repo}/actions/caches/{cache_id}"),
    ("get", "/users/{username}/packages/{package_type}/{package_name}/versions"),
    ("delete", "/users/{username}/packages/{package_type}/{package_name}/versions/{package_version_id}"),
    ("get", "/orgs/{org}/packages/{package_type}/{package_name}/versions"),
    ("delete", "/orgs/{org}/packages/{package_type}/{package_name}/versions/{package_version_id}"),
    ("post", "/repos/{owner}/{repo}/code-scanning/sarifs"),
    ("post", "/repos/{owner}/{repo}/attestations"),
    ("get", "/repos/{owner}/{repo}/attestations/{subject_digest}"),
)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _strip_examples(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_examples(v) for k, v in node.items() if k not in ("examples", "example")}
    if isinstance(node, list):
        return [_strip_examples(v) for v in node]
    return node


def trim(spec: dict[str, Any], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path in OPERATIONS:
        item = spec["paths"].get(path)
        if item is None or method not in item:
            raise SystemExit(f"{method.upper()} {path} is not in {PACKAGE}@{version}")
        target = paths.setdefault(path, {})
        if "parameters" in item:
            target["parameters"] = item["parameters"]
        target[method] = item[method]
    paths = _strip_examples(paths)
    components: dict[str, dict[str, Any]] = {}
    pending = list(_refs(paths))
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, section, name = ref.split("/", 3)
        value = _strip_examples(spec["components"][section][name])
        components.setdefault(section, {})[name] = value
        pending.extend(_refs(value))
    return {
        "openapi": spec["openapi"],
        "info": {
            **{k: v for k, v in spec["info"].items() if k in ("title", "version", "license")},
            "x-trimmed-from": f"{PACKAGE}@{version} generated/api.github.com.json",
            "x-trimmed-by": "tests/fakes/github/regenerate_openapi.py",
        },
        "servers": spec.get("servers", [{"url": "https://api.github.com"}]),
        "paths": dict(sorted(paths.items())),
        "components": {k: dict(sorted(v.items())) for k, v in sorted(components.items())},
    }


def download(version: str, workdir: Path) -> Path:
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(workdir), f"{PACKAGE}@{version}"],
        check=True,
    )
    return workdir / "node_modules" / "@octokit" / "openapi" / "generated" / "api.github.com.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", default=DEFAULT_VERSION, help=f"{PACKAGE} version")
    parser.add_argument("--source", type=Path, help="an api.github.com.json already downloaded")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or download(args.version, Path(tmp))
        spec = json.loads(source.read_text(encoding="utf-8"))
    trimmed = trim(spec, args.version)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(trimmed, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {args.output} ({len(OPERATIONS)} operations, {args.output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
