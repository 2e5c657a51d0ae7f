#!/usr/bin/env bash
# The `promote` extra (cronsim, for recurring freeze windows) in the CI venv, hash-locked.
# .ci/setup installs dev,scan,supply-chain,deploy; this adds promote until it joins that list.
# Idempotent: pip only checks the installed version on re-run.
set -euo pipefail
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --require-hashes --only-binary=:all: -r "$ROOT/requirements/promote.lock"
