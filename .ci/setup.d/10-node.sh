#!/usr/bin/env bash
# Node packages of the local workflow runner's bridge (GitHub's workflow parser + expressions).
set -euo pipefail
dir="$ROOT/tests/workflow_runner"
stamp="$dir/node_modules/.package-lock.json"
if [ -f "$stamp" ] && cmp -s <(grep -v '"name"' "$dir/package-lock.json" | sha256sum) "$dir/node_modules/.lock-sha" 2>/dev/null; then
  exit 0
fi
npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
grep -v '"name"' "$dir/package-lock.json" | sha256sum > "$dir/node_modules/.lock-sha"
