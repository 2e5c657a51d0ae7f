#!/usr/bin/env bash
# Tools the supply-chain tests use beyond the Python extra: umoci unpacks OCI images so the SBOM
# can list what is installed inside them (tests/test_sbom_image.py). Idempotent and fast on re-run.
set -euo pipefail
if command -v umoci >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends umoci >/dev/null
elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends umoci >/dev/null
else
  echo "warning: umoci is not installed and cannot be installed here (install it with your package manager);" \
    "the OCI image SBOM test will be skipped" >&2
  exit 0
fi
umoci --version
