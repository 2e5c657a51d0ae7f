#!/usr/bin/env bash
# checkov (IaC scanner) in its own virtualenv: it pins many libraries of its own.
# Idempotent: does nothing when the pinned version is already installed.
# The scan stage finds it through DEVOPS_AGENT_CHECKOV, PATH, or $ROOT/.venv-checkov/bin/checkov.
set -euo pipefail
ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
CHECKOV_VERSION="3.3.30"
CHECKOV_VENV="${DEVOPS_AGENT_CHECKOV_VENV:-$ROOT/.venv-checkov}"
PYTHON="${PYTHON:-python3}"

if [ -x "$CHECKOV_VENV/bin/checkov" ] &&
  [ "$("$CHECKOV_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null)" = "$CHECKOV_VERSION" ]; then
  echo "checkov $CHECKOV_VERSION already in $CHECKOV_VENV"
  exit 0
fi
if [ ! -x "$CHECKOV_VENV/bin/python" ]; then
  "$PYTHON" -m venv "$CHECKOV_VENV"
fi
"$CHECKOV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
"$CHECKOV_VENV/bin/checkov" --version >/dev/null
echo "checkov $CHECKOV_VERSION installed in $CHECKOV_VENV"
