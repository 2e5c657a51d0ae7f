#!/usr/bin/env bash
# semgrep in its own virtualenv: its dependency pins conflict with check-jsonschema (dev extra).
# Idempotent: does nothing when the pinned version is already installed.
# The scan stage and the tests find it through DEVOPS_AGENT_SEMGREP or at $ROOT/.venv-semgrep/bin/semgrep.
# Keep SEMGREP_VERSION equal to devops_agent.security.scanners.SEMGREP_VERSION (a test checks it).
set -euo pipefail
ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
SEMGREP_VERSION="1.175.0"
SEMGREP_VENV="${DEVOPS_AGENT_SEMGREP_VENV:-$ROOT/.venv-semgrep}"
PYTHON="${PYTHON:-python3}"

if [ -x "$SEMGREP_VENV/bin/semgrep" ] &&
  [ "$("$SEMGREP_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("semgrep"))' 2>/dev/null)" = "$SEMGREP_VERSION" ]; then
  echo "semgrep $SEMGREP_VERSION already in $SEMGREP_VENV"
  exit 0
fi
if [ ! -x "$SEMGREP_VENV/bin/python" ]; then
  "$PYTHON" -m venv "$SEMGREP_VENV"
fi
"$SEMGREP_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --require-hashes -r "$ROOT/requirements/semgrep.lock"
SEMGREP_ENABLE_VERSION_CHECK=0 "$SEMGREP_VENV/bin/semgrep" --version >/dev/null
echo "semgrep $SEMGREP_VERSION installed in $SEMGREP_VENV"
